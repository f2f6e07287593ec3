package submit

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"math/rand/v2"
	"time"

	"github.com/portwise/portwise/internal/diag"
	"github.com/portwise/portwise/internal/untrusted"
	"golang.org/x/time/rate"
)

// The defaults of the Mailer's retry and limit fields.
const (
	defaultMaxTries   = 4
	defaultRetryDelay = time.Second
	// raiseAfter is how many messages must go through, while the server
	// holds the Mailer below MaxConns, before it tries one more
	// connection.
	raiseAfter = 20
)

// MailerStats is a snapshot of a Mailer, for metrics.
type MailerStats struct {
	Open    int // connections open or being dialled
	Idle    int // of which idle in the pool
	Busy    int // of which carrying a send, or being dialled for one
	Waiters int // Sends waiting for a connection
	// MaxConns is the bound in effect: MaxConns, or fewer after the server
	// refused a session beyond what it accepts (0: none).
	MaxConns int
	Sent     uint64 // messages the server accepted, for some recipients at least
	Failed   uint64 // messages the server does not have: not sent, or refused
	Unknown  uint64 // messages whose outcome is unknown (ErrOutcomeUnknown)
	// Retried counts messages begun again: after a temporary refusal,
	// and on a new connection when the server had closed the pooled one.
	Retried uint64
}

// Stats returns the Mailer's current figures.
func (m *Mailer) Stats() MailerStats {
	m.mu.Lock()
	st := MailerStats{Open: m.open, Idle: len(m.idle), Waiters: len(m.waiters), MaxConns: m.connCap()}
	m.mu.Unlock()
	st.Busy = st.Open - st.Idle
	st.Sent, st.Failed, st.Unknown, st.Retried = m.sent.Load(), m.failed.Load(), m.unknown.Load(), m.retried.Load()
	return st
}

// count records the outcome of one message.
func (m *Mailer) count(res *SendResult) {
	switch res.Outcome {
	case OutcomeAccepted:
		m.sent.Add(1)
	case OutcomeUnknown:
		m.unknown.Add(1)
	default:
		m.failed.Add(1)
	}
}

// connCap is the bound on connections in effect (0: none). mu is held.
func (m *Mailer) connCap() int {
	max := m.maxConns()
	if m.limit > 0 && (max <= 0 || m.limit < max) {
		return m.limit
	}
	return max
}

// lower holds the pool to the connections the server accepted, after it
// refused one more (the failed Dial's slot is still counted). mu is held.
func (m *Mailer) lower() {
	others := m.open - 1
	if others < 1 || (m.limit > 0 && m.limit <= others) {
		return
	}
	m.limit, m.okSince = others, 0
}

// succeeded counts a message through and, while the server holds the pool
// low, raises the bound by one every raiseAfter messages.
func (m *Mailer) succeeded() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.limit <= 0 {
		return
	}
	if m.okSince++; m.okSince < raiseAfter {
		return
	}
	m.limit++
	m.okSince = 0
	if max := m.maxConns(); max > 0 && m.limit >= max {
		m.limit = 0
	}
}

// sessionRefused reports whether a Dial failed because the server refused
// the session for now at its greeting or EHLO ("421 4.7.0 Too many
// concurrent sessions"): a sign the pool holds more connections than the
// server accepts.
func sessionRefused(err error) bool {
	var de *DialError
	if !errors.As(err, &de) {
		return false
	}
	se := de.decisive()
	return se != nil && se.Reply != nil && se.Reply.Temporary() && (se.Step == "banner" || se.Step == "ehlo")
}

// retryAfter decides whether try's failure is worth another try,
// and after how long: only a message the server does not have (its
// outcome is OutcomeNotSent) that it refused for now.
func (m *Mailer) retryAfter(ctx context.Context, try int, res *SendResult, err error) (time.Duration, bool) {
	max := pick(m.MaxTries, defaultMaxTries)
	if err == nil || try >= max || ctx.Err() != nil || res.Outcome != OutcomeNotSent || !retryable(err) {
		return 0, false
	}
	d := backoff(pick(m.RetryDelay, defaultRetryDelay), try)
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		return 0, false
	}
	return d, true
}

// backoff is the wait before the try after try: base, doubled for each
// try up to 32 times base, drawn at random between half and all
// of it. It cannot overflow, whatever base.
func backoff(base time.Duration, try int) time.Duration {
	if base <= 0 {
		base = defaultRetryDelay
	}
	factor := time.Duration(1) << min(try-1, 5) // 1, 2, 4, ... 32
	d := time.Duration(math.MaxInt64)
	if base <= d/factor {
		d = base * factor
	}
	return d/2 + rand.N(d/2+1)
}

// retryable reports whether a failure that left the server without the
// message is a refusal for now, of the message or of the session: worth
// another try later. A credential's failure is never retried, nor the
// caller's own.
func retryable(err error) bool {
	if errors.Is(err, ErrMailerClosed) || errors.Is(err, ErrAuthFailed) {
		return false
	}
	var de *DialError
	if errors.As(err, &de) {
		switch de.kind() {
		case diag.KindAuthTemporary, diag.KindAuthBroken, diag.KindToken, diag.KindDeadline:
			return false
		}
	}
	return IsTemporary(err)
}

// sleep waits d, or less if ctx ends first; it reports whether d passed.
func (m *Mailer) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// waitRate waits for the message's turn under RateLimit.
func (m *Mailer) waitRate(ctx context.Context) error {
	m.rateOnce.Do(func() {
		if m.RateLimit <= 0 {
			return
		}
		every := pick(m.RateInterval, time.Second)
		if every <= 0 {
			every = time.Second
		}
		m.limiter = rate.NewLimiter(rate.Every(every/time.Duration(m.RateLimit)), 1)
	})
	if m.limiter == nil {
		return nil
	}
	if err := m.limiter.Wait(ctx); err != nil {
		return &waitError{"its turn under RateLimit", waitCause(ctx, err)}
	}
	return nil
}

// waitCause is the context's error when it ended, or err (rate's own
// "would exceed context deadline", which is the same thing, sooner).
func waitCause(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if _, ok := ctx.Deadline(); ok {
		return context.DeadlineExceeded
	}
	return err
}

// logRetry reports a retry to the context's Trace and the Dialer's Logger.
func (m *Mailer) logRetry(ctx context.Context, r Retry) {
	ContextTrace(ctx).retry(r)
	l := m.dialer().Logger
	if l == nil {
		return
	}
	l.LogAttrs(ctx, slog.LevelInfo, "portwise retry",
		slog.String("host", r.Host), slog.Int("try", r.Try), slog.Duration("delay", r.Delay),
		slog.String("error", untrusted.Text(r.Err.Error(), 4*untrusted.MaxText)))
}
