package submit

import (
	"context"
	"fmt"
)

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
