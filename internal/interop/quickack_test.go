package interop

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/portwise/portwise/internal/session"
	"github.com/portwise/portwise/tlsmode"
)

// implicitSession opens one session on the real Postfix's implicit TLS
// port, from connect to the EHLO reply after the banner, and returns how
// long it took. delayedACK leaves the kernel's delayed ACK after the
// handshake, as other clients do.
func implicitSession(tb testing.TB, pool *x509.CertPool, addr string, delayedACK bool) time.Duration {
	tb.Helper()
	host, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	t0 := time.Now()
	s, err := session.Open(context.Background(), session.Config{
		Host:       host,
		Candidate:  tlsmode.Candidate{Port: n, Mode: tlsmode.Implicit},
		TLSConfig:  &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12},
		LocalName:  "localhost",
		Dial:       (&net.Dialer{}).DialContext,
		DelayedACK: delayedACK,
	})
	d := time.Since(t0)
	if err != nil {
		tb.Fatal(err)
	}
	s.Quit(time.Second)
	return d
}

func realPostfixCA(tb testing.TB) (*x509.CertPool, string) {
	tb.Helper()
	if os.Getenv("PORTWISE_REALMTA") != "1" {
		if os.Getenv("PORTWISE_INTEROP_REQUIRE") == "1" {
			tb.Fatal("PORTWISE_REALMTA is not set, and PORTWISE_INTEROP_REQUIRE=1 (CI) forbids skipping")
		}
		tb.Skip("needs the real Postfix: see CONTRIBUTING.md")
	}
	pem, err := os.ReadFile(os.Getenv("PORTWISE_REALMTA_CA"))
	if err != nil {
		tb.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return pool, os.Getenv("PORTWISE_REALMTA_IMPLICIT")
}

// TestInteropImplicitTLSBannerIsNotHeldByADelayedACK: Postfix writes its
// session ticket, then its banner; with Nagle on its side and a delayed
// ACK on ours the banner waited 40 ms. portwise ACKs at once after the
// handshake: a session is open in a few milliseconds on loopback.
func TestInteropImplicitTLSBannerIsNotHeldByADelayedACK(t *testing.T) {
	pool, addr := realPostfixCA(t)
	var ds []time.Duration
	for range 15 {
		ds = append(ds, implicitSession(t, pool, addr, false))
	}
	slices.Sort(ds)
	if med := ds[len(ds)/2]; med >= 30*time.Millisecond {
		t.Errorf("median connect → EHLO after the banner %v on loopback: the banner waited for a delayed ACK", med)
	}
}

// BenchmarkRealPostfixImplicitSession measures connect → EHLO after the
// banner on the real Postfix's implicit TLS port, with portwise's
// immediate ACK after the handshake and with the kernel's delayed ACK.
func BenchmarkRealPostfixImplicitSession(b *testing.B) {
	pool, addr := realPostfixCA(b)
	for _, bc := range []struct {
		name    string
		delayed bool
	}{{"quickack", false}, {"delayed-ack", true}} {
		b.Run(bc.name, func(b *testing.B) {
			var total time.Duration
			for b.Loop() {
				total += implicitSession(b, pool, addr, bc.delayed)
			}
			b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/session")
		})
	}
}
