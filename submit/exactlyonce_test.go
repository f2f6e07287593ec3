package submit_test

// The attacks of issue 21 on the sending path, each played on loopback:
// where retries, pooling, pipelining and shutdown meet, a message is sent
// once, its outcome is reported once and truly, and the caller's context
// bounds every wait.

import (
	"context"
	"errors"
	"io"
	"math"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portwise/portwise/internal/netem"
	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/submit/submittest/script"
	"github.com/portwise/portwise/tlsmode"
	"golang.org/x/oauth2"
)

// messagesIn counts the messages every connection of a script received.
func messagesIn(recs []script.Record) int {
	n := 0
	for _, r := range recs {
		n += len(r.Messages)
	}
	return n
}

// waitScripts returns the records of sc's connections once they are over.
func waitScripts(t *testing.T, srv *submittest.Server, sc tlsmode.Candidate) []script.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	recs, err := srv.WaitScripts(ctx, sc)
	if err != nil {
		t.Fatalf("WaitScripts: %v", err)
	}
	return recs
}

// Item 1: a reply to the end of the message, even a 421 on a pooled
// connection, means the server had the message: it is never sent again.
func TestMailerNeverSendsAgainAMessageRefusedAfterItsBody(t *testing.T) {
	tests := []struct {
		name, caps string
		first      []script.Step
		second     []script.Step
	}{
		{"BDAT, 421 to the last chunk", chunkingCaps,
			one(script.ExpectPrefix("MAIL FROM:"), script.ExpectPrefix("RCPT TO:"), script.ExpectBDAT(),
				script.Send("250 ok\r\n250 ok\r\n250 2.0.0 queued as A1\r\n")),
			one(script.ExpectPrefix("MAIL FROM:"), script.ExpectPrefix("RCPT TO:"), script.ExpectBDAT(),
				script.Send("250 ok\r\n250 ok\r\n421 4.3.2 Service shutting down\r\n"), script.Close())},
		{"BDAT, 451 to the last chunk", chunkingCaps,
			one(script.ExpectPrefix("MAIL FROM:"), script.ExpectPrefix("RCPT TO:"), script.ExpectBDAT(),
				script.Send("250 ok\r\n250 ok\r\n250 2.0.0 queued as A1\r\n")),
			one(script.ExpectPrefix("MAIL FROM:"), script.ExpectPrefix("RCPT TO:"), script.ExpectBDAT(),
				script.Send("250 ok\r\n250 ok\r\n451 4.3.0 queue write error\r\n"), script.Close())},
		{"DATA, 421 to the final dot", "250-PIPELINING\r\n",
			one(script.ExpectPrefix("MAIL FROM:"), script.ExpectPrefix("RCPT TO:"), script.Expect("DATA"),
				script.Send("250 ok\r\n250 ok\r\n354 go\r\n"), script.ExpectData(), script.Send("250 2.0.0 queued as A1\r\n")),
			one(script.ExpectPrefix("MAIL FROM:"), script.ExpectPrefix("RCPT TO:"), script.Expect("DATA"),
				script.Send("250 ok\r\n250 ok\r\n354 go\r\n"), script.ExpectData(),
				script.Send("421 4.3.2 Service shutting down\r\n"), script.Close())},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := submittest.NewServer(t)
			sc := srv.ListenScript(submittest.Options{}, implicitScript(tt.caps, append(tt.first, tt.second...)...)...)
			d := srv.Dialer(submit.PlainAuth("", "user", "pass"), sc)
			m := &submit.Mailer{Dialer: d, Host: "127.0.0.1", RetryDelay: time.Millisecond}
			ctx := context.Background()
			if err := m.Send(ctx, "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg)); err != nil {
				t.Fatalf("first message: %v", err)
			}
			var retries []submit.Retry
			res, err := m.SendWith(submit.WithTrace(ctx, &submit.Trace{Retry: func(r submit.Retry) { retries = append(retries, r) }}),
				"a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg), nil)
			var se *submit.StepError
			if !errors.As(err, &se) || se.Step != "message" || res.Outcome != submit.OutcomeRefused || res.Tries != 1 {
				t.Fatalf("err = %v, outcome %v after %d attempts; want the refusal of the message, outcome refused, one attempt", err, res.Outcome, res.Tries)
			}
			m.Close()
			recs := waitScripts(t, srv, sc)
			if len(recs) != 1 || messagesIn(recs) != 2 || len(retries) != 0 {
				t.Errorf("the server saw %d connections, %d messages, the trace %d retries: the refused message went again", len(recs), messagesIn(recs), len(retries))
			}
		})
	}
}

// Item 2: a refused RSET must not hide a delivery. RSET goes alone, before
// anything of the message; refused, the connection is closed and nothing
// of the message goes out.
func TestSendDoesNotHideADeliveryBehindARefusedRSET(t *testing.T) {
	srv := submittest.NewServer(t)
	// The first message's last chunk is refused, so the transaction may
	// still be open: the next message starts with RSET. A client that
	// pipelined RSET with the next message would see RSET refused while
	// the message was delivered.
	sc := srv.ListenScript(submittest.Options{}, implicitScript(chunkingCaps,
		script.ExpectPrefix("MAIL FROM:"), script.ExpectPrefix("RCPT TO:"), script.ExpectBDAT(),
		script.Send("250 ok\r\n250 ok\r\n554 5.6.0 content refused\r\n"),
		script.Expect("RSET"), script.Send("451 4.3.0 busy\r\n"),
		script.ExpectPrefix("MAIL FROM:"), script.ExpectPrefix("RCPT TO:"), script.ExpectBDAT(),
		script.Send("250 ok\r\n250 ok\r\n250 2.0.0 queued as B2\r\n"),
	)...)
	d := srv.Dialer(submit.PlainAuth("", "user", "pass"), sc)
	c, err := d.Dial(context.Background(), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Send(context.Background(), "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg)); err == nil {
		t.Fatal("first message accepted; the script refuses it")
	}
	res, err := c.SendWith(context.Background(), "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg), nil)
	var se *submit.StepError
	if !errors.As(err, &se) || se.Step != "RSET" || !submit.IsTemporary(err) || res.Outcome != submit.OutcomeNotSent {
		t.Fatalf("err = %v, outcome %v; want RSET's temporary refusal and nothing sent", err, res.Outcome)
	}
	c.Close()
	recs := waitScripts(t, srv, sc)
	if messagesIn(recs) != 1 {
		t.Errorf("the server received %d messages; the second went out although the client reported it not sent", messagesIn(recs))
	}
}

// stallConn passes everything until armed; then, once the client starts
// reading, every write blocks until its deadline or Close, as on a peer
// whose receive window is zero.
type stallConn struct {
	net.Conn
	armed, reading atomic.Bool
	closed         chan struct{}
	once           sync.Once
	mu             sync.Mutex
	wdl            time.Time
}

func (c *stallConn) Read(p []byte) (int, error) {
	if c.armed.Load() {
		c.reading.Store(true)
	}
	return c.Conn.Read(p)
}

func (c *stallConn) Write(p []byte) (int, error) {
	if !c.reading.Load() {
		return c.Conn.Write(p)
	}
	c.mu.Lock()
	dl := c.wdl
	c.mu.Unlock()
	var timeout <-chan time.Time
	if !dl.IsZero() {
		timer := time.NewTimer(time.Until(dl))
		defer timer.Stop()
		timeout = timer.C
	}
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	case <-timeout:
		return 0, errors.New("write timeout")
	}
}

func (c *stallConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.wdl = t
	c.mu.Unlock()
	return c.Conn.SetWriteDeadline(t)
}

func (c *stallConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	c.wdl = t
	c.mu.Unlock()
	return c.Conn.SetDeadline(t)
}

func (c *stallConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

type stallDialer struct{ conns chan *stallConn }

func (d stallDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	c := &stallConn{Conn: nc, closed: make(chan struct{})}
	d.conns <- c
	return c, nil
}

// Item 3: every wait of a Send ends with the caller's context.
func TestSendWaitsEndWithTheContext(t *testing.T) {
	t.Run("a reply that never ends while the connection sat idle", func(t *testing.T) {
		srv := submittest.NewServer(t)
		c, sc := dialScript(t, srv, implicitScript(chunkingCaps,
			script.ExpectPrefix("MAIL FROM:"), script.ExpectPrefix("RCPT TO:"), script.ExpectBDAT(),
			script.Send("250 ok\r\n250 ok\r\n250 2.0.0 queued as C1\r\n"),
			script.Pause(20*time.Millisecond),
			script.Send("421 4.4.2 idle ti"), // never finished
			script.Pause(20*time.Second),
		))
		defer c.Close()
		if err := c.Send(context.Background(), "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond) // the unfinished reply arrives
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		t0 := time.Now()
		res, err := c.SendWith(ctx, "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg), nil)
		if d := time.Since(t0); d > time.Second || !errors.Is(err, context.DeadlineExceeded) || res.Outcome != submit.OutcomeNotSent {
			t.Errorf("Send returned after %s with %v (%v); want the context's deadline within 300ms, nothing sent", d, err, res.Outcome)
		}
		_ = sc
	})
	t.Run("a stalled upload", func(t *testing.T) {
		srv := submittest.NewServer(t)
		sc := srv.ListenScript(submittest.Options{}, implicitScript(chunkingCaps,
			script.ExpectPrefix("MAIL FROM:"), script.ExpectPrefix("RCPT TO:"), script.ExpectBDAT(),
			script.Pause(20*time.Second), // reads the message, answers nothing, then reads nothing
		)...)
		sd := stallDialer{conns: make(chan *stallConn, 1)}
		d := srv.Dialer(submit.PlainAuth("", "user", "pass"), sc)
		d.NetDialer = sd
		c, err := d.Dial(context.Background(), "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		(<-sd.conns).armed.Store(true)
		// Cancelled, not timed out: no socket deadline ends the wait,
		// only closing the socket does.
		ctx, cancel := context.WithCancel(context.Background())
		defer time.AfterFunc(300*time.Millisecond, cancel).Stop()
		t0 := time.Now()
		res, err := c.SendWith(ctx, "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg), nil)
		if d := time.Since(t0); d > time.Second || !errors.Is(err, context.Canceled) || !errors.Is(err, submit.ErrOutcomeUnknown) {
			t.Errorf("Send returned after %s with %v (%v); want the cancellation within 300ms, outcome unknown", d, err, res.Outcome)
		}
	})
	t.Run("a Send in flight when Close runs", func(t *testing.T) {
		srv := submittest.NewServer(t)
		sc := srv.ListenScript(submittest.Options{}, implicitScript(chunkingCaps,
			script.ExpectPrefix("MAIL FROM:"), script.ExpectPrefix("RCPT TO:"), script.ExpectBDAT(),
			script.Pause(300*time.Millisecond),
			script.Send("250 ok\r\n250 ok\r\n250 2.0.0 queued as C3\r\n"),
			script.Expect("QUIT"), script.Pause(20*time.Second), // never answers QUIT
		)...)
		m := &submit.Mailer{Dialer: srv.Dialer(submit.PlainAuth("", "user", "pass"), sc), Host: "127.0.0.1"}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		done := make(chan error, 1)
		t0 := time.Now()
		go func() { done <- m.Send(ctx, "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg)) }()
		eventually(t, "dialled", func() bool { return m.Stats().Open == 1 })
		time.Sleep(50 * time.Millisecond)
		m.Close()
		err := <-done
		if d := time.Since(t0); err != nil || d > time.Second {
			t.Errorf("Send returned %v after %s; want the message sent and no wait for a QUIT", err, d)
		}
	})
}

// Item 4: the Sends waiting for the Mailer's first Dial do not take the
// first caller's cancellation for theirs.
func TestMailerWaitersDoNotInheritTheFirstDialsCancellation(t *testing.T) {
	srv := submittest.NewServer(t)
	slow := srv.ListenScript(submittest.Options{}, append([]script.Step{script.StartTLS(), script.Pause(300 * time.Millisecond)},
		implicitScript("", script.ExpectPrefix("MAIL FROM:"), script.Send("250 ok\r\n"), script.ExpectPrefix("RCPT TO:"), script.Send("250 ok\r\n"),
			script.Expect("DATA"), script.Send("354 go\r\n"), script.ExpectData(), script.Send("250 queued\r\n"),
			script.Expect("QUIT"), script.Send("221 bye\r\n"))[1:]...)...)
	m := &submit.Mailer{Dialer: srv.Dialer(submit.PlainAuth("", "user", "pass"), slow), Host: "127.0.0.1"}
	defer m.Close()
	leader, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		first <- m.Send(leader, "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg))
	}()
	eventually(t, "dialling", func() bool { return m.Stats().Open == 1 })
	second := make(chan error, 1)
	go func() {
		second <- m.Send(context.Background(), "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg))
	}()
	time.Sleep(50 * time.Millisecond) // the second waits for the first Dial, which takes 300ms
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Errorf("first Send: %v, want its own cancellation", err)
	}
	if err := <-second; err != nil {
		t.Errorf("second Send, whose context is alive: %v; want it sent", err)
	}
}

// delayedDialer delays the connections after the first by delay.
type delayedDialer struct {
	n     atomic.Int32
	delay time.Duration
}

func (d *delayedDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if d.n.Add(1) > 1 {
		select {
		case <-time.After(d.delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return (&net.Dialer{}).DialContext(ctx, network, addr)
}

// Item 5: a credential a server rejected is never presented again, not
// even by a Dial that was already under way.
func TestDialNeverSendsACredentialRejectedWhileItWasUnderWay(t *testing.T) {
	srv := submittest.NewServer(t)
	d := dialerFor(srv, submit.PlainAuth("", "user", "wrong"), cand(srv, srv.Implicit, tlsmode.Implicit))
	d.NetDialer = &delayedDialer{delay: 200 * time.Millisecond}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = d.Dial(context.Background(), "localhost")
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, submit.ErrAuthFailed) {
			t.Errorf("Dial %d: %v, want ErrAuthFailed", i, err)
		}
	}
	auths := 0
	for _, c := range srv.Conns() {
		auths += c.AuthAttempts
	}
	if auths != 1 {
		t.Errorf("the server saw %d AUTH attempts with the rejected password, want 1", auths)
	}
}

// routeDialer sends the first connection to first, through a proxy that
// slows it, and the others to rest.
type routeDialer struct {
	n           atomic.Int32
	first, rest string
}

func (d *routeDialer) DialContext(ctx context.Context, network, _ string) (net.Conn, error) {
	addr := d.rest
	if d.n.Add(1) == 1 {
		addr = d.first
	}
	return (&net.Dialer{}).DialContext(ctx, network, addr)
}

// Item 5, in a Mailer: connections log in side by side, and once one of
// them learnt that the server rejects the credential, none presents it
// again: only the logins under way at that instant may have.
func TestMailerNeverPresentsACredentialOnceARejectionIsKnown(t *testing.T) {
	srv := submittest.NewServer(t)
	good := srv.Implicit
	proxy, err := netem.NewProxy(srv.Addr(good), 30*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	slowAuth := srv.ListenScript(submittest.Options{}, script.StartTLS(), script.Send("220 mx ESMTP\r\n"),
		script.ExpectPrefix("EHLO "), script.Send("250-mx\r\n250 AUTH PLAIN\r\n"),
		script.ExpectPrefix("AUTH PLAIN "), script.Pause(200*time.Millisecond), script.Send("535 5.7.8 credentials revoked\r\n"))
	d := dialerFor(srv, submit.PlainAuth("", "user", "pass"), cand(srv, good, tlsmode.Implicit))
	d.NetDialer = &routeDialer{first: proxy.Addr(), rest: srv.Addr(slowAuth)}
	m := &submit.Mailer{Dialer: d, Host: "localhost", MaxConns: 3}
	defer m.Close()
	if err := m.Send(context.Background(), "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg)); err != nil {
		t.Fatal(err)
	}
	burst := func() (rejected int) {
		var wg sync.WaitGroup
		var n atomic.Int32
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := m.Send(context.Background(), "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg))
				if errors.Is(err, submit.ErrAuthFailed) {
					n.Add(1)
				}
			}()
		}
		wg.Wait()
		return int(n.Load())
	}
	auths := func() (n, conns int) {
		recs := srv.ScriptConns(slowAuth)
		for _, r := range recs {
			for _, l := range r.Lines {
				if strings.HasPrefix(l.Text, "AUTH ") {
					n++
				}
			}
		}
		return n, len(recs)
	}
	if burst() == 0 {
		t.Fatal("no Send learnt that the credential was revoked")
	}
	first, conns := auths()
	if first < 1 || first > 2 {
		t.Fatalf("%d AUTH commands with the revoked credential from the logins under way; want 1 or 2 (MaxConns 3, one connection busy)", first)
	}
	if n := burst(); n != 3 {
		t.Errorf("%d of 3 later Sends failed with ErrAuthFailed", n)
	}
	if again, conns2 := auths(); again != first || conns2 != conns {
		t.Errorf("after the rejection was known: %d AUTH commands (was %d), %d connections (was %d)", again, first, conns2, conns)
	}
}

// blockingSource is a token endpoint that never answers until released.
type blockingSource struct{ release chan struct{} }

func (s blockingSource) Token() (*oauth2.Token, error) {
	<-s.release
	return nil, errors.New("released")
}

// Item 6: Dials that give up on a stalled token endpoint do not each
// leave a request behind.
func TestStalledTokenEndpointLeavesOneFetch(t *testing.T) {
	src := blockingSource{release: make(chan struct{})}
	defer close(src.release)
	d := &submit.Dialer{Auth: submit.XOAuth2("user@example.com", src)}
	before := runtime.NumGoroutine()
	for range 40 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
		_, err := d.Dial(ctx, "127.0.0.1:1")
		cancel()
		if !errors.Is(err, submit.ErrTokenUnavailable) {
			t.Fatalf("Dial: %v, want ErrTokenUnavailable", err)
		}
	}
	if n := runtime.NumGoroutine() - before; n > 2 {
		t.Errorf("%d goroutines more after 40 Dials on a stalled token endpoint; want the one fetch", n)
	}
}

// Item 9: small leaks and crashes.
func TestAddressesThatWouldDeceiveAreRefusedAndEscaped(t *testing.T) {
	srv := submittest.NewServer(t)
	c, err := dialerFor(srv, submit.PlainAuth("", "user", "pass"), cand(srv, srv.Implicit, tlsmode.Implicit)).Dial(context.Background(), "localhost")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, addr := range []string{"b\x1b[2J@example.com", "b\a@example.com", "b\u202emoc.elpmaxe@example.com", "b\xff@example.com", "b\x7f@example.com"} {
		err := c.Send(context.Background(), "a@example.com", []string{addr}, strings.NewReader(testMsg))
		if !errors.Is(err, submit.ErrBadAddress) {
			t.Errorf("%q: %v, want ErrBadAddress", addr, err)
			continue
		}
		assertPrintable(t, err.Error())
	}
	re := submit.RecipientError{Addr: "x\x1b]0;pwned\a\u202e@example.com", Reply: &submit.Reply{Code: 550, Text: "no"}}
	assertPrintable(t, re.Error())
	assertPrintable(t, (&submit.SendError{Rejected: []submit.RecipientError{re}}).Error())
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("%d messages reached the server", n)
	}
}

// assertPrintable fails when s holds a rune that could drive or deceive a
// terminal; lines may be separated by "\n".
func assertPrintable(t *testing.T, s string) {
	t.Helper()
	for _, r := range strings.ReplaceAll(s, "\n", "") {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) || (r >= 0x202a && r <= 0x202e) || r == 0xfffd {
			t.Errorf("%q holds %U", s, r)
			return
		}
	}
}

func TestMailerHugeRetryDelayDoesNotPanic(t *testing.T) {
	srv := submittest.NewServer(t)
	addr := srv.ListenWith(tlsmode.Implicit, submittest.Options{FailEvery: 1})
	for _, delay := range []time.Duration{math.MaxInt64, math.MaxInt64 / 3, time.Duration(1) << 62} {
		m, _ := mailerFor(t, srv, addr, tlsmode.Implicit, &submit.Mailer{RetryDelay: delay})
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := m.Send(ctx, "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg))
		cancel()
		var se *submit.StepError
		if !errors.As(err, &se) || se.Reply == nil || se.Reply.Code != 451 {
			t.Errorf("RetryDelay %d: %v, want the server's 451 (no wait past the deadline)", delay, err)
		}
	}
}

func TestDialErrorNamesThePortOfEveryAttempt(t *testing.T) {
	de := &submit.DialError{Host: "smtp.example.com", Attempts: []submit.Attempt{
		{Candidate: tlsmode.Candidate{Port: 587, Mode: tlsmode.StartTLS}, Err: errors.New("something odd")},
		{Candidate: tlsmode.Candidate{Port: 465, Mode: tlsmode.Implicit}, Err: io.EOF},
	}}
	msg := de.Error()
	for _, want := range []string{"587/starttls: something odd", "465/implicit: EOF"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q does not say %q", msg, want)
		}
	}
}

// Item 10: the idle check sees a 421 that crypto/tls read together with
// the previous reply, and a connection whose socket it cannot inspect.
func TestIdleCheckSeesA421HeldByTLS(t *testing.T) {
	srv := submittest.NewServer(t)
	c, sc := dialScript(t, srv, implicitScript(chunkingCaps,
		script.ExpectPrefix("MAIL FROM:"), script.ExpectPrefix("RCPT TO:"), script.ExpectBDAT(),
		script.SendRecords("250 ok\r\n250 ok\r\n250 2.0.0 queued as D1\r\n", "421 4.4.2 idle timeout, closing\r\n"),
		script.Pause(2*time.Second),
	))
	defer c.Close()
	if err := c.Send(context.Background(), "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	res, err := c.SendWith(context.Background(), "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg), nil)
	var se *submit.StepError
	if !errors.As(err, &se) || se.Reply == nil || se.Reply.Code != 421 || res.Outcome != submit.OutcomeNotSent {
		t.Fatalf("err = %v, outcome %v; want the unasked 421, nothing sent", err, res.Outcome)
	}
	c.Close()
	for _, r := range waitScripts(t, srv, sc) {
		mails := 0
		for _, l := range r.Lines {
			if strings.HasPrefix(l.Text, "MAIL FROM") {
				mails++
			}
		}
		if mails != 1 {
			t.Errorf("the server saw %d MAIL FROM; the second message went into a closing connection", mails)
		}
	}
}

// hiddenConn hides the socket under it: no NetConn, no SyscallConn.
type hiddenConn struct{ c net.Conn }

func (h hiddenConn) Read(p []byte) (int, error)         { return h.c.Read(p) }
func (h hiddenConn) Write(p []byte) (int, error)        { return h.c.Write(p) }
func (h hiddenConn) Close() error                       { return h.c.Close() }
func (h hiddenConn) LocalAddr() net.Addr                { return h.c.LocalAddr() }
func (h hiddenConn) RemoteAddr() net.Addr               { return h.c.RemoteAddr() }
func (h hiddenConn) SetDeadline(t time.Time) error      { return h.c.SetDeadline(t) }
func (h hiddenConn) SetReadDeadline(t time.Time) error  { return h.c.SetReadDeadline(t) }
func (h hiddenConn) SetWriteDeadline(t time.Time) error { return h.c.SetWriteDeadline(t) }

type hidingDialer struct{}

func (hidingDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return hiddenConn{c}, nil
}

func TestIdleCheckWorksThroughAConnectionThatHidesItsSocket(t *testing.T) {
	srv := submittest.NewServer(t)
	sc := srv.ListenScript(submittest.Options{}, implicitScript(chunkingCaps,
		script.ExpectPrefix("MAIL FROM:"), script.ExpectPrefix("RCPT TO:"), script.ExpectBDAT(),
		script.Send("250 ok\r\n250 ok\r\n250 2.0.0 queued as E1\r\n"),
		script.Close(), // while idle, without a word
	)...)
	d := srv.Dialer(submit.PlainAuth("", "user", "pass"), sc)
	d.NetDialer = hidingDialer{}
	c, err := d.Dial(context.Background(), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Send(context.Background(), "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	res, err := c.SendWith(context.Background(), "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg), nil)
	if err == nil || errors.Is(err, submit.ErrOutcomeUnknown) || res.Outcome != submit.OutcomeNotSent || !submit.IsTemporary(err) {
		t.Fatalf("err = %v, outcome %v; want a closed connection found before anything was sent", err, res.Outcome)
	}
}
