package submit

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
)

// maxLineBytes is RFC 5321's limit on a text line without its CRLF.
const maxLineBytes = 998

// RecipientError is one recipient the server refused.
type RecipientError struct {
	Addr string
	Err  *smtp.SMTPError
}

func (e RecipientError) Error() string {
	return fmt.Sprintf("%s: %s", e.Addr, smtpText(e.Err))
}

// SendError reports recipients the server refused. When some were accepted
// the message went to them; when none were, nothing was sent.
type SendError struct {
	Rejected []RecipientError
	Accepted int // how many recipients accepted the message
}

func (e *SendError) Error() string {
	var b strings.Builder
	if e.Accepted == 0 {
		b.WriteString("submit: every recipient was refused; nothing was sent")
	} else {
		fmt.Fprintf(&b, "submit: sent to %d recipient(s), refused by the server for %d", e.Accepted, len(e.Rejected))
	}
	for _, r := range e.Rejected {
		b.WriteString("\n  ")
		b.WriteString(r.Error())
	}
	return b.String()
}

// Unwrap returns each refusal's *smtp.SMTPError.
func (e *SendError) Unwrap() []error {
	errs := make([]error, len(e.Rejected))
	for i, r := range e.Rejected {
		errs[i] = r.Err
	}
	return errs
}

// checkAddr refuses addresses that could inject commands or parameters.
func checkAddr(kind, addr string) error {
	if strings.ContainsAny(addr, "\r\n\x00<>") {
		return fmt.Errorf("submit: %s address %q: %w (or < >)", kind, addr, ErrBadAddress)
	}
	return nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func upper(s string) string { return strings.ToUpper(s) }

// Send submits one message: MAIL FROM, RCPT TO for each recipient, DATA. It
// streams msg, normalising every bare CR and bare LF to CRLF, adding a
// final CRLF when missing and dot-stuffing, so no input can end DATA early
// (SMTP smuggling). Addresses holding CR, LF or NUL are refused before
// anything is sent. A refused recipient does not stop the others; see
// SendError. A reply after the final "." is the server's answer (an
// *smtp.SMTPError); a connection that breaks before it gives
// ErrOutcomeUnknown. SendWith takes options and returns what happened.
func (c *Client) Send(ctx context.Context, from string, to []string, msg io.Reader) error {
	_, err := c.SendWith(ctx, from, to, msg, nil)
	return err
}

// mailTransaction runs one mail transaction on c: MAIL FROM, RCPT TO for
// each recipient, DATA with msg streamed through the normalising writer,
// and the final reply; it fills res as it goes. bodyStarted reports that
// msg began to be read: until then a broken connection left nothing on the
// server, so the Mailer may send the message again on another connection.
//
// This is the one place where an envelope meets the wire, one command and
// one reply at a time; a pipelined version (RFC 2920) replaces this
// function and nothing else.
func (c *Client) mailTransaction(ctx context.Context, env *envelope, msg io.Reader, res *SendResult) (bodyStarted bool, err error) {
	end, err := c.begin(ctx, commandTimeout)
	if err != nil {
		return false, err
	}
	defer end()
	t0 := time.Now()

	if c.inTx {
		// A previous transaction ended without a final reply (DATA was
		// refused): clear it, or MAIL would be a nested transaction.
		r, err := c.conn.Exchange("RSET", "")
		if err != nil {
			return false, c.transportErr(ctx, "RSET", err)
		}
		if r.Code != 250 {
			return false, c.replyErr(r)
		}
		c.inTx = false
	}
	r, err := c.conn.Exchange(env.mail, "")
	if err != nil {
		return false, c.transportErr(ctx, "MAIL FROM", err)
	}
	if r.Code != 250 {
		return false, c.replyErr(r)
	}
	c.inTx = true
	for i, rcpt := range env.rcpts {
		r, err := c.conn.Exchange(env.rcptCmds[i], "")
		if err != nil {
			return false, c.transportErr(ctx, "RCPT TO", err)
		}
		switch {
		case r.Code == 250 || r.Code == 251:
			res.Accepted = append(res.Accepted, rcpt)
		case r.Code == 421:
			return false, c.replyErr(r)
		default:
			res.Rejected = append(res.Rejected, RecipientError{Addr: rcpt, Err: r.Err()})
		}
	}
	if len(res.Accepted) == 0 {
		if r, err := c.conn.Exchange("RSET", ""); err != nil {
			c.transportErr(ctx, "RSET", err)
		} else if r.Code == 421 {
			c.replyErr(r)
		} else if r.Code == 250 {
			c.inTx = false
		}
		return false, &SendError{Rejected: res.Rejected}
	}
	r, err = c.conn.Exchange("DATA", "")
	if err != nil {
		return false, c.transportErr(ctx, "DATA", err)
	}
	if r.Code != 354 {
		return false, c.replyErr(r)
	}

	dw := newDataWriter(c.conn.Writer())
	if _, err := io.Copy(dw, msg); err != nil {
		// DATA cannot be aborted in band: closing the connection before
		// the final "." makes the server discard the partial message.
		werr := fmt.Errorf("submit: message not sent, connection closed: %w", err)
		c.fail(werr)
		return true, werr
	}
	if err := dw.Close(); err != nil {
		return true, c.transportErr(ctx, "DATA", err)
	}
	res.Size = dw.n - int64(len(".\r\n"))
	c.conn.Transcript().Note("[%d bytes of message]", dw.n)
	if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > dataTimeout {
		c.conn.SetDeadline(time.Now().Add(dataTimeout))
	}
	if err := c.conn.Flush(); err != nil {
		return true, c.transportErr(ctx, "DATA", fmt.Errorf("%w: %v", ErrOutcomeUnknown, err))
	}
	r, err = c.conn.ReadReply()
	if err != nil {
		return true, c.transportErr(ctx, "reply to DATA", fmt.Errorf("%w: the connection broke after the message was sent and before the server answered (%v); it may or may not have been accepted", ErrOutcomeUnknown, err))
	}
	c.inTx = false
	c.logger(ctx, "send", time.Since(t0), nil)
	res.Reply = r.String()
	if r.Code != 250 {
		return true, c.replyErr(r)
	}
	res.QueueID = QueueID(r.Text())
	if len(res.Rejected) > 0 {
		return true, &SendError{Rejected: res.Rejected, Accepted: len(res.Accepted)}
	}
	return true, nil
}

func knownSize(r io.Reader) (int64, bool) {
	switch v := r.(type) {
	case *bytes.Reader:
		return int64(v.Len()), true
	case *bytes.Buffer:
		return int64(v.Len()), true
	case *strings.Reader:
		return int64(v.Len()), true
	}
	return 0, false
}

// dataWriter streams a message into DATA: it turns bare CR and bare LF into
// CRLF, dot-stuffs lines that start with ".", refuses lines longer than
// SMTP allows, and on Close ends the last line and writes the terminator.
type dataWriter struct {
	w    *bufio.Writer
	bol  bool // at the beginning of a line
	cr   bool // the previous byte was a CR not yet known to be bare
	line int  // current line number, from 1
	col  int  // bytes on the current line as sent, stuffing included
	n    int64
	err  error
}

func newDataWriter(w *bufio.Writer) *dataWriter {
	return &dataWriter{w: w, bol: true, line: 1}
}

func (d *dataWriter) newline() {
	d.w.WriteString("\r\n")
	d.n += 2
	d.bol, d.line, d.col = true, d.line+1, 0
}

func (d *dataWriter) Write(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	n := len(p)
	for len(p) > 0 {
		b := p[0]
		if d.cr {
			d.cr = false
			d.newline()
			if b == '\n' {
				p = p[1:]
				continue
			}
		}
		switch b {
		case '\r':
			d.cr = true
			p = p[1:]
			continue
		case '\n':
			d.newline()
			p = p[1:]
			continue
		}
		if d.bol && b == '.' {
			d.w.WriteByte('.')
			d.col++
			d.n++
		}
		i := bytes.IndexAny(p, "\r\n")
		if i < 0 {
			i = len(p)
		}
		if d.col+i > maxLineBytes {
			d.err = fmt.Errorf("%w: line %d is longer than %d bytes; encode the body (quoted-printable or base64) before sending", ErrLineTooLong, d.line, maxLineBytes)
			return n - len(p), d.err
		}
		if _, err := d.w.Write(p[:i]); err != nil {
			d.err = err
			return n - len(p), err
		}
		d.col += i
		d.n += int64(i)
		d.bol = false
		p = p[i:]
	}
	return n, nil
}

// Close ends the message: a final CRLF when missing, then ".\r\n".
func (d *dataWriter) Close() error {
	if d.err != nil {
		return d.err
	}
	if d.cr || !d.bol {
		d.cr = false
		d.newline()
	}
	_, err := d.w.WriteString(".\r\n")
	d.n += 3
	return err
}
