package submit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"reflect"
	"strings"
	"time"

	"github.com/portwise/portwise/internal/diag"
	"github.com/portwise/portwise/internal/plan"
	"github.com/portwise/portwise/internal/untrusted"
	"github.com/portwise/portwise/internal/wire"
)

// dialRequest is what a Dial was asked for: a host with an optional port,
// or the servers of DialServers.
type dialRequest struct {
	host    string
	port    int
	servers []plan.Server
}

// dial is the one dial: Dial, DialServers and the Mailer all come here. It
// plans the targets once, races them (race.go), authenticates the first
// secure session (attempt.go), renews a rejected OAuth2 token once, and
// remembers the winner.
func (d *Dialer) dial(ctx context.Context, req dialRequest) (*Client, error) {
	t0, trace := time.Now(), ContextTrace(ctx)
	hook(trace, func(t *Trace) func(DialInfo) { return t.DialStart }, DialInfo{Host: req.host})
	c, err := d.dialTraced(ctx, req)
	if trace != nil && trace.DialDone != nil {
		info := DialInfo{Host: req.host, Elapsed: time.Since(t0), Err: err}
		if c != nil {
			info.Conn = c.connInfo()
		}
		trace.DialDone(info)
	}
	return c, err
}

// dialTraced is dial between its DialStart and DialDone hooks.
func (d *Dialer) dialTraced(ctx context.Context, req dialRequest) (*Client, error) {
	if err := d.check(ctx); err != nil {
		return nil, &DialError{Host: req.host, Err: err}
	}
	in := plan.Input{Host: req.host, Port: req.port, Policy: d.Candidates, Servers: req.servers}
	var discoveryErr error
	if req.servers == nil && req.port == 0 && d.Discover != nil && net.ParseIP(req.host) == nil {
		servers, err := d.Discover(ctx, req.host)
		if err != nil {
			discoveryErr = err
			if d.Logger != nil {
				d.Logger.LogAttrs(ctx, slog.LevelInfo, "portwise discover", slog.String("host", req.host),
					slog.String("error", untrusted.Text(err.Error(), 4*untrusted.MaxText)))
			}
		}
		for _, s := range servers {
			if plan.ValidHost(s.Host) == nil {
				in.Discovered = append(in.Discovered, plan.Server{Host: s.Host, Candidates: s.Candidates})
			}
		}
	}
	key := winnerKey(req.host)
	in.Winner = d.recall(key)
	targets := plan.Targets(in)

	c, de, renew := d.dialOnce(ctx, req.host, targets, d.rejections.Load())
	if renew != nil && ctx.Err() == nil {
		// The server rejected an OAuth2 access token: with a different one
		// from the source, the Dial runs exactly once more.
		retry, err := renew(ctx)
		switch {
		case retry:
			if d.Logger != nil {
				d.Logger.LogAttrs(ctx, slog.LevelInfo, "portwise auth retry", slog.String("host", req.host),
					slog.String("reason", "access token rejected; retrying once with a new one"))
			}
			var de2 *DialError
			c, de2, _ = d.dialOnce(ctx, req.host, targets, d.rejections.Load())
			if de2 != nil {
				de2.Attempts = append(de.Attempts, de2.Attempts...)
				de = de2
			}
		case err != nil:
			de.Err = fmt.Errorf("the server rejected the access token, and a new one could not be fetched: %w", err)
		}
	}
	d.remember(ctx, key, in.Winner, c, de)
	if c != nil {
		return c, nil
	}
	de.Discovery = discoveryErr
	return nil, de
}

// check is what a Dial verifies before any connection: a valid EHLO name,
// a live context, an Auth that is not nil inside, and what the Auth must
// fetch first (an OAuth2 token).
func (d *Dialer) check(ctx context.Context) error {
	if name := d.localName(); wire.CheckLine(name) != nil || strings.ContainsAny(name, " \t") {
		return diag.Configf("submit: invalid Dialer.LocalName %q: %w", untrusted.Name(name), ErrBadAddress)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if d.Auth != nil && isNil(d.Auth) {
		return diag.Configf("submit: Dialer.Auth is a nil %T: set an Auth, or leave Dialer.Auth nil for no AUTH", d.Auth)
	}
	if p, ok := d.Auth.(preparer); ok {
		// Fetch what the Auth needs (an OAuth2 token) before spending a
		// connection: a token endpoint that is down is not a port problem.
		return p.prepare(ctx)
	}
	return nil
}

// preparer is implemented by Auths that need work done before dialling.
type preparer interface {
	prepare(ctx context.Context) error
}

// isNil reports an interface holding a nil pointer, func, map, slice,
// channel or interface: calling its method would panic.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Pointer, reflect.Func, reflect.Map, reflect.Slice, reflect.Chan, reflect.Interface:
		return rv.IsNil()
	}
	return false
}

// dialOnce races the targets and authenticates on the first secure
// session. A credential goes to that session only: whatever it answers
// ends the Dial, unless nothing was sent (the server does not offer the
// mechanism), in which case the next secure session may be tried. renew,
// when set, can renew the credential the server rejected. gen is the
// Dialer's count of rejected credentials when the Dial began.
func (d *Dialer) dialOnce(ctx context.Context, host string, targets []plan.Target, gen uint64) (*Client, *DialError, renewFunc) {
	r := newRace(d, ctx, host, targets)
	var (
		winner *Client
		renew  renewFunc
	)
	r.run(func(s *ready) verdict {
		if d.Auth == nil {
			winner = r.win(s, "")
			return won
		}
		res := d.authenticate(r.ctx, s, gen)
		if res.err == nil {
			winner = r.win(s, res.mech)
			return won
		}
		r.fail(s.idx, res.err)
		s.session.Quit(quitWait)
		renew = res.renew
		if !res.sent && errors.Is(res.err, ErrMechanismUnavailable) {
			return tryNext
		}
		return ended
	})
	if winner != nil {
		return winner, nil, nil
	}
	return nil, &DialError{Host: host, Attempts: r.startedAttempts(), Err: r.callerErr}, renew
}
