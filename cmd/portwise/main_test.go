package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portwise/portwise/internal/dnstest"
	"github.com/portwise/portwise/probe"
	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/tlsmode"
)

// binary is the portwise command built once for every test.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "portwise-cli")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "portwise")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building portwise: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

// portwise runs the command with args, stdin and extra environment.
func portwise(t *testing.T, stdin string, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running portwise %q: %v", args, err)
	}
	return r
}

// server starts submittest and writes its CA where -ca can read it.
func server(t *testing.T) (*submittest.Server, string) {
	srv := submittest.NewServer(t)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, srv.CACertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	return srv, ca
}

func ports(srv *submittest.Server, cands ...tlsmode.Candidate) string {
	var s []string
	for _, c := range cands {
		s = append(s, c.String())
	}
	return strings.Join(s, ",")
}

func TestUsageErrorsExit2(t *testing.T) {
	t.Parallel()
	_, ca := server(t)
	for _, tc := range []struct {
		args []string
		env  []string
		want string
	}{
		{nil, nil, "usage:"},
		{[]string{"frobnicate"}, nil, "unknown command"},
		{[]string{"probe"}, nil, "one HOST"},
		{[]string{"probe", "a", "b"}, nil, "one HOST"},
		{[]string{"probe", "-nosuchflag", "host"}, nil, "flag provided but not defined"},
		{[]string{"probe", "-port", "99999", "host"}, nil, "invalid port"},
		{[]string{"probe", "-port", "587/ssh", "host"}, nil, "unknown mode"},
		{[]string{"probe", "-timeout", "0s", "host"}, nil, "-timeout"},
		{[]string{"probe", "-user", "u", "host"}, nil, "never taken on the command line"},
		{[]string{"probe", "-user", "u", "-password-env", "PORTWISE_TEST_UNSET", "host"}, nil, "empty or unset"},
		{[]string{"probe", "-ca", "/nonexistent/ca.pem", "host"}, nil, "-ca"},
		{[]string{"probe", "-ca", os.Args[0], "host"}, nil, "no PEM certificate"},
		{[]string{"probe", "bad host"}, nil, "invalid host"},
		{[]string{"send", "host"}, nil, "-from and -to"},
		{[]string{"send", "-from", "a@example.com", "-to", "not an address", "-ca", ca, "host"}, nil, "-to"},
		{[]string{"send", "-from", "a@example.com", "-to", "b@example.com", "-body-file", "/nonexistent", "host"}, nil, "-body-file"},
	} {
		r := portwise(t, "", tc.env, tc.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("portwise %q: exit %d, stderr %q; want 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
}

func TestProbeExitCodes(t *testing.T) {
	t.Parallel()
	srv, ca := server(t)
	good := []tlsmode.Candidate{
		{Port: srv.StartTLS.Port, Mode: tlsmode.StartTLS},
		{Port: srv.Implicit.Port, Mode: tlsmode.Implicit},
	}
	stripped := tlsmode.Candidate{Port: (srv.Listen(tlsmode.StartTLS, submittest.StripSTARTTLS)).Port, Mode: tlsmode.StartTLS}
	refused := tlsmode.Candidate{Port: (srv.Listen(tlsmode.StartTLS, submittest.Refuse)).Port, Mode: tlsmode.StartTLS}
	for _, tc := range []struct {
		name  string
		args  []string
		code  int
		wants []string
	}{
		{"usable", []string{"-ca", ca, "-port", ports(srv, good...), "127.0.0.1"}, 0,
			[]string{"PORT  ", "Recommendation: " + good[0].String(), "ok, 36"}},
		{"flags after host", []string{"127.0.0.1", "-ca", ca, "-port", ports(srv, good[1])}, 0,
			[]string{"Recommendation: " + good[1].String()}},
		{"bare port takes its usual mode", []string{"-ca", ca, "-port", fmt.Sprint(good[0].Port), "127.0.0.1"}, 0,
			[]string{"Recommendation: " + good[0].String()}},
		{"nothing usable", []string{"-ca", ca, "-port", ports(srv, stripped, refused), "127.0.0.1"}, 1,
			[]string{"starttls-missing", "port-refused", "Recommendation: none", "No port of 127.0.0.1 offers a usable secure session"}},
		{"untrusted without -ca", []string{"-port", ports(srv, good...), "127.0.0.1"}, 1,
			[]string{"cert-untrusted"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := portwise(t, "", nil, append([]string{"probe"}, tc.args...)...)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, tc.code, r.stdout, r.stderr)
			}
			for _, w := range tc.wants {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, r.stdout)
				}
			}
			if strings.Contains(r.stdout, "\x1b[") {
				t.Errorf("colour codes on a pipe:\n%q", r.stdout)
			}
		})
	}
}

func TestProbeJSON(t *testing.T) {
	t.Parallel()
	srv, ca := server(t)
	leaky := tlsmode.Candidate{Port: (srv.Listen(tlsmode.StartTLS, submittest.AuthBeforeTLS)).Port, Mode: tlsmode.StartTLS}
	good := tlsmode.Candidate{Port: srv.Implicit.Port, Mode: tlsmode.Implicit}
	r := portwise(t, "", nil, "probe", "-json", "-ca", ca, "-port", ports(srv, leaky, good), "127.0.0.1")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	var rep probe.Report
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("not a Report: %v\n%s", err, r.stdout)
	}
	if rep.Host != "127.0.0.1" || len(rep.Ports) != 2 || rep.Recommendation == nil || *rep.Recommendation != good {
		t.Errorf("report: host %q, %d ports, recommendation %v", rep.Host, len(rep.Ports), rep.Recommendation)
	}
	if f := rep.Ports[0].Findings; len(f) != 1 || f[0].Code != probe.CodeAuthBeforeTLS || f[0].Severity != probe.SeverityCritical {
		t.Errorf("port %d findings %+v, want auth-before-tls", leaky.Port, f)
	}
	for _, key := range []string{`"recommendation": {`, `"reachability": "open"`, `"cert_verified": true`, `"auth_mechs_before_tls": [`} {
		if !strings.Contains(r.stdout, key) {
			t.Errorf("JSON lacks %s", key)
		}
	}
}

func TestProbeShowsProgressForSlowPort(t *testing.T) {
	t.Parallel()
	srv, ca := server(t)
	blocked := tlsmode.Candidate{Port: (srv.Listen(tlsmode.StartTLS, submittest.Blackhole)).Port, Mode: tlsmode.StartTLS}
	good := tlsmode.Candidate{Port: srv.Implicit.Port, Mode: tlsmode.Implicit}
	r := portwise(t, "", nil, "probe", "-timeout", "3s", "-ca", ca, "-port", ports(srv, blocked, good), "127.0.0.1")
	if r.code != 0 {
		t.Errorf("exit %d, want 0 (one port is usable)", r.code)
	}
	for _, w := range []string{"waiting for " + blocked.String(), good.String() + ": open, TLS 1.3, usable", blocked.String() + ": timeout"} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
		}
	}
	if !strings.Contains(r.stdout, "port-blocked") {
		t.Errorf("stdout lacks port-blocked:\n%s", r.stdout)
	}
}

func TestProbeChecksCredentials(t *testing.T) {
	t.Parallel()
	srv, ca := server(t)
	good := tlsmode.Candidate{Port: srv.StartTLS.Port, Mode: tlsmode.StartTLS}
	for _, tc := range []struct {
		pass string
		code int
		want string
	}{
		{"pass", 0, "auth         ok (PLAIN)"},
		{"s3cret-wrong", 1, "auth-failed"},
	} {
		r := portwise(t, "", []string{"PORTWISE_TEST_PW=" + tc.pass}, "probe", "-ca", ca, "-port", good.String(), "-user", "user", "-password-env", "PORTWISE_TEST_PW", "127.0.0.1")
		if r.code != tc.code || !strings.Contains(r.stdout, tc.want) {
			t.Errorf("password %q: exit %d, want %d and %q:\n%s%s", tc.pass, r.code, tc.code, tc.want, r.stdout, r.stderr)
		}
		if strings.Contains(r.stdout+r.stderr, "s3cret") {
			t.Errorf("the password was printed")
		}
	}
}

func TestSend(t *testing.T) {
	t.Parallel()
	srv, ca := server(t)
	good := tlsmode.Candidate{Port: srv.StartTLS.Port, Mode: tlsmode.StartTLS}
	body := "Hello from the test.\n.\nA line with a lone dot above.\n"
	r := portwise(t, body, []string{"PORTWISE_TEST_PW=pass"}, "send", "-v", "-ca", ca, "-port", good.String(),
		"-user", "user", "-password-env", "PORTWISE_TEST_PW", "-from", "me@example.com", "-to", "you@example.com,them@example.com",
		"-subject", "Grüße\r\nBcc: evil@example.com", "127.0.0.1")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "via 127.0.0.1 ("+good.String()+", TLS 1.3, AUTH PLAIN), queued as ") {
		t.Errorf("stdout: %q", r.stdout)
	}
	secret := base64.StdEncoding.EncodeToString([]byte("\x00user\x00pass"))
	for _, w := range []string{"C: STARTTLS", "AUTH PLAIN [redacted]", "bytes of message]"} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("transcript lacks %q:\n%s", w, r.stderr)
		}
	}
	if strings.Contains(r.stderr, secret) || strings.Contains(r.stderr, "Hello from the test") {
		t.Errorf("the transcript shows the credential or the message:\n%s", r.stderr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msgs, err := srv.WaitMessages(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	m := msgs[0]
	data := strings.ReplaceAll(string(m.Data), "\r\n", "\n")
	if m.From != "me@example.com" || len(m.To) != 2 || m.AuthUser != "user" || !m.TLS {
		t.Errorf("message from %q to %q, auth %q, TLS %v", m.From, m.To, m.AuthUser, m.TLS)
	}
	if !strings.HasSuffix(data, "\n\n"+body) || strings.Contains(data, "\nBcc:") || !strings.Contains(data, "Subject: =?utf-8?q?") {
		t.Errorf("message as received:\n%s", data)
	}
	// The success line names the server's queue id and the size it saw,
	// the size declared in SIZE=.
	want := fmt.Sprintf("sent %d bytes to you@example.com, them@example.com via 127.0.0.1 (%s, TLS 1.3, AUTH PLAIN), queued as %s\n", m.MailOptions.Size, good, m.QueueID)
	if r.stdout != want || m.MailOptions.Size != m.Size {
		t.Errorf("stdout %q\nwant   %q (SIZE=%d, received %d bytes)", r.stdout, want, m.MailOptions.Size, m.Size)
	}
}

// TestFailuresSpeakTheCommandsLanguage: the command's errors give the
// same diagnosis as the library, worded with its own flags, not Go names.
func TestFailuresSpeakTheCommandsLanguage(t *testing.T) {
	t.Parallel()
	srv, ca := server(t)
	self := srv.ListenWith(tlsmode.StartTLS, submittest.Options{SelfSigned: true})
	relay := srv.ListenWith(tlsmode.Implicit, submittest.Options{RejectRecipients: map[string]string{"you@example.com": "554 5.7.1 <you@example.com>: Relay access denied"}})
	for _, tt := range []struct {
		name string
		args []string
		env  []string
		want []string
	}{
		{"untrusted certificate", []string{"-port", self.String()}, nil,
			[]string{"127.0.0.1: TLS could not be verified", self.String() + ": tls: the certificate for localhost, 127.0.0.1, ::1 is self-signed — pass the server's CA with -ca FILE"}},
		{"wrong mode", []string{"-ca", ca, "-port", fmt.Sprintf("%d/implicit", srv.StartTLS.Port)}, nil,
			[]string{"wrong TLS mode", fmt.Sprintf("speaks STARTTLS, not implicit TLS (it answered in clear: \"220 l\") — use -port %d/starttls", srv.StartTLS.Port)}},
		{"wrong password", []string{"-ca", ca, "-port", srv.Implicit.String(), "-user", "user", "-password-env", "PW"}, []string{"PW=wrong"},
			[]string{"credential rejected", "AUTH PLAIN rejected: 535", "OAuth2 (-xoauth2-token-env)"}},
		{"relay refused without -user", []string{"-ca", ca, "-port", relay.String()}, nil,
			[]string{"554 5.7.1 <you@example.com>: Relay access denied", "hint: the server offers AUTH PLAIN LOGIN after TLS and no -user was given", "-user NAME -password-env VAR"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"send", "-from", "me@example.com", "-to", "you@example.com", "-timeout", "5s"}, tt.args...)
			r := portwise(t, "body\n", tt.env, append(args, "127.0.0.1")...)
			if r.code != 1 {
				t.Errorf("exit %d; want 1", r.code)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
			for _, goName := range []string{"Dialer.", "tlsmode.", "TLSConfig", "submit."} {
				if strings.Contains(r.stderr, goName) {
					t.Errorf("stderr speaks Go (%q) to a person at the command line:\n%s", goName, r.stderr)
				}
			}
		})
	}
}

func TestHelpAndVersionExitZero(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"-h"}, {"help"}, {"probe", "-h"}, {"send", "-h"}, {"version"}} {
		r := portwise(t, "", nil, args...)
		if r.code != 0 {
			t.Errorf("portwise %q: exit %d; want 0", args, r.code)
		}
	}
	r := portwise(t, "", nil, "version")
	if !strings.HasPrefix(r.stdout, "portwise ") || !strings.Contains(r.stdout, "go1.") {
		t.Errorf("version printed %q", r.stdout)
	}
}

func TestSendFailsOnStrippedPort(t *testing.T) {
	t.Parallel()
	srv, ca := server(t)
	stripped := tlsmode.Candidate{Port: (srv.Listen(tlsmode.StartTLS, submittest.StripSTARTTLS)).Port, Mode: tlsmode.StartTLS}
	r := portwise(t, "body\n", []string{"PORTWISE_TEST_PW=pass"}, "send", "-ca", ca, "-port", stripped.String(),
		"-user", "user", "-password-env", "PORTWISE_TEST_PW", "-from", "me@example.com", "-to", "you@example.com", "127.0.0.1")
	if r.code != 1 || !strings.Contains(r.stderr, "STARTTLS") {
		t.Errorf("exit %d, stderr %q; want 1 and a STARTTLS explanation", r.code, r.stderr)
	}
	if len(srv.Messages()) != 0 {
		t.Errorf("a message went through a stripped port")
	}
}

func TestSendXOAuth2(t *testing.T) {
	t.Parallel()
	const token = "ya29.portwise-test-token-Zq8xN3"
	srv := submittest.NewServer(t, submittest.Options{Tokens: map[string]string{"user@example.com": token}})
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, srv.CACertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	good := tlsmode.Candidate{Port: srv.StartTLS.Port, Mode: tlsmode.StartTLS}
	// secrets are the forms a token could leak in: as it is, and inside the
	// base64 XOAUTH2 initial response.
	secrets := func(tok string) []string {
		return []string{tok, base64.StdEncoding.EncodeToString([]byte("user=user@example.com\x01auth=Bearer " + tok + "\x01\x01"))}
	}
	for _, tc := range []struct {
		name   string
		token  string
		code   int
		stdout string
		stderr []string
	}{
		{"accepted", token, 0, "via 127.0.0.1 (" + good.String() + ", TLS 1.3, AUTH XOAUTH2)",
			[]string{"C: STARTTLS", "AUTH XOAUTH2 [redacted]", "bytes of message]"}},
		{"rejected", "ya29.expired-token-Pq7Lm2", 1, "",
			[]string{"AUTH XOAUTH2 [redacted]", "rejected the access token", `status "401"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(srv.Messages())
			r := portwise(t, "Hello over XOAUTH2.\n", []string{"PORTWISE_TEST_TOKEN=" + tc.token}, "send", "-v", "-ca", ca, "-port", good.String(),
				"-user", "user@example.com", "-xoauth2-token-env", "PORTWISE_TEST_TOKEN", "-from", "user@example.com", "-to", "you@example.com", "127.0.0.1")
			if r.code != tc.code || !strings.Contains(r.stdout, tc.stdout) {
				t.Fatalf("exit %d, want %d; stdout %q, want %q\nstderr:\n%s", r.code, tc.code, r.stdout, tc.stdout, r.stderr)
			}
			for _, w := range tc.stderr {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
			for _, s := range secrets(tc.token) {
				if strings.Contains(r.stdout+r.stderr, s) {
					t.Errorf("the token shows in the output as %q:\n%s%s", s, r.stdout, r.stderr)
				}
			}
			want := before
			if tc.code == 0 {
				want++
			}
			if tc.code == 0 {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				msgs, err := srv.WaitMessages(ctx, want)
				if err != nil {
					t.Fatal(err)
				}
				if m := msgs[want-1]; m.AuthUser != "user@example.com" || !m.TLS {
					t.Errorf("message authenticated as %q, TLS %v", m.AuthUser, m.TLS)
				}
			} else if n := len(srv.Messages()); n != want {
				t.Errorf("%d messages after a rejected token, want %d", n, want)
			}
		})
	}
}

func TestSendXOAuth2UsageErrors(t *testing.T) {
	t.Parallel()
	const token = "ya29.never-printed-Kd93"
	env := []string{"PORTWISE_TEST_TOKEN=" + token, "PORTWISE_TEST_PW=pass"}
	base := []string{"send", "-from", "a@example.com", "-to", "b@example.com"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-user", "u", "-password-env", "PORTWISE_TEST_PW", "-xoauth2-token-env", "PORTWISE_TEST_TOKEN", "host"}, "mutually exclusive"},
		{[]string{"-password-env", "PORTWISE_TEST_PW", "-xoauth2-token-env", "PORTWISE_TEST_TOKEN", "host"}, "mutually exclusive"},
		{[]string{"-xoauth2-token-env", "PORTWISE_TEST_TOKEN", "host"}, "-xoauth2-token-env needs -user"},
		{[]string{"-user", "u", "-xoauth2-token-env", "PORTWISE_TEST_UNSET", "host"}, "empty or unset"},
	} {
		r := portwise(t, "", env, append(base, tc.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("portwise %q: exit %d, stderr %q; want 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
		if strings.Contains(r.stdout+r.stderr, token) {
			t.Errorf("portwise %q printed the token", tc.args)
		}
	}
	if r := portwise(t, "", env, "probe", "-xoauth2-token-env", "PORTWISE_TEST_TOKEN", "host"); r.code != 2 {
		t.Errorf("probe accepted -xoauth2-token-env: exit %d", r.code)
	}
}

// TestProbeSRVWithDNSFlag: -srv probes the SRV targets that -dns's server
// announces, and -dns also resolves the names dialled.
func TestProbeSRVWithDNSFlag(t *testing.T) {
	t.Parallel()
	srv := submittest.NewServer(t, submittest.Options{Hostname: "mail.example.test"})
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, srv.CACertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	ns := dnstest.Start(t,
		fmt.Sprintf("_submission._tcp.example.test. 60 IN SRV 0 0 %d mail.example.test.", srv.StartTLS.Port),
		"mail.example.test. 60 IN A 127.0.0.1",
		"example.test. 60 IN A 127.0.0.1",
	)
	self := tlsmode.Candidate{Port: srv.Plain.Port, Mode: tlsmode.StartTLS} // no STARTTLS: not usable
	r := portwise(t, "", nil, "probe", "-srv", "-dns", ns.Addr, "-ca", ca, "-timeout", "3s", "-port", self.String(), "example.test")
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	want := fmt.Sprintf("Recommendation: %d/starttls on mail.example.test", srv.StartTLS.Port)
	if !strings.Contains(r.stdout, want) || !strings.Contains(r.stdout, "starttls-missing") {
		t.Errorf("stdout lacks %q or the name's own finding:\n%s", want, r.stdout)
	}
	if r := portwise(t, "", nil, "probe", "-dns", "nonsense", "example.test"); r.code != 2 {
		t.Errorf("-dns without a port: exit %d, want 2", r.code)
	}
}

// TestASecretGivenInPlaceOfItsVariableIsNeverPrinted: -password-env and
// -xoauth2-token-env take a variable's name; a person who pastes the secret
// itself must not see it printed back, whether or not it could be a name.
func TestASecretGivenInPlaceOfItsVariableIsNeverPrinted(t *testing.T) {
	t.Parallel()
	for _, secret := range []string{"hunter2", "S3cr3t!pass word", "ya29.a0AfH6SMB-token"} {
		for _, flag := range []string{"-password-env", "-xoauth2-token-env"} {
			args := []string{"send", "-from", "a@example.com", "-to", "b@example.com", "-user", "u", flag, secret, "host"}
			r := portwise(t, "", nil, args...)
			if r.code != 2 || !strings.Contains(r.stderr, flag) || !strings.Contains(r.stderr, "not repeated") {
				t.Errorf("portwise %s %q: exit %d, stderr %q; want 2 and the flag named", flag, secret, r.code, r.stderr)
			}
			if strings.Contains(r.stdout+r.stderr, secret) {
				t.Errorf("portwise %s %q printed it: %q", flag, secret, r.stderr)
			}
		}
	}
}
