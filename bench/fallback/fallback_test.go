package fallback

import (
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"

	mail "github.com/wneessen/go-mail"

	"github.com/portwise/portwise/internal/netem"
	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/tlsmode"
)

// blocked is the port a firewall swallows (the NetDialer never completes the
// connect), standing in for a blocked 587.
const blocked = 1

// BenchmarkFallback: time to an authenticated client when 587 is blackholed
// and 465 is healthy.
func BenchmarkFallback(b *testing.B) {
	srv := submittest.NewServer(b)
	good := srv.Implicit.Port
	nd := &netem.Dialer{Block: map[int]bool{blocked: true}}

	b.Run("portwise", func(b *testing.B) {
		d := &submit.Dialer{
			Candidates: []tlsmode.Candidate{{Port: blocked, Mode: tlsmode.StartTLS}, {Port: good, Mode: tlsmode.Implicit}},
			TLSConfig:  srv.ClientTLSConfig(),
			Auth:       submit.PlainAuth("", "user", "pass"),
			NetDialer:  nd,
			WinnerTTL:  -1, // measure the cold path every time
		}
		for b.Loop() {
			c, err := d.Dial(context.Background(), "localhost")
			if err != nil {
				b.Fatal(err)
			}
			c.Close()
		}
	})

	// The second Dial of the same host: the winner is remembered, and the
	// blackholed port costs nothing.
	b.Run("portwise-remembered", func(b *testing.B) {
		d := &submit.Dialer{
			Candidates: []tlsmode.Candidate{{Port: blocked, Mode: tlsmode.StartTLS}, {Port: good, Mode: tlsmode.Implicit}},
			TLSConfig:  srv.ClientTLSConfig(),
			Auth:       submit.PlainAuth("", "user", "pass"),
			NetDialer:  nd,
		}
		c, err := d.Dial(context.Background(), "localhost")
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
		for b.Loop() {
			c, err := d.Dial(context.Background(), "localhost")
			if err != nil {
				b.Fatal(err)
			}
			if c.Port() != good {
				b.Fatalf("dialled port %d, want the remembered %d", c.Port(), good)
			}
			c.Close()
		}
	})

	b.Run("go-mail", func(b *testing.B) {
		for b.Loop() {
			c, err := goMailSequence(srv.ClientTLSConfig(), nd, good)
			if err != nil {
				b.Fatal(err)
			}
			c.Close()
		}
	})
}

// goMailSequence is what a go-mail v0.8.1 user writes: 587 with STARTTLS
// and the library's default timeout, then 465 with SSL, through the same
// dial function.
func goMailSequence(cfg *tls.Config, nd *netem.Dialer, good int) (*mail.Client, error) {
	opts := func(port int, ssl bool) []mail.Option {
		dial := nd.DialContext
		if ssl {
			dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
				conn, err := nd.DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				tc := tls.Client(conn, cfg)
				return tc, tc.HandshakeContext(ctx)
			}
		}
		o := []mail.Option{
			mail.WithPort(port),
			mail.WithTLSConfig(cfg),
			mail.WithSMTPAuth(mail.SMTPAuthPlain),
			mail.WithUsername("user"),
			mail.WithPassword("pass"),
			mail.WithDialContextFunc(dial),
		}
		if ssl {
			o = append(o, mail.WithSSL())
		} else {
			o = append(o, mail.WithTLSPolicy(mail.TLSMandatory))
		}
		return o
	}
	var last error
	for _, try := range []struct {
		port int
		ssl  bool
	}{{blocked, false}, {good, true}} {
		c, err := mail.NewClient("localhost", opts(try.port, try.ssl)...)
		if err != nil {
			return nil, err
		}
		if err = c.DialWithContext(context.Background()); err == nil {
			return c, nil
		}
		last = err
	}
	return nil, last
}

// TestGoMailSequenceReallyFallsBack keeps the baseline honest: it must
// succeed through the second port, after the default timeout on the first.
func TestGoMailSequenceReallyFallsBack(t *testing.T) {
	if testing.Short() {
		t.Skip("waits go-mail's 15 s default timeout")
	}
	srv := submittest.NewServer(t)
	t0 := time.Now()
	c, err := goMailSequence(srv.ClientTLSConfig(), &netem.Dialer{Block: map[int]bool{blocked: true}}, srv.Implicit.Port)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if e := time.Since(t0); e < mail.DefaultTimeout {
		t.Errorf("go-mail fell back after %s; the baseline is not measuring its timeout", e)
	}
	if n := len(srv.Conns()); n != 1 {
		t.Errorf("%d connections reached the server; want 1 (on the implicit port)", n)
	}
}
