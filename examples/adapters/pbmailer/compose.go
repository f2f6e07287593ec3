package pbmailer

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"strings"

	"github.com/domodwyer/mailyak/v3"
	"github.com/gabriel-vasile/mimetype"
	"github.com/pocketbase/pocketbase/tools/mailer"

	"github.com/portwise/portwise/examples/adapters/internal/headers"
)

// ErrBadHeader means a value that goes into a header (an address, a name,
// the subject, a custom header, an attachment's name) holds CR, LF or NUL,
// with which it could add a header of its own, a Bcc say; nothing was sent.
// It is the same error as the other adapters' ErrBadHeader.
var ErrBadHeader = headers.ErrInjection

// Composed is a composed e-mail: its envelope and its bytes.
type Composed struct {
	From string   // MAIL FROM
	To   []string // RCPT TO: To, Cc and Bcc
	Data []byte
}

// Compose builds msg with mailyak, the composer PocketBase's own SMTP
// client uses, the way that client does: names on the addresses, the
// subject and custom headers Q-encoded where needed, the text and HTML
// bodies in quoted-printable, attachments and inline attachments with the
// type their first bytes show, a Message-ID at the sender's domain unless
// msg has one, and the Bcc addresses in the envelope only.
//
// Two differences: where msg has HTML and no Text, PocketBase's client
// derives a text part from the HTML and this one sends the HTML alone
// (PocketBase does not export that conversion); and a value that holds
// CR, LF or NUL is refused (ErrBadHeader) where mailyak drops the line
// breaks it recognises and keeps a bare CR, which portwise, turning every
// line ending into CRLF, would make a header break.
func Compose(msg *mailer.Message) (*Composed, error) {
	if err := check(msg); err != nil {
		return nil, err
	}
	c := &Composed{From: msg.From.Address}
	for _, list := range [][]mail.Address{msg.To, msg.Cc, msg.Bcc} {
		for _, a := range list {
			c.To = append(c.To, a.Address)
		}
	}
	if c.From == "" || len(c.To) == 0 {
		return nil, errors.New("pbmailer: the message needs a From address and at least one recipient in To, Cc or Bcc")
	}

	yak := mailyak.New("", nil) // only its composer is used
	if msg.From.Name != "" {
		yak.FromName(msg.From.Name)
	}
	yak.From(msg.From.Address)
	yak.Subject(msg.Subject)
	yak.HTML().Set(msg.HTML)
	yak.Plain().Set(msg.Text)
	yak.To(named(msg.To)...)
	yak.Cc(named(msg.Cc)...)
	yak.Bcc(named(msg.Bcc)...)
	for name, r := range msg.Attachments {
		r, typ, err := sniff(r)
		if err != nil {
			return nil, fmt.Errorf("pbmailer: attachment %q: %w", name, err)
		}
		yak.AttachWithMimeType(name, r, typ)
	}
	for name, r := range msg.InlineAttachments {
		r, typ, err := sniff(r)
		if err != nil {
			return nil, fmt.Errorf("pbmailer: inline attachment %q: %w", name, err)
		}
		yak.AttachInlineWithMimeType(name, r, typ)
	}
	hasID := false
	for k, v := range msg.Headers {
		hasID = hasID || strings.EqualFold(k, "Message-ID")
		yak.AddHeader(k, v)
	}
	if !hasID {
		id, err := headers.MessageID(msg.From.Address)
		if err != nil {
			return nil, err
		}
		yak.AddHeader("Message-ID", id)
	}
	buf, err := yak.MimeBuf()
	if err != nil {
		return nil, fmt.Errorf("pbmailer: composing the message: %w", err)
	}
	c.Data = buf.Bytes()
	return c, nil
}

// named renders addresses as PocketBase does: "Name <addr>" where there is
// a name, the bare address otherwise.
func named(list []mail.Address) []string {
	out := make([]string, len(list))
	for i, a := range list {
		if a.Name != "" {
			out[i] = a.String()
		} else {
			out[i] = a.Address
		}
	}
	return out
}

// sniff returns r whole again and the MIME type of its first bytes.
func sniff(r io.Reader) (io.Reader, string, error) {
	var head bytes.Buffer
	t, err := mimetype.DetectReader(io.TeeReader(r, &head))
	if err != nil {
		return nil, "", err
	}
	return io.MultiReader(&head, r), t.String(), nil
}

func check(msg *mailer.Message) error {
	if err := clean("From", msg.From.Name, msg.From.Address); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		list []mail.Address
	}{{"To", msg.To}, {"Cc", msg.Cc}, {"Bcc", msg.Bcc}} {
		for _, a := range f.list {
			if err := clean(f.name, a.Name, a.Address); err != nil {
				return err
			}
		}
	}
	if err := clean("Subject", msg.Subject); err != nil {
		return err
	}
	for k, v := range msg.Headers {
		if err := headers.CheckName("pbmailer", k); err != nil {
			return err
		}
		if err := clean(k, v); err != nil {
			return err
		}
	}
	for _, m := range []map[string]io.Reader{msg.Attachments, msg.InlineAttachments} {
		for name := range m {
			// mailyak writes the name as it is into Content-ID.
			if err := clean("attachment name", name); err != nil {
				return err
			}
		}
	}
	return nil
}

func clean(field string, vals ...string) error { return headers.CheckValue("pbmailer", field, vals...) }
