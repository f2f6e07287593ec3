// Package jwemail sends messages composed with github.com/jordan-wright/email
// through portwise. The library's own e.Bytes() composes the message; the
// envelope comes from the Email as e.Send builds it (Sender or From; To,
// Cc and Bcc); the session is a portwise Client or Mailer, so the message
// goes only over verified TLS, never in clear after a stripped STARTTLS,
// with smuggling-proof DATA.
//
// Two calls change:
//
//	err := e.Send(addr, auth)            →  err := jwemail.Send(ctx, m, e)
//	p, err := email.NewPool(addr, n, a)  →  p, err := jwemail.NewPool(addr, n, a)
//
// and p.Send(e, timeout) and p.Close() stay as they were.
package jwemail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/mail"

	"github.com/jordan-wright/email"

	"github.com/portwise/portwise/examples/adapters/internal/headers"
	"github.com/portwise/portwise/submit"
)

// ErrBadHeader means a header name or value of the Email, or of one of its
// attachments, holds CR, LF or NUL, with which it could add a header of its
// own (a Bcc, say) to the message; nothing was sent. It is the same error
// as the other adapters' ErrBadHeader.
var ErrBadHeader = headers.ErrInjection

// Sender is what Send needs: *submit.Client and *submit.Mailer both are.
type Sender interface {
	SendWith(ctx context.Context, from string, to []string, msg io.Reader, o *submit.SendOptions) (*submit.SendResult, error)
}

var (
	_ Sender = (*submit.Client)(nil)
	_ Sender = (*submit.Mailer)(nil)
)

// Send sends e through s. It replaces e.Send(addr, auth): the addresses,
// the envelope and the bytes are the ones e.Send would use, and portwise's
// errors come back as they are (errors.Is(err, submit.ErrOutcomeUnknown)
// and the like still work).
func Send(ctx context.Context, s Sender, e *email.Email) error {
	_, err := SendWith(ctx, s, e, nil)
	return err
}

// SendWith sends e through s with options o (nil for none) and returns what
// portwise reports: size, recipients accepted and refused, queue id. The
// message is composed in memory first, so its size is declared in MAIL
// FROM and checked against the server's SIZE limit before anything is sent,
// and a Mailer may send it again from its start after a refusal that proves
// the server does not have it.
func SendWith(ctx context.Context, s Sender, e *email.Email, o *submit.SendOptions) (*submit.SendResult, error) {
	from, to, msg, err := prepare(e)
	if err != nil {
		return &submit.SendResult{}, err
	}
	return s.SendWith(ctx, from, to, bytes.NewReader(msg), o)
}

// prepare checks e and returns its envelope and its bytes, as e.Send
// builds them.
func prepare(e *email.Email) (from string, to []string, msg []byte, err error) {
	if err := check(e); err != nil {
		return "", nil, nil, err
	}
	sender := e.Sender
	if sender == "" {
		sender = e.From
	}
	if from, err = address("sender", sender); err != nil {
		return "", nil, nil, err
	}
	for _, list := range [][]string{e.To, e.Cc, e.Bcc} {
		for _, a := range list {
			addr, err := address("recipient", a)
			if err != nil {
				return "", nil, nil, err
			}
			to = append(to, addr)
		}
	}
	if len(to) == 0 {
		return "", nil, nil, errors.New("jwemail: the Email has no recipient in To, Cc or Bcc")
	}
	if msg, err = e.Bytes(); err != nil {
		return "", nil, nil, fmt.Errorf("jwemail: composing the message: %w", err)
	}
	return from, to, msg, nil
}

func address(kind, a string) (string, error) {
	addr, err := mail.ParseAddress(a)
	if err != nil {
		return "", fmt.Errorf("jwemail: %s %q: %w", kind, a, err)
	}
	return addr.Address, nil
}

// check refuses what would let a value add a header of its own. e.Bytes()
// Q-encodes most values but writes address fields it cannot parse, header
// names and attachment filenames as they are; and portwise turns a bare CR
// into a line break, as it turns every line ending into CRLF.
func check(e *email.Email) error {
	for _, f := range []struct {
		name string
		vals []string
	}{
		{"From", []string{e.From}}, {"Sender", []string{e.Sender}}, {"Subject", []string{e.Subject}},
		{"To", e.To}, {"Cc", e.Cc}, {"Bcc", e.Bcc}, {"Reply-To", e.ReplyTo},
	} {
		if err := headers.CheckValue("jwemail", f.name, f.vals...); err != nil {
			return err
		}
	}
	if err := checkHeader(e.Headers, false); err != nil {
		return err
	}
	for _, a := range e.Attachments {
		if err := headers.CheckValue("jwemail", "attachment filename", a.Filename); err != nil {
			return err
		}
		if err := headers.CheckValue("jwemail", "attachment Content-Type", a.ContentType); err != nil {
			return err
		}
		// e.Bytes() folds the Content-Disposition it sets into an
		// attachment's Header: a second send sees CRLF and a space there.
		if err := checkHeader(a.Header, true); err != nil {
			return err
		}
	}
	return nil
}

func checkHeader(h map[string][]string, folded bool) error {
	check := headers.CheckValue
	if folded {
		check = headers.CheckFolded
	}
	for name, vals := range h {
		if err := headers.CheckName("jwemail", name); err != nil {
			return err
		}
		if err := check("jwemail", name, vals...); err != nil {
			return err
		}
	}
	return nil
}
