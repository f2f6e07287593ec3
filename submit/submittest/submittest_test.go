package submittest_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/textproto"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/tlsmode"
)

const msg = "Subject: hi\r\n\r\n.dot-stuffed line\r\nbody\r\n"

// wire is a raw client: what a test sees is exactly what crossed the socket.
type wire struct {
	t    *testing.T
	conn net.Conn
	text *textproto.Conn
}

func dialWire(t *testing.T, addr string) *wire {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	return &wire{t: t, conn: c, text: textproto.NewConn(c)}
}

// cmd sends a line and returns the reply code and its lines.
func (w *wire) cmd(line string) (int, []string) {
	w.t.Helper()
	if line != "" {
		if err := w.text.PrintfLine("%s", line); err != nil {
			w.t.Fatalf("send %q: %v", line, err)
		}
	}
	code, text, err := w.text.ReadResponse(0)
	if err != nil && code == 0 {
		w.t.Fatalf("reply to %q: %v", line, err)
	}
	return code, strings.Split(text, "\n")
}

func (w *wire) ehlo() []string {
	w.t.Helper()
	if code, _ := w.cmd(""); code != 220 {
		w.t.Fatalf("banner code %d", code)
	}
	code, lines := w.cmd("EHLO client.test")
	if code != 250 {
		w.t.Fatalf("EHLO: %d %q", code, lines)
	}
	return lines
}

func has(lines []string, s string) bool {
	return slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, s) })
}

func TestSendIsRecordedOnSecureListeners(t *testing.T) {
	s := submittest.NewServer(t)
	tests := []struct {
		name  string
		addr  string
		dial  func() (*smtp.Client, error)
		auth  sasl.Client
		clear []string
	}{
		{"starttls/plain", s.Addr(s.StartTLS), func() (*smtp.Client, error) {
			return smtp.DialStartTLS(s.Addr(s.StartTLS), s.ClientTLSConfig())
		}, sasl.NewPlainClient("", "user", "pass"), []string{"EHLO localhost", "STARTTLS"}},
		{"implicit/login", s.Addr(s.Implicit), func() (*smtp.Client, error) {
			return smtp.DialTLS(s.Addr(s.Implicit), s.ClientTLSConfig())
		}, sasl.NewLoginClient("user", "pass"), nil},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tt.dial()
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Auth(tt.auth); err != nil {
				t.Fatal(err)
			}
			if err := c.SendMail("from@example.org", []string{"a@example.net", "b@example.net"}, strings.NewReader(msg)); err != nil {
				t.Fatal(err)
			}
			if err := c.Quit(); err != nil {
				t.Fatal(err)
			}

			msgs := s.Messages()
			if len(msgs) != i+1 {
				t.Fatalf("%d messages, want %d", len(msgs), i+1)
			}
			m := msgs[i]
			if m.Addr != tt.addr || m.From != "from@example.org" || !slices.Equal(m.To, []string{"a@example.net", "b@example.net"}) ||
				m.AuthUser != "user" || !m.TLS || string(m.Data) != msg || m.MailOptions == nil {
				t.Errorf("message = %+v", m)
			}
			rec := s.Conns()[i]
			if !rec.TLS || !rec.AuthOK || rec.AuthAttempts != 1 || rec.Addr != tt.addr {
				t.Errorf("conn record = %+v", rec)
			}
			if !slices.Equal(rec.Clear, tt.clear) {
				t.Errorf("Clear = %q, want %q", rec.Clear, tt.clear)
			}
			for _, want := range []string{"MAIL FROM:<from@example.org>", "RCPT TO:<b@example.net>", "DATA"} {
				if !slices.Contains(rec.Commands, want) {
					t.Errorf("Commands %q lack %q", rec.Commands, want)
				}
			}
		})
	}
}

func TestDefaultListenersOfferNoAuthInClear(t *testing.T) {
	s := submittest.NewServer(t)
	tests := []struct {
		name     string
		addr     string
		starttls bool
	}{
		{"starttls", s.Addr(s.StartTLS), true},
		{"plain", s.Addr(s.Plain), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := dialWire(t, tt.addr)
			caps := w.ehlo()
			if has(caps, "STARTTLS") != tt.starttls {
				t.Errorf("STARTTLS offered = %v, want %v: %q", !tt.starttls, tt.starttls, caps)
			}
			if has(caps, "AUTH") {
				t.Errorf("AUTH offered in clear: %q", caps)
			}
			if code, _ := w.cmd("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00user\x00pass"))); code != 523 {
				t.Errorf("AUTH in clear: %d, want 523", code)
			}
		})
	}
}

func TestPlainListenerDeliversWithoutTLS(t *testing.T) {
	s := submittest.NewServer(t)
	c, err := smtp.Dial(s.Addr(s.Plain))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SendMail("a@example.org", []string{"b@example.org"}, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	m := s.Messages()[0]
	if m.TLS || m.AuthUser != "" || m.Addr != s.Addr(s.Plain) {
		t.Errorf("message = %+v", m)
	}
	rec := s.Conns()[0]
	if !has(rec.Clear, "MAIL FROM:<a@example.org>") || slices.Contains(rec.Commands, "body") || !slices.Contains(rec.Clear, "body") {
		t.Errorf("Clear = %q, Commands = %q", rec.Clear, rec.Commands)
	}
}

func TestEHLOFaultsRewriteTheClearReply(t *testing.T) {
	s := submittest.NewServer(t)
	authPlain := "AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00user\x00pass"))
	tests := []struct {
		fault    submittest.Fault
		want     string // capability that must be there
		absent   string // and one that must not
		next     string // a following command
		nextCode int
	}{
		{submittest.NoFault, "STARTTLS", "XXXXXXXA", "STARTTLS", 220},
		{submittest.StripSTARTTLS, "SIZE", "STARTTLS", "NOOP", 250},
		{submittest.MaskSTARTTLS, "XXXXXXXA", "STARTTLS", "STARTTLS", 501},
		{submittest.AuthBeforeTLS, "AUTH PLAIN LOGIN", "XXXXXXXA", authPlain, 235},
	}
	for _, tt := range tests {
		t.Run(tt.fault.String(), func(t *testing.T) {
			addr := s.Listen(tlsmode.StartTLS, tt.fault)
			w := dialWire(t, s.Addr(addr))
			caps := w.ehlo()
			if !has(caps, tt.want) || has(caps, tt.absent) {
				t.Errorf("EHLO reply %q: want %q, not %q", caps, tt.want, tt.absent)
			}
			if code, lines := w.cmd(tt.next); code != tt.nextCode {
				t.Errorf("%s: %d %q, want %d", tt.next, code, lines, tt.nextCode)
			}
			w.conn.Close()
			rec := lastConn(t, s, s.Addr(addr))
			if !slices.Contains(rec.Clear, tt.next) {
				t.Errorf("Clear %q lacks %q", rec.Clear, tt.next)
			}
		})
	}
}

// lastConn waits for the server to have recorded a connection on addr.
func lastConn(t *testing.T, s *submittest.Server, addr string) submittest.ConnRecord {
	t.Helper()
	var rec submittest.ConnRecord
	for range 100 {
		for _, r := range s.Conns() {
			if r.Addr == addr {
				rec = r
			}
		}
		if len(rec.Clear) > 1 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return rec
}

func TestRejectSTARTTLSStaysInClear(t *testing.T) {
	s := submittest.NewServer(t)
	tests := []struct {
		reply string
		code  int
	}{
		{"", 454},
		{"502 5.5.1 not implemented", 502},
		{"530 5.7.0 go away", 530},
		{"421 4.7.0 closing", 421},
	}
	for _, tt := range tests {
		t.Run(tt.reply, func(t *testing.T) {
			addr := s.ListenWith(tlsmode.StartTLS, submittest.Options{STARTTLSReply: tt.reply}, submittest.RejectSTARTTLS)
			w := dialWire(t, s.Addr(addr))
			if !has(w.ehlo(), "STARTTLS") {
				t.Error("STARTTLS not advertised")
			}
			if code, lines := w.cmd("STARTTLS"); code != tt.code {
				t.Fatalf("STARTTLS: %d %q, want %d", code, lines, tt.code)
			}
			if tt.code == 421 {
				if _, err := w.text.ReadLine(); err != io.EOF {
					t.Errorf("after 421: %v, want EOF", err)
				}
				return
			}
			if code, _ := w.cmd("NOOP"); code != 250 {
				t.Errorf("NOOP after rejected STARTTLS: %d", code)
			}
		})
	}
}

func TestInjectAfterSTARTTLSWritesBeforeHandshake(t *testing.T) {
	s := submittest.NewServer(t)
	tests := []struct{ injection, want string }{
		{"", "250-PIPELINING\r\n250 AUTH PLAIN\r\n"},
		{"250 OK\r\n", "250 OK\r\n"},
	}
	for _, tt := range tests {
		addr := s.ListenWith(tlsmode.StartTLS, submittest.Options{Injection: tt.injection}, submittest.InjectAfterSTARTTLS)
		w := dialWire(t, s.Addr(addr))
		w.ehlo()
		if err := w.text.PrintfLine("STARTTLS"); err != nil {
			t.Fatal(err)
		}
		line, err := w.text.ReadLine()
		if err != nil || !strings.HasPrefix(line, "220 ") {
			t.Fatalf("STARTTLS reply %q, %v", line, err)
		}
		got := make([]byte, len(tt.want))
		if _, err := io.ReadFull(w.text.R, got); err != nil || string(got) != tt.want {
			t.Errorf("after 220: %q, %v; want %q", got, err, tt.want)
		}
	}
}

func TestBlackholeSwallowsUntilClose(t *testing.T) {
	s := submittest.NewServer(nil)
	addr := s.Listen(tlsmode.StartTLS, submittest.Blackhole)
	c, err := net.Dial("tcp", s.Addr(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	var ne net.Error
	if _, err := c.Read(make([]byte, 1)); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read from blackhole: %v, want timeout", err)
	}

	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close blocked on a blackholed connection")
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("read after Close: %v, want EOF or reset", err)
	}
	if n := len(s.Conns()); n != 1 {
		t.Errorf("%d conn records, want 1", n)
	}
}

func TestRefuseClosesThePort(t *testing.T) {
	s := submittest.NewServer(t)
	addr := s.Listen(tlsmode.StartTLS, submittest.Refuse)
	if addr.Port == 0 {
		t.Fatalf("address %q has no port", addr)
	}
	c, err := net.Dial("tcp", s.Addr(addr))
	if err == nil {
		c.Close()
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial: %v, want ECONNREFUSED", err)
	}
}

func TestClearOnImplicitAnswersInClear(t *testing.T) {
	s := submittest.NewServer(t)
	addr := s.Listen(tlsmode.Implicit, submittest.ClearOnImplicit)
	w := dialWire(t, s.Addr(addr))
	line, err := w.text.ReadLine()
	if err != nil || !strings.HasPrefix(line, "220 localhost ") {
		t.Fatalf("banner %q, %v", line, err)
	}

	c, err := tls.Dial("tcp", s.Addr(addr), s.ClientTLSConfig())
	if err == nil {
		c.Close()
		t.Fatal("TLS handshake succeeded on a clear port")
	}
}

func TestCertificateFaultsFailVerification(t *testing.T) {
	s := submittest.NewServer(t)
	tests := []struct {
		name string
		opts submittest.Options
		ok   func(error) bool
	}{
		{"default", submittest.Options{}, func(err error) bool { return err == nil }},
		{"wrong-name", submittest.Options{CertName: "mail.example.net"}, func(err error) bool {
			var e x509.HostnameError
			return errors.As(err, &e)
		}},
		{"self-signed", submittest.Options{SelfSigned: true}, func(err error) bool {
			var e x509.UnknownAuthorityError
			return errors.As(err, &e)
		}},
		{"expired", submittest.Options{CertExpired: true}, func(err error) bool {
			var e x509.CertificateInvalidError
			return errors.As(err, &e) && e.Reason == x509.Expired
		}},
	}
	for _, tt := range tests {
		for _, mode := range []tlsmode.Mode{tlsmode.Implicit, tlsmode.StartTLS} {
			t.Run(tt.name+"/"+mode.String(), func(t *testing.T) {
				addr := s.ListenWith(mode, tt.opts)
				var err error
				if mode == tlsmode.Implicit {
					var c *smtp.Client
					if c, err = smtp.DialTLS(s.Addr(addr), s.ClientTLSConfig()); err == nil {
						c.Close()
					}
				} else {
					// The handshake runs with the first command after STARTTLS.
					var c *smtp.Client
					if c, err = smtp.DialStartTLS(s.Addr(addr), s.ClientTLSConfig()); err == nil {
						err = c.Noop()
						c.Close()
					}
				}
				if !tt.ok(err) {
					t.Errorf("handshake error %v", err)
				}
			})
		}
	}
}

func TestCertNotAfterSetsExpiry(t *testing.T) {
	s := submittest.NewServer(t)
	notAfter := time.Now().Add(72 * time.Hour).Truncate(time.Second).UTC()
	addr := s.ListenWith(tlsmode.Implicit, submittest.Options{CertNotAfter: notAfter, Hostname: "mail.test"})
	cfg := s.ClientTLSConfig()
	cfg.ServerName = "mail.test"
	c, err := tls.Dial("tcp", s.Addr(addr), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.ConnectionState().PeerCertificates[0].NotAfter; !got.Equal(notAfter) {
		t.Errorf("NotAfter = %v, want %v", got, notAfter)
	}
}

func TestMaxTLSVersionSimulatesLegacyServer(t *testing.T) {
	s := submittest.NewServer(t)
	addr := s.ListenWith(tlsmode.Implicit, submittest.Options{MaxTLSVersion: tls.VersionTLS11})

	cfg := s.ClientTLSConfig()
	cfg.MinVersion = tls.VersionTLS10
	c, err := tls.Dial("tcp", s.Addr(addr), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if v := c.ConnectionState().Version; v != tls.VersionTLS11 {
		t.Errorf("version %s, want TLS 1.1", tls.VersionName(v))
	}
	c.Close()

	if c, err := tls.Dial("tcp", s.Addr(addr), s.ClientTLSConfig()); err == nil {
		c.Close()
		t.Error("a default client handshook with a TLS 1.1 server")
	}
}

func TestDropAfterDotLeavesOutcomeUnknown(t *testing.T) {
	s := submittest.NewServer(t)
	addr := s.Listen(tlsmode.Implicit, submittest.DropAfterDot)
	c, err := smtp.DialTLS(s.Addr(addr), s.ClientTLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Mail("a@example.org", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("b@example.org", nil); err != nil {
		t.Fatal(err)
	}
	wc, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(wc, msg)
	err = wc.Close()
	var se *smtp.SMTPError
	if err == nil || errors.As(err, &se) {
		t.Fatalf("close DATA: %v, want a broken connection", err)
	}
	if m := s.Messages(); len(m) != 1 || string(m[0].Data) != msg {
		t.Errorf("messages = %+v", m)
	}
}

func TestReply421MidSessionCloses(t *testing.T) {
	s := submittest.NewServer(t)
	addr := s.Listen(tlsmode.StartTLS, submittest.Reply421MidSession)
	c, err := smtp.DialStartTLS(s.Addr(addr), s.ClientTLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Mail("a@example.org", nil)
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 421 || se.EnhancedCode != (smtp.EnhancedCode{4, 3, 2}) {
		t.Fatalf("MAIL: %v, want 421 4.3.2", err)
	}
	if err := c.Noop(); err == nil || errors.As(err, &se) {
		t.Errorf("NOOP after 421: %v, want a closed connection", err)
	}
}

func TestMaxMessageBytesIsAdvertisedAndEnforced(t *testing.T) {
	s := submittest.NewServer(t)
	addr := s.ListenWith(tlsmode.Implicit, submittest.Options{MaxMessageBytes: 100})
	c, err := smtp.DialTLS(s.Addr(addr), s.ClientTLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	if n, ok := c.MaxMessageSize(); !ok || n != 100 {
		t.Errorf("SIZE = %d, %v; want 100", n, ok)
	}
	err = c.SendMail("a@example.org", []string{"b@example.org"}, strings.NewReader(strings.Repeat("x", 200)+"\r\n"))
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 552 {
		t.Errorf("oversized message: %v, want 552", err)
	}
}

func TestAuthRecordsFailuresAndLoginPrompts(t *testing.T) {
	s := submittest.NewServer(t)
	addr := s.ListenWith(tlsmode.StartTLS, submittest.Options{
		Accounts:     map[string]string{"bob": "secret"},
		LoginPrompts: [2]string{"User Name", "Password"},
	}, submittest.AuthBeforeTLS)
	w := dialWire(t, s.Addr(addr))
	w.ehlo()
	b64 := base64.StdEncoding.EncodeToString
	if code, _ := w.cmd("AUTH PLAIN " + b64([]byte("\x00bob\x00wrong"))); code != 535 {
		t.Errorf("wrong password: %d, want 535", code)
	}
	code, lines := w.cmd("AUTH LOGIN")
	if code != 334 || lines[0] != b64([]byte("User Name")) {
		t.Fatalf("AUTH LOGIN: %d %q", code, lines)
	}
	if code, lines = w.cmd(b64([]byte("bob"))); code != 334 || lines[0] != b64([]byte("Password")) {
		t.Fatalf("username: %d %q", code, lines)
	}
	if code, _ = w.cmd(b64([]byte("secret"))); code != 235 {
		t.Fatalf("password: %d", code)
	}
	rec := lastConn(t, s, s.Addr(addr))
	if rec.AuthAttempts != 2 || !rec.AuthOK || rec.AuthMechanism != "LOGIN" || rec.TLS {
		t.Errorf("record = %+v", rec)
	}
	if !slices.Contains(rec.Clear, b64([]byte("secret"))) {
		t.Errorf("Clear %q lacks the password line sent in clear", rec.Clear)
	}
}

func TestWaitMessages(t *testing.T) {
	s := submittest.NewServer(t)
	go func() {
		c, err := smtp.Dial(s.Addr(s.Plain))
		if err != nil {
			return
		}
		defer c.Close()
		c.SendMail("a@example.org", []string{"b@example.org"}, strings.NewReader(msg))
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := s.WaitMessages(ctx, 1)
	if err != nil || len(m) != 1 {
		t.Fatalf("WaitMessages: %d, %v", len(m), err)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel2()
	if _, err := s.WaitMessages(short, 2); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitMessages(2): %v, want deadline exceeded", err)
	}
}

func TestCandidatesAndClientConfig(t *testing.T) {
	s := submittest.NewServer(t, submittest.Options{Hostname: "mx.test"})
	want := []tlsmode.Candidate{
		{Port: s.StartTLS.Port, Mode: tlsmode.StartTLS},
		{Port: s.Implicit.Port, Mode: tlsmode.Implicit},
	}
	if got := s.Candidates(); !slices.Equal(got, want) || want[0].Port == 0 {
		t.Errorf("Candidates = %v, want %v", got, want)
	}
	a, b := s.ClientTLSConfig(), s.ClientTLSConfig()
	if a == b || a.ServerName != "mx.test" {
		t.Errorf("ClientTLSConfig: shared %v, ServerName %q", a == b, a.ServerName)
	}
	c, err := tls.Dial("tcp", s.Addr(s.Implicit), a)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	w := dialWire(t, s.Addr(s.Plain))
	if line, _ := bufio.NewReader(w.conn).ReadString('\n'); !strings.HasPrefix(line, "220 mx.test ") {
		t.Errorf("banner %q", line)
	}
}

func TestSplitSTARTTLSLineIsStillIntercepted(t *testing.T) {
	s := submittest.NewServer(t)
	addr := s.Listen(tlsmode.StartTLS, submittest.RejectSTARTTLS)
	w := dialWire(t, s.Addr(addr))
	w.ehlo()
	io.WriteString(w.conn, "STAR")
	time.Sleep(20 * time.Millisecond)
	if code, _ := w.cmd("TTLS"); code != 454 {
		t.Errorf("split STARTTLS: %d, want 454", code)
	}
}

func TestBDATChunkWithoutNewlinePassesInClear(t *testing.T) {
	s := submittest.NewServer(t)
	w := dialWire(t, s.Addr(s.Plain))
	w.ehlo()
	w.cmd("MAIL FROM:<a@example.org>")
	w.cmd("RCPT TO:<b@example.org>")
	io.WriteString(w.conn, "BDAT 5 LAST\r\nhello")
	if code, lines := w.cmd(""); code != 250 {
		t.Fatalf("BDAT: %d %q", code, lines)
	}
	if m := s.Messages(); len(m) != 1 || string(m[0].Data) != "hello" {
		t.Errorf("messages = %+v", m)
	}
}

func TestCloseEndsEveryConnectionAndGoroutine(t *testing.T) {
	before := runtime.NumGoroutine()
	s := submittest.NewServer(nil)
	bh := s.Listen(tlsmode.Implicit, submittest.Blackhole)
	var conns []net.Conn
	for _, addr := range []string{s.Addr(s.StartTLS), s.Addr(s.Implicit), s.Addr(s.Plain), s.Addr(bh)} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	tc, err := tls.Dial("tcp", s.Addr(s.Implicit), s.ClientTLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	io.WriteString(tc, "EHLO x\r\n")
	conns = append(conns, tc)
	time.Sleep(20 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := io.ReadAll(c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("conn %d still open after Close", i)
		}
	}
	for range 100 {
		if runtime.NumGoroutine() <= before {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	buf := make([]byte, 1<<16)
	t.Errorf("%d goroutines before, %d after Close:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
}

func BenchmarkSendStartTLS(b *testing.B) {
	s := submittest.NewServer(b)
	cfg := s.ClientTLSConfig()
	for b.Loop() {
		c, err := smtp.DialStartTLS(s.Addr(s.StartTLS), cfg)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Auth(sasl.NewPlainClient("", "user", "pass")); err != nil {
			b.Fatal(err)
		}
		if err := c.SendMail("a@example.org", []string{"b@example.org"}, strings.NewReader(msg)); err != nil {
			b.Fatal(err)
		}
		c.Quit()
	}
}
