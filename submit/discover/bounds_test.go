package discover_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/discover"
)

// Every SRV record and every autoconfig outgoingServer becomes a connection
// attempt of up to Dialer.Timeout, so how many a zone or a document can
// make a Dial try is bounded.
func TestDiscoveredServersAreBounded(t *testing.T) {
	count := func(servers []submit.Server) int {
		n := 0
		for _, s := range servers {
			n += len(s.Candidates)
		}
		return n
	}
	t.Run("srv", func(t *testing.T) {
		var rrs []string
		for i := range 16 {
			rrs = append(rrs, srvRR("submission", "b.test", i, 0, 587, fmt.Sprintf("m%d.b.test.", i)))
		}
		ns := startDNS(t, rrs...)
		servers, err := (&discover.SRV{Resolver: ns.Resolver}).Lookup(context.Background(), "b.test")
		if err != nil {
			t.Fatal(err)
		}
		if n := count(servers); n == 0 || n > 10 {
			t.Errorf("%d candidates from 16 records; want 1-10", n)
		}
		if servers[0].Host != "m0.b.test" {
			t.Errorf("first server %q; want the best priority, m0.b.test", servers[0].Host)
		}
	})
	t.Run("autoconfig", func(t *testing.T) {
		var outs []string
		for i := range 200 {
			outs = append(outs, outgoing(fmt.Sprintf("smtp%d.x.test", i), "587", "STARTTLS"))
		}
		web := startWeb(t, map[string]string{"autoconfig.x.test/mail/config-v1.1.xml": autoconfigXML(outs...)}, nil, "autoconfig.x.test")
		l := &discover.Lookuper{HTTPClient: web.client, Resolver: startDNS(t).Resolver}
		servers, err := l.Lookup(context.Background(), "user@x.test")
		if err != nil {
			t.Fatal(err)
		}
		if n := count(servers); n == 0 || n > 10 {
			t.Errorf("%d candidates from 200 outgoingServers; want 1-10", n)
		}
	})
	t.Run("ignored entries", func(t *testing.T) {
		var outs []string
		for i := range 300 {
			outs = append(outs, outgoing(fmt.Sprintf("smtp%d.y.test", i), "25", "plain"))
		}
		web := startWeb(t, map[string]string{"autoconfig.y.test/mail/config-v1.1.xml": autoconfigXML(outs...)}, nil, "autoconfig.y.test")
		l := &discover.Lookuper{HTTPClient: web.client, Resolver: startDNS(t).Resolver}
		_, err := l.Lookup(context.Background(), "user@y.test")
		if !errors.Is(err, discover.ErrNoServer) || !strings.Contains(err.Error(), "and 292 more entries") || len(err.Error()) > 2000 {
			t.Errorf("err (%d bytes) = %v; want ErrNoServer naming 8 ignored entries and counting the rest", len(err.Error()), err)
		}
	})
}
