package submit_test

import (
	"errors"
	"fmt"
	netsmtp "net/smtp"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/tlsmode"
)

// rootsSrv is a server whose CA the system roots of this test binary hold.
// SendMail, like net/smtp, only trusts the system roots, which Go loads
// once per process, honouring SSL_CERT_FILE and SSL_CERT_DIR: TestMain
// points them at this server's CA before any test runs. Tests add their
// own listeners to it and look only at those.
var rootsSrv *submittest.Server

func TestMain(m *testing.M) {
	os.Exit(runWithRoots(m))
}

func runWithRoots(m *testing.M) int {
	rootsSrv = submittest.NewServer(nil)
	defer rootsSrv.Close()
	dir, err := os.MkdirTemp("", "portwise-roots-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(file, rootsSrv.CACertPEM(), 0o600); err != nil {
		panic(err)
	}
	os.Setenv("SSL_CERT_FILE", file)
	os.Setenv("SSL_CERT_DIR", dir) // nothing else: the tests do not depend on the machine's roots
	return m.Run()
}

// clearLines returns what clients sent in clear on addr.
func clearLines(srv *submittest.Server, addr string) []string {
	var out []string
	for _, r := range connsOn(srv, addr) {
		out = append(out, r.Clear...)
	}
	return out
}

// secretsInClear returns the lines sent in clear on addr that carry AUTH,
// a credential, or the envelope and message.
func secretsInClear(srv *submittest.Server, addr string) []string {
	var bad []string
	for _, l := range clearLines(srv, addr) {
		u := strings.ToUpper(l)
		if strings.HasPrefix(u, "AUTH") || strings.HasPrefix(u, "MAIL") || strings.HasPrefix(u, "RCPT") ||
			strings.HasPrefix(u, "DATA") || strings.Contains(l, "cGFzcw") /* base64 "pass" */ || strings.Contains(l, "Subject:") {
			bad = append(bad, l)
		}
	}
	return bad
}

// netLoginAuth is the LOGIN Auth that programs write for net/smtp, which
// lacks one; it answers prompts in order and checks nothing.
type netLoginAuth struct{ user, pass string }

func (a netLoginAuth) Start(*netsmtp.ServerInfo) (string, []byte, error) {
	return "LOGIN", []byte{}, nil
}

func (a netLoginAuth) Next(fromServer []byte, more bool) ([]byte, error) {
	if !more {
		return nil, nil
	}
	switch strings.ToLower(string(fromServer)) {
	case "username:":
		return []byte(a.user), nil
	case "password:":
		return []byte(a.pass), nil
	}
	return nil, fmt.Errorf("unexpected prompt %q", fromServer)
}

// recordingAuth remembers the ServerInfo it was shown.
type recordingAuth struct {
	netsmtp.Auth
	seen *netsmtp.ServerInfo
}

func (a recordingAuth) Start(si *netsmtp.ServerInfo) (string, []byte, error) {
	*a.seen = *si
	return a.Auth.Start(si)
}

func TestSendMailIsADropInForNetSMTP(t *testing.T) {
	starttls := rootsSrv.Listen(tlsmode.StartTLS)
	port := starttls.Port
	var seen netsmtp.ServerInfo
	tests := []struct {
		name     string
		addr     string
		auth     netsmtp.Auth
		wantUser string
	}{
		{"PlainAuth by IP", fmt.Sprintf("127.0.0.1:%d", port), netsmtp.PlainAuth("", "user", "pass", "127.0.0.1"), "user"},
		{"PlainAuth by name", fmt.Sprintf("localhost:%d", port), netsmtp.PlainAuth("", "user", "pass", "localhost"), "user"},
		{"a hand-written LOGIN", fmt.Sprintf("localhost:%d", port), netLoginAuth{"user", "pass"}, "user"},
		{"ServerInfo", fmt.Sprintf("localhost:%d", port), recordingAuth{netsmtp.PlainAuth("", "user", "pass", "localhost"), &seen}, "user"},
		{"no auth", fmt.Sprintf("localhost:%d", port), nil, ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			subject := fmt.Sprintf("Subject: drop-in %d via %s", i, starttls) // unique across -count runs on the shared server
			msg := []byte(subject + "\r\n\r\nhello\r\n")
			if err := submit.SendMail(tt.addr, tt.auth, "a@example.com", []string{"b@example.com"}, msg); err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(rootsSrv.Messages(), func(m submittest.Message) bool { return strings.HasPrefix(string(m.Data), subject+"\r\n") })
			if i < 0 {
				t.Fatal("not delivered")
			}
			if m := rootsSrv.Messages()[i]; !m.TLS || m.AuthUser != tt.wantUser || m.Addr != rootsSrv.Addr(starttls) {
				t.Errorf("delivered on %s over TLS=%v as %q; want %s over TLS as %q", m.Addr, m.TLS, m.AuthUser, starttls, tt.wantUser)
			}
		})
	}
	if seen.Name != "localhost" || !seen.TLS || !slices.Equal(seen.Auth, []string{"PLAIN", "LOGIN"}) {
		t.Errorf("the net/smtp Auth saw %+v; want localhost, TLS, the post-TLS mechanisms", seen)
	}
	if bad := secretsInClear(rootsSrv, rootsSrv.Addr(starttls)); len(bad) > 0 {
		t.Errorf("sent in clear: %q", bad)
	}
}

func TestSendMailRefusesWhereNetSMTPWouldNot(t *testing.T) {
	stripped := rootsSrv.Addr(rootsSrv.Listen(tlsmode.StartTLS, submittest.StripSTARTTLS, submittest.AuthBeforeTLS))
	healthy := rootsSrv.Addr(rootsSrv.Listen(tlsmode.StartTLS))
	untrusted := submittest.NewServer(t) // a CA the system roots do not hold
	tests := []struct {
		name    string
		srv     *submittest.Server
		addr    string
		auth    netsmtp.Auth
		wantErr error
	}{
		{"STARTTLS stripped", rootsSrv, stripped, netsmtp.PlainAuth("", "user", "pass", "127.0.0.1"), submit.ErrSTARTTLSStripped},
		{"STARTTLS stripped, no auth", rootsSrv, stripped, nil, submit.ErrSTARTTLSStripped},
		{"untrusted certificate", untrusted, untrusted.Addr(untrusted.StartTLS), netsmtp.PlainAuth("", "user", "pass", "127.0.0.1"), submit.ErrCertificate},
		{"PlainAuth for another host", rootsSrv, healthy, netsmtp.PlainAuth("", "user", "pass", "mail.example.com"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(tt.srv.Messages())
			err := submit.SendMail(tt.addr, tt.auth, "a@example.com", []string{"b@example.com"}, []byte("Subject: refused\r\n\r\nx\r\n"))
			if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			t.Log(err)
			if n := len(tt.srv.Messages()); n != before {
				t.Error("a message was delivered")
			}
			if bad := secretsInClear(tt.srv, tt.addr); len(bad) > 0 {
				t.Errorf("sent in clear: %q", bad)
			}
		})
	}
}
