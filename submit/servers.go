package submit

import (
	"context"

	"github.com/portwise/portwise/internal/plan"
	"github.com/portwise/portwise/tlsmode"
)

// Server is a submission host and the port policy to use on it, as
// package discover finds them (provider presets, autoconfig, SRV, MX).
type Server struct {
	Host string
	// Candidates are the ports to try on Host; nil means the Dialer's
	// policy.
	Candidates []tlsmode.Candidate
	// Source says how the server was found: "preset", "autoconfig",
	// "srv" or "mx".
	Source string
	// Origin is where: the URL the autoconfig document came from (after
	// redirects), or the SRV record's name.
	Origin string
	// Provider is the preset's name ("Gmail") when Source is "preset" or
	// "mx".
	Provider string
	// Username is the user name the source says to authenticate with,
	// when it says: a preset's fixed user ("apikey") or the autoconfig
	// document's, with %EMAILADDRESS% and the like filled in. It is the
	// source's text, raw.
	Username string
}

// planServers adapts a Discover function to internal/plan's servers.
func planServers(find func(context.Context, string) ([]Server, error)) func(context.Context, string) ([]plan.Server, error) {
	return func(ctx context.Context, host string) ([]plan.Server, error) {
		servers, err := find(ctx, host)
		out := make([]plan.Server, len(servers))
		for i, s := range servers {
			out[i] = plan.Server{Host: s.Host, Candidates: s.Candidates}
		}
		return out, err
	}
}
