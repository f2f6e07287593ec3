// Package plan decides, once per Dial, which connections to try and in
// what order: the one function that turns the host, an optional port, the
// servers given or discovered, the remembered winner and the port policy
// into targets, as net's resolveAddrList does for addresses. submit walks
// the list; probe shares the choice of candidates.
package plan

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/portwise/portwise/tlsmode"
)

// Target is one connection to try: a host and a candidate whose mode is
// known.
type Target struct {
	Host      string
	Candidate tlsmode.Candidate
	// Detect marks one of the two modes raced on a port whose mode was not
	// stated (the Candidate's Mode was zero).
	Detect bool
}

// Server is a host with the candidates to try on it (nil: the policy).
type Server struct {
	Host       string
	Candidates []tlsmode.Candidate
}

// Input is everything a plan depends on.
type Input struct {
	// Host is the host dialled; Port its port, 0 when none was given.
	Host string
	Port int
	// Policy is the port policy; nil means tlsmode.Default().
	Policy []tlsmode.Candidate
	// Servers, when set, replace Host: each server's candidates race in
	// order (DialServers).
	Servers []Server
	// Discovered are found for Host (SRV records): raced ahead of the
	// policy on Host itself, when no port was given.
	Discovered []Server
	// Winner, when it is in the plan, goes first; the rest keep their
	// order behind it. It only reorders: it cannot add a target.
	Winner *Target
}

// Targets returns the targets of in, in order, without duplicates. A
// candidate without a mode becomes two targets, the port's usual mode
// (tlsmode.ForPort) first.
func Targets(in Input) []Target {
	var out []Target
	seen := make(map[string]bool)
	add := func(host string, c tlsmode.Candidate) {
		modes := []tlsmode.Mode{c.Mode}
		if c.Mode == 0 {
			usual := tlsmode.ForPort(c.Port)
			other := tlsmode.Implicit
			if usual == tlsmode.Implicit {
				other = tlsmode.StartTLS
			}
			modes = []tlsmode.Mode{usual, other}
		}
		for _, m := range modes {
			t := Target{Host: host, Candidate: tlsmode.Candidate{Port: c.Port, Mode: m}, Detect: c.Mode == 0}
			if k := key(t); !seen[k] {
				seen[k] = true
				out = append(out, t)
			}
		}
	}
	switch {
	case in.Servers != nil:
		for _, s := range in.Servers {
			cands := s.Candidates
			if cands == nil {
				cands = policy(in.Policy)
			}
			for _, c := range cands {
				add(s.Host, c)
			}
		}
	default:
		if in.Port == 0 {
			for _, s := range in.Discovered {
				for _, c := range s.Candidates {
					add(s.Host, c)
				}
			}
		}
		for _, c := range Candidates(in.Policy, in.Port) {
			add(in.Host, c)
		}
	}
	if w := in.Winner; w != nil {
		for i, t := range out {
			if key(t) == key(*w) {
				copy(out[1:i+1], out[:i])
				out[0] = t
				break
			}
		}
	}
	return out
}

// Discover runs find for host, as a Dial does before it plans: not when
// a port was given, nor for an IP address. It returns the servers found,
// without those whose host is not a host name, and find's error.
func Discover(ctx context.Context, host string, port int, find func(context.Context, string) ([]Server, error)) ([]Server, error) {
	if find == nil || port != 0 || net.ParseIP(host) != nil {
		return nil, nil
	}
	servers, err := find(ctx, host)
	var out []Server
	for _, s := range servers {
		if ValidHost(s.Host) == nil {
			out = append(out, s)
		}
	}
	return out, err
}

// OnePerPort keeps, of a port raced in both modes because its mode was
// not stated (Target.Detect), only the first: its usual mode. A probe
// checks the other mode itself when the port shows the symptoms of it.
func OnePerPort(targets []Target) []Target {
	var out []Target
	for i, t := range targets {
		if t.Detect && i > 0 && targets[i-1].Detect && targets[i-1].Candidate.Port == t.Candidate.Port && strings.EqualFold(targets[i-1].Host, t.Host) {
			continue
		}
		out = append(out, t)
	}
	return out
}

func key(t Target) string { return strings.ToLower(t.Host) + "|" + t.Candidate.String() }

func policy(p []tlsmode.Candidate) []tlsmode.Candidate {
	if p == nil {
		return tlsmode.Default()
	}
	return p
}

// Candidates returns the candidates to try for port: the whole policy when
// port is 0; else the policy's candidate for that port, whose mode is
// stated; else the port without a mode.
func Candidates(p []tlsmode.Candidate, port int) []tlsmode.Candidate {
	p = policy(p)
	if port == 0 {
		return append([]tlsmode.Candidate(nil), p...)
	}
	for _, c := range p {
		if c.Port == port {
			return []tlsmode.Candidate{c}
		}
	}
	return []tlsmode.Candidate{{Port: port}}
}

// SplitHost splits "host", "host:port", "[v6]:port" or a bare IPv6 literal
// into the host name and the port (0 when absent), and refuses names that
// are not host names.
func SplitHost(hostport string) (host string, port int, err error) {
	hostport = strings.TrimSpace(hostport)
	if hostport == "" {
		return "", 0, errors.New("empty host")
	}
	h, p, err := net.SplitHostPort(hostport)
	if err != nil {
		if ip := net.ParseIP(strings.Trim(hostport, "[]")); ip != nil {
			return ip.String(), 0, nil
		}
		if strings.Contains(err.Error(), "missing port") {
			return hostport, 0, ValidHost(hostport)
		}
		return "", 0, fmt.Errorf("invalid host %s: want host or host:port", quoteHost(hostport))
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return "", 0, fmt.Errorf("invalid port %s in %s: want 1-65535", quoteHost(p), quoteHost(hostport))
	}
	if h == "" {
		return "", 0, fmt.Errorf("no host name in %s", quoteHost(hostport))
	}
	return h, n, ValidHost(h)
}

// ValidHost refuses a host name holding anything but printable ASCII
// without spaces, "/" or "@": control characters would reach the TLS SNI,
// OAUTHBEARER's host field, logs and transcripts, and a name with
// non-ASCII letters must be given in its A-label (xn--) form.
func ValidHost(h string) error {
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case c >= 0x80:
			return fmt.Errorf("invalid host %s: write an internationalised name in its xn-- form", quoteHost(h))
		case c <= ' ' || c == 0x7f || c == '/' || c == '@':
			return fmt.Errorf("invalid host %s", quoteHost(h))
		}
	}
	if h == "" || len(h) > 253 {
		return fmt.Errorf("invalid host %s", quoteHost(h))
	}
	return nil
}

// quoteHost quotes what the caller gave, escaped and bounded.
func quoteHost(s string) string {
	if len(s) > 100 {
		s = s[:100]
	}
	return strconv.QuoteToASCII(s)
}
