package probe_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/portwise/portwise/internal/dnstest"
	"github.com/portwise/portwise/probe"
	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/discover"
	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/tlsmode"
)

func srvRecord(service, domain string, port int, target string) string {
	return fmt.Sprintf("_%s._tcp.%s. 60 IN SRV 0 0 %d %s", service, domain, port, target)
}

// TestRunChecksSRVTargets: with Options.Discover the domain's SRV targets
// are probed first, each against its own certificate name, and a target
// outside the allowed domains is never contacted.
func TestRunChecksSRVTargets(t *testing.T) {
	srv := submittest.NewServer(t, submittest.Options{Hostname: "mail.example.test"})
	attacker := srv.ListenWith(tlsmode.Implicit, submittest.Options{Hostname: "mail.attacker.test"})
	ns := dnstest.Start(t,
		srvRecord("submissions", "example.test", srv.Implicit.Port, "mail.example.test."),
		"mail.example.test. 60 IN A 127.0.0.1",
		"example.test. 60 IN A 127.0.0.1",
		srvRecord("submissions", "evil.test", attacker.Port, "mail.attacker.test."),
		"mail.attacker.test. 60 IN A 127.0.0.1",
		"evil.test. 60 IN A 127.0.0.1",
	)
	o := probe.Options{
		// On the name itself: the STARTTLS listener, whose certificate is
		// for mail.example.test, not example.test.
		Candidates: []tlsmode.Candidate{{Port: srv.StartTLS.Port, Mode: tlsmode.StartTLS}},
		TLSConfig:  &tls.Config{RootCAs: srv.CertPool()},
		Timeout:    3 * time.Second,
		NetDialer:  &net.Dialer{Resolver: ns.Resolver},
		Discover:   (&discover.SRV{Resolver: ns.Resolver}).Lookup,
		Auth:       submit.PlainAuth("", "user", "pass"),
	}
	rep, err := probe.Run(context.Background(), "example.test", o)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Ports) != 2 || rep.Ports[0].Host != "mail.example.test" || rep.Ports[1].Host != "" {
		t.Fatalf("ports = %+v; want the SRV target first, then the name itself", rep.Ports)
	}
	target, self := rep.Ports[0], rep.Ports[1]
	if !target.Usable || !target.CertVerified || target.AuthResult != "ok" {
		t.Errorf("SRV target: usable %v, verified %v, auth %q (%s)", target.Usable, target.CertVerified, target.AuthResult, target.Error)
	}
	if self.CertVerified || !strings.Contains(strings.Join(codes(self), " "), probe.CodeCertNameMismatch) {
		t.Errorf("the name itself: verified %v, findings %v; want a name mismatch", self.CertVerified, codes(self))
	}
	if rep.Recommendation == nil || rep.Recommendation.Port != target.Port || rep.RecommendedHost != "mail.example.test" {
		t.Errorf("recommendation %v on %q", rep.Recommendation, rep.RecommendedHost)
	}
	if !strings.Contains(rep.Advice, "mail.example.test") {
		t.Errorf("advice does not name the target: %s", rep.Advice)
	}
	var text bytes.Buffer
	rep.WriteText(&text)
	if !strings.Contains(text.String(), "mail.example.test:") || !strings.Contains(text.String(), "on mail.example.test") {
		t.Errorf("text report does not show the target:\n%s", text.String())
	}

	// A forged answer is reported, not followed.
	before := 0
	for _, c := range srv.Conns() {
		if c.Addr == srv.Addr(attacker) {
			before++
		}
	}
	o.Candidates = []tlsmode.Candidate{{Port: srv.Plain.Port, Mode: tlsmode.StartTLS}}
	o.Auth = nil
	rep, err = probe.Run(context.Background(), "evil.test", o)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rep.DiscoveryError, "mail.attacker.test") || len(rep.Ports) != 1 || rep.Ports[0].Host != "" {
		t.Errorf("discovery error %q, ports %+v", rep.DiscoveryError, rep.Ports)
	}
	for _, c := range srv.Conns() {
		if c.Addr == srv.Addr(attacker) {
			before--
		}
	}
	if before != 0 {
		t.Error("the forged SRV target was contacted")
	}
}
