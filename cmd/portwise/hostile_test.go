package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/portwise/portwise/internal/untrusted"
	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/submit/submittest/script"
	"github.com/portwise/portwise/tlsmode"
)

// terminalControl returns the first rune of s that would drive or deceive
// a terminal (a C0 control other than newline, DEL, C1, a bidi control,
// invalid UTF-8), or -1.
func terminalControl(s string) rune {
	for i, r := range s {
		switch {
		case r == '\n':
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"), untrusted.Escaped(r):
			return r
		}
	}
	return -1
}

// evilCert is a self-signed certificate whose names rewrite the terminal
// line, hide what follows and run to 300 entries.
func evilCert(t *testing.T) *tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"x\r\x1b[2Kportwise: sent 1 message\x07", "a\x1b[8m.example", "\u202eevil.example"}
	for i := range 300 {
		names = append(names, fmt.Sprintf("n%03d.attacker.example", i))
	}
	names[2] = "rtl.example" // U+202E is not IA5: x509 refuses it in a SAN
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "\u202eevil\x1b[8m"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     names,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// TestHostileTextNeverReachesTheTerminal is the terminal-injection attack
// of issue 13 on the command: a certificate's names and a server's replies
// carry CR, ESC, BEL, C1 and bidi controls; probe's report and send's
// error show them escaped, one line per finding, bounded.
func TestHostileTextNeverReachesTheTerminal(t *testing.T) {
	t.Parallel()
	srv, ca := server(t)
	badCert := srv.ListenWith(tlsmode.Implicit, submittest.Options{Certificate: evilCert(t)})
	const evilText = "4.7.0 \u009b2J\x9b31m busy \u202eenod\u2066 \x1b"
	busy := srv.ListenScript(submittest.Options{}, script.Send("421 "+strings.TrimSuffix(evilText, " \x1b")+"\r\n"))
	tests := []struct {
		name string
		args []string
	}{
		{"probe certificate", []string{"probe", "-ca", ca, "-port", badCert.String(), "127.0.0.1"}},
		{"probe reply", []string{"probe", "-ca", ca, "-port", busy.String(), "127.0.0.1"}},
		{"probe json", []string{"probe", "-json", "-ca", ca, "-port", badCert.String(), "127.0.0.1"}},
		{"send certificate", []string{"send", "-ca", ca, "-port", badCert.String(), "-from", "a@example.com", "-to", "b@example.com", "127.0.0.1"}},
		{"send reply", []string{"send", "-ca", ca, "-port", busy.String(), "-from", "a@example.com", "-to", "b@example.com", "127.0.0.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := portwise(t, "", nil, tt.args...)
			if r.code != 1 {
				t.Errorf("exit %d; want 1", r.code)
			}
			for _, out := range []struct{ name, s string }{{"stdout", r.stdout}, {"stderr", r.stderr}} {
				if c := terminalControl(out.s); c >= 0 {
					t.Errorf("%s carries %U unescaped:\n%q", out.name, c, out.s)
				}
				if len(out.s) > 16<<10 {
					t.Errorf("%s is %d bytes", out.name, len(out.s))
				}
			}
			if strings.Contains(tt.name, "certificate") && !strings.Contains(tt.name, "json") &&
				!strings.Contains(r.stdout+r.stderr, "more names") {
				t.Errorf("the 300 names are not bounded:\n%s%s", r.stdout, r.stderr)
			}
			if !strings.HasPrefix(tt.name, "probe") {
				return
			}
			for _, l := range strings.Split(r.stdout, "\n") {
				if strings.Contains(l, "critical ") || strings.Contains(l, "warning ") {
					if !strings.Contains(l, ": port ") {
						t.Errorf("a finding does not keep to one line:\n%s", r.stdout)
					}
				}
			}
		})
	}
}
