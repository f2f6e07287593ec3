package submit_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	netsmtp "net/smtp"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/tlsmode"
	"golang.org/x/oauth2"
)

// The public contract of /work/shared/API.md, checked by the compiler: a
// renamed or re-typed name breaks this file before it breaks a user.
var (
	_ submit.ContextDialer = &net.Dialer{}

	_ = submit.Dialer{
		Candidates:    []tlsmode.Candidate(nil),
		TLSConfig:     (*tls.Config)(nil),
		Auth:          submit.Auth(nil),
		LocalName:     "",
		Timeout:       time.Duration(0),
		FallbackDelay: time.Duration(0),
		NetDialer:     submit.ContextDialer(nil),
		Logger:        (*slog.Logger)(nil),
	}
	_ func(*submit.Dialer, context.Context, string) (*submit.Client, error) = (*submit.Dialer).Dial

	_ func(*submit.Client) int                                                 = (*submit.Client).Port
	_ func(*submit.Client) tlsmode.Mode                                        = (*submit.Client).Mode
	_ func(*submit.Client) (tls.ConnectionState, bool)                         = (*submit.Client).ConnectionState
	_ func(*submit.Client) string                                              = (*submit.Client).Mechanism
	_ func(*submit.Client, context.Context, string, []string, io.Reader) error = (*submit.Client).Send
	_ func(*submit.Client) *smtp.Client                                        = (*submit.Client).SMTP
	_ func(*submit.Client) error                                               = (*submit.Client).Quit
	_ func(*submit.Client) error                                               = (*submit.Client).Close

	_ func(string, string, string) submit.Auth                   = submit.PlainAuth
	_ func(string, string) submit.Auth                           = submit.LoginAuth
	_ func(string, string) submit.Auth                           = submit.PasswordAuth
	_ func(string, oauth2.TokenSource) submit.Auth               = submit.XOAuth2
	_ func(string, oauth2.TokenSource) submit.Auth               = submit.OAuthBearer
	_ func(func() sasl.Client) submit.Auth                       = submit.SASL
	_ func(netsmtp.Auth) submit.Auth                             = submit.FromNetSMTP
	_ func(...submit.Auth) submit.Auth                           = submit.AnyAuth
	_ func(string, netsmtp.Auth, string, []string, []byte) error = submit.SendMail

	_ = []error{
		submit.ErrSTARTTLSStripped,
		submit.ErrResponseInjection,
		submit.ErrPlaintextAuth,
		submit.ErrAuthFailed,
		submit.ErrOutcomeUnknown,
	}

	_                                 = submit.Attempt{Candidate: tlsmode.Candidate{}, Err: error(nil), Elapsed: time.Duration(0)}
	_                                 = submit.DialError{Host: "", Attempts: []submit.Attempt(nil)}
	_ func(*submit.DialError) string  = (*submit.DialError).Error
	_ func(*submit.DialError) []error = (*submit.DialError).Unwrap
	_ func(error) bool                = submit.IsTemporary

	_ func(*submit.Dialer, string, ...submit.MailerOption) *submit.Mailer      = submit.NewMailer
	_ func(*submit.Mailer, context.Context, string, []string, io.Reader) error = (*submit.Mailer).Send
	_ func(*submit.Mailer) error                                               = (*submit.Mailer).Close

	_ error = &submit.SendError{Rejected: []submit.RecipientError{{Addr: "", Err: (*smtp.SMTPError)(nil)}}}

	_ func(string) (*submit.Dialer, string, error) = submit.ParseURL

	_                                                        = submit.Server{Host: "", Candidates: []tlsmode.Candidate(nil), Source: ""}
	_ func(context.Context, string) ([]submit.Server, error) = submit.Lookup
)

// TestContractDefaults checks the documented defaults of the Dialer's zero
// fields, which programs rely on without setting them.
func TestContractDefaults(t *testing.T) {
	if submit.DefaultTimeout != 30*time.Second || submit.DefaultFallbackDelay != 300*time.Millisecond || submit.DefaultLocalName != "localhost" {
		t.Fatalf("defaults are %v, %v, %q; API.md says 30s, 300ms, \"localhost\"",
			submit.DefaultTimeout, submit.DefaultFallbackDelay, submit.DefaultLocalName)
	}
	sentinels := []error{submit.ErrSTARTTLSStripped, submit.ErrResponseInjection, submit.ErrPlaintextAuth, submit.ErrAuthFailed, submit.ErrOutcomeUnknown}
	for i, a := range sentinels {
		for j, b := range sentinels {
			if i != j && errors.Is(a, b) {
				t.Errorf("sentinel %v is %v: programs could not tell them apart", a, b)
			}
		}
	}
}
