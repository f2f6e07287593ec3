package chaos

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/tlsmode"
)

// Config is one run: a Mailer sending Messages from Goroutines goroutines
// through the proxy to the fault server (or to External).
type Config struct {
	// Seed decides everything random: the scenario (ScenarioOf), the
	// messages and every connection's plans.
	Seed uint64
	// Messages is how many messages the run sends; 0 means 250.
	Messages int
	// Goroutines share the Mailer; 0 means 8.
	Goroutines int
	// MaxConns is the Mailer's; 0 means 3.
	MaxConns int
	// Slack is how long after its context ended a Send may still return;
	// 0 means DefaultSlack.
	Slack time.Duration
	// External, when set, is a real server to run against instead of the
	// fault server: only the proxy injects faults, and the scenario's
	// Revoke is not played.
	External *External
}

// DefaultSlack is how long after its context ended (deadline or
// cancellation) a Send may return. The library closes its socket the
// moment the context ends, so an honest Send returns within a scheduling
// delay of it: under -race on two cores shared with other builds, 0.22 s
// at most over 50,000 messages, 0.73 s in a run at a load average of 9
// (CONTRIBUTING.md). The waits the invariant exists to catch are fixed
// timeouts of 5 and 10 s.
const DefaultSlack = 2 * time.Second

// External is a real submission server, reached through the proxy.
type External struct {
	// StartTLS and Implicit are "host:port" of its two listeners; the
	// scenario picks one.
	StartTLS, Implicit string
	// RootCAs verifies its certificate, which must be valid for 127.0.0.1.
	RootCAs *x509.CertPool
	// User and Pass are a credential it accepts.
	User, Pass string
	// To is the one recipient of every message.
	To string
	// Copies waits until the server's deliveries have settled and returns
	// how many copies it stored of each Message-ID among ids (without
	// angle brackets). sure are those the server accepted (Send returned
	// nil), which must arrive; the others may or may not.
	Copies func(ctx context.Context, ids, sure []string) (map[string]int, error)
}

// Report is what a run saw.
type Report struct {
	Seed     uint64
	Scenario Scenario
	Messages int
	// Outcomes counts the Sends' results: "nil", "unknown"
	// (ErrOutcomeUnknown), and the other errors by kind.
	Outcomes map[string]int
	// Faults counts the faults that struck, by kind.
	Faults map[string]int
	// Conns is how many connections the proxy accepted.
	Conns int
	// RejectedAUTH is how many AUTH commands carried the revoked
	// credential.
	RejectedAUTH int
	// MaxLate is the longest a Send took to return after its context
	// ended; MaxLateWithin the longest that stayed within the slack: what
	// an honest Send needed.
	MaxLate, MaxLateWithin time.Duration
	// Took is the run's wall time.
	Took       time.Duration
	Violations []Violation
}

// Violation is one broken invariant.
type Violation struct {
	// Class names the invariant, e.g. "duplicate" or "late-return".
	Class string
	// Message is the message concerned, or -1.
	Message int
	// Detail says what was seen and, for a message, what was injected on
	// every connection it touched.
	Detail string
}

// result is how one Send ended.
type result struct {
	start, end time.Time
	deadline   time.Time
	cancelled  time.Time // when the context was cancelled, if it was
	ctxEnd     time.Time // the earlier of the two
	err        error
}

type msgKey struct{}

// onlyReader hides every method but Read: a message the Mailer cannot
// rewind.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// Run runs cfg and checks its invariants. The error is for the harness
// failing; broken invariants are in Report.Violations.
func Run(cfg Config) (*Report, error) {
	if cfg.Messages <= 0 {
		cfg.Messages = 250
	}
	if cfg.Goroutines <= 0 {
		cfg.Goroutines = 8
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 3
	}
	if cfg.Slack <= 0 {
		cfg.Slack = DefaultSlack
	}
	baseline := runtime.NumGoroutine()
	t0 := time.Now()
	scen := ScenarioOf(cfg.Seed)
	if cfg.External != nil {
		scen.Revoke = false
	}
	var nb [4]byte
	rand.Read(nb[:])
	nonce := hex.EncodeToString(nb[:])
	to := "rcpt@example.test"
	if cfg.External != nil {
		to = cfg.External.To
	}
	msgs := make([]*message, cfg.Messages)
	byN := make(map[int]*message, cfg.Messages)
	for n := range msgs {
		msgs[n] = newMessage(cfg.Seed, n, nonce, to)
		byN[n] = msgs[n]
	}
	reg := newRegistry(cfg.Seed, scen)
	reg.external = cfg.External != nil

	var (
		target     string
		pool       *x509.CertPool
		user, pass = chaosUser, chaosPass
		srv        *server
	)
	if ext := cfg.External; ext != nil {
		target, pool, user, pass = ext.StartTLS, ext.RootCAs, ext.User, ext.Pass
		if scen.Mode == tlsmode.Implicit {
			target = ext.Implicit
		}
	} else {
		ca, err := newAuthority()
		if err != nil {
			return nil, err
		}
		if srv, err = startServer(reg, scen.Mode, ca, byN); err != nil {
			return nil, err
		}
		target, pool = srv.addr(), ca.pool
	}
	px, err := startProxy(reg, target, srv != nil)
	if err != nil {
		if srv != nil {
			srv.close()
		}
		return nil, err
	}
	dials := &dialTracker{}
	d := &submit.Dialer{
		Candidates: []tlsmode.Candidate{{Port: px.port(), Mode: scen.Mode}},
		TLSConfig:  &tls.Config{RootCAs: pool, CurvePreferences: fastCurves},
		Auth:       submit.PlainAuth("", user, pass),
		LocalName:  "chaos.test",
		Timeout:    time.Second,
		NetDialer:  dials,
	}

	mailer := &submit.Mailer{Dialer: d, Host: "127.0.0.1", MaxConns: cfg.MaxConns, RetryDelay: 10 * time.Millisecond}
	trace := &submit.Trace{AuthDone: func(a submit.Attempt) {
		if errors.Is(a.Err, submit.ErrAuthFailed) {
			reg.learned()
		}
	}}

	results := make([]result, cfg.Messages)
	revokeAt, closeAt := -1, -1
	if scen.Revoke {
		revokeAt = cfg.Messages * 85 / 100
	}
	if scen.CloseEarly {
		closeAt = cfg.Messages * 9 / 10
	}
	closed := make(chan struct{})
	var closeOnce sync.Once
	closeMailer := func() { closeOnce.Do(func() { mailer.Close(); close(closed) }) }
	var next atomic.Int64
	var wg sync.WaitGroup
	for range cfg.Goroutines {
		wg.Go(func() {
			for {
				n := int(next.Add(1)) - 1
				if n >= cfg.Messages {
					return
				}
				if n == revokeAt {
					reg.revoke()
				}
				if n == closeAt {
					go func() {
						px.stallAfterFinal()
						closeMailer()
					}()
				}
				if msgs[n].pause > 0 {
					time.Sleep(msgs[n].pause) // think time, not synchronisation: pooled connections go idle
				}
				results[n] = send(mailer, msgs[n], to, trace)
			}
		})
	}
	wg.Wait()
	px.heal()
	closeMailer()
	<-closed

	rep := &Report{Seed: cfg.Seed, Scenario: scen, Messages: cfg.Messages}
	// Every socket the Mailer opened is closed once Close returned and
	// no Send runs: allow a moment for a close already under way.
	leftover := pollUntil(2*time.Second, func() bool { return len(dials.open()) == 0 })
	px.close()
	var srvErr error
	var copies map[string]int
	if srv != nil {
		srvErr = srv.close()
		copies = reg.copies()
	} else {
		ids := make([]string, len(msgs))
		var sure []string
		for i, m := range msgs {
			ids[i] = m.id
			if results[i].err == nil {
				sure = append(sure, m.id)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		copies, err = cfg.External.Copies(ctx, ids, sure)
		cancel()
		if err != nil {
			return nil, err
		}
	}
	if srvErr != nil {
		return nil, srvErr
	}
	var stacks string
	if !pollUntil(3*time.Second, func() bool { return runtime.NumGoroutine() <= baseline }) {
		buf := make([]byte, 1<<20)
		stacks = string(buf[:runtime.Stack(buf, true)])
	}
	rep.Took = time.Since(t0)
	reg.mu.Lock()
	internal := append([]string(nil), reg.internalErrs...)
	reg.mu.Unlock()
	if len(internal) > 0 {
		return nil, fmt.Errorf("chaos: the harness went wrong: %v", internal)
	}
	check(rep, &checkInput{
		reg: reg, msgs: msgs, results: results, copies: copies, dials: dials,
		leftover: !leftover, baseline: baseline, stacks: stacks, slack: cfg.Slack, own: srv != nil,
	})
	return rep, nil
}

// send sends one message with its own deadline (and, for some, an early
// cancellation) and records how it ended.
func send(mailer *submit.Mailer, m *message, to string, trace *submit.Trace) result {
	start := time.Now()
	res := result{start: start, deadline: start.Add(m.timeout)}
	res.ctxEnd = res.deadline
	ctx, cancel := context.WithDeadline(context.Background(), res.deadline)
	defer cancel()
	var cancelled atomic.Int64 // UnixNano of the cancellation
	if m.cancel > 0 {
		t := time.AfterFunc(m.cancel, func() {
			cancelled.Store(time.Now().UnixNano())
			cancel()
		})
		defer t.Stop()
	}
	ctx = submit.WithTrace(context.WithValue(ctx, msgKey{}, m.n), trace)
	var body io.Reader
	switch m.reader {
	case seekable:
		body = bytes.NewReader(m.body)
	case buffer:
		body = bytes.NewBuffer(m.body) // only read: the Mailer never writes to it
	default:
		body = onlyReader{bytes.NewReader(m.body)}
	}
	var opts *submit.SendOptions
	if m.noChunking {
		opts = &submit.SendOptions{NoChunking: true}
	}
	_, res.err = mailer.SendWith(ctx, m.from, []string{to}, body, opts)
	res.end = time.Now()
	if c := cancelled.Load(); c != 0 {
		res.cancelled = time.Unix(0, c)
		if res.cancelled.Before(res.ctxEnd) {
			res.ctxEnd = res.cancelled
		}
	}
	return res
}

// pollUntil polls cond until it holds or d passed; it reports whether it
// held.
func pollUntil(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// copies counts the fault server's stored copies by Message-ID.
func (r *registry) copies() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.stores))
	for id, s := range r.stores {
		out[id] = len(s)
	}
	return out
}

// dialTracker is the Mailer's NetDialer: it records which message's Send
// opened each connection (from the context) and whether the library
// closed it.
type dialTracker struct {
	mu    sync.Mutex
	dials []*dialRecord
}

type dialRecord struct {
	n      int // the message whose Send dialled, or -1
	at     time.Time
	local  string
	closed atomic.Bool
}

func (t *dialTracker) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	rec := &dialRecord{n: -1, at: time.Now()}
	if n, ok := ctx.Value(msgKey{}).(int); ok {
		rec.n = n
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	tc := c.(*net.TCPConn)
	// A small send buffer, so that a proxy that stops reading blocks the
	// client's writes soon, as a full path does.
	tc.SetWriteBuffer(16 << 10)
	rec.local = tc.LocalAddr().String()
	t.mu.Lock()
	t.dials = append(t.dials, rec)
	t.mu.Unlock()
	return &trackedConn{TCPConn: tc, rec: rec}, nil
}

func (t *dialTracker) open() []*dialRecord {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*dialRecord
	for _, d := range t.dials {
		if !d.closed.Load() {
			out = append(out, d)
		}
	}
	return out
}

func (t *dialTracker) all() []*dialRecord {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]*dialRecord(nil), t.dials...)
}

// trackedConn is a client socket that records its Close. It embeds
// *net.TCPConn, so the library still reaches the socket (SyscallConn) to
// see whether a reply is waiting.
type trackedConn struct {
	*net.TCPConn
	rec *dialRecord
}

func (c *trackedConn) Close() error {
	c.rec.closed.Store(true)
	return c.TCPConn.Close()
}
