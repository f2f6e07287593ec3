package submit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/tlsmode"
)

const testMsg = "From: a@example.com\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nhello\r\n"

// dialerFor returns a Dialer trusting srv's CA, with the given candidates.
func dialerFor(srv *submittest.Server, auth submit.Auth, cands ...tlsmode.Candidate) *submit.Dialer {
	d := srv.Dialer(auth, cands...)
	d.Timeout, d.FallbackDelay = 5*time.Second, 50*time.Millisecond
	return d
}

// cand is listener c as a candidate of mode m (which may differ from the
// mode the listener speaks, for wrong-mode tests).
func cand(_ *submittest.Server, c tlsmode.Candidate, m tlsmode.Mode) tlsmode.Candidate {
	return tlsmode.Candidate{Port: c.Port, Mode: m}
}

// assertNothingInClear checks that no client line before TLS carried AUTH,
// a credential, MAIL, RCPT or DATA on any connection the server saw.
func assertNothingInClear(t *testing.T, srv *submittest.Server) {
	t.Helper()
	for _, c := range srv.Conns() {
		if c.Addr == srv.Addr(srv.Plain) {
			continue // a plaintext relay: everything is in clear by design
		}
		for _, l := range c.Clear {
			u := strings.ToUpper(l)
			if strings.HasPrefix(u, "AUTH") || strings.HasPrefix(u, "MAIL") || strings.HasPrefix(u, "RCPT") ||
				strings.HasPrefix(u, "DATA") || strings.Contains(l, "cGFzcw") /* base64 "pass" */ {
				t.Errorf("sent in clear on %s: %q", c.Addr, l)
			}
		}
	}
}

func TestDialAuthenticatesAndSendsOnEachMode(t *testing.T) {
	srv := submittest.NewServer(t)
	tests := []struct {
		name     string
		cand     tlsmode.Candidate
		auth     submit.Auth
		wantMech string
	}{
		{"starttls plain", cand(srv, srv.StartTLS, tlsmode.StartTLS), submit.PlainAuth("", "user", "pass"), "PLAIN"},
		{"implicit login", cand(srv, srv.Implicit, tlsmode.Implicit), submit.LoginAuth("user", "pass"), "LOGIN"},
		{"starttls password", cand(srv, srv.StartTLS, tlsmode.StartTLS), submit.PasswordAuth("user", "pass"), "PLAIN"},
		{"plaintext relay", cand(srv, srv.Plain, tlsmode.Plaintext), nil, ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := dialerFor(srv, tt.auth, tt.cand)
			c, err := d.Dial(context.Background(), "127.0.0.1")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Quit()
			if c.Port() != tt.cand.Port || c.Mode() != tt.cand.Mode || c.Mechanism() != tt.wantMech {
				t.Errorf("client = %d/%v mech %q; want %v mech %q", c.Port(), c.Mode(), c.Mechanism(), tt.cand, tt.wantMech)
			}
			st, ok := c.ConnectionState()
			if ok != (tt.cand.Mode != tlsmode.Plaintext) || ok && len(st.VerifiedChains) == 0 {
				t.Errorf("ConnectionState ok=%v verified chains=%d", ok, len(st.VerifiedChains))
			}
			if err := c.Send(context.Background(), "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg)); err != nil {
				t.Fatal(err)
			}
			msgs := srv.Messages()
			if len(msgs) != i+1 {
				t.Fatalf("server has %d messages; want %d", len(msgs), i+1)
			}
			m := msgs[i]
			if string(m.Data) != testMsg || m.From != "a@example.com" || m.TLS != (tt.cand.Mode != tlsmode.Plaintext) {
				t.Errorf("received %+v", m)
			}
			if tt.auth != nil && m.AuthUser != "user" {
				t.Errorf("AuthUser = %q", m.AuthUser)
			}
		})
	}
	assertNothingInClear(t, srv)
}

func TestDialHostileStartTLSPorts(t *testing.T) {
	tests := []struct {
		name     string
		opts     submittest.Options
		faults   []submittest.Fault
		want     error
		wantText []string
	}{
		{"stripped", submittest.Options{}, []submittest.Fault{submittest.StripSTARTTLS}, submit.ErrSTARTTLSStripped, []string{"did not advertise STARTTLS", "will not continue in clear"}},
		{"masked", submittest.Options{}, []submittest.Fault{submittest.MaskSTARTTLS}, submit.ErrSTARTTLSStripped, []string{"XXXXXXXA", "stripped by a middlebox"}},
		{"rejected 454", submittest.Options{}, []submittest.Fault{submittest.RejectSTARTTLS}, submit.ErrSTARTTLSStripped, []string{"454"}},
		{"rejected 502", submittest.Options{STARTTLSReply: "502 5.5.1 not implemented"}, []submittest.Fault{submittest.RejectSTARTTLS}, submit.ErrSTARTTLSStripped, []string{"502"}},
		{"rejected 530", submittest.Options{STARTTLSReply: "530 5.7.0 go away"}, []submittest.Fault{submittest.RejectSTARTTLS}, submit.ErrSTARTTLSStripped, []string{"530"}},
		{"rejected 421", submittest.Options{STARTTLSReply: "421 4.3.2 bye"}, []submittest.Fault{submittest.RejectSTARTTLS}, submit.ErrSTARTTLSStripped, []string{"421"}},
		{"injection", submittest.Options{}, []submittest.Fault{submittest.InjectAfterSTARTTLS}, submit.ErrResponseInjection, []string{"250-PIPELINING"}},
		{"auth before tls", submittest.Options{}, []submittest.Fault{submittest.AuthBeforeTLS, submittest.StripSTARTTLS}, submit.ErrSTARTTLSStripped, nil},
		{"wrong cert name", submittest.Options{CertName: "mail.other.example"}, nil, submit.ErrCertificate, []string{"mail.other.example", `"localhost"`}},
		{"self-signed", submittest.Options{SelfSigned: true}, nil, submit.ErrCertificate, []string{"self-signed", "Dialer.TLSConfig.RootCAs"}},
		{"expired", submittest.Options{CertExpired: true}, nil, submit.ErrCertificate, []string{"expired on", "renewed"}},
		{"tls 1.1 only", submittest.Options{MaxTLSVersion: 0x0302}, nil, nil, []string{"below 1.2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := submittest.NewServer(t)
			addr := srv.ListenWith(tlsmode.StartTLS, tt.opts, tt.faults...)
			d := dialerFor(srv, submit.PlainAuth("", "user", "pass"), cand(srv, addr, tlsmode.StartTLS))
			start := time.Now()
			c, err := d.Dial(context.Background(), "127.0.0.1")
			if err == nil {
				c.Close()
				t.Fatal("Dial succeeded")
			}
			if time.Since(start) > 3*time.Second {
				t.Errorf("took %s", time.Since(start))
			}
			var de *submit.DialError
			if !errors.As(err, &de) || len(de.Attempts) != 1 {
				t.Fatalf("err = %v; want a *DialError with one attempt", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v; want %v", err, tt.want)
			}
			for _, s := range tt.wantText {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			if len(srv.Messages()) != 0 {
				t.Error("a message was delivered")
			}
			assertNothingInClear(t, srv)
			for _, c := range srv.Conns() {
				if c.AuthAttempts != 0 {
					t.Errorf("%s saw %d AUTH attempts", c.Addr, c.AuthAttempts)
				}
			}
		})
	}
}

func TestDialImplicitPortAnsweringInClear(t *testing.T) {
	srv := submittest.NewServer(t)
	addr := srv.Listen(tlsmode.Implicit, submittest.ClearOnImplicit)
	d := dialerFor(srv, submit.PlainAuth("", "user", "pass"), cand(srv, addr, tlsmode.Implicit))
	_, err := d.Dial(context.Background(), "127.0.0.1")
	if !errors.Is(err, submit.ErrWrongMode) {
		t.Fatalf("err = %v; want ErrWrongMode", err)
	}
	if !strings.Contains(err.Error(), "speaks STARTTLS, not implicit TLS") || !strings.Contains(err.Error(), "tlsmode.StartTLS") {
		t.Errorf("error does not tell what to do: %v", err)
	}
	assertNothingInClear(t, srv)
}

func TestDialRefusesAuthOnPlaintextBeforeConnecting(t *testing.T) {
	srv := submittest.NewServer(t)
	d := dialerFor(srv, submit.PlainAuth("", "user", "pass"), cand(srv, srv.Plain, tlsmode.Plaintext))
	_, err := d.Dial(context.Background(), "127.0.0.1")
	if !errors.Is(err, submit.ErrPlaintextAuth) {
		t.Fatalf("err = %v; want ErrPlaintextAuth", err)
	}
	if n := len(srv.Conns()); n != 0 {
		t.Errorf("%d connections were made", n)
	}
}

func TestDialFallsBackPastBlackholedAndRefusedPorts(t *testing.T) {
	srv := submittest.NewServer(t)
	hole := srv.Listen(tlsmode.StartTLS, submittest.Blackhole)
	refused := srv.Listen(tlsmode.StartTLS, submittest.Refuse)
	d := dialerFor(srv, submit.PlainAuth("", "user", "pass"),
		cand(srv, hole, tlsmode.StartTLS),
		cand(srv, refused, tlsmode.StartTLS),
		cand(srv, srv.Implicit, tlsmode.Implicit))
	d.FallbackDelay = 100 * time.Millisecond
	start := time.Now()
	c, err := d.Dial(context.Background(), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Quit()
	elapsed := time.Since(start)
	if c.Port() != srv.Implicit.Port {
		t.Errorf("won on %d", c.Port())
	}
	// The refused port fails at once, so the third starts right after it:
	// one head start, not two.
	if elapsed > 100*time.Millisecond+time.Second {
		t.Errorf("fallback took %s", elapsed)
	}
	if elapsed < 100*time.Millisecond {
		t.Errorf("second candidate did not wait for the first one's head start (%s)", elapsed)
	}
}

func TestDialSequentialWaitsForEachTimeout(t *testing.T) {
	srv := submittest.NewServer(t)
	hole := srv.Listen(tlsmode.StartTLS, submittest.Blackhole)
	d := dialerFor(srv, nil, cand(srv, hole, tlsmode.StartTLS), cand(srv, srv.Implicit, tlsmode.Implicit))
	d.FallbackDelay = -1
	d.Timeout = 400 * time.Millisecond
	start := time.Now()
	c, err := d.Dial(context.Background(), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if e := time.Since(start); e < 400*time.Millisecond || e > 2*time.Second {
		t.Errorf("sequential dial took %s; want the first attempt's full 400ms timeout first", e)
	}
}

func TestDialErrorIsActionable(t *testing.T) {
	srv := submittest.NewServer(t)
	hole := srv.Listen(tlsmode.StartTLS, submittest.Blackhole)
	refused := srv.Listen(tlsmode.StartTLS, submittest.Refuse)
	stripped := srv.Listen(tlsmode.StartTLS, submittest.StripSTARTTLS)
	d := dialerFor(srv, submit.PlainAuth("", "user", "pass"),
		cand(srv, hole, tlsmode.StartTLS), cand(srv, refused, tlsmode.StartTLS), cand(srv, stripped, tlsmode.StartTLS))
	d.Timeout = 300 * time.Millisecond
	_, err := d.Dial(context.Background(), "127.0.0.1")
	var de *submit.DialError
	if !errors.As(err, &de) || len(de.Attempts) != 3 {
		t.Fatalf("err = %v", err)
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 4 {
		t.Fatalf("want a header and one line per attempt:\n%s", err)
	}
	for i, want := range []string{"no SMTP greeting", "nothing listens", "did not advertise STARTTLS"} {
		if !strings.Contains(lines[i+1], want) {
			t.Errorf("line %d = %q; want it to mention %q", i+1, lines[i+1], want)
		}
	}
	if !errors.Is(err, submit.ErrSTARTTLSStripped) {
		t.Error("errors.Is does not see through DialError")
	}
	for _, a := range de.Attempts {
		if a.Elapsed <= 0 || a.Err == nil {
			t.Errorf("attempt %+v lacks elapsed time or error", a)
		}
	}
}

func TestDialConnectTimeoutSaysPortIsBlocked(t *testing.T) {
	// A NetDialer that never completes the connect, as a firewall dropping
	// SYNs does.
	d := &submit.Dialer{
		Candidates: []tlsmode.Candidate{{Port: 587, Mode: tlsmode.StartTLS}},
		Timeout:    200 * time.Millisecond,
		NetDialer:  blackholeDialer{},
	}
	_, err := d.Dial(context.Background(), "mail.example.com")
	// The time waited is said as measured: the Timeout, or a little more
	// on a loaded machine ("201.2ms").
	if err == nil || !regexp.MustCompile(`587/starttls: connect: no TCP connection within 2\d\d(\.\d)?ms`).MatchString(err.Error()) ||
		!strings.Contains(err.Error(), "blocked by your network or cloud provider") {
		t.Fatalf("err = %v", err)
	}
	if !submit.IsTemporary(err) {
		t.Error("a timeout is not reported as temporary")
	}
}

type blackholeDialer struct{}

func (blackholeDialer) DialContext(ctx context.Context, _, _ string) (net.Conn, error) {
	<-ctx.Done()
	return nil, &net.OpError{Op: "dial", Net: "tcp", Err: ctx.Err()}
}

func TestDialRejectedCredentialIsNotReplayed(t *testing.T) {
	srv := submittest.NewServer(t)
	d := dialerFor(srv, submit.PlainAuth("", "user", "wrong"),
		cand(srv, srv.StartTLS, tlsmode.StartTLS), cand(srv, srv.Implicit, tlsmode.Implicit))
	d.FallbackDelay = time.Millisecond // both ports reach a secure session
	_, err := d.Dial(context.Background(), "127.0.0.1")
	if !errors.Is(err, submit.ErrAuthFailed) {
		t.Fatalf("err = %v; want ErrAuthFailed", err)
	}
	var se *submit.Reply
	if !errors.As(err, &se) || se.Code != 535 {
		t.Errorf("no 535 *submit.Reply in %v", err)
	}
	if !strings.Contains(err.Error(), "check the user name and password") {
		t.Errorf("error does not say what to do: %v", err)
	}
	if submit.IsTemporary(err) {
		t.Error("a rejected credential is reported as temporary")
	}
	attempts := 0
	for _, c := range srv.Conns() {
		attempts += c.AuthAttempts
	}
	if attempts != 1 {
		t.Errorf("credential sent %d times; want exactly once", attempts)
	}
}

func TestDialCancelStopsEverythingWithoutLeaks(t *testing.T) {
	srv := submittest.NewServer(t)
	hole1 := srv.Listen(tlsmode.StartTLS, submittest.Blackhole)
	hole2 := srv.Listen(tlsmode.Implicit, submittest.Blackhole)
	before := runtime.NumGoroutine()
	d := dialerFor(srv, nil, cand(srv, hole1, tlsmode.StartTLS), cand(srv, hole2, tlsmode.Implicit))
	d.Timeout = time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(150*time.Millisecond, cancel)
	start := time.Now()
	_, err := d.Dial(ctx, "127.0.0.1")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v; want context.Canceled", err)
	}
	if e := time.Since(start); e > time.Second {
		t.Errorf("Dial returned %s after cancel", e)
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("goroutines: %d before, %d after", before, n)
	}

	ctx, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	if _, err := d.Dial(ctx, "127.0.0.1"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v; want DeadlineExceeded", err)
	}
}

func TestDialWithPortTriesOnlyThatPort(t *testing.T) {
	srv := submittest.NewServer(t)
	d := dialerFor(srv, submit.PlainAuth("", "user", "pass"))
	d.Candidates = nil
	// The implicit port is not 465, so ForPort says StartTLS: a mismatch
	// the error must explain; with a matching candidate it works.
	c, err := d.Dial(context.Background(), srv.Addr(srv.StartTLS))
	if err != nil {
		t.Fatal(err)
	}
	c.Quit()
	d.Candidates = []tlsmode.Candidate{cand(srv, srv.Implicit, tlsmode.Implicit)}
	c, err = d.Dial(context.Background(), srv.Addr(srv.Implicit))
	if err != nil {
		t.Fatal(err)
	}
	if c.Mode() != tlsmode.Implicit {
		t.Errorf("mode = %v", c.Mode())
	}
	c.Quit()
}

func TestSendRejectsInjectionInAddressesBeforeSending(t *testing.T) {
	srv := submittest.NewServer(t)
	d := dialerFor(srv, submit.PlainAuth("", "user", "pass"), cand(srv, srv.Implicit, tlsmode.Implicit))
	c, err := d.Dial(context.Background(), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Quit()
	for _, bad := range [][2]string{
		{"a@example.com\r\nRCPT TO:<x@evil>", "b@example.com"},
		{"a@example.com", "b@example.com\nDATA"},
		{"a@example.com", "b@example.com\x00"},
		{"a@example.com> SIZE=1", "b@example.com"},
	} {
		err := c.Send(context.Background(), bad[0], []string{bad[1]}, strings.NewReader(testMsg))
		if !errors.Is(err, submit.ErrBadAddress) {
			t.Errorf("Send(%q, %q) = %v; want ErrBadAddress", bad[0], bad[1], err)
		}
	}
	// The session is still usable, and nothing reached the server.
	if err := c.Send(context.Background(), "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg)); err != nil {
		t.Fatal(err)
	}
	for _, rec := range srv.Conns() {
		for _, cmd := range rec.Commands {
			if strings.Contains(cmd, "evil") || strings.Contains(cmd, "SIZE=1") {
				t.Errorf("injected command reached the server: %q", cmd)
			}
		}
	}
	if n := len(srv.Messages()); n != 1 {
		t.Errorf("%d messages", n)
	}
}

func TestSendCannotBeSmuggled(t *testing.T) {
	srv := submittest.NewServer(t)
	d := dialerFor(srv, submit.PlainAuth("", "user", "pass"), cand(srv, srv.Implicit, tlsmode.Implicit))
	c, err := d.Dial(context.Background(), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Quit()
	for _, payload := range []string{"\n.\r\n", "\r\n.\r", "\n.\n", "\r.\r"} {
		body := "Subject: x\r\n\r\nbefore" + payload + "MAIL FROM:<evil@example.com>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\nsmuggled\r\n.\r\n"
		if err := c.Send(context.Background(), "a@example.com", []string{"b@example.com"}, strings.NewReader(body)); err != nil {
			t.Fatalf("payload %q: %v", payload, err)
		}
	}
	msgs := srv.Messages()
	if len(msgs) != 4 {
		t.Fatalf("server received %d messages; want 4 (no smuggled extra)", len(msgs))
	}
	for _, m := range msgs {
		if m.From != "a@example.com" || !bytes.Contains(m.Data, []byte("MAIL FROM:<evil@example.com>")) {
			t.Errorf("message %q from %q", m.Data, m.From)
		}
	}
}

func TestSendDropAfterDotIsOutcomeUnknown(t *testing.T) {
	srv := submittest.NewServer(t)
	addr := srv.Listen(tlsmode.Implicit, submittest.DropAfterDot)
	d := dialerFor(srv, submit.PlainAuth("", "user", "pass"), cand(srv, addr, tlsmode.Implicit))
	c, err := d.Dial(context.Background(), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Send(context.Background(), "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg))
	if !errors.Is(err, submit.ErrOutcomeUnknown) {
		t.Fatalf("err = %v; want ErrOutcomeUnknown", err)
	}
	if submit.IsTemporary(err) {
		t.Error("an unknown outcome must not be reported as safe to retry")
	}
}

func TestSend421MidSession(t *testing.T) {
	srv := submittest.NewServer(t)
	addr := srv.Listen(tlsmode.Implicit, submittest.Reply421MidSession)
	d := dialerFor(srv, submit.PlainAuth("", "user", "pass"), cand(srv, addr, tlsmode.Implicit))
	c, err := d.Dial(context.Background(), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Send(context.Background(), "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg))
	var se *submit.Reply
	if !errors.As(err, &se) || se.Code != 421 || !submit.IsTemporary(err) {
		t.Fatalf("err = %v; want a temporary 421", err)
	}
	if err := c.Send(context.Background(), "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg)); err == nil {
		t.Error("Send on a closed session succeeded")
	}
}

func TestDialLogsStepsWithoutSecrets(t *testing.T) {
	srv := submittest.NewServer(t, submittest.Options{Accounts: map[string]string{"user": "hunter2-secret"}})
	var logs, transcript bytes.Buffer
	d := dialerFor(srv, submit.PlainAuth("", "user", "hunter2-secret"), cand(srv, srv.StartTLS, tlsmode.StartTLS))
	d.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d.Transcript = &transcript
	c, err := d.Dial(context.Background(), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Send(context.Background(), "a@example.com", []string{"b@example.com"}, strings.NewReader("Subject: body-secret\r\n\r\nbody-secret\r\n")); err != nil {
		t.Fatal(err)
	}
	c.Quit()
	for _, step := range []string{"step=connect", "step=banner", "step=ehlo", "step=starttls", "step=tls", "step=auth", "step=result", "port=", "mode=starttls", "duration="} {
		if !strings.Contains(logs.String(), step) {
			t.Errorf("log lacks %q:\n%s", step, logs.String())
		}
	}
	for _, want := range []string{"C: EHLO localhost", "C: STARTTLS", "C: AUTH PLAIN [redacted]", "S: 235", "bytes of message"} {
		if !strings.Contains(transcript.String(), want) {
			t.Errorf("transcript lacks %q:\n%s", want, transcript.String())
		}
	}
	for _, out := range []string{logs.String(), transcript.String()} {
		for _, secret := range []string{"hunter2-secret", "aHVudGVyMi1zZWNyZXQ", "dXNlcgBodW50ZXIy", "body-secret"} {
			if strings.Contains(out, secret) {
				t.Errorf("secret %q leaked:\n%s", secret, out)
			}
		}
	}
}

func TestAuthSeesOnlyPostTLSCapabilities(t *testing.T) {
	srv := submittest.NewServer(t)
	addr := srv.Listen(tlsmode.StartTLS, submittest.AuthBeforeTLS)
	var seen *submit.AuthInfo
	auth := submit.AuthFunc(func(ctx context.Context, info *submit.AuthInfo) (sasl.Client, error) {
		seen = info
		return nil, errors.New("no mechanism I like")
	})
	d := dialerFor(srv, auth, cand(srv, addr, tlsmode.StartTLS))
	_, err := d.Dial(context.Background(), "127.0.0.1")
	if err == nil || !strings.Contains(err.Error(), "no mechanism I like") {
		t.Fatalf("err = %v", err)
	}
	if seen == nil || seen.TLS == nil || len(seen.TLS.VerifiedChains) == 0 || seen.Host != "127.0.0.1" {
		t.Fatalf("AuthInfo = %+v", seen)
	}
	if !seen.Offers("PLAIN") || !seen.Offers("login") {
		t.Errorf("mechanisms = %v", seen.Mechanisms)
	}
	assertNothingInClear(t, srv)
}

// port is the port of a "host:port" address.
func port(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}

// TestDialTranscriptIsQuietOnceDialReturns: a port still connecting when
// another won writes nothing to the Transcript after Dial returned, so a
// caller may read or write its own writer at once (a bytes.Buffer, not
// safe for concurrent use, is the common case). What happened to that port
// is said before Dial returns.
func TestDialTranscriptIsQuietOnceDialReturns(t *testing.T) {
	srv := submittest.NewServer(t)
	hole := srv.Listen(tlsmode.StartTLS, submittest.Blackhole)
	var transcript bytes.Buffer
	d := dialerFor(srv, submit.PlainAuth("", "user", "pass"), cand(srv, hole, tlsmode.StartTLS), cand(srv, srv.Implicit, tlsmode.Implicit))
	d.FallbackDelay = 50 * time.Millisecond
	d.Transcript = &transcript
	c, err := d.Dial(context.Background(), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	at := transcript.String() // under -race, also a read beside any late write
	time.Sleep(300 * time.Millisecond)
	if after := transcript.String(); after != at {
		t.Errorf("the transcript grew after Dial returned:\n%s", strings.TrimPrefix(after, at))
	}
	want := fmt.Sprintf("%d *: stopped: another port won", hole.Port)
	if !strings.Contains(at, want) {
		t.Errorf("the transcript does not say %q:\n%s", want, at)
	}
}
