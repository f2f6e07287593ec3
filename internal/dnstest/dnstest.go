// Package dnstest runs a real DNS server on loopback UDP for tests, so that
// SRV discovery and host lookups go through Go's own resolver rather than a
// fake. It is the only package that imports github.com/miekg/dns, and only
// tests import it.
package dnstest

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
)

// Server is a DNS server answering from a fixed zone.
type Server struct {
	// Resolver asks only this server.
	Resolver *net.Resolver
	// Addr is the server's "127.0.0.1:port" (UDP).
	Addr    string
	queries atomic.Int64
}

// Queries returns how many queries the server has answered.
func (s *Server) Queries() int64 { return s.queries.Load() }

// Start serves records (zone-file lines such as
// "_submission._tcp.example.test. 60 IN SRV 0 0 587 mail.example.test.")
// until the test ends. A name with no records answers NXDOMAIN; a name with
// records of other types answers NOERROR with no data.
func Start(tb testing.TB, records ...string) *Server {
	tb.Helper()
	var rrs []dns.RR
	for _, line := range records {
		rr, err := dns.NewRR(line)
		if err != nil {
			tb.Fatalf("record %q: %v", line, err)
		}
		rrs = append(rrs, rr)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &Server{}
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
	tb.Cleanup(func() { srv.Shutdown() })
	addr := pc.LocalAddr().String()
	s.Addr = addr
	s.Resolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", addr)
	}}
	return s
}
