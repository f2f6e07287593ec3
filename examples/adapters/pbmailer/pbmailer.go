// Package pbmailer sends the e-mails of a PocketBase application (its
// verification, password-reset, OTP and e-mail-change messages, and
// whatever app.NewMailClient().Send sends) through portwise: only over
// verified TLS, the credential sent once, over connections reused across
// messages. The one change, in main.go:
//
//	pbmailer.Bind(app, &pbmailer.Mailer{Mailer: m}) // m: a *submit.Mailer
//
// PocketBase still builds its own mail client from its settings; Bind
// replaces it in the OnMailerSend hook, as PocketBase documents for custom
// mailers, so every message goes through m whether the dashboard's SMTP
// settings are on (PocketBase's client would use net/smtp) or off (it
// would run sendmail).
//
// It is a module of its own: PocketBase's module requires a SQLite driver,
// a JavaScript runtime and more, which the other adapters' users should not
// download.
package pbmailer

import (
	"bytes"
	"context"
	"time"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/hook"
	"github.com/pocketbase/pocketbase/tools/mailer"

	"github.com/portwise/portwise/submit"
)

// DefaultTimeout bounds one message when Timeout is zero.
const DefaultTimeout = 2 * time.Minute

// HandlerID is the id of the handler Bind adds to app.OnMailerSend(), for
// app.OnMailerSend().Unbind.
const HandlerID = "portwise"

// Mailer is a PocketBase mailer.Mailer over a portwise Mailer. It is safe
// for concurrent use, as the portwise Mailer is.
type Mailer struct {
	Mailer *submit.Mailer
	// Timeout bounds each message, connecting included; 0 means
	// DefaultTimeout. PocketBase's Send takes no context.
	Timeout time.Duration
}

var _ mailer.Mailer = (*Mailer)(nil)

// Send composes msg as PocketBase's SMTP client does (see Compose) and
// sends it. portwise's errors come back as they are: errors.Is(err,
// submit.ErrOutcomeUnknown) means the server may have the message, and it
// was not sent again.
func (m *Mailer) Send(msg *mailer.Message) error {
	c, err := Compose(msg)
	if err != nil {
		return err
	}
	timeout := m.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return m.Mailer.Send(ctx, c.From, c.To, bytes.NewReader(c.Data))
}

// Bind makes app send every e-mail through m: its OnMailerSend handler
// (HandlerID) puts m in the event's Mailer, and PocketBase then sends with
// it instead of the client it built. Hooks that change the message, bound
// before or after, still apply. Binding again replaces the earlier m.
func Bind(app core.App, m *Mailer) {
	app.OnMailerSend().Bind(&hook.Handler[*core.MailerEvent]{
		Id: HandlerID,
		Func: func(e *core.MailerEvent) error {
			e.Mailer = m
			return e.Next()
		},
	})
}
