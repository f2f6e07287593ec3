package submit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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

// dial is the one dial: Dial, DialServers and the Mailer all come here.
// It checks what needs no connection, plans the targets once, races them
// for a secure session and authenticates on the first (dialOnce), runs
// once more when the server rejected an OAuth2 token the source can
// renew, and remembers the winner.
func (d *Dialer) dial(ctx context.Context, req dialRequest) (c *Client, err error) {
	t0, trace := time.Now(), ContextTrace(ctx)
	hook(trace, func(t *Trace) func(DialInfo) { return t.DialStart }, DialInfo{Host: req.host})
	defer func() { trace.dialDone(req.host, t0, c, err) }()

	if err := d.check(ctx); err != nil {
		return nil, &DialError{Host: req.host, Err: err}
	}
	targets, recalled, discoveryErr := d.plan(ctx, req)
	c, de, renew := d.dialOnce(ctx, req.host, targets, recalled)
	if renew != nil && ctx.Err() == nil {
		c, de = d.renewed(ctx, req.host, targets, recalled, renew, de)
	}
	d.remember(ctx, winnerKey(req.host), recalled, c, de)
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

// plan returns the Dial's targets in order (internal/plan decides it):
// the servers Dialer.Discover found ahead of the policy on the host, the
// remembered winner first when it is among them. It also returns the
// winner it recalled, and why discovery failed, if it did.
func (d *Dialer) plan(ctx context.Context, req dialRequest) (targets []plan.Target, recalled *Winner, discoveryErr error) {
	in := plan.Input{Host: req.host, Port: req.port, Policy: d.Candidates, Servers: req.servers}
	if req.servers == nil && d.Discover != nil {
		in.Discovered, discoveryErr = plan.Discover(ctx, req.host, req.port, planServers(d.Discover))
		if discoveryErr != nil && d.Logger != nil {
			d.Logger.LogAttrs(ctx, slog.LevelInfo, "portwise discover", slog.String("host", req.host),
				slog.String("error", untrusted.Text(discoveryErr.Error(), 4*untrusted.MaxText)))
		}
	}
	recalled = d.recall(winnerKey(req.host))
	if recalled != nil {
		in.Winner = &plan.Target{Host: recalled.Host, Candidate: recalled.Candidate}
	}
	return plan.Targets(in), recalled, discoveryErr
}

// dialOnce races the targets (race.go) and authenticates (auth.go) on the
// first secure session. A credential goes to that session only: whatever
// it answers ends the Dial, unless nothing was sent (the server does not
// offer the mechanism), in which case the next secure session is tried.
// renew, when set, can renew the credential the server rejected.
func (d *Dialer) dialOnce(ctx context.Context, host string, targets []plan.Target, recalled *Winner) (*Client, *DialError, renewFunc) {
	opens := make([]openConfig, len(targets))
	for i, t := range targets {
		opens[i].tls = d.tlsConfig(t.Host)
		if w := recalled; w != nil && w.PipeConnect && !d.DisablePipeConnect &&
			w.Candidate == t.Candidate && strings.EqualFold(w.Host, t.Host) {
			opens[i].early = wire.CapsOf(w.Extensions)
		}
	}
	gen := d.rejections.Load() // a credential rejected from now on is not sent
	r := newRace(d, ctx, host, targets, opens)
	var renew renewFunc
	for s := range r.sessions() {
		if d.Auth == nil {
			if err := s.session.Greet(); err != nil {
				r.fail(s.idx, s.attempt.sessionErr("", err))
				continue
			}
			return r.win(s, ""), nil, nil
		}
		res := d.authenticate(r.ctx, s, gen)
		if res.err == nil {
			return r.win(s, res.mech), nil, nil
		}
		r.fail(s.idx, res.err)
		s.session.Quit(within(ctx, quitWait))
		renew = res.renew
		if res.sent || !errors.Is(res.err, ErrMechanismUnavailable) {
			break // the Dial ends: the credential went to this session
		}
	}
	return nil, r.dialError(), renew
}

// renewed runs the Dial once more after the server rejected an OAuth2
// access token, if the source gives a different one; de is the first
// run's error, which the second run's extends.
func (d *Dialer) renewed(ctx context.Context, host string, targets []plan.Target, recalled *Winner, renew renewFunc, de *DialError) (*Client, *DialError) {
	retry, err := renew(ctx)
	switch {
	case retry:
		if d.Logger != nil {
			d.Logger.LogAttrs(ctx, slog.LevelInfo, "portwise auth retry", slog.String("host", host),
				slog.String("reason", "access token rejected; retrying once with a new one"))
		}
		c, de2, _ := d.dialOnce(ctx, host, targets, recalled)
		if de2 != nil {
			de2.Attempts = append(de.Attempts, de2.Attempts...)
		}
		return c, de2
	case err != nil:
		de.Err = fmt.Errorf("the server rejected the access token, and a new one could not be fetched: %w", err)
	}
	return nil, de
}

// recall returns the remembered winner of key, if it is still fresh; an
// expired one is forgotten. The plan moves it to the front only if it is
// among the targets.
func (d *Dialer) recall(key string) *Winner {
	store := d.winnerStore()
	if store == nil {
		return nil
	}
	w, ok := store.Get(key)
	if !ok {
		return nil
	}
	if age := time.Since(w.At); age > d.winnerTTL() || age < -time.Minute {
		store.Forget(key)
		return nil
	}
	d.log(context.Background(), w.Candidate, w.Host, "remembered", time.Since(w.At), nil)
	return &w
}

// remember records the outcome of a Dial: the winner is stored (again,
// with a fresh time, and whether it advertised PIPECONNECT); a remembered
// winner that failed is forgotten. A Dial the caller cancelled teaches
// nothing.
func (d *Dialer) remember(ctx context.Context, key string, prev *Winner, c *Client, de *DialError) {
	store := d.winnerStore()
	if store == nil {
		return
	}
	if c != nil {
		w := Winner{Host: c.host, Candidate: c.cand, At: time.Now()}
		if c.pipeConnect {
			w.PipeConnect, w.Extensions = true, c.caps.List()
		}
		store.Put(key, w)
		return
	}
	if prev == nil || ctx.Err() != nil || de == nil {
		return
	}
	for _, a := range de.Attempts {
		if a.Candidate == prev.Candidate && strings.EqualFold(a.Host, prev.Host) && a.Err != nil && !errors.Is(a.Err, diag.ErrLostRace) && !errors.Is(a.Err, diag.ErrDialEnded) {
			store.Forget(key)
			return
		}
	}
}
