package submit

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Defaults of a Mailer, changed with MailerOptions.
const (
	// DefaultMaxIdle is how many authenticated connections a Mailer keeps
	// open between sends.
	DefaultMaxIdle = 2
	// DefaultMaxConns bounds the connections a Mailer has open at once. It
	// is small because providers limit concurrent sessions per account
	// (some to three) and answer more with 421.
	DefaultMaxConns = 3
	// DefaultMaxMessages is how many messages one connection carries before
	// the Mailer replaces it; providers cap messages per session.
	DefaultMaxMessages = 100
	// DefaultIdleTimeout is how long an idle connection is kept: below the
	// idle timeouts of common servers (Postfix 300 s, most providers 60 s
	// or more), so the Mailer closes it politely before they drop it.
	DefaultIdleTimeout = 30 * time.Second
	// DefaultIdleCheck is how long a connection may sit idle before it is
	// checked with NOOP before use. A connection silently dropped by a NAT
	// would otherwise hang the next MAIL FROM until the command timeout.
	DefaultIdleCheck = 5 * time.Second
)

// noopTimeout bounds the NOOP that checks an idle connection.
const noopTimeout = 10 * time.Second

// ErrMailerClosed is returned by Send after Close.
var ErrMailerClosed = errors.New("mailer closed")

// MailerOption configures a Mailer.
type MailerOption func(*mailerConfig)

type mailerConfig struct {
	maxIdle, maxConns, maxMessages int
	idleTimeout, idleCheck         time.Duration
}

// WithMaxIdle keeps up to n idle connections between sends (default 2); 0
// closes every connection after its send.
func WithMaxIdle(n int) MailerOption {
	return func(c *mailerConfig) { c.maxIdle = max(n, 0) }
}

// WithMaxConns bounds the connections open at once (default 3): a Send
// that finds them all busy waits for one, as long as its context allows.
// n ≤ 0 removes the bound, so a Send never waits for another; connections
// beyond WithMaxIdle are then closed after their send.
func WithMaxConns(n int) MailerOption {
	return func(c *mailerConfig) { c.maxConns = max(n, 0) }
}

// WithMaxMessages replaces a connection after it carried n messages
// (default 100); n ≤ 0 means no limit.
func WithMaxMessages(n int) MailerOption {
	return func(c *mailerConfig) { c.maxMessages = max(n, 0) }
}

// WithIdleTimeout closes a connection that stayed idle for d (default
// 30 s); d ≤ 0 keeps idle connections until Close.
func WithIdleTimeout(d time.Duration) MailerOption {
	return func(c *mailerConfig) { c.idleTimeout = max(d, 0) }
}

// WithIdleCheck checks a connection that sat idle for longer than d with
// NOOP before using it (default 5 s); 0 checks before every reuse, d < 0
// never checks.
func WithIdleCheck(d time.Duration) MailerOption {
	return func(c *mailerConfig) { c.idleCheck = d }
}

// Mailer sends messages over a pool of authenticated connections to one
// host. It is safe for concurrent use by many goroutines. A Send takes an
// idle connection (checking it with NOOP when it sat idle a while), or
// dials a new one while fewer than WithMaxConns are open, or waits for one
// to come back; so one slow send holds one connection and never blocks the
// others beyond the pool's bound.
//
// A connection is reused as it is after a transaction that ended with the
// server's final reply, and reset with RSET first after one that did not.
// A connection that the server closed or answered with 421 is replaced and
// the message sent again on a new one, but only when the failure came
// before the message body was sent: a message whose outcome is unknown
// (ErrOutcomeUnknown) is never sent twice; the error goes to the caller.
type Mailer struct {
	d    *Dialer
	host string
	cfg  mailerConfig

	mu      sync.Mutex
	closed  bool
	open    int              // connections open or being dialled
	idle    []*poolConn      // most recently used last
	waiters []chan *poolConn // FIFO; nil means "dial, a slot is yours"
	bg      sync.WaitGroup   // QUITs running in the background
}

// poolConn is one pooled connection.
type poolConn struct {
	c        *Client
	msgs     int       // messages sent on it
	lastUsed time.Time // zero until its first send
	timer    *time.Timer
}

// NewMailer returns a Mailer that dials host (as Dialer.Dial does: with or
// without a port) with d. d must not change while the Mailer is in use.
func NewMailer(d *Dialer, host string, opts ...MailerOption) *Mailer {
	m := &Mailer{d: d, host: host, cfg: mailerConfig{
		maxIdle:     DefaultMaxIdle,
		maxConns:    DefaultMaxConns,
		maxMessages: DefaultMaxMessages,
		idleTimeout: DefaultIdleTimeout,
		idleCheck:   DefaultIdleCheck,
	}}
	for _, o := range opts {
		o(&m.cfg)
	}
	return m
}

// Send submits one message as Client.Send does, over a pooled connection.
func (m *Mailer) Send(ctx context.Context, from string, to []string, msg io.Reader) error {
	_, err := m.SendWith(ctx, from, to, msg, nil)
	return err
}

// SendWith submits one message as Client.SendWith does, over a pooled
// connection.
func (m *Mailer) SendWith(ctx context.Context, from string, to []string, msg io.Reader, o *SendOptions) (*SendResult, error) {
	if err := validate(from, to, o); err != nil {
		return &SendResult{}, err
	}
	// Each retry has replaced a dead connection; there are at most
	// max(MaxIdle, MaxConns) of them in circulation, and a fresh one is
	// never retried.
	tries := 2 + max(m.cfg.maxIdle, m.cfg.maxConns)
	for try := 1; ; try++ {
		pc, err := m.acquire(ctx)
		if err != nil {
			return &SendResult{}, err
		}
		reused := !pc.lastUsed.IsZero()
		if reused && m.cfg.idleCheck >= 0 && time.Since(pc.lastUsed) > m.cfg.idleCheck {
			nctx, cancel := context.WithTimeout(ctx, noopTimeout)
			err := pc.c.Noop(nctx)
			cancel()
			if err != nil {
				m.logRedial(ctx, pc, "NOOP", err)
				pc.c.Close()
				m.put(pc)
				if ctx.Err() != nil || try >= tries {
					return &SendResult{}, err
				}
				continue
			}
		}
		res, bodyStarted, err := pc.c.send(ctx, from, to, msg, o)
		if bodyStarted {
			pc.msgs++
		}
		pc.lastUsed = time.Now()
		// The server closed or gave up on a pooled connection before
		// anything of the message reached it: safe to send again.
		retry := err != nil && !pc.c.usable() && !bodyStarted && reused && try < tries && ctx.Err() == nil
		if retry {
			m.logRedial(ctx, pc, "send", err)
		}
		m.put(pc) // pc may belong to another Send from here on
		if retry {
			continue
		}
		return res, err
	}
}

func (m *Mailer) logRedial(ctx context.Context, pc *poolConn, step string, err error) {
	if m.d.Logger == nil {
		return
	}
	m.d.Logger.LogAttrs(ctx, slog.LevelInfo, "portwise redial",
		slog.String("host", pc.c.host), slog.Int("port", pc.c.Port()), slog.String("step", step),
		slog.Int("messages", pc.msgs), slog.String("error", err.Error()))
}

// acquire returns an idle connection, a new one, or one handed back by
// another Send, in that order of preference.
func (m *Mailer) acquire(ctx context.Context) (*poolConn, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrMailerClosed
	}
	if n := len(m.idle); n > 0 {
		pc := m.idle[n-1]
		m.idle = m.idle[:n-1]
		if pc.timer != nil {
			pc.timer.Stop() // if it already fired, expire finds pc gone
		}
		m.mu.Unlock()
		return pc, nil
	}
	if m.cfg.maxConns <= 0 || m.open < m.cfg.maxConns {
		m.open++
		m.mu.Unlock()
		return m.dial(ctx)
	}
	w := make(chan *poolConn, 1)
	m.waiters = append(m.waiters, w)
	m.mu.Unlock()

	select {
	case pc, ok := <-w:
		switch {
		case !ok:
			return nil, ErrMailerClosed
		case pc == nil:
			return m.dial(ctx)
		}
		return pc, nil
	case <-ctx.Done():
		m.mu.Lock()
		if i := slices.Index(m.waiters, w); i >= 0 {
			m.waiters = slices.Delete(m.waiters, i, i+1)
			m.mu.Unlock()
			return nil, ctx.Err()
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
		return nil, ctx.Err()
	}
}

// dial opens a connection in a slot already counted in m.open.
func (m *Mailer) dial(ctx context.Context) (*poolConn, error) {
	c, err := m.d.Dial(ctx, m.host)
	if err != nil {
		m.freeSlot()
		return nil, err
	}
	return &poolConn{c: c}, nil
}

// freeSlot gives a connection slot to the first waiter, or releases it.
func (m *Mailer) freeSlot() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.waiters) > 0 && !m.closed {
		w := m.waiters[0]
		m.waiters = m.waiters[1:]
		w <- nil
		return
	}
	m.open--
}

// put returns a connection after use: to a waiting Send, to the idle pool,
// or closed when it is broken, worn out or in excess.
func (m *Mailer) put(pc *poolConn) {
	if !pc.c.usable() || (m.cfg.maxMessages > 0 && pc.msgs >= m.cfg.maxMessages) {
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
	if !m.closed && len(m.idle) < m.cfg.maxIdle {
		if d := m.cfg.idleTimeout; d > 0 {
			pc.timer = time.AfterFunc(d, func() { m.expire(pc) })
		}
		m.idle = append(m.idle, pc)
		m.mu.Unlock()
		return
	}
	m.mu.Unlock()
	m.retire(pc)
}

// retire closes a connection (QUIT when it is still usable, in the
// background while the Mailer is open) and then frees its slot, so that
// sockets open never exceed WithMaxConns, quitting ones included.
func (m *Mailer) retire(pc *poolConn) {
	if !pc.c.usable() {
		pc.c.Close()
		m.freeSlot()
		return
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		pc.c.Quit()
		m.freeSlot()
		return
	}
	m.bg.Add(1) // under mu and before Close: Close waits for it
	m.mu.Unlock()
	go func() {
		defer m.bg.Done()
		pc.c.Quit()
		m.freeSlot()
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
	m.mu.Unlock()
	m.retire(pc)
}

// Close closes the idle connections with QUIT and makes further sends fail
// with ErrMailerClosed; connections in use are closed when their send
// returns. It waits for the QUITs and always returns nil.
func (m *Mailer) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
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
			pc.c.Quit()
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
