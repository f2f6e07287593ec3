package submit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portwise/portwise/internal/netem"
	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/submit/submittest/script"
	"github.com/portwise/portwise/tlsmode"
)

// countingDialer counts the connections it made and how many were open at
// once, from the client's side.
type countingDialer struct {
	mu                 sync.Mutex
	live, peak, dialed int
	// carrying counts the connections open that have not sent QUIT (seen
	// in clear only): those that can carry mail.
	carrying, peakCarrying int
	// cut, when set, is called with each connection's writes, for faults.
	cut func(c net.Conn, p []byte)
}

func (d *countingDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.live++
	d.dialed++
	d.peak = max(d.peak, d.live)
	d.carrying++
	d.peakCarrying = max(d.peakCarrying, d.carrying)
	d.mu.Unlock()
	return &countedConn{Conn: c, d: d}, nil
}

func (d *countingDialer) counts() (live, peak, dialed int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.live, d.peak, d.dialed
}

// peakCarrying is the most connections open at once that had not sent
// QUIT.
func (d *countingDialer) carryingPeak() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.peakCarrying
}

type countedConn struct {
	net.Conn
	d       *countingDialer
	once    sync.Once
	retired sync.Once // it sent QUIT, or closed
}

// retire counts the connection out of those that carry mail.
func (c *countedConn) retire() {
	c.retired.Do(func() {
		c.d.mu.Lock()
		c.d.carrying--
		c.d.mu.Unlock()
	})
}

func (c *countedConn) Write(p []byte) (int, error) {
	if bytes.HasPrefix(p, []byte("QUIT\r\n")) {
		c.retire()
	}
	n, err := c.Conn.Write(p)
	if c.d.cut != nil {
		c.d.cut(c, p)
	}
	return n, err
}

// NetConn returns the connection under the counter, as tls.Conn does, so
// that the client can look at its socket.
func (c *countedConn) NetConn() net.Conn { return c.Conn }

func (c *countedConn) Close() error {
	c.retire()
	c.once.Do(func() {
		c.d.mu.Lock()
		c.d.live--
		c.d.mu.Unlock()
	})
	return c.Conn.Close()
}

// mailerFor returns a Mailer on one listener of srv, dialling through a
// countingDialer.
func mailerFor(t *testing.T, srv *submittest.Server, c tlsmode.Candidate, mode tlsmode.Mode, m *submit.Mailer) (*submit.Mailer, *countingDialer) {
	t.Helper()
	cd := &countingDialer{}
	var auth submit.Auth
	if mode != tlsmode.Plaintext {
		auth = submit.PlainAuth("", "user", "pass")
	}
	d := dialerFor(srv, auth, cand(srv, c, mode))
	d.NetDialer = cd
	if m == nil {
		m = &submit.Mailer{}
	}
	m.Dialer, m.Host = d, "localhost"
	t.Cleanup(func() { m.Close() })
	return m, cd
}

// eventually polls cond until it holds or 10 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still not %s after 10s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func connsOn(srv *submittest.Server, addr string) []submittest.ConnRecord {
	var out []submittest.ConnRecord
	for _, r := range srv.Conns() {
		if r.Addr == addr {
			out = append(out, r)
		}
	}
	return out
}

func TestMailerManyGoroutinesBoundedConnectionsNoLeaks(t *testing.T) {
	const goroutines, perG = 100, 100 // 10 000 messages
	tests := []struct {
		name      string
		mailer    *submit.Mailer
		wantPeak  int // connections open at once that had not sent QUIT, at most
		maxDialed int // connections dialled in all, at most
	}{
		// 10 000 messages, 100 per connection: at least 100 connections; a
		// connection that comes back while a Send waits is handed over, so
		// few more are dialled. A connection that sent QUIT no longer
		// holds a slot while it waits for the reply.
		{"defaults", nil, 3, goroutines*perG/100 + 2*3},
		// Unbounded: one connection per busy goroutine, and the
		// replacements dialled ahead: one at a time, kept idle at most
		// MaxIdle.
		{"unbounded", &submit.Mailer{MaxConns: -1, MaxIdle: 4}, goroutines + 1 + 4, goroutines * perG},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := submittest.NewServer(t)
			// In clear, so that the counter sees each QUIT go out.
			addr := srv.Plain
			base := runtime.NumGoroutine()
			m, cd := mailerFor(t, srv, addr, tlsmode.Plaintext, tt.mailer)

			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			var wg sync.WaitGroup
			errs := make(chan error, goroutines*perG)
			for g := range goroutines {
				wg.Go(func() {
					for i := range perG {
						msg := fmt.Sprintf("Subject: %d-%d\r\n\r\nbody\r\n", g, i)
						if err := m.Send(ctx, "a@example.com", []string{"b@example.com"}, strings.NewReader(msg)); err != nil {
							errs <- err
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for _, msg := range srv.Messages() {
				seen[strings.SplitN(string(msg.Data), "\r\n", 2)[0]] = true
			}
			if len(seen) != goroutines*perG {
				t.Errorf("%d distinct messages delivered, want %d", len(seen), goroutines*perG)
			}
			live, peak, dialed := cd.counts()
			carrying := cd.carryingPeak()
			t.Logf("%d messages over %d connections, at most %d at once carrying mail (%d with those waiting for QUIT's reply)", goroutines*perG, dialed, carrying, peak)
			if carrying > tt.wantPeak || dialed > tt.maxDialed {
				t.Errorf("peak %d connections carrying mail (want ≤ %d), %d dialled (want ≤ %d)", carrying, tt.wantPeak, dialed, tt.maxDialed)
			}
			for _, r := range connsOn(srv, srv.Addr(addr)) {
				if r.Messages > 100 {
					t.Errorf("a connection carried %d messages, cap 100", r.Messages)
				}
			}
			// Only the idle pool stays open once the background QUITs end.
			eventually(t, "down to the idle pool", func() bool { live, _, _ = cd.counts(); return live <= 4 })

			m.Close()
			if live, _, _ := cd.counts(); live != 0 {
				t.Errorf("%d connections open after Close", live)
			}
			if err := m.Send(ctx, "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg)); !errors.Is(err, submit.ErrMailerClosed) {
				t.Errorf("Send after Close: %v, want ErrMailerClosed", err)
			}
			eventually(t, "back to the goroutines before the Mailer", func() bool { return runtime.NumGoroutine() <= base })
		})
	}
}

func TestMailerReusesOneConnectionAndCapsMessages(t *testing.T) {
	tests := []struct {
		name      string
		mailer    *submit.Mailer
		sends     int
		wantPerCn []int
	}{
		{"reuse", nil, 5, []int{5}},
		{"cap of 4", &submit.Mailer{MaxMessages: 4}, 10, []int{4, 4, 2}},
		{"no idle pool", &submit.Mailer{MaxIdle: -1}, 3, []int{1, 1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := submittest.NewServer(t)
			addr := srv.Listen(tlsmode.StartTLS)
			m, _ := mailerFor(t, srv, addr, tlsmode.StartTLS, tt.mailer)
			for range tt.sends {
				res, err := m.SendWith(context.Background(), "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg), nil)
				if err != nil {
					t.Fatal(err)
				}
				if res.QueueID == "" {
					t.Error("no queue id")
				}
			}
			m.Close()
			var got []int
			for _, r := range connsOn(srv, srv.Addr(addr)) {
				if r.Messages == 0 && r.AuthAttempts <= 1 {
					continue // a replacement dialled ahead, not needed in the end
				}
				got = append(got, r.Messages)
				if r.AuthAttempts != 1 {
					t.Errorf("AUTH ran %d times on one connection", r.AuthAttempts)
				}
			}
			// Which connection carried the last messages depends on when
			// a replacement was ready: compare the counts.
			slices.Sort(got)
			slices.Sort(tt.wantPerCn)
			if fmt.Sprint(got) != fmt.Sprint(tt.wantPerCn) {
				t.Errorf("messages per connection = %v, want %v", got, tt.wantPerCn)
			}
		})
	}
}

func TestMailerRedialsAfterTheServerDropsAnIdleConnection(t *testing.T) {
	tests := []struct {
		name  string
		check time.Duration // Mailer.IdleCheck
	}{
		{"found by NOOP", time.Nanosecond},
		{"found by MAIL FROM", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := submittest.NewServer(t)
			addr := srv.ListenWith(tlsmode.Implicit, submittest.Options{IdleTimeout: 150 * time.Millisecond})
			m, cd := mailerFor(t, srv, addr, tlsmode.Implicit, &submit.Mailer{IdleCheck: tt.check})
			ctx := context.Background()
			if err := m.Send(ctx, "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg)); err != nil {
				t.Fatal(err)
			}
			eventually(t, "closed by the server", func() bool { return connsOn(srv, srv.Addr(addr))[0].Closed })
			if err := m.Send(ctx, "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg)); err != nil {
				t.Fatalf("send after the server's idle timeout: %v", err)
			}
			if n := len(srv.Messages()); n != 2 {
				t.Errorf("%d messages, want 2", n)
			}
			if _, _, dialed := cd.counts(); dialed != 2 {
				t.Errorf("%d connections dialled, want 2", dialed)
			}
		})
	}
}

func TestMailerRedialsOn421MidSession(t *testing.T) {
	srv := submittest.NewServer(t)
	addr := srv.ListenWith(tlsmode.Implicit, submittest.Options{MaxMessagesPerConn: 3})
	m, _ := mailerFor(t, srv, addr, tlsmode.Implicit, &submit.Mailer{MaxMessages: -1})
	for i := range 7 {
		if err := m.Send(context.Background(), "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg)); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	var got []int
	for _, r := range connsOn(srv, srv.Addr(addr)) {
		got = append(got, r.Messages)
	}
	if fmt.Sprint(got) != "[3 3 1]" {
		t.Errorf("messages per connection = %v, want [3 3 1]", got)
	}
	if n := len(srv.Messages()); n != 7 {
		t.Errorf("%d messages, want 7", n)
	}
}

func TestMailerFreshConnectionAnswering421IsNotRedialledAtOnce(t *testing.T) {
	// A fresh connection answering 421 is not a stale pooled one: no
	// immediate redial. (With MaxTries, the message is tried again
	// after a wait: TestMailerRetriesTemporaryRefusalsBeforeTheBody.)
	srv := submittest.NewServer(t)
	addr := srv.Listen(tlsmode.Implicit, submittest.Reply421MidSession)
	m, cd := mailerFor(t, srv, addr, tlsmode.Implicit, &submit.Mailer{MaxTries: -1})
	err := m.Send(context.Background(), "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg))
	if !submit.IsTemporary(err) || !strings.Contains(err.Error(), "421") {
		t.Fatalf("err = %v, want the server's 421", err)
	}
	if _, _, dialed := cd.counts(); dialed != 1 {
		t.Errorf("%d connections dialled, want 1", dialed)
	}
}

func TestMailerNeverResendsAMessageWhoseOutcomeIsUnknown(t *testing.T) {
	tests := []struct {
		name string
		o    *submit.SendOptions
		end  string // what the write that ends the message holds
	}{
		{"DATA", &submit.SendOptions{NoChunking: true}, "\r\n.\r\n"},
		{"BDAT", nil, " LAST\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := submittest.NewServer(t)
			// A plaintext relay, so the client-side dialer can see the end
			// of the message and cut the connection right after it, on a
			// reused connection.
			m, cd := mailerFor(t, srv, srv.Plain, tlsmode.Plaintext, nil)
			var mu sync.Mutex
			ends := 0
			cd.cut = func(c net.Conn, p []byte) {
				mu.Lock()
				defer mu.Unlock()
				if bytes.Contains(p, []byte(tt.end)) {
					if ends++; ends == 2 {
						c.Close()
					}
				}
			}
			ctx := context.Background()
			send := func(i int) error {
				_, err := m.SendWith(ctx, "a@example.com", []string{"b@example.com"}, strings.NewReader(fmt.Sprintf("Subject: %d\r\n\r\nx\r\n", i)), tt.o)
				return err
			}
			if err := send(1); err != nil {
				t.Fatal(err)
			}
			if err := send(2); !errors.Is(err, submit.ErrOutcomeUnknown) {
				t.Fatalf("err = %v, want ErrOutcomeUnknown", err)
			}
			// A resend would have completed before Send returned.
			if _, _, dialed := cd.counts(); dialed != 1 {
				t.Errorf("%d connections dialled, want 1: the message was sent again", dialed)
			}
			if err := send(3); err != nil {
				t.Fatalf("the next message: %v", err)
			}
		})
	}
}

// stalled is a message body that blocks until release is closed.
func stalled(release <-chan struct{}) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		io.WriteString(pw, "Subject: slow\r\n\r\n")
		<-release
		io.WriteString(pw, "done\r\n")
		pw.Close()
	}()
	return pr
}

func TestMailerSlowSendHoldsOnlyItsConnection(t *testing.T) {
	tests := []struct {
		name     string
		maxConns int
		wantWait bool // the second Send must wait for the slow one
	}{
		{"room for another", 2, false},
		{"pool of one", 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := submittest.NewServer(t)
			addr := srv.Listen(tlsmode.Implicit)
			m, _ := mailerFor(t, srv, addr, tlsmode.Implicit, &submit.Mailer{MaxConns: tt.maxConns})
			release := make(chan struct{})
			slowDone := make(chan error, 1)
			go func() {
				// DATA, so that the server sees the send begin; BDAT would
				// hold the envelope until the first chunk is full.
				_, err := m.SendWith(context.Background(), "a@example.com", []string{"slow@example.com"}, stalled(release), &submit.SendOptions{NoChunking: true})
				slowDone <- err
			}()
			eventually(t, "the slow send in DATA", func() bool {
				cmds := commandsOn(srv, srv.Addr(addr))
				return len(cmds) > 0 && cmds[len(cmds)-1] == "DATA"
			})

			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			err := m.Send(ctx, "a@example.com", []string{"fast@example.com"}, strings.NewReader(testMsg))
			cancel()
			if tt.wantWait != errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("second send: %v (want waiting: %v)", err, tt.wantWait)
			}
			close(release)
			if err := <-slowDone; err != nil {
				t.Fatal(err)
			}
			// The waiter gave up cleanly: the pool still works.
			if err := m.Send(context.Background(), "a@example.com", []string{"later@example.com"}, strings.NewReader(testMsg)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestMailerCloseReleasesWaitersAndIdleConnections(t *testing.T) {
	srv := submittest.NewServer(t)
	addr := srv.Listen(tlsmode.Implicit)
	m, cd := mailerFor(t, srv, addr, tlsmode.Implicit, &submit.Mailer{MaxConns: 1})
	release := make(chan struct{})
	slowDone := make(chan error, 1)
	go func() {
		_, err := m.SendWith(context.Background(), "a@example.com", []string{"slow@example.com"}, stalled(release), &submit.SendOptions{NoChunking: true})
		slowDone <- err
	}()
	eventually(t, "the slow send in DATA", func() bool {
		cmds := commandsOn(srv, srv.Addr(addr))
		return len(cmds) > 0 && cmds[len(cmds)-1] == "DATA"
	})
	waiterDone := make(chan error, 1)
	go func() {
		waiterDone <- m.Send(context.Background(), "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg))
	}()
	time.Sleep(50 * time.Millisecond) // let it queue; the assertion holds either way
	m.Close()
	if err := <-waiterDone; !errors.Is(err, submit.ErrMailerClosed) {
		t.Errorf("waiting send: %v, want ErrMailerClosed", err)
	}
	close(release)
	if err := <-slowDone; err != nil {
		t.Errorf("the send in progress at Close: %v", err)
	}
	eventually(t, "every connection closed", func() bool { live, _, _ := cd.counts(); return live == 0 })
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestMailerIdleTimeoutQuitsPolitely(t *testing.T) {
	srv := submittest.NewServer(t)
	addr := srv.Listen(tlsmode.Implicit)
	m, cd := mailerFor(t, srv, addr, tlsmode.Implicit, &submit.Mailer{IdleTimeout: 50 * time.Millisecond})
	if err := m.Send(context.Background(), "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the idle connection closed", func() bool { live, _, _ := cd.counts(); return live == 0 })
	eventually(t, "closed on the server", func() bool { return connsOn(srv, srv.Addr(addr))[0].Closed })
	if err := m.Send(context.Background(), "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg)); err != nil {
		t.Fatal(err)
	}
	if _, _, dialed := cd.counts(); dialed != 2 {
		t.Errorf("%d dialled, want 2", dialed)
	}
}

func TestMailerChecksAddressesBeforeDialling(t *testing.T) {
	srv := submittest.NewServer(t)
	m, cd := mailerFor(t, srv, srv.Implicit, tlsmode.Implicit, nil)
	err := m.Send(context.Background(), "a@example.com", []string{"b@example.com>\r\nRCPT TO:<c@example.com"}, strings.NewReader(testMsg))
	if !errors.Is(err, submit.ErrBadAddress) {
		t.Fatalf("err = %v, want ErrBadAddress", err)
	}
	if _, _, dialed := cd.counts(); dialed != 0 {
		t.Errorf("dialled %d connections for an invalid message", dialed)
	}
}

// BenchmarkMailerSend sends from parallel goroutines through one Mailer
// (pooled, authenticated once per connection); BenchmarkDialPerMessage is
// the same message with a Dial, TLS handshake and AUTH each time.
func BenchmarkMailerSend(b *testing.B) {
	srv := submittest.NewServer(b)
	d := &submit.Dialer{Candidates: srv.Candidates()[1:], TLSConfig: srv.ClientTLSConfig(), Auth: submit.PlainAuth("", "user", "pass")}
	m := &submit.Mailer{Dialer: d, Host: "localhost"}
	defer m.Close()
	msg := []byte(testMsg)
	b.SetBytes(int64(len(msg)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := m.Send(context.Background(), "a@example.com", []string{"b@example.com"}, bytes.NewReader(msg)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkDialPerMessage(b *testing.B) {
	srv := submittest.NewServer(b)
	d := &submit.Dialer{Candidates: srv.Candidates()[1:], TLSConfig: srv.ClientTLSConfig(), Auth: submit.PlainAuth("", "user", "pass")}
	msg := []byte(testMsg)
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		c, err := d.Dial(context.Background(), "localhost")
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Send(context.Background(), "a@example.com", []string{"b@example.com"}, bytes.NewReader(msg)); err != nil {
			b.Fatal(err)
		}
		c.Quit()
	}
}

// sessionScript is a server whose AUTH takes authDelay and that takes up
// to perConn messages per session.
func sessionScript(authDelay time.Duration, perConn int) []script.Step {
	steps := []script.Step{script.StartTLS(), script.Send("220 mx ESMTP\r\n"),
		script.ExpectPrefix("EHLO "), script.Send("250-mx\r\n" + chunkingCaps + "250 AUTH PLAIN\r\n"),
		script.ExpectPrefix("AUTH PLAIN "), script.Pause(authDelay), script.Send("235 2.7.0 ok\r\n")}
	for range perConn {
		steps = append(steps, script.ExpectPrefix("MAIL FROM:"), script.ExpectPrefix("RCPT TO:"), script.ExpectBDAT(),
			script.Send("250 ok\r\n250 ok\r\n250 2.0.0 queued\r\n"))
	}
	return append(steps, script.Expect("QUIT"), script.Send("221 bye\r\n"))
}

// TestMailerReplacesSessionsAheadOfTime: a connection near MaxMessages
// has its replacement logged in while it still sends, so that one sender
// against a server with a slow AUTH, at 20 ms round trip, takes at most a
// quarter more time than on one session that is never replaced: measured
// 0.99×, where waiting for each new login took 1.31× (before 2026-12).
func TestMailerReplacesSessionsAheadOfTime(t *testing.T) {
	const perConn, messages, authDelay = 40, 120, 400 * time.Millisecond
	run := func(maxMessages int) time.Duration {
		srv := submittest.NewServer(t)
		sc := srv.ListenScript(submittest.Options{}, sessionScript(authDelay, messages)...)
		proxy, err := netem.NewProxy(srv.Addr(sc), 10*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		defer proxy.Close()
		d := srv.Dialer(submit.PlainAuth("", "user", "pass"), sc)
		d.NetDialer = redirectDialer(proxy.Addr())
		m := &submit.Mailer{Dialer: d, Host: "127.0.0.1", MaxMessages: maxMessages}
		defer m.Close()
		t0 := time.Now()
		for range messages {
			if err := m.Send(context.Background(), "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg)); err != nil {
				t.Fatal(err)
			}
		}
		return time.Since(t0)
	}
	one := run(-1)
	replaced := run(perConn)
	t.Logf("%d messages at 20 ms RTT, AUTH %s: one session %s, a new session every %d messages %s (%.2f×)",
		messages, authDelay, one, perConn, replaced, float64(replaced)/float64(one))
	if float64(replaced) > 1.25*float64(one) {
		t.Errorf("replacing sessions took %.2f× the time of one session; want at most 1.25×", float64(replaced)/float64(one))
	}
}

// redirectDialer connects to addr whatever it is asked for.
type redirectDialer string

func (r redirectDialer) DialContext(ctx context.Context, network, _ string) (net.Conn, error) {
	return (&net.Dialer{}).DialContext(ctx, network, string(r))
}

// TestMailerKeepsUpWithASlowLogin: against a server whose AUTH takes
// longer than a connection lasts (a PAM-backed Dovecot takes seconds),
// several replacements log in at once, within MaxConns: one sender goes
// twice as fast as when each new session's login stands in its way
// (MaxConns 1 leaves no room to replace ahead, as it was before 2026-12).
func TestMailerKeepsUpWithASlowLogin(t *testing.T) {
	for _, authDelay := range []time.Duration{200 * time.Millisecond, 2 * time.Second} {
		t.Run(authDelay.String(), func(t *testing.T) {
			if authDelay > time.Second && testing.Short() {
				t.Skip("a 2 s login takes 20 s of waiting; run without -short")
			}
			keepsUpWithASlowLogin(t, authDelay)
		})
	}
}

// keepsUpWithASlowLogin sends 60 messages with one sender, a new session
// every 10, against a server whose AUTH takes authDelay: once with
// MaxConns 1, where each login blocks the Send that needs it, and once
// with the default, where replacements log in ahead of time.
func keepsUpWithASlowLogin(t *testing.T, authDelay time.Duration) {
	const perConn, messages = 10, 60
	run := func(maxConns int) time.Duration {
		srv := submittest.NewServer(t)
		sc := srv.ListenScript(submittest.Options{}, sessionScript(authDelay, perConn)...)
		m := &submit.Mailer{Dialer: srv.Dialer(submit.PlainAuth("", "user", "pass"), sc), Host: "127.0.0.1",
			MaxMessages: perConn, MaxConns: maxConns}
		defer m.Close()
		var t0 time.Time
		for i := range messages {
			if i == 1 {
				t0 = time.Now() // from the second: the first login is everyone's
			}
			if err := m.Send(context.Background(), "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg)); err != nil {
				t.Fatal(err)
			}
		}
		return time.Since(t0)
	}
	blocked, ahead := run(1), run(0)
	t.Logf("%d messages, AUTH %s, a new session every %d: %s when each login blocks, %s replacing ahead (%.2f× the rate)",
		messages, authDelay, perConn, blocked, ahead, float64(blocked)/float64(ahead))
	// Measured 2.3×–2.5× alone with a 200 ms login; under the race
	// detector beside every other package's tests on two cores it fell
	// to 1.6×. The bound catches the loss of replacing ahead (1×)
	// without flaking.
	if float64(blocked) < 1.5*float64(ahead) {
		t.Errorf("replacing ahead reached %.2f× the rate; want at least 1.5× (2.3× or more on a quiet machine)", float64(blocked)/float64(ahead))
	}
}
