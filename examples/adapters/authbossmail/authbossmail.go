// Package authbossmail is an Authboss mailer (authboss.Mailer) that sends
// through portwise: the confirmation, recovery and two-factor e-mails of
// github.com/volatiletech/authboss/v3 then go only over verified TLS, with
// the credential sent once, over a pool of connections shared by every
// request. The one change:
//
//	ab.Config.Core.Mailer = defaults.NewSMTPMailer(server, auth)
//	ab.Config.Core.Mailer = &authbossmail.Mailer{Mailer: m}  // m: a *submit.Mailer
//
// Authboss's own SMTP mailer writes the Bcc addresses into the message
// for every recipient to read, sends only to To, and writes headers and
// bodies unencoded; this one builds a proper MIME message (see Compose).
package authbossmail

import (
	"bytes"
	"context"
	"time"

	"github.com/volatiletech/authboss/v3"

	"github.com/portwise/portwise/submit"
)

// DefaultTimeout bounds one message when Timeout is zero.
const DefaultTimeout = 2 * time.Minute

// Mailer is an authboss.Mailer over a portwise Mailer. It is safe for
// concurrent use, as the portwise Mailer is.
type Mailer struct {
	Mailer *submit.Mailer
	// Timeout bounds each message, connecting included; 0 means
	// DefaultTimeout.
	Timeout time.Duration
}

var _ authboss.Mailer = (*Mailer)(nil)

// Send composes e and sends it. Authboss calls it, in a goroutine unless
// MailNoGoroutine is set, with the context of the HTTP request, which the
// server cancels as soon as the handler returns: a send bound to it would
// be cut off, at worst after the body went out, leaving the user without
// the e-mail or the outcome unknown. So Send keeps that context's values
// (a submit.Trace, say) but not its cancellation, and is bounded by
// Timeout instead.
//
// portwise's errors come back as they are: errors.Is(err,
// submit.ErrOutcomeUnknown) means the server may have the message, and it
// was not sent again.
func (m *Mailer) Send(ctx context.Context, e authboss.Email) error {
	msg, err := Compose(e, time.Now())
	if err != nil {
		return err
	}
	timeout := m.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	return m.Mailer.Send(ctx, msg.From, msg.To, bytes.NewReader(msg.Data))
}
