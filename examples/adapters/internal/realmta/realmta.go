// Package realmta lets the adapters' tests send through the real Postfix +
// Dovecot of the interop matrix (.ci/realmta.sh) and read what it
// delivered, as internal/interop does for the library itself. A test that
// calls Require is skipped unless PORTWISE_REALMTA=1, and fails instead
// when PORTWISE_INTEROP_REQUIRE=1, as in CI.
package realmta

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portwise/portwise/internal/maildir"
	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/tlsmode"
)

// Server is the real Postfix + Dovecot described by PORTWISE_REALMTA_*.
type Server struct {
	CA                 *x509.CertPool
	StartTLS, Implicit string // host:port of the submission listeners
	User, Pass         string // alice, who may send
	User2              string // bob, who receives
	Maildir            string // the domain's maildirs, one per mailbox
	Log                string // Postfix's log, named when a message is late
}

// Require returns the server, or skips the test when none is configured
// (fails it under PORTWISE_INTEROP_REQUIRE=1).
func Require(t testing.TB) *Server {
	t.Helper()
	if os.Getenv("PORTWISE_REALMTA") != "1" {
		if os.Getenv("PORTWISE_INTEROP_REQUIRE") == "1" {
			t.Fatal("PORTWISE_REALMTA is not set, and PORTWISE_INTEROP_REQUIRE=1 (CI) forbids skipping")
		}
		t.Skip("needs the real Postfix + Dovecot: run `sudo bash .ci/interop.sh start postfix && . .ci/interop.env` at the repository's root first (see CONTRIBUTING.md)")
	}
	pem, err := os.ReadFile(os.Getenv("PORTWISE_REALMTA_CA"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no certificate in PORTWISE_REALMTA_CA")
	}
	return &Server{
		CA:       pool,
		StartTLS: os.Getenv("PORTWISE_REALMTA_STARTTLS"),
		Implicit: os.Getenv("PORTWISE_REALMTA_IMPLICIT"),
		User:     os.Getenv("PORTWISE_REALMTA_USER"),
		Pass:     os.Getenv("PORTWISE_REALMTA_PASS"),
		User2:    os.Getenv("PORTWISE_REALMTA_USER2"),
		Maildir:  os.Getenv("PORTWISE_REALMTA_MAILDIR"),
		Log:      os.Getenv("PORTWISE_REALMTA_LOG"),
	}
}

// TLSConfig trusts the CI's CA for the name "localhost", which the
// servers' certificates cover beside 127.0.0.1.
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{RootCAs: s.CA, ServerName: "localhost"}
}

// Dialer dials the STARTTLS and the implicit TLS listener, logging in as
// User. Dial it with "127.0.0.1".
func (s *Server) Dialer(t testing.TB) *submit.Dialer {
	t.Helper()
	return &submit.Dialer{
		Candidates: []tlsmode.Candidate{
			{Port: port(t, s.StartTLS), Mode: tlsmode.StartTLS},
			{Port: port(t, s.Implicit), Mode: tlsmode.Implicit},
		},
		TLSConfig: s.TLSConfig(),
		Auth:      submit.PasswordAuth(s.User, s.Pass),
		Timeout:   20 * time.Second,
	}
}

// Mailer is a Mailer over Dialer, closed when the test ends.
func (s *Server) Mailer(t testing.TB) *submit.Mailer {
	m := &submit.Mailer{Dialer: s.Dialer(t), Host: "127.0.0.1"}
	t.Cleanup(func() { m.Close() })
	return m
}

func port(t testing.TB, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Subject returns a subject no other message has, to find the one this
// test sends among every earlier run's.
func Subject(t testing.TB) string {
	b := make([]byte, 8)
	rand.Read(b)
	return fmt.Sprintf("%s %x", strings.ReplaceAll(t.Name(), "/", " "), b)
}

// WaitDelivered polls the maildir of addr's mailbox until a message whose
// Subject is subject arrives, and returns it as stored. Subjects are plain
// ASCII here, so none is encoded; each file's header is read once.
func (s *Server) WaitDelivered(t testing.TB, addr, subject string) []byte {
	t.Helper()
	dir := filepath.Join(s.Maildir, strings.SplitN(addr, "@", 2)[0], "new")
	b, ok := subjects.Wait(dir, subject, 30*time.Second)
	if !ok {
		t.Fatalf("no message with subject %q in %s within 30s (see %s)", subject, dir, s.Log)
	}
	return b
}

// subjects knows the Subject of each maildir file seen so far.
var subjects = maildir.NewIndex("Subject")
