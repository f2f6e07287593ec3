package submit

import (
	"context"
	"errors"
	"log/slog"
	"sync"
)

// renewals collects, during one Dial, how to renew each credential a
// server rejected. A mechanism finds it in the context its Auth's Start
// gets, so a rejection is renewed only by the Dial that saw it.
type renewals struct {
	mu  sync.Mutex
	fns []func(ctx context.Context) (retry bool, err error)
}

type renewalsKey struct{}

func renewalsFrom(ctx context.Context) *renewals {
	r, _ := ctx.Value(renewalsKey{}).(*renewals)
	return r
}

func (r *renewals) add(fn func(context.Context) (bool, error)) {
	r.mu.Lock()
	r.fns = append(r.fns, fn)
	r.mu.Unlock()
}

func (r *renewals) take() []func(context.Context) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fns := r.fns
	r.fns = nil
	return fns
}

// dialRenewing runs the race; when it ended because the server rejected a
// credential its mechanism can renew (an OAuth2 access token), it renews
// it and runs the race exactly once more. The attempts of both rounds are
// reported on failure.
func (d *Dialer) dialRenewing(ctx context.Context, newRace func(context.Context) *race) (*Client, error) {
	rn := &renewals{}
	rctx := context.WithValue(ctx, renewalsKey{}, rn)
	r := newRace(rctx)
	host := r.host
	c, err := r.runPlanned(rctx)
	if err == nil {
		return c, nil
	}
	var de *DialError
	fns := rn.take()
	if len(fns) == 0 || !errors.As(err, &de) || !errors.Is(de.Err, ErrAuthFailed) || ctx.Err() != nil {
		return nil, err
	}
	retry := false
	var errs []error
	for _, fn := range fns {
		ok, err := fn(ctx)
		retry = retry || ok
		if err != nil {
			errs = append(errs, err)
		}
	}
	if !retry {
		// The rejection itself stays visible through the attempts.
		if j := errors.Join(errs...); j != nil {
			de.Err = j
		}
		return nil, de
	}
	if d.Logger != nil {
		d.Logger.LogAttrs(ctx, slog.LevelInfo, "portwise auth retry",
			slog.String("host", host), slog.String("reason", "access token rejected; retrying once with a new one"))
	}
	c, err = newRace(ctx).runPlanned(ctx) // without renewals: a second rejection is final
	if err == nil {
		return c, nil
	}
	var de2 *DialError
	if errors.As(err, &de2) {
		de2.Attempts = append(de.Attempts, de2.Attempts...)
	}
	return nil, err
}
