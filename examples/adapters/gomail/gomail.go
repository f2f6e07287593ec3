// Package gomail sends messages composed with github.com/wneessen/go-mail
// through portwise: the envelope comes from the message (its envelope
// sender or From; To, Cc and Bcc), the content from its WriteTo, and the
// session from a portwise Client or Mailer, with what portwise guarantees
// (verified TLS, no continuing in clear, smuggling-proof DATA).
package gomail

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/wneessen/go-mail"

	"github.com/portwise/portwise/submit"
)

// Sender is what Send needs: *submit.Client and *submit.Mailer both are.
type Sender interface {
	SendWith(ctx context.Context, from string, to []string, msg io.Reader, o *submit.SendOptions) (*submit.SendResult, error)
}

var (
	_ Sender = (*submit.Client)(nil)
	_ Sender = (*submit.Mailer)(nil)
)

// Send sends m through s with options o (nil for none) and returns what
// portwise reports: size, recipients accepted and refused, queue id. The
// message is rendered into memory first, so its size is declared and
// checked against the server's SIZE limit before MAIL FROM.
func Send(ctx context.Context, s Sender, m *mail.Msg, o *submit.SendOptions) (*submit.SendResult, error) {
	from, err := m.GetSender(false)
	if err != nil {
		return &submit.SendResult{}, fmt.Errorf("gomail: %w", err)
	}
	to, err := m.GetRecipients()
	if err != nil {
		return &submit.SendResult{}, fmt.Errorf("gomail: %w", err)
	}
	// go-mail renders addresses as "<addr>"; the envelope wants them bare.
	from = bare(from)
	for i := range to {
		to[i] = bare(to[i])
	}
	var b bytes.Buffer
	if _, err := m.WriteTo(&b); err != nil {
		return &submit.SendResult{}, fmt.Errorf("gomail: rendering the message: %w", err)
	}
	return s.SendWith(ctx, from, to, bytes.NewReader(b.Bytes()), o)
}

func bare(addr string) string {
	if strings.HasPrefix(addr, "<") && strings.HasSuffix(addr, ">") {
		return addr[1 : len(addr)-1]
	}
	return addr
}
