// Package mailv2 plugs portwise into gopkg.in/mail.v2 as its transport:
// mail.Send(s, m) then goes through portwise's port policy, verified TLS,
// STARTTLS-stripping detection and smuggling-proof DATA, and a Mailer's
// pooled connections.
package mailv2

import (
	"bytes"
	"context"
	"io"
	"time"

	mail "gopkg.in/mail.v2"

	"github.com/portwise/portwise/submit"
)

// DefaultTimeout bounds one message when Timeout is zero.
const DefaultTimeout = 2 * time.Minute

// Sender is a mail.SendCloser that sends through a portwise Mailer. It is
// safe for concurrent use, as the Mailer is. Close closes the Mailer.
type Sender struct {
	Mailer *submit.Mailer
	// Timeout bounds each message, connecting included; 0 means
	// DefaultTimeout.
	Timeout time.Duration
}

var _ mail.SendCloser = (*Sender)(nil)

// Send sends one message rendered by mail.v2. mail.Send calls it with the
// envelope from the message's Sender or From, and To, Cc and Bcc.
func (s *Sender) Send(from string, to []string, msg io.WriterTo) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout(s.Timeout))
	defer cancel()
	buf, err := render(msg)
	if err != nil {
		return err
	}
	return s.Mailer.Send(ctx, from, to, buf)
}

// Close closes the Mailer.
func (s *Sender) Close() error { return s.Mailer.Close() }

// ClientSender is a mail.SendCloser over one portwise Client, for a batch
// on one connection. It is not safe for concurrent use. Close sends QUIT.
type ClientSender struct {
	Client  *submit.Client
	Timeout time.Duration // per message; 0 means DefaultTimeout
}

var _ mail.SendCloser = (*ClientSender)(nil)

// Send sends one message rendered by mail.v2 on the Client.
func (s *ClientSender) Send(from string, to []string, msg io.WriterTo) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout(s.Timeout))
	defer cancel()
	buf, err := render(msg)
	if err != nil {
		return err
	}
	return s.Client.Send(ctx, from, to, buf)
}

// Close ends the session with QUIT.
func (s *ClientSender) Close() error { return s.Client.Quit() }

// render writes the message into memory: its size is then known, so it is
// declared in MAIL FROM and checked against the server's SIZE limit before
// anything is sent.
func render(msg io.WriterTo) (*bytes.Reader, error) {
	var b bytes.Buffer
	if _, err := msg.WriteTo(&b); err != nil {
		return nil, err
	}
	return bytes.NewReader(b.Bytes()), nil
}

func timeout(d time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return DefaultTimeout
}
