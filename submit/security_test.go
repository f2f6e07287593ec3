package submit_test

// Attack tests of the security review (issue 13): each performs the attack
// on loopback and fails if the defence is missing. SECURITY.md names them.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	netsmtp "net/smtp"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-sasl"
	"github.com/portwise/portwise/internal/untrusted"
	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/submit/submittest/script"
	"github.com/portwise/portwise/tlsmode"
	"golang.org/x/oauth2"
)

// unsafeRune returns the first rune of s that could drive or deceive a
// terminal (C0 but newline, DEL, C1, bidi controls, invalid UTF-8), or -1.
// The newline is allowed: DialError puts one attempt on each line.
func unsafeRune(s string) rune {
	for i, r := range s {
		switch {
		case r == '\n':
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"), untrusted.Escaped(r):
			return r
		}
	}
	return -1
}

func assertSafeText(t *testing.T, what, s string) {
	t.Helper()
	if r := unsafeRune(s); r >= 0 {
		t.Errorf("%s carries %U unescaped:\n%q", what, r, s)
	}
}

// hostileCert is a self-signed certificate whose subject and names carry
// terminal controls; with extra, that many more names.
func hostileCert(t *testing.T, cn string, names []string, extra int) *tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for i := range extra {
		names = append(names, fmt.Sprintf("n%03d.attacker.example", i))
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"Evil\x1b]0;pwned\x07 Corp"}},
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
		t.Fatalf("Go's parser refused the hostile certificate: %v", err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// TestHostileCertificateNamesAreEscapedAndBounded: a certificate whose
// names rewrite the terminal line, hide text or run to 300 entries gives a
// Dial error with every control escaped, one line per attempt, bounded.
func TestHostileCertificateNamesAreEscapedAndBounded(t *testing.T) {
	evil := []string{"a\x1b[8m.example", "sent\rOK\x07", "x\r\nsubmit: message sent"}
	tests := []struct {
		name    string
		cn      string
		names   []string
		extra   int
		trusted bool // the test trusts the certificate itself: only the name is wrong
		want    []string
	}{
		{name: "untrusted", cn: "evil\x1b[2J", names: evil, want: []string{`a\x1b[8m.example`, `sent\rOK\x07`}},
		{name: "name mismatch", cn: "evil", names: evil, trusted: true, want: []string{`a\x1b[8m.example`, "not \"127.0.0.1\""}},
		{name: "subject only", cn: "evil\r\x1b[8mhidden", trusted: true, want: []string{`CN=evil\r\x1b[8mhidden`}},
		{name: "300 names", cn: "many", names: evil, extra: 300, want: []string{"and 298 more names"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := submittest.NewServer(t)
			cert := hostileCert(t, tt.cn, tt.names, tt.extra)
			c := tlsmode.Candidate{Port: (srv.ListenWith(tlsmode.Implicit, submittest.Options{Certificate: cert})).Port, Mode: tlsmode.Implicit}
			d := dialerFor(srv, submit.PlainAuth("", "user", "pass"), c)
			if tt.trusted {
				pool := x509.NewCertPool()
				pool.AddCert(cert.Leaf)
				d.TLSConfig = &tls.Config{RootCAs: pool}
			}
			var logs, transcript bytes.Buffer
			d.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			d.Transcript = &transcript
			_, err := d.Dial(context.Background(), "127.0.0.1")
			if !errors.Is(err, submit.ErrCertificate) {
				t.Fatalf("err = %v; want ErrCertificate", err)
			}
			msg := err.Error()
			assertSafeText(t, "the Dial error", msg)
			assertSafeText(t, "the log", strings.ReplaceAll(logs.String(), "\n", " "))
			assertSafeText(t, "the transcript", transcript.String())
			if n := strings.Count(msg, "\n"); n != 1 {
				t.Errorf("%d lines for one attempt:\n%s", n+1, msg)
			}
			if len(msg) > 1500 {
				t.Errorf("the error is %d bytes", len(msg))
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error lacks %q:\n%s", w, msg)
				}
			}
		})
	}
}

// TestHostileRepliesAreEscaped: C1 controls (as characters and as raw
// bytes) and bidi overrides in a server's replies never reach an error,
// the log or the transcript unescaped.
func TestHostileRepliesAreEscaped(t *testing.T) {
	const evil = "5.7.8 \u009b2J\x9b31m bad \u202Edrowssap\u2066 \u200f"
	tests := []struct {
		name  string
		steps [][]script.Step
		send  bool
	}{
		{name: "banner", steps: [][]script.Step{one(script.StartTLS(), script.Send("554 "+evil+"\r\n"))}},
		{name: "EHLO", steps: [][]script.Step{one(script.StartTLS(), script.Send(banner), script.ExpectPrefix("EHLO "), script.Send("550 "+evil+"\r\n"), script.ExpectPrefix("HELO "), script.Send("550 "+evil+"\r\n"))}},
		{name: "AUTH", steps: [][]script.Step{implicitOpening("AUTH PLAIN"), one(script.ExpectPrefix("AUTH PLAIN "), script.Send("535 "+evil+"\r\n"))}},
		{name: "RCPT", send: true, steps: [][]script.Step{implicitOpening("AUTH PLAIN"), authOK, one(
			script.ExpectPrefix("MAIL FROM:"), script.Send("250 ok\r\n"),
			script.ExpectPrefix("RCPT TO:"), script.Send("550 "+evil+"\r\n"),
			script.Expect("RSET"), script.Send("250 ok\r\n"))}},
		{name: "final reply", send: true, steps: [][]script.Step{implicitOpening("AUTH PLAIN"), authOK, toData, one(script.ExpectData(), script.Send("554 "+evil+"\r\n"))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := submittest.NewServer(t)
			c := playScript(srv, tlsmode.Implicit, submittest.Options{}, tt.steps...)
			d := dialerFor(srv, submit.PlainAuth("", "user", "pass"), c)
			var logs, transcript bytes.Buffer
			d.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			d.Transcript = &transcript
			ctx := context.Background()
			cl, err := d.Dial(ctx, "127.0.0.1")
			if tt.send {
				if err != nil {
					t.Fatal(err)
				}
				err = cl.Send(ctx, "a@example.com", []string{"b@example.com"}, strings.NewReader("Subject: x\r\n\r\nx\r\n"))
				cl.Close()
			}
			if err == nil {
				t.Fatal("no error")
			}
			assertSafeText(t, "the error", err.Error())
			assertSafeText(t, "the log", strings.ReplaceAll(logs.String(), "\n", " "))
			assertSafeText(t, "the transcript", transcript.String())
			if !strings.Contains(err.Error(), `\u202edrowssap`) && !strings.Contains(err.Error(), `\u202Edrowssap`) {
				t.Errorf("the error does not show the reply escaped:\n%s", err)
			}
		})
	}
}

// sameTokenSource always gives the same access token, as a static source
// or a misbehaving cache does, and counts the calls.
type sameTokenSource struct {
	mu    sync.Mutex
	calls int
}

func (s *sameTokenSource) Token() (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	return &oauth2.Token{AccessToken: "ya29.rejected-token", Expiry: time.Now().Add(time.Hour)}, nil
}

// TestRejectedOAuthTokenIsNeverSentAgain: once a server refused an access
// token, no later Dial of the same Auth, and no Mailer redial, presents
// it again; they fail before connecting, saying why.
func TestRejectedOAuthTokenIsNeverSentAgain(t *testing.T) {
	srv := submittest.NewServer(t, submittest.Options{Tokens: map[string]string{"user": "ya29.good"}})
	ts := &sameTokenSource{}
	d := dialerFor(srv, submit.XOAuth2("user", ts), cand(srv, srv.Implicit, tlsmode.Implicit))
	ctx := context.Background()
	if _, err := d.Dial(ctx, "127.0.0.1"); !errors.Is(err, submit.ErrAuthFailed) {
		t.Fatalf("first Dial: %v; want ErrAuthFailed", err)
	}
	conns := len(srv.Conns())
	for i := range 3 {
		_, err := d.Dial(ctx, "127.0.0.1")
		if !errors.Is(err, submit.ErrAuthFailed) {
			t.Fatalf("Dial %d: %v; want ErrAuthFailed", i+2, err)
		}
		if !strings.Contains(err.Error(), "rejected") {
			t.Errorf("Dial %d does not say the token was rejected: %v", i+2, err)
		}
	}
	m := &submit.Mailer{Dialer: d, Host: "127.0.0.1"}
	defer m.Close()
	for range 3 {
		if err := m.Send(ctx, "user@example.com", []string{"b@example.com"}, strings.NewReader("x\r\n")); !errors.Is(err, submit.ErrAuthFailed) {
			t.Fatalf("Mailer.Send: %v; want ErrAuthFailed", err)
		}
	}
	if n := len(srv.Conns()); n != conns {
		t.Errorf("%d more connections after the token was rejected; want none", n-conns)
	}
	attempts := 0
	for _, c := range srv.Conns() {
		attempts += c.AuthAttempts
	}
	if attempts != 1 {
		t.Errorf("the rejected token was presented %d times; want once", attempts)
	}
}

// TestTemporaryAuthReplyEndsTheDial: a 4xx reply to AUTH (maddy answers a
// wrong password with 454) does not send the credential to the next port:
// the Dial ends as a temporary error that says what the server said.
func TestTemporaryAuthReplyEndsTheDial(t *testing.T) {
	srv := submittest.NewServer(t)
	tempfail := one(script.ExpectPrefix("AUTH PLAIN "), script.Send("454 4.7.0 Temporary authentication failure\r\n"))
	a := playScript(srv, tlsmode.Implicit, submittest.Options{}, implicitOpening("AUTH PLAIN"), tempfail)
	b := playScript(srv, tlsmode.StartTLS, submittest.Options{}, starttlsOpening(nil, []string{"AUTH PLAIN"}), tempfail)
	d := dialerFor(srv, submit.PlainAuth("", "user", "pass"), a, b)
	d.FallbackDelay = time.Millisecond // both reach a secure session
	_, err := d.Dial(context.Background(), "127.0.0.1")
	if err == nil {
		t.Fatal("Dial succeeded")
	}
	if !submit.IsTemporary(err) {
		t.Errorf("IsTemporary = false for %v", err)
	}
	if errors.Is(err, submit.ErrAuthFailed) {
		t.Errorf("a temporary refusal is reported as a rejected credential: %v", err)
	}
	for _, w := range []string{"temporary", "454 4.7.0 Temporary authentication failure"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
	auths := 0
	for _, sc := range []tlsmode.Candidate{a, b} {
		for _, c := range srv.ScriptConns(sc) {
			for _, l := range c.Lines {
				if strings.HasPrefix(l.Text, "AUTH ") {
					auths++
				}
			}
		}
	}
	if auths != 1 {
		t.Errorf("AUTH sent %d times; want once per Dial", auths)
	}
}

// TestMailerStopsAfterARejectedCredential: 20 goroutines sending with a
// wrong password make one login attempt, not 20 (what gets accounts locked
// and addresses banned), and every later send fails at once without
// connecting.
func TestMailerStopsAfterARejectedCredential(t *testing.T) {
	srv := submittest.NewServer(t)
	d := dialerFor(srv, submit.PasswordAuth("user", "wrong"), cand(srv, srv.Implicit, tlsmode.Implicit))
	m := &submit.Mailer{Dialer: d, Host: "127.0.0.1", MaxConns: 5}
	defer m.Close()
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = m.Send(ctx, "a@example.com", []string{"b@example.com"}, strings.NewReader("x\r\n"))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, submit.ErrAuthFailed) {
			t.Errorf("send %d: %v; want ErrAuthFailed", i, err)
		}
	}
	conns := len(srv.Conns())
	start := time.Now()
	if err := m.Send(ctx, "a@example.com", []string{"b@example.com"}, strings.NewReader("x\r\n")); !errors.Is(err, submit.ErrAuthFailed) {
		t.Errorf("later send: %v; want ErrAuthFailed", err)
	}
	if e := time.Since(start); e > 50*time.Millisecond {
		t.Errorf("a later send took %s; want an immediate failure", e)
	}
	if n := len(srv.Conns()); n != conns {
		t.Errorf("a later send connected again")
	}
	attempts := 0
	for _, c := range srv.Conns() {
		attempts += c.AuthAttempts
	}
	if attempts != 1 {
		t.Errorf("%d login attempts; want 1", attempts)
	}
}

// TestNULCannotForgePlainFieldsOnAnyPath: a user name holding NUL makes
// PLAIN's fields say something else ("victim" authorising as "attacker").
// Whatever builds PLAIN (net/smtp's PlainAuth, a go-sasl client, SendMail)
// and whatever builds LOGIN, the forged payload never goes out.
func TestNULCannotForgePlainFieldsOnAnyPath(t *testing.T) {
	const forged = "victim\x00attacker"
	tests := []struct {
		name string
		auth submit.Auth
	}{
		{"FromNetSMTP PlainAuth", submit.FromNetSMTP(netsmtp.PlainAuth("", forged, "pw", "127.0.0.1"))},
		{"FromNetSMTP identity", submit.FromNetSMTP(netsmtp.PlainAuth("victim\x00x", "attacker", "pw", "127.0.0.1"))},
		{"SASL plain", submit.SASL(func() sasl.Client { return sasl.NewPlainClient("", forged, "pw") })},
		{"SASL plain password", submit.SASL(func() sasl.Client { return sasl.NewPlainClient("", "user", "p\x00w") })},
		{"SASL login", submit.SASL(func() sasl.Client { return sasl.NewLoginClient(forged, "pw") })},
		{"LoginAuth", submit.LoginAuth(forged, "pw")},
		{"LoginAuth CR LF", submit.LoginAuth("user\r\nQUIT", "pw")},
		{"SASL xoauth2-shaped", submit.SASL(func() sasl.Client { return rawClient{"XOAUTH2", []byte("user=a\x01auth=Bearer x\x01user=b\x01\x01")} })},
		{"SASL oauthbearer user", submit.SASL(func() sasl.Client {
			return sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{Username: "a,a=b", Token: "t"})
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := submittest.NewServer(t, submittest.Options{AuthMechanisms: []string{"PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER"}})
			d := dialerFor(srv, tt.auth, cand(srv, srv.Implicit, tlsmode.Implicit))
			_, err := d.Dial(context.Background(), "127.0.0.1")
			if err == nil {
				t.Fatal("Dial succeeded")
			}
			if !errors.Is(err, submit.ErrBadAddress) {
				t.Errorf("err = %v; want ErrBadAddress", err)
			}
			for _, c := range srv.Conns() {
				if c.AuthAttempts > 0 {
					t.Errorf("the forged payload reached the server (%s)", c.AuthMechanism)
				}
			}
		})
	}

	t.Run("SendMail", func(t *testing.T) {
		srv := rootsSrv // SendMail trusts the system roots: this server's CA
		before := 0
		for _, c := range srv.Conns() {
			before += c.AuthAttempts
		}
		err := submit.SendMail(srv.Addr(srv.StartTLS), netsmtp.PlainAuth("", forged, "pw", "127.0.0.1"), "a@example.com", []string{"b@example.com"}, []byte("x\r\n"))
		if !errors.Is(err, submit.ErrBadAddress) {
			t.Fatalf("SendMail: %v; want ErrBadAddress", err)
		}
		after := 0
		for _, c := range srv.Conns() {
			after += c.AuthAttempts
		}
		if after != before {
			t.Errorf("the forged payload reached the server")
		}
	})
}

// rawClient is a SASL client with a fixed initial response.
type rawClient struct {
	mech string
	ir   []byte
}

func (c rawClient) Start() (string, []byte, error) { return c.mech, c.ir, nil }
func (c rawClient) Next([]byte) ([]byte, error)    { return nil, errors.New("no challenge expected") }

type nilAuth struct{}

func (*nilAuth) Start(context.Context, *submit.AuthInfo) (sasl.Client, error) { return nil, nil }

type ptrAuth struct{ user string }

func (a *ptrAuth) Start(context.Context, *submit.AuthInfo) (sasl.Client, error) {
	return sasl.NewPlainClient("", a.user, "pass"), nil
}

// TestNilAuthIsAnErrorNotAPanic: a typed-nil Auth, a nil AuthFunc, an
// AnyAuth holding nil, and an Auth whose Start returns no client fail the
// Dial with an error instead of panicking in a goroutine.
func TestNilAuthIsAnErrorNotAPanic(t *testing.T) {
	var typedNil *ptrAuth
	tests := []struct {
		name string
		auth submit.Auth
	}{
		{"typed nil pointer", typedNil},
		{"nil AuthFunc", submit.AuthFunc(nil)},
		{"AnyAuth of nil", submit.AnyAuth(nil)},
		{"AnyAuth of typed nil", submit.AnyAuth(typedNil)},
		{"Start returns a nil client", &nilAuth{}},
		{"AuthFunc returns nothing", submit.AuthFunc(func(context.Context, *submit.AuthInfo) (sasl.Client, error) { return nil, nil })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := submittest.NewServer(t)
			d := dialerFor(srv, tt.auth, cand(srv, srv.Implicit, tlsmode.Implicit))
			_, err := d.Dial(context.Background(), "127.0.0.1")
			if err == nil {
				t.Fatal("Dial succeeded")
			}
			if !strings.Contains(err.Error(), "Auth") {
				t.Errorf("the error does not name the Auth: %v", err)
			}
		})
	}
}
