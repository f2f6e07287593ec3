package submit

import (
	"context"
	"errors"
	"fmt"
	netsmtp "net/smtp"
	"slices"
	"strings"

	"github.com/emersion/go-sasl"
	"github.com/portwise/portwise/internal/diag"
)

// SASL adapts any go-sasl client: newClient is called once per connection
// that authenticates, and the mechanism its Start names must be one the
// server offers after TLS, or the attempt fails with
// ErrMechanismUnavailable.
func SASL(newClient func() sasl.Client) Auth {
	return AuthFunc(func(_ context.Context, info *AuthInfo) (sasl.Client, error) {
		if newClient == nil {
			return nil, diag.Configf("submit.SASL: the Auth has no constructor")
		}
		c := newClient()
		if isNil(c) {
			return nil, diag.Configf("submit.SASL: the constructor returned a nil sasl.Client")
		}
		mech, ir, err := c.Start()
		if err != nil {
			return nil, err
		}
		if !info.Offers(mech) {
			return nil, errUnoffered(strings.ToUpper(mech), info)
		}
		return &startedClient{mech: mech, ir: ir, next: c.Next}, nil
	})
}

// FromNetSMTP drives a net/smtp Auth, so existing smtp.PlainAuth and
// smtp.CRAMMD5Auth values keep working; SendMail uses it. It sees
// ServerInfo{Name: the host dialled, TLS: true (the Dialer authenticates
// only over verified TLS), Auth: the mechanisms advertised after TLS};
// net/smtp's PlainAuth checks both Name and TLS. The mechanism its Start
// names must be one the server offers, or the attempt fails with
// ErrMechanismUnavailable before anything is sent. An empty initial
// response is none, as net/smtp sends it ("AUTH LOGIN", not "AUTH LOGIN
// ="). Next is called with more=true for each challenge; the final
// Next(more=false) net/smtp makes after success is not.
func FromNetSMTP(a netsmtp.Auth) Auth {
	return AuthFunc(func(_ context.Context, info *AuthInfo) (sasl.Client, error) {
		if isNil(a) {
			return nil, diag.Configf("submit.FromNetSMTP: the net/smtp Auth is nil")
		}
		si := &netsmtp.ServerInfo{
			Name: info.Host,
			TLS:  info.TLS != nil && info.TLS.HandshakeComplete,
			Auth: slices.Clone(info.Mechanisms),
		}
		mech, ir, err := a.Start(si)
		if err != nil {
			// net/smtp.PlainAuth says "wrong host name" when its host is
			// not the host part of addr: name what it was shown.
			return nil, fmt.Errorf("the net/smtp Auth refused to start with ServerInfo{Name: %q, TLS: %v} (the host given to smtp.PlainAuth must be the host part of addr): %w", si.Name, si.TLS, err)
		}
		if !info.Offers(mech) {
			return nil, errUnoffered(strings.ToUpper(mech), info)
		}
		if len(ir) == 0 {
			ir = nil
		}
		return &startedClient{mech: mech, ir: ir, next: func(ch []byte) ([]byte, error) {
			return a.Next(ch, true)
		}}, nil
	})
}

// startedClient is a mechanism whose Start already ran (to learn its name
// before choosing it); it replays the result.
type startedClient struct {
	mech string
	ir   []byte
	next func([]byte) ([]byte, error)
}

func (c *startedClient) Start() (string, []byte, error) { return c.mech, c.ir, nil }

func (c *startedClient) Next(challenge []byte) ([]byte, error) { return c.next(challenge) }

// AnyAuth uses the first of auths whose mechanism the server offers after
// TLS, e.g. AnyAuth(XOAuth2(user, ts), PasswordAuth(user, appPassword)).
// An Auth that fails with ErrMechanismUnavailable passes to the next one;
// any other error ends the choice. Token sources of OAuth2 members are
// asked for their tokens before dialling, and a rejected token is
// refreshed and retried once, as with XOAuth2 alone.
func AnyAuth(auths ...Auth) Auth {
	return anyAuth(slices.Clone(auths))
}

type anyAuth []Auth

func (as anyAuth) Start(ctx context.Context, info *AuthInfo) (sasl.Client, error) {
	if err := as.check(); err != nil {
		return nil, err
	}
	var wants []string
	for _, a := range as {
		c, err := a.Start(ctx, info)
		if err == nil {
			return c, nil
		}
		var ue *unofferedError
		switch {
		case errors.As(err, &ue):
			wants = append(wants, ue.wants...)
		case errors.Is(err, ErrMechanismUnavailable):
			wants = append(wants, "?")
		default:
			return nil, err
		}
	}
	if len(wants) == 0 {
		return nil, diag.Configf("submit.AnyAuth: no Auth given")
	}
	return nil, &unofferedError{wants: wants, offered: info.Mechanisms}
}

// check refuses nil members, whose Start would panic.
func (as anyAuth) check() error {
	for i, a := range as {
		if isNil(a) {
			return diag.Configf("submit.AnyAuth: Auth %d is a nil %T", i, a)
		}
	}
	return nil
}

func (as anyAuth) prepare(ctx context.Context) error {
	if err := as.check(); err != nil {
		return err
	}
	for _, a := range as {
		if p, ok := a.(preparer); ok {
			if err := p.prepare(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}
