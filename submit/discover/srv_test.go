package discover_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/discover"
	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/tlsmode"
)

func srvRR(service, domain string, prio, weight, port int, target string) string {
	return fmt.Sprintf("_%s._tcp.%s. 60 IN SRV %d %d %d %s", service, domain, prio, weight, port, target)
}

func TestLookupSRVOrdersAndFiltersRecords(t *testing.T) {
	ns := startDNS(t,
		srvRR("submissions", "example.test", 10, 0, 465, "mail.example.test."),
		srvRR("submission", "example.test", 0, 0, 587, "mail2.example.test."),
		srvRR("submission", "example.test", 10, 0, 587, "mail.example.test."),
		srvRR("submissions", "w.test", 0, 1, 465, "a.w.test."),
		srvRR("submissions", "w.test", 0, 3, 465, "b.w.test."),
		srvRR("submissions", "w.test", 0, 0, 465, "z.w.test."),
		srvRR("submissions", "dot.test", 0, 0, 0, "."),
		srvRR("submission", "dot.test", 0, 0, 587, "mail.dot.test."),
		srvRR("submissions", "evil.test", 0, 0, 465, "mail.attacker.test."),
		srvRR("submission", "evil.test", 0, 0, 587, "mail.evil.test."),
		srvRR("submission", "evil.test", 1, 0, 587, "notevil.test."),
		"none.test. 60 IN A 127.0.0.1",
	)
	S, I := tlsmode.StartTLS, tlsmode.Implicit
	srvs := func(hc ...any) []submit.Server {
		var out []submit.Server
		for i := 0; i < len(hc); i += 2 {
			out = append(out, submit.Server{Host: hc[i].(string), Candidates: hc[i+1].([]tlsmode.Candidate), Source: "srv"})
		}
		return out
	}
	one := func(p int, m tlsmode.Mode) []tlsmode.Candidate { return []tlsmode.Candidate{{Port: p, Mode: m}} }
	tests := []struct {
		name    string
		domain  string
		allowed []string
		rand    func(int) int
		want    []submit.Server
		wantErr error
	}{
		{"priority first, implicit first at equal priority", "example.test", nil, nil,
			srvs("mail2.example.test", one(587, S), "mail.example.test", []tlsmode.Candidate{{Port: 465, Mode: I}, {Port: 587, Mode: S}}), nil},
		{"weights, random draws low", "w.test", nil, func(int) int { return 0 },
			srvs("a.w.test", one(465, I), "b.w.test", one(465, I), "z.w.test", one(465, I)), nil},
		{"weights, random draws high", "w.test", nil, func(n int) int { return n - 1 },
			srvs("b.w.test", one(465, I), "a.w.test", one(465, I), "z.w.test", one(465, I)), nil},
		{"target . means not offered", "dot.test", nil, nil, srvs("mail.dot.test", one(587, S)), nil},
		{"targets outside the domain are rejected", "evil.test", nil, nil, srvs("mail.evil.test", one(587, S)), discover.ErrUntrustedSRV},
		{"allowed domains admit them", "Evil.Test.", []string{"attacker.test", "evil.test", "notevil.test"}, nil,
			srvs("mail.attacker.test", one(465, I), "mail.evil.test", one(587, S), "notevil.test", one(587, S)), nil},
		{"no records", "none.test", nil, nil, nil, nil},
		{"no such domain", "nxdomain.test", nil, nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &discover.SRV{Resolver: ns.Resolver, AllowedDomains: tt.allowed, Rand: tt.rand}
			got, err := d.Lookup(context.Background(), tt.domain)
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v; want %v", err, tt.wantErr)
			}
			if !slices.EqualFunc(got, tt.want, func(a, b submit.Server) bool {
				return a.Host == b.Host && a.Source == b.Source && slices.Equal(a.Candidates, b.Candidates)
			}) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
			if err != nil && (!strings.Contains(err.Error(), "mail.attacker.test:465") || !strings.Contains(err.Error(), "notevil.test:587")) {
				t.Errorf("error does not name the rejected targets: %v", err)
			}
		})
	}
}

func TestLookupSRVWeightsFollowRFC2782(t *testing.T) {
	ns := startDNS(t,
		srvRR("submissions", "w.test", 0, 1, 465, "a.w.test."),
		srvRR("submissions", "w.test", 0, 3, 465, "b.w.test."),
	)
	rng := rand.New(rand.NewPCG(1, 2))
	d := &discover.SRV{Resolver: ns.Resolver, Rand: rng.IntN}
	const n = 400
	bFirst := 0
	for range n {
		got, err := d.Lookup(context.Background(), "w.test")
		if err != nil || len(got) != 2 {
			t.Fatalf("got %v, %v", got, err)
		}
		if got[0].Host == "b.w.test" {
			bFirst++
		}
	}
	// Weight 3 of 4: b comes first three times in four (the seed is
	// fixed, so this is deterministic; the bound allows any fair seed).
	t.Logf("b first %d of %d", bFirst, n)
	if bFirst < n*68/100 || bFirst > n*82/100 {
		t.Errorf("b first %d of %d times; want about 75%%", bFirst, n)
	}
}

// srvDialer dials through the loopback DNS server: SRV records and the
// targets' addresses both come from it.
func srvDialer(srv *submittest.Server, ns *dnsServer, disc *discover.SRV) *submit.Dialer {
	disc.Resolver = ns.Resolver
	return &submit.Dialer{
		Candidates:    []tlsmode.Candidate{{Port: 587, Mode: tlsmode.StartTLS}},
		TLSConfig:     &tls.Config{RootCAs: srv.CertPool()}, // ServerName: each target's own name
		Auth:          submit.PlainAuth("", "user", "pass"),
		Timeout:       5 * time.Second,
		FallbackDelay: -1,
		NetDialer:     &net.Dialer{Resolver: ns.Resolver},
		Discover:      disc.Lookup,
	}
}

func TestDialDiscoveryRacesSRVTargetsOnTheWire(t *testing.T) {
	srv := submittest.NewServer(t, submittest.Options{Hostname: "mail.example.test"})
	attacker := srv.ListenWith(tlsmode.Implicit, submittest.Options{Hostname: "mail.attacker.test"})
	ns := startDNS(t,
		srvRR("submissions", "example.test", 0, 0, srv.Implicit.Port, "mail.example.test."),
		srvRR("submission", "example.test", 10, 0, srv.StartTLS.Port, "mail.example.test."),
		"mail.example.test. 60 IN A 127.0.0.1",
		srvRR("submissions", "evil.test", 0, 0, attacker.Port, "mail.attacker.test."),
		"mail.attacker.test. 60 IN A 127.0.0.1",
	)

	d := srvDialer(srv, ns, &discover.SRV{})
	c, err := d.Dial(context.Background(), "example.test")
	if err != nil {
		t.Fatal(err)
	}
	st, _ := c.ConnectionState()
	if c.Host() != "mail.example.test" || c.Mode() != tlsmode.Implicit || c.Port() != srv.Implicit.Port ||
		st.ServerName != "mail.example.test" || len(st.VerifiedChains) == 0 {
		t.Errorf("won %s:%d %v, TLS for %q verified %v; want the _submissions target", c.Host(), c.Port(), c.Mode(), st.ServerName, len(st.VerifiedChains) > 0)
	}
	if err := c.Send(context.Background(), "a@example.test", []string{"b@example.test"}, strings.NewReader(testMsg)); err != nil {
		t.Fatal(err)
	}
	c.Quit()

	// A forged answer pointing at a host with a valid certificate of its
	// own is not followed: no connection, and the Dial says why.
	_, err = d.Dial(context.Background(), "evil.test")
	if !errors.Is(err, discover.ErrUntrustedSRV) || !strings.Contains(err.Error(), "mail.attacker.test") {
		t.Errorf("err = %v; want ErrUntrustedSRV naming the target", err)
	}
	if n := countConns(srv)[srv.Addr(attacker)]; n != 0 {
		t.Errorf("the forged target got %d connections", n)
	}

	// Pinned by the application, the same target is used.
	d = srvDialer(srv, ns, &discover.SRV{AllowedDomains: []string{"attacker.test"}})
	c, err = d.Dial(context.Background(), "evil.test")
	if err != nil {
		t.Fatal(err)
	}
	c.Quit()
	if c.Host() != "mail.attacker.test" {
		t.Errorf("won on %s", c.Host())
	}
}

func TestDialDiscoveryFallsBackToThePolicyAndRemembersTheTarget(t *testing.T) {
	srv := submittest.NewServer(t, submittest.Options{Hostname: "mail.example.test"})
	stripped := srv.Listen(tlsmode.StartTLS, submittest.StripSTARTTLS)
	ns := startDNS(t,
		srvRR("submission", "example.test", 0, 0, stripped.Port, "mail.example.test."),
		srvRR("submissions", "example.test", 5, 0, srv.Implicit.Port, "mail.example.test."),
		"mail.example.test. 60 IN A 127.0.0.1",
	)
	d := srvDialer(srv, ns, &discover.SRV{})
	for i, want := range []int{1, 1} {
		c, err := d.Dial(context.Background(), "example.test")
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		c.Quit()
		if c.Port() != srv.Implicit.Port {
			t.Errorf("dial %d won on %d", i, c.Port())
		}
		if n := countConns(srv)[srv.Addr(stripped)]; n != want {
			t.Errorf("after dial %d the stripped target had %d connections; want %d", i, n, want)
		}
	}

	// No SRV records: the static policy on the name itself.
	srv2 := submittest.NewServer(t)
	d = srvDialer(srv2, ns, &discover.SRV{})
	d.TLSConfig = srv2.ClientTLSConfig()
	d.Candidates = srv2.Candidates()
	c, err := d.Dial(context.Background(), "localhost")
	if err != nil {
		t.Fatal(err)
	}
	c.Quit()
	if c.Host() != "localhost" || c.Mode() != tlsmode.StartTLS {
		t.Errorf("won %s %v", c.Host(), c.Mode())
	}
}

func TestDialServersRacesAcrossHosts(t *testing.T) {
	srv := submittest.NewServer(t)
	refused := srv.Listen(tlsmode.StartTLS, submittest.Refuse)
	d := srv.Dialer(submit.PlainAuth("", "user", "pass"))
	d.Timeout, d.FallbackDelay = 5*time.Second, 50*time.Millisecond
	d.TLSConfig.ServerName = "" // each server's own name: localhost and 127.0.0.1 are both in the certificate
	closed := []tlsmode.Candidate{refused}

	c, err := d.DialServers(context.Background(), []submit.Server{
		{Host: "localhost", Candidates: closed},
		{Host: "127.0.0.1", Candidates: []tlsmode.Candidate{srv.Implicit}},
	})
	if err != nil {
		t.Fatal(err)
	}
	c.Quit()
	if c.Host() != "127.0.0.1" || c.Mode() != tlsmode.Implicit {
		t.Errorf("won %s %v", c.Host(), c.Mode())
	}

	_, err = d.DialServers(context.Background(), []submit.Server{{Host: "localhost", Candidates: closed}, {Host: "127.0.0.1", Candidates: closed}})
	var de *submit.DialError
	if !errors.As(err, &de) || len(de.Attempts) != 2 || de.Attempts[1].Host != "127.0.0.1" ||
		!strings.Contains(err.Error(), fmt.Sprintf("127.0.0.1:%d/starttls: connect", refused.Port)) {
		t.Errorf("err = %v", err)
	}

	for _, bad := range [][]submit.Server{nil, {{Host: "localhost:587"}}} {
		if _, err := d.DialServers(context.Background(), bad); err == nil {
			t.Errorf("DialServers(%v) succeeded", bad)
		}
	}
}
