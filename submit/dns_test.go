package submit_test

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
)

// dnsServer is a real DNS server on loopback UDP serving a fixed zone, so
// that discovery runs through Go's own resolver rather than a fake.
type dnsServer struct {
	Resolver *net.Resolver // asks only this server
	queries  atomic.Int64
}

// startDNS serves records (zone-file lines such as
// "_submission._tcp.example.test. 60 IN SRV 0 0 587 mail.example.test.")
// until the test ends. A name with no records answers NXDOMAIN; a name
// with records of other types answers NOERROR with no data.
func startDNS(t *testing.T, records ...string) *dnsServer {
	t.Helper()
	var rrs []dns.RR
	for _, line := range records {
		rr, err := dns.NewRR(line)
		if err != nil {
			t.Fatalf("record %q: %v", line, err)
		}
		rrs = append(rrs, rr)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &dnsServer{}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, NotifyStartedFunc: func() { close(started) },
		Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
			s.queries.Add(1)
			m := new(dns.Msg)
			m.SetReply(r)
			m.Authoritative = true
			if len(r.Question) == 1 {
				q, exists := r.Question[0], false
				for _, rr := range rrs {
					if h := rr.Header(); strings.EqualFold(h.Name, q.Name) {
						exists = true
						if h.Rrtype == q.Qtype {
							m.Answer = append(m.Answer, rr)
						}
					}
				}
				if !exists {
					m.Rcode = dns.RcodeNameError
				}
			}
			w.WriteMsg(m)
		})}
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	addr := pc.LocalAddr().String()
	s.Resolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", addr)
	}}
	return s
}
