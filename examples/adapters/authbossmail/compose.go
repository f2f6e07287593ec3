package authbossmail

import (
	"bytes"
	"errors"
	"fmt"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
	"time"

	"github.com/volatiletech/authboss/v3"

	"github.com/portwise/portwise/examples/adapters/internal/headers"
)

// ErrBadHeader means a value that goes into a header (an address, a name,
// the subject) holds CR, LF or NUL, with which it could add a header of its
// own, a Bcc say; nothing was sent. It is the same error as the other
// adapters' ErrBadHeader.
var ErrBadHeader = headers.ErrInjection

// Message is a composed e-mail: its envelope and its bytes.
type Message struct {
	From string   // MAIL FROM
	To   []string // RCPT TO: To, Cc and Bcc
	Data []byte
}

// Compose builds the message of e, dated now: From, To, Cc and Reply-To
// with their names (RFC 2047 words where not ASCII), the Subject likewise,
// Date, a Message-ID at the sender's domain, and the text and HTML bodies
// in quoted-printable, as multipart/alternative when there are both. The
// Bcc addresses are in the envelope only. Lines end in CRLF; long header
// lines are folded. A value that would start a header of its own is
// refused (ErrBadHeader).
func Compose(e authboss.Email, now time.Time) (*Message, error) {
	if e.TextBody == "" && e.HTMLBody == "" {
		return nil, errors.New("authbossmail: the e-mail has neither a text nor an HTML body")
	}
	from, err := addresses("From", []string{e.From}, []string{e.FromName})
	if err != nil {
		return nil, err
	}
	if len(from) != 1 {
		return nil, errors.New("authbossmail: the e-mail has no From address")
	}
	var h header
	h.add("From", from[0].String())
	msg := &Message{From: from[0].Address}
	for _, f := range []struct {
		name         string
		addrs, names []string
	}{{"To", e.To, e.ToNames}, {"Cc", e.Cc, e.CcNames}, {"Bcc", e.Bcc, e.BccNames}} {
		list, err := addresses(f.name, f.addrs, f.names)
		if err != nil {
			return nil, err
		}
		for _, a := range list {
			msg.To = append(msg.To, a.Address)
		}
		if len(list) > 0 && f.name != "Bcc" {
			h.add(f.name, join(list))
		}
	}
	if len(msg.To) == 0 {
		return nil, errors.New("authbossmail: the e-mail has no recipient in To, Cc or Bcc")
	}
	if e.ReplyTo != "" {
		reply, err := addresses("Reply-To", []string{e.ReplyTo}, []string{e.ReplyToName})
		if err != nil {
			return nil, err
		}
		h.add("Reply-To", join(reply))
	}
	if err := headers.CheckValue("authbossmail", "Subject", e.Subject); err != nil {
		return nil, err
	}
	h.add("Subject", mime.QEncoding.Encode("utf-8", e.Subject))
	h.add("Date", now.Format(time.RFC1123Z))
	id, err := headers.MessageID(msg.From)
	if err != nil {
		return nil, err
	}
	h.add("Message-ID", id)
	h.add("MIME-Version", "1.0")

	var b bytes.Buffer
	if e.TextBody != "" && e.HTMLBody != "" {
		w := multipart.NewWriter(&b)
		h.add("Content-Type", mime.FormatMediaType("multipart/alternative", map[string]string{"boundary": w.Boundary()}))
		h.write(&b)
		for _, p := range []struct{ typ, body string }{{"text/plain", e.TextBody}, {"text/html", e.HTMLBody}} {
			pw, err := w.CreatePart(textproto.MIMEHeader{
				"Content-Type":              {p.typ + "; charset=utf-8"},
				"Content-Transfer-Encoding": {"quoted-printable"},
			})
			if err != nil {
				return nil, err
			}
			if err := writeQP(pw, p.body); err != nil {
				return nil, err
			}
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
	} else {
		typ, body := "text/plain", e.TextBody
		if body == "" {
			typ, body = "text/html", e.HTMLBody
		}
		h.add("Content-Type", typ+"; charset=utf-8")
		h.add("Content-Transfer-Encoding", "quoted-printable")
		h.write(&b)
		if err := writeQP(&b, body); err != nil {
			return nil, err
		}
	}
	msg.Data = b.Bytes()
	return msg, nil
}

// addresses pairs each address with its name (names is empty, or as long
// as addrs, as Authboss documents). An address may also come as
// "Name <addr>", whose name is used when names gives none.
func addresses(field string, addrs, names []string) ([]*mail.Address, error) {
	if len(names) != 0 && len(names) != len(addrs) {
		return nil, fmt.Errorf("authbossmail: %d %s addresses but %d names: the names must be none or one per address", len(addrs), field, len(names))
	}
	var out []*mail.Address
	for i, s := range addrs {
		if s == "" {
			continue
		}
		name := ""
		if len(names) > 0 {
			name = names[i]
		}
		if err := headers.CheckValue("authbossmail", field, s, name); err != nil {
			return nil, err
		}
		a, err := mail.ParseAddress(s)
		if err != nil {
			return nil, fmt.Errorf("authbossmail: %s address %q: %w", field, s, err)
		}
		if name != "" {
			a.Name = name
		}
		out = append(out, a)
	}
	return out, nil
}

func join(list []*mail.Address) string {
	s := make([]string, len(list))
	for i, a := range list {
		s[i] = a.String() // quotes and encodes the name as needed
	}
	return strings.Join(s, ", ")
}

func writeQP(w interface{ Write([]byte) (int, error) }, body string) error {
	qp := quotedprintable.NewWriter(w)
	if _, err := qp.Write([]byte(body)); err != nil {
		return err
	}
	return qp.Close()
}

// header is a message header in order, folded when written.
type header [][2]string

func (h *header) add(name, value string) { *h = append(*h, [2]string{name, value}) }

// write writes the header and the blank line that ends it. A line longer
// than 78 characters is folded before a space, which unfolding restores:
// RFC 2047 words and address lists have spaces where they may break.
func (h header) write(b *bytes.Buffer) {
	for _, f := range h {
		line := f[0] + ": " + f[1]
		start := len(f[0]) + 1 // the space after the colon is the first place to fold
		for len(line) > 78 {
			i := foldAt(line, start)
			if i < 0 {
				break // no space to fold at: leave the line long
			}
			b.WriteString(line[:i])
			b.WriteString("\r\n")
			line, start = line[i:], 1
		}
		b.WriteString(line)
		b.WriteString("\r\n")
	}
	b.WriteString("\r\n")
}

// foldAt returns where to fold line: the last space before column 78 that
// follows text (so no line is whitespace alone), else the first one after
// it; -1 if none at or after start.
func foldAt(line string, start int) int {
	ok := func(i int) bool { return line[i] == ' ' && line[i-1] != ' ' }
	for i := min(77, len(line)-1); i >= start; i-- {
		if ok(i) {
			return i
		}
	}
	for i := max(78, start); i < len(line); i++ {
		if ok(i) {
			return i
		}
	}
	return -1
}
