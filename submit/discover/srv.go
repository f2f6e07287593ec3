package discover

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strings"

	"github.com/portwise/portwise/internal/plan"
	"github.com/portwise/portwise/internal/untrusted"
	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/tlsmode"
)

// maxSRVRecords bounds the records Lookup returns, best first; real
// domains publish one to four.
const maxSRVRecords = 10

// ErrUntrustedSRV means an SRV record pointed outside the domains the SRV
// policy accepts, and was ignored.
var ErrUntrustedSRV = errors.New("SRV target outside the allowed domains")

// SRV finds submission servers from RFC 6186 SRV records, as updated
// by RFC 8314 §5.1: _submissions._tcp.DOMAIN names implicit TLS servers,
// _submission._tcp.DOMAIN STARTTLS servers.
//
// Records are ordered by priority, then by weight as RFC 2782 describes
// (weighted random within a priority, weight 0 last); at equal priority the implicit TLS
// records come first, as RFC 8314 prefers. A target of "." means the
// service is not offered.
//
// The target of an accepted record is the name its certificate must match
// (RFC 6186 §6). Without DNSSEC an SRV answer can be forged, and a forged
// target with a valid certificate for the forger's own name would receive
// the credentials; so a target is accepted only inside AllowedDomains. Pin
// that list to the domains you know your provider uses.
//
// An SRV is safe for concurrent use. Set its Lookup method as
// submit.Dialer.Discover to make Dial of a bare domain race the SRV
// targets ahead of the static policy:
//
//	d.Discover = (&discover.SRV{AllowedDomains: []string{"example.com"}}).Lookup
//
// or call Lookup and pass the result to Dialer.DialServers.
type SRV struct {
	// Resolver looks up the records; nil means net.DefaultResolver.
	Resolver *net.Resolver
	// AllowedDomains are the domains SRV targets must equal or lie under.
	// nil means the domain looked up: for "example.com", targets such as
	// "mail.example.com" are accepted and "mail.example.net" is not.
	AllowedDomains []string
	// Rand returns a uniform random int in [0, n); it orders records of
	// equal priority by weight. nil means math/rand/v2.IntN. Tests set it
	// to make the order deterministic.
	Rand func(n int) int
}

// Lookup returns the submission servers the SRV records of domain
// announce, one Server per record (adjacent records for the same host
// merged; at most 10 records, best first), with Source "srv" and Origin
// the record's name. A domain without records gives no servers and no
// error. When targets were rejected by policy, the accepted ones
// are returned with an error wrapping ErrUntrustedSRV that names the
// others.
func (d *SRV) Lookup(ctx context.Context, domain string) ([]submit.Server, error) {
	domain = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(domain), "."))
	if domain == "" || plan.ValidHost(domain) != nil {
		return nil, fmt.Errorf("discover: SRV lookup: invalid domain %s", quote(domain))
	}
	res := d.Resolver
	if res == nil {
		res = net.DefaultResolver
	}
	type rec struct {
		mode tlsmode.Mode
		srv  *net.SRV
	}
	var (
		recs     []rec
		rejected []string
		errs     []error
	)
	for _, svc := range []struct {
		name string
		mode tlsmode.Mode
	}{{"submissions", tlsmode.Implicit}, {"submission", tlsmode.StartTLS}} {
		_, addrs, err := res.LookupSRV(ctx, svc.name, "tcp", domain)
		var dnsErr *net.DNSError
		if err != nil && !(errors.As(err, &dnsErr) && dnsErr.IsNotFound) && len(addrs) == 0 {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("discover: SRV lookup for %s: %w", domain, ctx.Err())
			}
			errs = append(errs, fmt.Errorf("_%s._tcp.%s: %w", svc.name, domain, untrusted.Error(err)))
			continue
		}
		for _, a := range addrs {
			target := strings.ToLower(strings.TrimSuffix(a.Target, "."))
			if target == "" || a.Port == 0 {
				continue // "." : the service is decidedly not offered here
			}
			if !d.allowed(domain, target) {
				rejected = append(rejected, fmt.Sprintf("_%s._tcp.%s -> %s:%d", svc.name, domain, untrusted.Name(target), a.Port))
				continue
			}
			recs = append(recs, rec{svc.mode, &net.SRV{Target: target, Port: a.Port, Priority: a.Priority, Weight: a.Weight}})
		}
	}

	// Order: priority, then service (implicit first), then RFC 2782
	// weighted selection within each (priority, service) group.
	slices.SortStableFunc(recs, func(a, b rec) int {
		return cmp.Or(cmp.Compare(a.srv.Priority, b.srv.Priority), cmp.Compare(modeRank(a.mode), modeRank(b.mode)))
	})
	var ordered []rec
	for len(recs) > 0 {
		n := 1
		for n < len(recs) && recs[n].srv.Priority == recs[0].srv.Priority && recs[n].mode == recs[0].mode {
			n++
		}
		group := make([]*net.SRV, n)
		for i := range group {
			group[i] = recs[i].srv
		}
		for _, s := range d.byWeight(group) {
			ordered = append(ordered, rec{recs[0].mode, s})
		}
		recs = recs[n:]
	}

	if len(ordered) > maxSRVRecords {
		// Each record is a connection attempt of up to Dialer.Timeout:
		// whoever writes (or forges) the zone must not make a Dial
		// unbounded.
		ordered = ordered[:maxSRVRecords]
	}
	var servers []submit.Server
	for _, r := range ordered {
		c := tlsmode.Candidate{Port: int(r.srv.Port), Mode: r.mode}
		if k := len(servers) - 1; k >= 0 && servers[k].Host == r.srv.Target {
			if !slices.Contains(servers[k].Candidates, c) {
				servers[k].Candidates = append(servers[k].Candidates, c)
			}
			continue
		}
		servers = append(servers, submit.Server{Host: r.srv.Target, Candidates: []tlsmode.Candidate{c}, Source: "srv", Origin: serviceName(r.mode) + domain})
	}
	if len(rejected) > 0 {
		allowed := d.AllowedDomains
		if allowed == nil {
			allowed = []string{domain}
		}
		errs = append(errs, fmt.Errorf("%w %v: ignored %s; if you trust that host, add its domain to SRV.AllowedDomains",
			ErrUntrustedSRV, allowed, untrusted.Names(rejected, "records")))
	}
	if len(errs) > 0 {
		return servers, fmt.Errorf("discover: SRV lookup for %s: %w", domain, errors.Join(errs...))
	}
	return servers, nil
}

func (d *SRV) allowed(domain, target string) bool {
	allowed := d.AllowedDomains
	if allowed == nil {
		allowed = []string{domain}
	}
	for _, a := range allowed {
		a = strings.ToLower(strings.Trim(strings.TrimSpace(a), "."))
		if a != "" && (target == a || strings.HasSuffix(target, "."+a)) {
			return true
		}
	}
	return false
}

func serviceName(m tlsmode.Mode) string {
	if m == tlsmode.Implicit {
		return "_submissions._tcp."
	}
	return "_submission._tcp."
}

func modeRank(m tlsmode.Mode) int {
	if m == tlsmode.Implicit {
		return 0
	}
	return 1
}

// byWeight orders records of one priority by weight, as RFC 2782 intends:
// repeatedly pick one at random with probability proportional to its
// weight. (The RFC's literal recipe draws from [0, sum] inclusive, which
// over-favours the first record; this draws from [0, sum) like Go's own
// resolver.) Records of weight 0 come after the weighted ones, in name
// order. The input order is made canonical first so that Rand alone
// decides.
func (d *SRV) byWeight(group []*net.SRV) []*net.SRV {
	intn := d.Rand
	if intn == nil {
		intn = rand.IntN
	}
	slices.SortFunc(group, func(a, b *net.SRV) int {
		return cmp.Or(strings.Compare(a.Target, b.Target), cmp.Compare(a.Port, b.Port))
	})
	out := make([]*net.SRV, 0, len(group))
	for len(group) > 0 {
		sum := 0
		for _, s := range group {
			sum += int(s.Weight)
		}
		i := 0
		if sum > 0 {
			pick, run := intn(sum), 0
			for ; i < len(group)-1; i++ {
				run += int(group[i].Weight)
				if run > pick {
					break
				}
			}
		}
		out = append(out, group[i])
		group = slices.Delete(group, i, i+1)
	}
	return out
}
