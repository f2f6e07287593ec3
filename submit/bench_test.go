package submit_test

// Benchmarks behind BENCHMARKS.md. Each compares portwise with what users
// would write instead (raw go-smtp, net/smtp, a sequential dial), measured
// in the same process, so that ratios stay meaningful on a noisy machine.

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	netsmtp "net/smtp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/portwise/portwise/internal/netem"
	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/tlsmode"
)

const benchOneWay = 10 * time.Millisecond // 20 ms round trip

var benchMsg = "From: a@example.com\r\nTo: b@example.com\r\nSubject: bench\r\n\r\n" + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n", 16)

// path is one way of getting from a host name to an authenticated session
// (and optionally a sent message) through a latency proxy.
type path struct {
	name string
	// run returns the open session's closer so that closing (a TLS
	// close_notify) is not counted.
	run func(ctx context.Context, nd *netem.Dialer, addr string, cfg *tls.Config, send bool) (io.Closer, error)
}

func portwisePath(mode tlsmode.Mode) path {
	return path{"portwise", func(ctx context.Context, nd *netem.Dialer, addr string, cfg *tls.Config, send bool) (io.Closer, error) {
		p := port(addr)
		d := &submit.Dialer{
			Candidates: []tlsmode.Candidate{{Port: p, Mode: mode}},
			TLSConfig:  cfg,
			Auth:       submit.PlainAuth("", "user", "pass"),
			NetDialer:  nd,
		}
		c, err := d.Dial(ctx, addr)
		if err != nil {
			return nil, err
		}
		if send {
			err = c.Send(ctx, "a@example.com", []string{"b@example.com"}, strings.NewReader(benchMsg))
		}
		return c, err
	}}
}

func goSMTPPath(mode tlsmode.Mode) path {
	return path{"go-smtp", func(ctx context.Context, nd *netem.Dialer, addr string, cfg *tls.Config, send bool) (io.Closer, error) {
		conn, err := nd.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		var c *smtp.Client
		if mode == tlsmode.Implicit {
			c = smtp.NewClient(tls.Client(conn, cfg))
		} else if c, err = smtp.NewClientStartTLS(conn, cfg); err != nil {
			return nil, err
		}
		if err := c.Auth(sasl.NewPlainClient("", "user", "pass")); err != nil {
			return c, err
		}
		if send {
			err = c.SendMail("a@example.com", []string{"b@example.com"}, strings.NewReader(benchMsg))
		}
		return c, err
	}}
}

func netSMTPPath(mode tlsmode.Mode) path {
	return path{"net/smtp", func(ctx context.Context, nd *netem.Dialer, addr string, cfg *tls.Config, send bool) (io.Closer, error) {
		conn, err := nd.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		if mode == tlsmode.Implicit {
			conn = tls.Client(conn, cfg)
		}
		c, err := netsmtp.NewClient(conn, "localhost")
		if err != nil {
			return nil, err
		}
		if mode == tlsmode.StartTLS {
			if err := c.StartTLS(cfg); err != nil {
				return c, err
			}
		}
		if err := c.Auth(netsmtp.PlainAuth("", "user", "pass", "localhost")); err != nil {
			return c, err
		}
		if send {
			err = netSMTPSend(c)
		}
		return c, err
	}}
}

func netSMTPSend(c *netsmtp.Client) error {
	if err := c.Mail("a@example.com"); err != nil {
		return err
	}
	if err := c.Rcpt("b@example.com"); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, benchMsg); err != nil {
		return err
	}
	return w.Close()
}

// proxyRTT measures the round trip the latency proxy really gives: the
// median of 21 one-byte echoes through it. Its scheduling adds a little to
// the nominal 2×benchOneWay, on every round trip of every client alike.
func proxyRTT(b *testing.B) time.Duration {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			io.Copy(c, c)
			c.Close()
		}
	}()
	proxy, err := netem.NewProxy(ln.Addr().String(), benchOneWay)
	if err != nil {
		b.Fatal(err)
	}
	defer proxy.Close()
	c, err := net.Dial("tcp", proxy.Addr())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	var rtts []time.Duration
	buf := make([]byte, 1)
	for range 21 {
		t0 := time.Now()
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
		rtts = append(rtts, time.Since(t0))
	}
	slices.Sort(rtts)
	return rtts[len(rtts)/2]
}

// BenchmarkRoundTrips counts round trips from connect to an authenticated
// session, and to an accepted message, over a 20 ms round-trip path.
// rtts/op is the elapsed time in nominal 20 ms round trips, TCP's
// handshake included; proxy-rtts/op divides by the round trip the proxy
// was measured to give in the same run (proxyRTT).
func BenchmarkRoundTrips(b *testing.B) {
	srv := submittest.NewServer(b)
	rtt := proxyRTT(b)
	for _, mode := range []tlsmode.Mode{tlsmode.StartTLS, tlsmode.Implicit} {
		target := srv.StartTLS
		if mode == tlsmode.Implicit {
			target = srv.Implicit
		}
		proxy, err := netem.NewProxy(srv.Addr(target), benchOneWay)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { proxy.Close() })
		nd := &netem.Dialer{OneWay: benchOneWay}
		for _, stage := range []string{"auth", "accepted"} {
			for _, p := range []path{portwisePath(mode), goSMTPPath(mode), netSMTPPath(mode)} {
				b.Run(fmt.Sprintf("%s/%s/%s", mode, stage, p.name), func(b *testing.B) {
					var total time.Duration
					for b.Loop() {
						t0 := time.Now()
						c, err := p.run(context.Background(), nd, proxy.Addr(), srv.ClientTLSConfig(), stage == "accepted")
						if err != nil {
							b.Fatal(err)
						}
						total += time.Since(t0)
						c.Close()
					}
					b.ReportMetric(float64(total)/float64(b.N)/float64(2*benchOneWay), "rtts/op")
					b.ReportMetric(float64(total)/float64(b.N)/float64(rtt), "proxy-rtts/op")
				})
			}
		}
	}
}

// BenchmarkSendThroughput sends messages over one established session on
// loopback: the library's own overhead per message.
func BenchmarkSendThroughput(b *testing.B) {
	srv := submittest.NewServer(b, submittest.Options{DiscardData: true})
	cfg := srv.ClientTLSConfig()
	ctx := context.Background()
	b.Run("portwise", func(b *testing.B) {
		d := &submit.Dialer{Candidates: []tlsmode.Candidate{{Port: srv.Implicit.Port, Mode: tlsmode.Implicit}}, TLSConfig: cfg, Auth: submit.PlainAuth("", "user", "pass")}
		c, err := d.Dial(ctx, "127.0.0.1")
		if err != nil {
			b.Fatal(err)
		}
		defer c.Quit()
		b.ReportAllocs()
		for b.Loop() {
			if err := c.Send(ctx, "a@example.com", []string{"b@example.com"}, strings.NewReader(benchMsg)); err != nil {
				b.Fatal(err)
			}
		}
	})
	// DATA, as go-smtp and net/smtp send: the client's own overhead,
	// without the server's extra cost of BDAT (go-smtp's server pipes each
	// BDAT message through a goroutine and a 32 KiB copy buffer).
	b.Run("portwise-DATA", func(b *testing.B) {
		d := &submit.Dialer{Candidates: []tlsmode.Candidate{{Port: srv.Implicit.Port, Mode: tlsmode.Implicit}}, TLSConfig: cfg, Auth: submit.PlainAuth("", "user", "pass")}
		c, err := d.Dial(ctx, "127.0.0.1")
		if err != nil {
			b.Fatal(err)
		}
		defer c.Quit()
		o := &submit.SendOptions{NoChunking: true}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.SendWith(ctx, "a@example.com", []string{"b@example.com"}, strings.NewReader(benchMsg), o); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("go-smtp", func(b *testing.B) {
		c, err := smtp.DialTLS(srv.Addr(srv.Implicit), cfg)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Quit()
		if err := c.Auth(sasl.NewPlainClient("", "user", "pass")); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := c.SendMail("a@example.com", []string{"b@example.com"}, strings.NewReader(benchMsg)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("net/smtp", func(b *testing.B) {
		conn, err := tls.Dial("tcp", srv.Addr(srv.Implicit), cfg)
		if err != nil {
			b.Fatal(err)
		}
		c, err := netsmtp.NewClient(conn, "localhost")
		if err != nil {
			b.Fatal(err)
		}
		defer c.Quit()
		if err := c.Auth(netsmtp.PlainAuth("", "user", "pass", "localhost")); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := netSMTPSend(c); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// noCache is a ClientSessionCache that never resumes.
type noCache struct{}

func (noCache) Get(string) (*tls.ClientSessionState, bool) { return nil, false }
func (noCache) Put(string, *tls.ClientSessionState)        {}

// BenchmarkTLSResumption dials repeatedly with the Dialer's session cache
// and without one: on loopback over implicit TLS 1.3 (the CPU of a full
// handshake), and at 20 ms RTT over STARTTLS with TLS 1.2, where an
// abbreviated handshake lets the client's post-TLS EHLO leave one round
// trip earlier. (TLS 1.3 resumes in as many round trips as a full
// handshake; and on implicit TLS the server's banner waits for the
// client's Finished either way.)
func BenchmarkTLSResumption(b *testing.B) {
	srv := submittest.NewServer(b)
	proxy, err := netem.NewProxy(srv.Addr(srv.StartTLS), benchOneWay)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { proxy.Close() })
	for _, net := range []struct {
		name string
		addr string
		mode tlsmode.Mode
		nd   submit.ContextDialer
		max  uint16
	}{
		{"loopback-implicit-tls13", srv.Addr(srv.Implicit), tlsmode.Implicit, nil, 0},
		{"rtt20ms-starttls-tls12", proxy.Addr(), tlsmode.StartTLS, &netem.Dialer{OneWay: benchOneWay}, tls.VersionTLS12},
	} {
		for _, cache := range []struct {
			name  string
			cache tls.ClientSessionCache
		}{{"cache", nil}, {"nocache", noCache{}}} {
			b.Run(net.name+"/"+cache.name, func(b *testing.B) {
				cfg := srv.ClientTLSConfig()
				cfg.MaxVersion = net.max
				p := port(net.addr)
				d := &submit.Dialer{
					Candidates:   []tlsmode.Candidate{{Port: p, Mode: net.mode}},
					TLSConfig:    cfg,
					Auth:         submit.PlainAuth("", "user", "pass"),
					NetDialer:    net.nd,
					SessionCache: cache.cache,
				}
				resumed := 0
				for b.Loop() {
					c, err := d.Dial(context.Background(), net.addr)
					if err != nil {
						b.Fatal(err)
					}
					if st, _ := c.ConnectionState(); st.DidResume {
						resumed++
					}
					c.Quit()
				}
				b.ReportMetric(float64(resumed)/float64(b.N), "resumed/op")
			})
		}
	}
}

// BenchmarkFallback measures time to an authenticated client when the first
// candidate is blackholed (a firewall dropping SYNs) and the second is a
// healthy implicit-TLS port: the staggered race against strictly
// sequential attempts with a 15 s per-attempt timeout (go-mail's default),
// and a Dial after one that found the winner, which goes straight to it.
// The go-mail comparison itself lives in bench/fallback (its own module).
func BenchmarkFallback(b *testing.B) {
	srv := submittest.NewServer(b)
	good := srv.Implicit.Port
	const blocked = 1 // never dialled for real: the NetDialer swallows it
	for _, tt := range []struct {
		name     string
		fallback time.Duration
		remember bool // a second Dial, after a first found the winner
	}{{"portwise-race", 0, false}, {"portwise-sequential", -1, false}, {"portwise-remembered", 0, true}} {
		b.Run(tt.name, func(b *testing.B) {
			d := &submit.Dialer{
				Candidates:    []tlsmode.Candidate{{Port: blocked, Mode: tlsmode.StartTLS}, {Port: good, Mode: tlsmode.Implicit}},
				TLSConfig:     srv.ClientTLSConfig(),
				Auth:          submit.PlainAuth("", "user", "pass"),
				Timeout:       15 * time.Second,
				FallbackDelay: tt.fallback,
				NetDialer:     &netem.Dialer{Block: map[int]bool{blocked: true}},
				// A remembered winner skips the blocked port: the cold
				// path is measured with none.
				WinnerTTL: -1,
			}
			if tt.remember {
				d.WinnerTTL = 0 // the default
				c, err := d.Dial(context.Background(), "127.0.0.1")
				if err != nil {
					b.Fatal(err)
				}
				c.Close()
			}
			for b.Loop() {
				c, err := d.Dial(context.Background(), "127.0.0.1")
				if err != nil {
					b.Fatal(err)
				}
				c.Close()
			}
		})
	}
}

// BenchmarkPipelining sends messages over one established session with a
// 20 ms round trip, to 1 and to 10 recipients. portwise pipelines the
// envelope (RFC 2920) and, with CHUNKING, the message with it as BDAT LAST
// (RFC 3030); portwise-DATA is the same client with DATA, as before
// CHUNKING; go-smtp's client and net/smtp wait for every reply.
func BenchmarkPipelining(b *testing.B) {
	srv := submittest.NewServer(b, submittest.Options{DiscardData: true})
	proxy, err := netem.NewProxy(srv.Addr(srv.Implicit), benchOneWay)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { proxy.Close() })
	nd := &netem.Dialer{OneWay: benchOneWay}
	ctx := context.Background()
	for _, n := range []int{1, 10} {
		rcpts := make([]string, n)
		for i := range rcpts {
			rcpts[i] = fmt.Sprintf("r%d@example.com", i)
		}
		sessions := []struct {
			name string
			open func() (send func() error, closer io.Closer, err error)
		}{
			{"portwise", func() (func() error, io.Closer, error) {
				c, err := portwisePath(tlsmode.Implicit).run(ctx, nd, proxy.Addr(), srv.ClientTLSConfig(), false)
				if err != nil {
					return nil, nil, err
				}
				pc := c.(*submit.Client)
				return func() error { return pc.Send(ctx, "a@example.com", rcpts, strings.NewReader(benchMsg)) }, c, nil
			}},
			// Before CHUNKING: the envelope pipelined, then the body.
			{"portwise-DATA", func() (func() error, io.Closer, error) {
				c, err := portwisePath(tlsmode.Implicit).run(ctx, nd, proxy.Addr(), srv.ClientTLSConfig(), false)
				if err != nil {
					return nil, nil, err
				}
				pc := c.(*submit.Client)
				o := &submit.SendOptions{NoChunking: true}
				return func() error {
					_, err := pc.SendWith(ctx, "a@example.com", rcpts, strings.NewReader(benchMsg), o)
					return err
				}, c, nil
			}},
			{"go-smtp", func() (func() error, io.Closer, error) {
				c, err := goSMTPPath(tlsmode.Implicit).run(ctx, nd, proxy.Addr(), srv.ClientTLSConfig(), false)
				if err != nil {
					return nil, nil, err
				}
				gc := c.(*smtp.Client)
				return func() error { return gc.SendMail("a@example.com", rcpts, strings.NewReader(benchMsg)) }, c, nil
			}},
			{"net/smtp", func() (func() error, io.Closer, error) {
				c, err := netSMTPPath(tlsmode.Implicit).run(ctx, nd, proxy.Addr(), srv.ClientTLSConfig(), false)
				if err != nil {
					return nil, nil, err
				}
				nc := c.(*netsmtp.Client)
				return func() error {
					if err := nc.Mail("a@example.com"); err != nil {
						return err
					}
					for _, r := range rcpts {
						if err := nc.Rcpt(r); err != nil {
							return err
						}
					}
					w, err := nc.Data()
					if err != nil {
						return err
					}
					io.WriteString(w, benchMsg)
					return w.Close()
				}, c, nil
			}},
		}
		for _, s := range sessions {
			b.Run(fmt.Sprintf("rcpts=%d/%s", n, s.name), func(b *testing.B) {
				send, closer, err := s.open()
				if err != nil {
					b.Fatal(err)
				}
				defer closer.Close()
				t0 := time.Now()
				for b.Loop() {
					if err := send(); err != nil {
						b.Fatal(err)
					}
				}
				elapsed := time.Since(t0)
				b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
				b.ReportMetric(float64(elapsed)/float64(b.N)/float64(2*benchOneWay), "rtts/msg")
			})
		}
	}
}

// BenchmarkPipeConnect measures connect → message accepted at 20 ms RTT
// against a server that advertises PIPECONNECT: a Dialer's first session
// (the standard floor), a later one with early pipelining turned off, and
// a later one with it (EHLO, and STARTTLS, before the banner; AUTH with
// the EHLO after TLS).
func BenchmarkPipeConnect(b *testing.B) {
	srv := submittest.NewServer(b)
	rtt := proxyRTT(b)
	for _, mode := range []tlsmode.Mode{tlsmode.StartTLS, tlsmode.Implicit} {
		sc := srv.ListenScript(submittest.Options{}, pcNormal(mode, pcAfterTLS)...)
		proxy, err := netem.NewProxy(srv.Addr(sc), benchOneWay)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { proxy.Close() })
		nd := &netem.Dialer{OneWay: benchOneWay}
		dialer := func(disable bool) *submit.Dialer {
			return &submit.Dialer{Candidates: []tlsmode.Candidate{{Port: port(proxy.Addr()), Mode: mode}}, TLSConfig: srv.ClientTLSConfig(),
				Auth: submit.PlainAuth("", "user", "pass"), NetDialer: nd, DisablePipeConnect: disable}
		}
		send := func(b *testing.B, d *submit.Dialer) time.Duration {
			t0 := time.Now()
			c, err := d.Dial(context.Background(), "127.0.0.1")
			if err == nil {
				err = c.Send(context.Background(), "a@example.com", []string{"b@example.com"}, strings.NewReader(benchMsg))
			}
			if err != nil {
				b.Fatal(err)
			}
			elapsed := time.Since(t0)
			c.Close()
			return elapsed
		}
		for _, bc := range []struct {
			name          string
			fresh, enable bool
		}{{"first-session", true, false}, {"later-without", false, false}, {"later-pipeconnect", false, true}} {
			b.Run(mode.String()+"/"+bc.name, func(b *testing.B) {
				d := dialer(!bc.enable)
				if !bc.fresh {
					send(b, d) // the Dialer learns the server
				}
				var total time.Duration
				for b.Loop() {
					if bc.fresh {
						d = dialer(true)
					}
					total += send(b, d)
				}
				b.ReportMetric(float64(total)/float64(b.N)/float64(2*benchOneWay), "rtts/op")
				b.ReportMetric(float64(total)/float64(b.N)/float64(rtt), "proxy-rtts/op")
			})
		}
	}
}
