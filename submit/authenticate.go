package submit

// The AUTH step of a Dial: on the secure session the race yields, the
// Dialer's Auth chooses a mechanism from what the server offers after TLS,
// and the credential goes out once the connection's TLS is verified, one
// login at a time within a Mailer, never after a server rejected it.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/portwise/portwise/internal/diag"
	"github.com/portwise/portwise/internal/session"
	"github.com/portwise/portwise/internal/wire"
)

// authResult is the outcome of AUTH on a secure session.
type authResult struct {
	mech  string
	err   error
	sent  bool      // a payload of the mechanism (maybe the credential) went out
	renew renewFunc // renews the credential the server rejected, if it can be
}

// renewFunc renews a rejected credential; retry reports a new one to try.
type renewFunc func(ctx context.Context) (retry bool, err error)

// rejectionHandler is implemented by mechanisms whose rejection carries
// details (XOAUTH2's JSON error challenge) and whose credential can be
// renewed (an OAuth2 access token).
type rejectionHandler interface {
	rejected(final *wire.Reply, lastChallenge []byte) (note string, renew renewFunc)
}

// authenticate runs AUTH on the session the race yielded; gen is the
// Dialer's count of rejected credentials when the race began.
func (d *Dialer) authenticate(ctx context.Context, rd *ready, gen uint64) (res authResult) {
	a, s := rd.attempt, rd.session
	c := a.t.Candidate
	t0 := time.Now()
	info := a.info(nil)
	defer func() {
		d.log(ctx, c, a.t.Host, "auth", time.Since(t0), res.err)
		info.Elapsed, info.Mechanism, info.Err = time.Since(a.start), res.mech, res.err
		a.trace.authDone(info)
	}()
	st, ok := s.Conn.TLS()
	if !ok || !verified(st, a.cfg) {
		// Checked on the real connection, not from the mode: whatever the
		// server advertised, credentials need verified TLS.
		res.err = a.explain("auth", diag.Configf("%w: the connection on port %d has no verified TLS", ErrPlaintextAuth, c.Port))
		return res
	}
	info.TLS, info.Mechanisms = &st, s.Caps.AuthMechs()
	a.trace.authStart(info)
	mech, err := d.Auth.Start(ctx, &AuthInfo{Host: a.t.Host, Mechanisms: s.Caps.AuthMechs(), TLS: &st})
	if err != nil && s.Pending && errors.Is(err, ErrMechanismUnavailable) {
		// Early pipelining chose from what the server offered last time,
		// and nothing fit: read what it offers now, and choose again.
		if err := s.Greet(); err != nil {
			res.err = a.sessionErr("", err)
			return res
		}
		mech, err = d.Auth.Start(ctx, &AuthInfo{Host: a.t.Host, Mechanisms: s.Caps.AuthMechs(), TLS: &st})
	}
	switch {
	case err != nil:
		res.err = a.explain("auth", err)
		return res
	case isNil(mech):
		res.err = a.explain("auth", diag.Configf("submit: the Auth (%T) returned no SASL client and no error", d.Auth))
		return res
	}
	stop := context.AfterFunc(ctx, func() { s.Conn.Close() })
	defer stop()
	leave, err := d.enterLogin(ctx, gen)
	if err != nil {
		res.err = a.explain("auth", err)
		return res
	}
	defer func() { leave(errors.Is(res.err, ErrAuthFailed) && res.renew == nil) }()
	var greet func(string) error
	if s.Pending {
		// Early pipelining: AUTH went with the EHLO after TLS, before its
		// reply (and on implicit TLS the banner) was read. They are read
		// and checked now, before AUTH's reply.
		greet = func(mech string) error {
			if err := s.Greet(); err != nil {
				return err
			}
			if !(&AuthInfo{Mechanisms: s.Caps.AuthMechs()}).Offers(mech) {
				return errUnoffered(mech, &AuthInfo{Mechanisms: s.Caps.AuthMechs()})
			}
			return nil
		}
	}
	ar, err := s.Conn.AuthThen(checkFields(mech), greet)
	res.sent, res.mech = ar.Sent, ar.Mechanism
	var greetErr *session.Error
	switch {
	case errors.As(err, &greetErr):
		res.err = a.sessionErr("", err)
	case err != nil:
		// The credential may have reached the server, which then broke
		// the exchange: its fate is unknown, and the Dial ends.
		res.err = a.explain("auth", err)
	case ar.Final.Code == 235:
	default:
		re := ar.Final.Err("AUTH " + ar.Mechanism)
		if h, ok := mech.(rejectionHandler); ok {
			re.Note, res.renew = h.rejected(ar.Final, ar.LastChallenge)
		}
		res.err = a.explain("auth", re)
	}
	return res
}

// errRejectedMeanwhile is the refusal to send a credential that a server
// rejected while this connection was being opened.
var errRejectedMeanwhile = fmt.Errorf("%w: a server rejected this credential on another connection while this one was being opened; portwise does not send a rejected credential again", ErrAuthFailed)

// loginGate is what a Mailer puts in the context of its Dials: consulted
// right before a credential goes out, it may hold it until another login
// ends, and refuses it once a server rejected it.
type loginGate interface {
	enterLogin(ctx context.Context) (leave func(rejected bool), err error)
}

type loginGateKey struct{}

// withLoginGate returns ctx carrying g for the Dials made with it.
func withLoginGate(ctx context.Context, g loginGate) context.Context {
	return context.WithValue(ctx, loginGateKey{}, g)
}

// enterLogin is called right before the credential goes out on a Dial
// that began when the Dialer had seen gen final rejections. It refuses
// when a server rejected the credential since (a Dial already under way
// when another got 535 does not send it), and passes the context's gate.
// leave records whether the server rejected it for good: a password, or a
// token that cannot be renewed (a token that can is never sent again
// anyway, see XOAuth2).
func (d *Dialer) enterLogin(ctx context.Context, gen uint64) (leave func(rejected bool), err error) {
	gateLeave := func(bool) {}
	if g, _ := ctx.Value(loginGateKey{}).(loginGate); g != nil {
		if gateLeave, err = g.enterLogin(ctx); err != nil {
			return nil, err
		}
	}
	if d.rejections.Load() != gen {
		gateLeave(false)
		return nil, errRejectedMeanwhile
	}
	return func(rejected bool) {
		if rejected {
			d.rejections.Add(1)
		}
		gateLeave(rejected)
	}, nil
}
