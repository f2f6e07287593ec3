package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/tlsmode"
)

// srv's CA is the only system root of this test binary: net/smtp and
// submit.SendMail both verify against the system roots, which Go loads
// once per process from SSL_CERT_FILE and SSL_CERT_DIR, so TestMain sets
// them before any test runs.
var srv *submittest.Server

func TestMain(m *testing.M) {
	os.Exit(runWithRoots(m))
}

func runWithRoots(m *testing.M) int {
	srv = submittest.NewServer(nil)
	defer srv.Close()
	dir, err := os.MkdirTemp("", "netsmtp-roots-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(file, srv.CACertPEM(), 0o600); err != nil {
		panic(err)
	}
	os.Setenv("SSL_CERT_FILE", file)
	os.Setenv("SSL_CERT_DIR", dir)
	return m.Run()
}

// sensitive returns the lines a client sent in clear on addr that carry
// AUTH, the envelope or the message.
func sensitive(addr string) []string {
	var out []string
	for _, r := range srv.Conns() {
		if r.Addr != addr {
			continue
		}
		for _, l := range r.Clear {
			u := strings.ToUpper(l)
			for _, p := range []string{"AUTH", "MAIL FROM", "RCPT TO", "DATA", "SUBJECT:"} {
				if strings.HasPrefix(u, p) {
					out = append(out, l)
				}
			}
		}
	}
	return out
}

func delivered(c tlsmode.Candidate) []submittest.Message {
	var out []submittest.Message
	for _, m := range srv.Messages() {
		if m.Addr == srv.Addr(c) {
			out = append(out, m)
		}
	}
	return out
}

// TestOneLineMigrationStopsSendingInClear sends the same message through
// the program before (net/smtp) and after (portwise) to listeners that
// behave like a network stripping STARTTLS, each to its own listener so
// what each one sent in clear is its own.
func TestOneLineMigrationStopsSendingInClear(t *testing.T) {
	tests := []struct {
		name   string
		faults []submittest.Fault
		user   string
		// net/smtp's outcome: its error ("" for none) and what it sent in
		// clear (prefixes).
		beforeErr   string
		beforeClear []string
		// portwise refuses every stripped listener with nothing in clear.
		afterErr error
	}{
		{
			name: "healthy server: both deliver over TLS",
			user: "user",
		},
		{
			// An IP-authorised relay: no Auth, so net/smtp has nothing to
			// check and sends the whole message in clear.
			name:        "STARTTLS stripped, relay without AUTH",
			faults:      []submittest.Fault{submittest.StripSTARTTLS},
			beforeClear: []string{"MAIL FROM:<app@example.com>", "RCPT TO:<ops@example.com>", "DATA", "Subject: nightly report"},
			afterErr:    submit.ErrSTARTTLSStripped,
		},
		{
			// net/smtp.PlainAuth refuses a connection without TLS unless
			// the host is localhost, 127.0.0.1 or ::1 (its Name here, as
			// the test server is on loopback): the password goes in clear.
			// For a remote host name PlainAuth would refuse; a hand-written
			// LOGIN Auth, common since net/smtp has none, would not.
			name:        "STARTTLS stripped, AUTH offered in clear, host 127.0.0.1",
			faults:      []submittest.Fault{submittest.StripSTARTTLS, submittest.AuthBeforeTLS},
			user:        "user",
			beforeClear: []string{"AUTH PLAIN ", "MAIL FROM:<app@example.com>", "Subject: nightly report"},
			afterErr:    submit.ErrSTARTTLSStripped,
		},
		{
			// Without AUTH in the clear EHLO, net/smtp stops too, though
			// for another reason; it sent nothing sensitive.
			name:      "STARTTLS stripped, no AUTH in clear",
			faults:    []submittest.Fault{submittest.StripSTARTTLS},
			user:      "user",
			beforeErr: "smtp: server doesn't support AUTH",
			afterErr:  submit.ErrSTARTTLSStripped,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := srv.Listen(tlsmode.StartTLS, tt.faults...)
			after := srv.Listen(tlsmode.StartTLS, tt.faults...)
			cfg := func(addr tlsmode.Candidate) config {
				// 127.0.0.1:port, the way net/smtp programs name a server.
				return config{addr: fmt.Sprintf("127.0.0.1:%d", addr.Port), user: tt.user, pass: "pass", from: "app@example.com", to: "ops@example.com"}
			}

			oldErr := notifyWithNetSMTP(cfg(before))
			if (tt.beforeErr == "") != (oldErr == nil) || (oldErr != nil && !strings.Contains(oldErr.Error(), tt.beforeErr)) {
				t.Errorf("net/smtp: err = %v, want %q", oldErr, tt.beforeErr)
			}
			if tt.faults == nil {
				if m := delivered(before); len(m) != 1 || !m[0].TLS {
					t.Errorf("net/smtp delivered %+v, want one message over TLS", m)
				}
			}
			clear := strings.Join(sensitive(srv.Addr(before)), "\n")
			for _, want := range tt.beforeClear {
				if !strings.Contains(clear, want) {
					t.Errorf("net/smtp did not send %q in clear; it sent:\n%s", want, clear)
				}
			}
			if len(tt.beforeClear) == 0 && clear != "" {
				t.Errorf("net/smtp sent in clear:\n%s", clear)
			}

			err := notify(cfg(after))
			if !errors.Is(err, tt.afterErr) || (tt.afterErr == nil) != (err == nil) {
				t.Errorf("portwise: err = %v, want %v", err, tt.afterErr)
			}
			if s := sensitive(srv.Addr(after)); len(s) > 0 {
				t.Errorf("portwise sent in clear: %q", s)
			}
			msgs := delivered(after)
			if tt.afterErr == nil && (len(msgs) != 1 || !msgs[0].TLS || msgs[0].AuthUser != tt.user) {
				t.Errorf("portwise delivered %+v, want one message over TLS as %q", msgs, tt.user)
			}
			if tt.afterErr != nil && len(msgs) != 0 {
				t.Errorf("portwise delivered %d messages", len(msgs))
			}
			t.Logf("net/smtp: err=%v; sent in clear: %q", oldErr, redact(sensitive(srv.Addr(before))))
			t.Logf("portwise: errors.Is(err, ErrSTARTTLSStripped)=%v; sent in clear: %q", errors.Is(err, submit.ErrSTARTTLSStripped), sensitive(srv.Addr(after)))
		})
	}
}

// redact hides AUTH payloads, so the log shows that a credential went in
// clear without printing it.
func redact(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		if strings.HasPrefix(strings.ToUpper(l), "AUTH PLAIN ") {
			l = "AUTH PLAIN [the credential, base64]"
		}
		out[i] = l
	}
	return out
}
