package submit

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/portwise/portwise/internal/untrusted"
)

// The defaults of the Mailer's zero fields.
const (
	defaultMaxIdle     = 2
	defaultMaxConns    = 3
	defaultMaxMessages = 100
	defaultIdleTimeout = 30 * time.Second
	defaultIdleCheck   = 5 * time.Second
)

// noopTimeout bounds the NOOP that checks an idle connection.
const noopTimeout = 10 * time.Second

// Mailer sends messages over a pool of authenticated connections to one
// host. It is safe for concurrent use by many goroutines. Like Dialer, and
// like http.Transport, its knobs are fields whose zero values work; set
// them before the first Send and do not copy a Mailer after it.
//
// A Send takes an idle connection (checking it with NOOP when it sat idle a
// while), or dials a new one while fewer than MaxConns are open, or waits
// for one to come back; so one slow send holds one connection and never
// blocks the others beyond the pool's bound.
//
// A connection is reused as it is after a transaction that ended with the
// server's final reply, and reset with RSET first after one that did not.
//
// A message is sent again only when the server cannot have it: its
// SendResult.Outcome is OutcomeNotSent (see Outcome). A pooled connection
// that the server closed, or closed with a 421, before the message could
// reach a transaction is replaced at once and the message sent on a new
// one; a message the server refused for now before it could have it (a
// 421 greeting, "too many connections", a 4xx to MAIL FROM, to every RCPT
// TO, or to DATA, a connection that broke before the end of the message
// went out) is sent again after an exponential backoff with jitter, within
// the caller's context (MaxTries, RetryDelay). Either way it goes again
// from its start, so only when it was not read yet or is an io.Seeker. A
// message the server accepted, refused after reading it, or may have
// (ErrOutcomeUnknown) is never sent again: the result goes to the caller.
// When the server refuses a session beyond those it already serves ("421
// 4.7.0 too many connections"), the Mailer keeps to that many
// connections, and tries one more after every 20 messages sent. RateLimit
// spaces messages across all connections. Retries and new connections
// show in Trace.Retry and in the Dialer's Logger; Stats reports the pool
// and the counts, for metrics.
//
// The caller's context bounds every wait of a Send: for a connection, for
// the first Dial, for its turn under RateLimit, for the server. No Send
// waits for a QUIT: connections are retired in the background, and Close
// waits for those QUITs (at most 2 s each) and for nothing else.
//
// Credentials are guarded as a login page guards them. Until a Dial has
// succeeded, one Dial runs at a time and the Sends waiting for it share
// its result (unless that Dial ended only because its own caller gave up),
// so twenty goroutines with a wrong password make one login attempt, not
// twenty. After that, connections log in side by side, but none presents
// the credential once one of them learnt that a server rejected it: only
// logins already under way at that instant may have presented it. Once a
// server rejects the credential (ErrAuthFailed),
// every later Send fails at once with that error without connecting, until
// the program builds a new Mailer with a credential it has fixed: retrying
// a rejected password is how accounts get locked and addresses banned.
type Mailer struct {
	// Dialer dials the connections; nil means a zero Dialer. It must not
	// change while the Mailer is in use.
	Dialer *Dialer
	// Host is dialled as Dialer.Dial does: with or without a port.
	Host string
	// MaxConns bounds the connections open at once: a Send that finds
	// them all busy waits for one, as long as its context allows. 0 means
	// 3, because providers limit concurrent sessions per account (some to
	// three) and answer more with 421; a negative value removes the bound.
	MaxConns int
	// MaxIdle is how many connections are kept open between sends. 0
	// means 2; a negative value keeps none.
	MaxIdle int
	// MaxMessages replaces a connection after it carried that many
	// messages, as providers cap messages per session. 0 means 100; a
	// negative value means no limit.
	MaxMessages int
	// IdleTimeout closes a connection that stayed idle that long, politely
	// and before the server drops it (Postfix waits 300 s, most providers
	// 60 s or more). 0 means 30s; a negative value keeps idle connections
	// until Close.
	IdleTimeout time.Duration
	// IdleCheck is how long a connection may sit idle before it is checked
	// with NOOP before use: a connection silently dropped by a NAT would
	// otherwise hang the next MAIL FROM. 0 means 5s; a negative value
	// never checks.
	IdleCheck time.Duration
	// MaxTries bounds the attempts at one message. A message is tried
	// again, after a wait, only when the server refused it temporarily and
	// cannot have it (its Outcome is OutcomeNotSent): a temporary refusal
	// of the connection (a 421 greeting, "too many connections") or of
	// MAIL FROM, RCPT TO for every recipient, or DATA before the body; or a
	// connection that broke before the end of the message went out. A
	// message the server may have, or refused after reading it, is never
	// sent again. A credential is never retried. 0 means 4; a negative
	// value (or 1) means one try.
	MaxTries int
	// RetryDelay is the wait before the first retry; each next one is
	// twice as long, up to 32 times RetryDelay, and every wait is drawn at
	// random between half and all of it, so that senders refused together
	// do not come back together. A wait that would outlast the context's
	// deadline is not started: the refusal is returned. 0 (or a negative
	// value) means 1s.
	RetryDelay time.Duration
	// RateLimit, when positive, is how many messages the Mailer sends per
	// RateInterval across all its connections, spaced evenly (a token
	// bucket of golang.org/x/time/rate without burst), as providers
	// publish their sending rates; a Send waits its turn within its
	// context, and each try of a message takes a turn. 0 means no
	// limit.
	RateLimit int
	// RateInterval is RateLimit's interval; 0 means one second.
	RateInterval time.Duration

	mu      sync.Mutex
	closed  bool
	open    int              // connections open or being dialled
	idle    []*poolConn      // most recently used last
	waiters []chan *poolConn // FIFO; nil means "dial, a slot is yours"
	bg      sync.WaitGroup   // QUITs running in the background

	proven   bool        // a Dial succeeded: the credential works
	flight   *dialFlight // the one Dial in flight while !proven
	authErr  error       // the rejection every later Send gets
	rejected bool        // a server rejected the credential
	zero     sync.Once   // for a nil Dialer
	zeroD    *Dialer

	// limit, when positive, is the number of connections the server
	// accepted at once when it refused one more; the pool keeps below it
	// and raises it by one after every raiseAfter messages sent.
	limit   int
	okSince int // messages sent since limit last changed

	// A connection near MaxMessages gets its replacement dialled ahead
	// of time, in the background (see replaceAhead).
	replacing int                // spare connections being dialled (topUp)
	pace      time.Duration      // time between messages on a connection, lately
	loginTime time.Duration      // how long a Dial takes, smoothed
	bgCtx     context.Context    // the background Dials', ended by Close
	bgStop    context.CancelFunc // nil until the first background Dial

	rateOnce sync.Once
	limiter  *rate.Limiter // nil without RateLimit

	sent, failed, unknown, retried atomic.Uint64
}

// dialFlight is a Dial that other Sends wait for and share.
type dialFlight struct {
	done chan struct{}
	err  error
	// callerEnded: the Dial failed because its own caller's context
	// ended, which says nothing of the server or the credential: the
	// Sends that waited try for themselves.
	callerEnded bool
}

// poolConn is one pooled connection.
type poolConn struct {
	c        *Client
	msgs     int           // messages sent on it
	lastUsed time.Time     // zero until its first send
	started  time.Time     // when its last message began
	perMsg   time.Duration // time from one message's start to the next's, smoothed
	timer    *time.Timer
}

func (m *Mailer) dialer() *Dialer {
	if m.Dialer != nil {
		return m.Dialer
	}
	m.zero.Do(func() { m.zeroD = &Dialer{} })
	return m.zeroD
}

func (m *Mailer) maxConns() int { return pick(m.MaxConns, defaultMaxConns) }
func (m *Mailer) maxIdle() int  { return pick(m.MaxIdle, defaultMaxIdle) }
func (m *Mailer) maxMessages() int {
	return pick(m.MaxMessages, defaultMaxMessages)
}
func (m *Mailer) idleTimeout() time.Duration { return pick(m.IdleTimeout, defaultIdleTimeout) }

// pick is v, def when v is zero, and 0 (none, no limit) when v is negative.
func pick[T int | time.Duration](v, def T) T {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}

// Send submits one message as Client.Send does, over a pooled connection.
func (m *Mailer) Send(ctx context.Context, from string, to []string, msg io.Reader) error {
	_, err := m.SendWith(ctx, from, to, msg, nil)
	return err
}

// SendWith submits one message as Client.SendWith does, over a pooled
// connection, waiting its turn under RateLimit and trying it again after
// a temporary refusal (see MaxTries). The result's Outcome says what
// the server may have, and Attempts how many times the message was begun.
func (m *Mailer) SendWith(ctx context.Context, from string, to []string, msg io.Reader, o *SendOptions) (*SendResult, error) {
	if err := validate(from, to, o); err != nil {
		return &SendResult{}, err
	}
	rewind := rewinder(msg)
	tries := 0
	for try := 1; ; try++ {
		if err := m.waitRate(ctx); err != nil {
			m.failed.Add(1)
			return &SendResult{Tries: tries}, err
		}
		res, rep, err := m.sendPooled(ctx, try, from, to, msg, o, rewind)
		tries += 1 + rep.redials
		res.Tries = tries
		if delay, ok := m.retryAfter(ctx, try, res, err); ok && (!rep.consumed || rewind()) {
			m.retried.Add(1)
			m.logRetry(ctx, Retry{Host: m.Host, Try: try, Delay: delay, Err: err})
			if m.sleep(ctx, delay) {
				continue
			}
		}
		m.count(res)
		return res, err
	}
}

// pooledReport is what one try on the pool learnt.
type pooledReport struct {
	sendReport
	redials int // connections replaced because the server had closed them
}

// sendPooled makes one try at msg over a pooled connection. A pooled
// connection that the server closed (or closed on a 421) before the
// message could reach a transaction is replaced at once, and the message
// sent from its start on the new one: its Outcome is OutcomeNotSent, so
// the server cannot have it. A message the server may have, or refused,
// is never sent again.
func (m *Mailer) sendPooled(ctx context.Context, try int, from string, to []string, msg io.Reader, o *SendOptions, rewind func() bool) (*SendResult, pooledReport, error) {
	// Each redial replaces a dead connection; there are at most
	// max(MaxIdle, MaxConns) of them in circulation, and a fresh one is
	// never replaced. msg is at its start whenever the loop goes round
	// (unread, or rewound), so only the last send can have consumed it.
	rounds := 2 + max(m.maxIdle(), m.maxConns())
	var rep pooledReport
	for round := 1; ; round++ {
		pc, err := m.acquire(ctx)
		if err != nil {
			return &SendResult{}, rep, err
		}
		reused := !pc.lastUsed.IsZero()
		if check := m.IdleCheck; reused && check >= 0 && time.Since(pc.lastUsed) > pick(check, defaultIdleCheck) {
			nctx, cancel := context.WithTimeout(ctx, noopTimeout)
			err := pc.c.Noop(nctx)
			cancel()
			if err != nil {
				pc.c.Close()
				m.put(pc)
				if ctx.Err() != nil || round >= rounds {
					return &SendResult{}, rep, err
				}
				rep.redials++
				m.noteRedial(ctx, try, pc, "NOOP", err)
				continue
			}
		}
		if t := ContextTrace(ctx); t != nil && t.GotConn != nil {
			info := pc.c.connInfo()
			if reused {
				info.Reused, info.IdleTime = true, time.Since(pc.lastUsed)
			}
			t.GotConn(info)
		}
		if t0 := time.Now(); !pc.started.IsZero() {
			pc.perMsg = smooth(pc.perMsg, t0.Sub(pc.started))
			pc.started = t0
		} else {
			pc.started = t0
		}
		res, sent, err := pc.c.send(ctx, try, from, to, msg, o)
		rep.sendReport = sent
		if sent.consumed {
			pc.msgs++
		}
		if res.Outcome == OutcomeAccepted {
			m.succeeded()
			m.replaceAhead(pc)
		}
		pc.lastUsed = time.Now()
		redial := err != nil && res.Outcome == OutcomeNotSent && sent.dropped && reused &&
			round < rounds && ctx.Err() == nil && (!sent.consumed || rewind())
		m.put(pc) // pc may belong to another Send from here on
		if !redial {
			return res, rep, err
		}
		rep.redials++
		m.noteRedial(ctx, try, pc, "send", err)
	}
}

// rewinder returns a function that puts msg back where it started, or
// reports that it cannot: msg is not an io.Seeker.
func rewinder(msg io.Reader) func() bool {
	s, ok := msg.(io.Seeker)
	if !ok {
		return func() bool { return false }
	}
	start, err := s.Seek(0, io.SeekCurrent)
	if err != nil {
		return func() bool { return false }
	}
	return func() bool {
		_, err := s.Seek(start, io.SeekStart)
		return err == nil
	}
}

// noteRedial reports a pooled connection replaced for a message: to the
// context's Trace (as a Retry with Redial set), to Stats and to the
// Dialer's Logger.
func (m *Mailer) noteRedial(ctx context.Context, try int, pc *poolConn, step string, err error) {
	m.retried.Add(1)
	ContextTrace(ctx).retry(Retry{Host: m.Host, Try: try, Err: err, Redial: true})
	l := m.dialer().Logger
	if l == nil {
		return
	}
	l.LogAttrs(ctx, slog.LevelInfo, "portwise redial",
		slog.String("host", pc.c.host), slog.Int("port", pc.c.Port()), slog.String("step", step),
		slog.Int("messages", pc.msgs), slog.String("error", untrusted.Text(err.Error(), 4*untrusted.MaxText)))
}

// acquire returns an idle connection, a new one, or one handed back by
// another Send, in that order of preference.
func (m *Mailer) acquire(ctx context.Context) (*poolConn, error) {
	for {
		m.mu.Lock()
		switch {
		case m.closed:
			m.mu.Unlock()
			return nil, ErrMailerClosed
		case m.authErr != nil:
			err := m.authErr
			m.mu.Unlock()
			return nil, err
		}
		if n := len(m.idle); n > 0 {
			// The most used first, so that it reaches MaxMessages and
			// frees its slot for a fresh one; of equals, the one used
			// last (a warm connection, while the others may time out).
			i := n - 1
			for j := n - 2; j >= 0; j-- {
				if m.idle[j].msgs > m.idle[i].msgs {
					i = j
				}
			}
			pc := m.idle[i]
			m.idle = slices.Delete(m.idle, i, i+1)
			if pc.timer != nil {
				pc.timer.Stop() // if it already fired, expire finds pc gone
			}
			m.mu.Unlock()
			return pc, nil
		}
		if f := m.flight; f != nil && !m.proven {
			// The first Dial is proving the credential: wait and share
			// its result rather than log in again beside it.
			m.mu.Unlock()
			select {
			case <-f.done:
			case <-ctx.Done():
				return nil, &waitError{"the first connection, which proves the credential", ctx.Err()}
			}
			if f.err != nil && !f.callerEnded {
				return nil, f.err
			}
			continue // proven, or the leader gave up: take a turn
		}
		// A replacement dialled ahead is on its way: take it rather than
		// log in a second time beside it (it comes to the first waiter).
		if max := m.connCap(); m.replacing == 0 && (max <= 0 || m.open < max) {
			m.open++
			var f *dialFlight
			if !m.proven {
				f = &dialFlight{done: make(chan struct{})}
				m.flight = f
			}
			m.mu.Unlock()
			return m.connect(ctx, f)
		}
		w := make(chan *poolConn, 1)
		m.waiters = append(m.waiters, w)
		m.mu.Unlock()
		return m.wait(ctx, w)
	}
}

// wait waits for a connection or a slot handed over by put or freeSlot.
func (m *Mailer) wait(ctx context.Context, w chan *poolConn) (*poolConn, error) {
	select {
	case pc, ok := <-w:
		switch {
		case !ok:
			m.mu.Lock()
			err := m.authErr
			m.mu.Unlock()
			if err != nil {
				return nil, err
			}
			return nil, ErrMailerClosed
		case pc == nil:
			return m.connect(ctx, nil)
		}
		return pc, nil
	case <-ctx.Done():
		m.mu.Lock()
		if i := slices.Index(m.waiters, w); i >= 0 {
			m.waiters = slices.Delete(m.waiters, i, i+1)
			m.mu.Unlock()
			return nil, waitErr(ctx)
		}
		m.mu.Unlock()
		// Something was handed over as ctx ended: pass it on.
		if pc, ok := <-w; ok {
			if pc != nil {
				m.put(pc)
			} else {
				m.freeSlot()
			}
		}
		return nil, waitErr(ctx)
	}
}

// waitErr says what a Send waited for when its context ended.
func waitErr(ctx context.Context) error {
	return &waitError{"a free connection (all MaxConns are busy)", ctx.Err()}
}

// waitError is the caller's context ending while a Send waited.
type waitError struct {
	what string
	err  error
}

func (e *waitError) Error() string {
	return "submit: Mailer: " + e.err.Error() + " while waiting for " + e.what
}
func (e *waitError) Unwrap() error { return e.err }

// connect dials a connection in a slot already counted in m.open. f, when
// set, is the flight other Sends wait for. Its logins pass enterLogin
// (see enterLogin).
func (m *Mailer) connect(ctx context.Context, f *dialFlight) (*poolConn, error) {
	t0 := time.Now()
	c, err := m.dialer().Dial(withLoginGate(ctx, m), m.Host)
	m.mu.Lock()
	if err == nil {
		m.proven = true
		m.loginTime = smooth(m.loginTime, time.Since(t0))
	} else if errors.Is(err, ErrAuthFailed) && m.authErr == nil {
		m.authErr = err
	} else if sessionRefused(err) {
		m.lower()
	}
	if f != nil {
		f.err, f.callerEnded = err, err != nil && ctxErr(ctx) != nil
		if m.flight == f {
			m.flight = nil
		}
		close(f.done)
	}
	m.mu.Unlock()
	if err != nil {
		m.freeSlot()
		return nil, err
	}
	return &poolConn{c: c}, nil
}

// replaceAhead starts dialling, in the background, the connections that
// will replace pc when it reaches MaxMessages: they log in while pc still
// sends, so that no Send waits for a login when pc retires (against a
// server whose AUTH takes 2 s, waiting made every 100th message 2 s
// late). It starts when pc has fewer messages left than it carries, at
// the pace it has been carrying them, in the time a Dial takes, plus one:
// a busy connection is replaced well ahead, one that sends a message a
// minute only at its last.
func (m *Mailer) replaceAhead(pc *poolConn) {
	max := m.maxMessages()
	if max <= 0 || !pc.c.usable() {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if pc.perMsg > 0 {
		m.pace = pc.perMsg
	}
	lead := 1
	if m.pace > 0 {
		lead += int(min(m.loginTime/m.pace, time.Duration(max)))
	}
	if max-pc.msgs <= lead {
		m.topUp()
	}
}

// topUp starts dialling spare connections in the background while fewer
// are logging in or wait fresh in the pool than it takes to keep up: one,
// or, when a login takes longer than a connection lasts at the pace
// messages go, as many as log in during one connection's life. Always
// within MaxConns, and only once a Dial proved the credential. mu is held.
func (m *Mailer) topUp() {
	max := m.maxMessages()
	if max <= 0 || m.closed || !m.proven || m.authErr != nil || m.rejected {
		return
	}
	want, limit := m.spares(), m.connCap()
	spare := m.replacing
	for _, p := range m.idle {
		if p.msgs == 0 {
			spare++
		}
	}
	for ; spare < want && (limit <= 0 || m.open < limit); spare++ {
		if m.bgStop == nil {
			m.bgCtx, m.bgStop = context.WithCancel(context.Background())
		}
		m.replacing++
		m.open++
		m.bg.Add(1)
		go func(ctx context.Context) {
			defer m.bg.Done()
			pc, err := m.connect(ctx, nil)
			m.mu.Lock()
			m.replacing--
			m.mu.Unlock()
			if err == nil {
				m.put(pc)
			}
		}(m.bgCtx)
	}
}

// spares is how many connections should be logging in, or wait fresh in
// the pool, to keep up: one, or, when a login takes longer than a
// connection lasts at the pace messages go, as many as log in during one
// connection's life. mu is held.
func (m *Mailer) spares() int {
	max := m.maxMessages()
	if max <= 0 || m.pace <= 0 {
		return 1
	}
	life := m.pace * time.Duration(max)
	return int(min((m.loginTime+life-1)/life, time.Duration(max)))
}

// idleCap is how many connections the pool keeps idle: MaxIdle, or more
// while it keeps spares for logins slower than a connection's life (they
// must not be closed as they arrive). mu is held.
func (m *Mailer) idleCap() int {
	n := m.maxIdle()
	if m.replacing > 0 || m.pace > 0 && m.loginTime > m.pace*time.Duration(max(m.maxMessages(), 1)) {
		n = max(n, m.spares()+1)
		if limit := m.connCap(); limit > 0 {
			n = min(n, limit)
		}
	}
	return n
}

// smooth folds d into the running estimate avg (an exponentially weighted
// average, a quarter for the new value).
func smooth(avg, d time.Duration) time.Duration {
	if avg == 0 {
		return d
	}
	return avg + (d-avg)/4
}

// enterLogin is the Mailer's gate before a credential goes out: none at
// all once a server rejected it, whichever connection learnt it. (Before
// the first Dial succeeded, one Dial runs at a time anyway: see acquire.)
func (m *Mailer) enterLogin(context.Context) (leave func(rejected bool), err error) {
	m.mu.Lock()
	refused := m.rejected || m.authErr != nil
	m.mu.Unlock()
	if refused {
		return nil, errRejectedMeanwhile
	}
	return func(rejected bool) {
		if rejected {
			m.mu.Lock()
			m.rejected = true
			m.mu.Unlock()
		}
	}, nil
}

// freeSlot gives a connection slot to the first waiter, or releases it.
func (m *Mailer) freeSlot() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if max := m.connCap(); len(m.waiters) > 0 && !m.closed && m.authErr == nil && (max <= 0 || m.open <= max) {
		w := m.waiters[0]
		m.waiters = m.waiters[1:]
		w <- nil
		return
	}
	m.open--
	if m.authErr != nil {
		// Nobody waits for a slot that can only fail.
		for _, w := range m.waiters {
			close(w)
		}
		m.waiters = nil
	}
}

// put returns a connection after use: to a waiting Send, to the idle pool,
// or closed when it is broken, worn out or in excess.
func (m *Mailer) put(pc *poolConn) {
	if max := m.maxMessages(); !pc.c.usable() || (max > 0 && pc.msgs >= max) {
		m.retire(pc)
		return
	}
	m.mu.Lock()
	if !m.closed && len(m.waiters) > 0 {
		w := m.waiters[0]
		m.waiters = m.waiters[1:]
		m.mu.Unlock()
		w <- pc
		return
	}
	if !m.closed && len(m.idle) < m.idleCap() {
		if d := m.idleTimeout(); d > 0 {
			pc.timer = time.AfterFunc(d, func() { m.expire(pc) })
		}
		m.idle = append(m.idle, pc)
		m.mu.Unlock()
		return
	}
	m.mu.Unlock()
	m.retire(pc)
}

// poolQuitWait bounds the wait for the reply to a pooled connection's
// QUIT; the QUIT runs off every Send's path, and Close waits for it.
const poolQuitWait = 2 * time.Second

// retire closes a connection and frees its slot. A usable connection
// gets QUIT in the background while the Mailer is open, and its slot is
// free as soon as the QUIT is written: a session that is only waiting for
// its 221 holds neither a slot nor a Send. One that is broken, or that
// carried a send while the Mailer was closed, is closed at once without
// QUIT: no Send ever waits for a QUIT.
func (m *Mailer) retire(pc *poolConn) {
	m.mu.Lock()
	if !pc.c.usable() || m.closed {
		m.mu.Unlock()
		pc.c.Close()
		m.freeSlot()
		return
	}
	m.bg.Add(1) // under mu and before Close: Close waits for it
	m.mu.Unlock()
	go func() {
		defer m.bg.Done()
		pc.c.quit(poolQuitWait, func() {
			m.freeSlot()
			if max := m.maxMessages(); max > 0 && pc.msgs >= max {
				// Worn out, not idle: the slot it held can log a spare in.
				m.mu.Lock()
				m.topUp()
				m.mu.Unlock()
			}
		})
	}()
}

// expire closes a connection that stayed idle for the idle timeout.
func (m *Mailer) expire(pc *poolConn) {
	m.mu.Lock()
	i := slices.Index(m.idle, pc)
	if i < 0 || m.closed {
		m.mu.Unlock()
		return // taken by a Send, or Close has it
	}
	m.idle = slices.Delete(m.idle, i, i+1)
	// Counted before mu is released: a Close that comes now waits for
	// this QUIT too, and nothing writes to the Transcript after it.
	m.bg.Add(1)
	m.mu.Unlock()
	defer m.bg.Done()
	m.retire(pc)
}

// Close makes further Sends fail with ErrMailerClosed and closes the
// connections. Idle ones get QUIT, in parallel, and Close waits for each
// reply at most 2 s, as it waits for the QUITs already running in the
// background; those are its only waits. A connection carrying a send is
// closed, without QUIT, when its send returns. Close always returns nil.
func (m *Mailer) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	if m.bgStop != nil {
		m.bgStop() // background Dials end
	}
	idle, waiters := m.idle, m.waiters
	m.idle, m.waiters = nil, nil
	m.open -= len(idle)
	m.mu.Unlock()

	for _, w := range waiters {
		close(w)
	}
	var wg sync.WaitGroup
	for _, pc := range idle {
		if pc.timer != nil {
			pc.timer.Stop()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			pc.c.quit(poolQuitWait, nil)
		}()
	}
	wg.Wait()
	m.bg.Wait()
	return nil
}

// usable reports whether the connection can carry another command.
func (c *Client) usable() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.broken == nil
}
