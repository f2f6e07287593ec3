package submit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"

	"github.com/portwise/portwise/internal/wire"
	"github.com/portwise/portwise/tlsmode"
)

// Server is a submission host and the port policy to use on it, as found by
// Lookup or Discovery.
type Server struct {
	Host       string
	Candidates []tlsmode.Candidate
	// Source says where the server was found: "preset", "autoconfig",
	// "srv" or "mx".
	Source string
	// Provider is the preset's name ("Gmail") when Source is "preset" or
	// "mx".
	Provider string
	// Username is the user name the source says to authenticate with,
	// when it says: a preset's fixed user ("apikey") or the autoconfig
	// document's, with %EMAILADDRESS% and the like filled in.
	Username string
	// Auth lists the credentials a preset expects, preferred first.
	Auth []tlsmode.AuthKind
}

// newRace plans the Dial of host (port 0: every candidate). With
// Discovery, the SRV targets come first, each with the mode its service
// name implies, then the policy on host itself. A remembered winner moves
// to the front.
func (d *Dialer) newRace(ctx context.Context, host string, port int) *race {
	r := &race{d: d, host: host, key: winnerKey(host)}
	seen := make(map[string]bool)
	add := func(h string, c tlsmode.Candidate) {
		k := strings.ToLower(h) + "|" + c.String()
		if seen[k] {
			return
		}
		seen[k] = true
		r.hosts = append(r.hosts, h)
		r.cands = append(r.cands, c)
	}
	if port == 0 && d.Discovery != nil && net.ParseIP(host) == nil {
		servers, err := d.Discovery.LookupSRV(ctx, host)
		if err != nil {
			r.note = err
			if d.Logger != nil {
				d.Logger.LogAttrs(ctx, slog.LevelInfo, "portwise srv", slog.String("host", host), slog.String("error", err.Error()))
			}
		}
		for _, s := range servers {
			for _, c := range s.Candidates {
				add(s.Host, c)
			}
		}
	}
	for _, c := range d.plan(port) {
		add(host, c)
	}
	d.preferWinner(r)
	return r
}

// runPlanned runs the race; when it fails, a discovery problem (a
// rejected SRV target, a DNS failure) is added to the DialError, since it
// may be why nothing worked.
func (r *race) runPlanned(ctx context.Context) (*Client, error) {
	c, err := r.run(ctx)
	var de *DialError
	if r.note != nil && errors.As(err, &de) && de.Err == nil {
		de.Err = r.note
	}
	return c, err
}

// DialServers is Dial over several servers, such as Lookup returns: their
// candidates race in order (each server's Candidates, or the Dialer's
// policy when nil), staggered by FallbackDelay, with the same guarantees
// as Dial: verified TLS for the server's own name, and a credential sent
// at most once. The winner is remembered under the first server's host.
func (d *Dialer) DialServers(ctx context.Context, servers []Server) (*Client, error) {
	if len(servers) == 0 {
		return nil, errors.New("submit: DialServers needs at least one server")
	}
	first := servers[0].Host
	if err := d.dialChecks(ctx, first); err != nil {
		return nil, err
	}
	r := &race{d: d, host: first, key: winnerKey(first)}
	for _, s := range servers {
		h, port, err := SplitHost(s.Host)
		if err != nil {
			return nil, err
		}
		if port != 0 {
			return nil, fmt.Errorf("submit: server %q: give the ports in Server.Candidates, not in Host", s.Host)
		}
		cands := s.Candidates
		if cands == nil {
			cands = d.plan(0)
		}
		for _, c := range cands {
			r.hosts = append(r.hosts, h)
			r.cands = append(r.cands, c)
		}
	}
	d.preferWinner(r)
	return r.run(ctx)
}

// dialChecks are Dial's checks before any connection: a valid EHLO name, a
// live context, and what the Auth must fetch first.
func (d *Dialer) dialChecks(ctx context.Context, host string) error {
	if err := wire.CheckLine(d.localName()); err != nil || strings.Contains(d.localName(), " ") {
		return fmt.Errorf("submit: invalid LocalName %q: %w", d.LocalName, ErrBadAddress)
	}
	if err := ctx.Err(); err != nil {
		return &DialError{Host: host, Err: err}
	}
	if p, ok := d.Auth.(preparer); ok {
		// Fetch what the Auth needs (an OAuth2 token) before spending a
		// connection: a token endpoint that is down is not a port problem.
		if err := p.prepare(ctx); err != nil {
			return &DialError{Host: host, Err: err}
		}
	}
	return nil
}
