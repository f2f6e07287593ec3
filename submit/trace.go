package submit

import (
	"context"
	"net"
	"time"

	"github.com/portwise/portwise/internal/plan"
)

// Trace is a set of hooks that run at the stages of a Dial, and when a
// Mailer retries a message, in the manner of net/http/httptrace: attach one
// to a context with WithTrace and every Dial and Mailer send under that
// context calls the hooks that are set. Applications use them to
// export metrics and traces (to OpenTelemetry, Prometheus, expvar) without
// portwise depending on any of them.
//
// Every hook gets the Attempt as it stands at that stage, an info struct
// that can gain fields. Candidates race, so hooks of different candidates
// may run concurrently and must be safe for that; hooks of one candidate
// run in order. A hook runs on the Dial's goroutines and should return
// quickly. Hooks never see a secret: no credential, no AUTH payload, no
// message content.
type Trace struct {
	// ConnectStart is called when a candidate starts its TCP connection to
	// Attempt.Addr.
	ConnectStart func(Attempt)
	// ConnectDone is called when the TCP connection is established, or
	// has failed (Err).
	ConnectDone func(Attempt)
	// TLSHandshakeStart is called before the TLS handshake: at once on an
	// Implicit candidate, after the 220 reply to STARTTLS on a StartTLS one.
	TLSHandshakeStart func(Attempt)
	// TLSHandshakeDone is called after the handshake, with its state (TLS)
	// and error. A certificate that does not verify is an error here.
	TLSHandshakeDone func(Attempt)
	// STARTTLSStripped is called when a StartTLS candidate fails because
	// STARTTLS was missing, masked or refused; Err wraps
	// ErrSTARTTLSStripped and says which.
	STARTTLSStripped func(Attempt)
	// AuthStart is called before the Dialer's Auth chooses a mechanism on
	// the secure session, with the Mechanisms offered after TLS.
	AuthStart func(Attempt)
	// AuthDone is called when AUTH ends: Mechanism is the mechanism tried
	// ("" if none was), Err is nil on success.
	AuthDone func(Attempt)
	// AttemptDone is called once per candidate started, with its outcome:
	// Err is nil for the winner; a candidate that was not needed has an
	// Err saying why: ErrLostRace (another port won) or ErrDialEnded. A
	// candidate still connecting when another won reports after Dial
	// returns.
	AttemptDone func(Attempt)
	// WinnerChosen is called when a candidate's session becomes the
	// Client that Dial returns.
	WinnerChosen func(Attempt)
	// Retry is called when a Mailer is about to send a message again,
	// the server not having it: after a temporary refusal, before it waits
	// Retry.Delay; or at once on a new connection when the server had
	// closed the pooled one (Retry.Redial).
	Retry func(Retry)
}

// Retry describes a Mailer's decision to send a message again.
type Retry struct {
	Host string
	// Attempt is the number of the attempt that failed, from 1.
	Attempt int
	// Delay is how long the Mailer waits before the next attempt:
	// exponential backoff with jitter (Mailer.RetryDelay).
	Delay time.Duration
	// Err is the failure of the attempt, as the caller would have got it.
	Err error
	// Redial reports that the message goes again at once (Delay is 0) on
	// a new connection, because the server had closed, or closed with a
	// 421, the pooled connection it was given, before the message could
	// reach a transaction.
	Redial bool
}

type traceKey struct{}

// WithTrace returns a context carrying t. If ctx already carries a Trace,
// the hooks of both run, t's first.
func WithTrace(ctx context.Context, t *Trace) context.Context {
	if t == nil {
		return ctx
	}
	if old := ContextTrace(ctx); old != nil {
		t = t.compose(old)
	}
	return context.WithValue(ctx, traceKey{}, t)
}

// ContextTrace returns the Trace attached to ctx, or nil.
func ContextTrace(ctx context.Context) *Trace {
	t, _ := ctx.Value(traceKey{}).(*Trace)
	return t
}

// compose returns a Trace calling t's hooks, then old's.
func (t *Trace) compose(old *Trace) *Trace {
	n := *t
	for _, h := range []struct{ new, old *func(Attempt) }{
		{&n.ConnectStart, &old.ConnectStart},
		{&n.ConnectDone, &old.ConnectDone},
		{&n.TLSHandshakeStart, &old.TLSHandshakeStart},
		{&n.TLSHandshakeDone, &old.TLSHandshakeDone},
		{&n.STARTTLSStripped, &old.STARTTLSStripped},
		{&n.AuthStart, &old.AuthStart},
		{&n.AuthDone, &old.AuthDone},
		{&n.AttemptDone, &old.AttemptDone},
		{&n.WinnerChosen, &old.WinnerChosen},
	} {
		f, g := *h.new, *h.old
		switch {
		case f == nil:
			*h.new = g
		case g != nil:
			*h.new = func(a Attempt) { f(a); g(a) }
		}
	}
	switch f, g := n.Retry, old.Retry; {
	case f == nil:
		n.Retry = g
	case g != nil:
		n.Retry = func(r Retry) { f(r); g(r) }
	}
	return &n
}

func (t *Trace) retry(r Retry) {
	if t != nil && t.Retry != nil {
		t.Retry(r)
	}
}

// call runs hook if the trace has it; a nil Trace has none.
func (t *Trace) call(hook func(*Trace) func(Attempt), a Attempt) {
	if t == nil {
		return
	}
	if f := hook(t); f != nil {
		f(a)
	}
}

func (t *Trace) tlsStart(a Attempt) {
	t.call(func(t *Trace) func(Attempt) { return t.TLSHandshakeStart }, a)
}
func (t *Trace) tlsDone(a Attempt) {
	t.call(func(t *Trace) func(Attempt) { return t.TLSHandshakeDone }, a)
}
func (t *Trace) stripped(a Attempt) {
	t.call(func(t *Trace) func(Attempt) { return t.STARTTLSStripped }, a)
}
func (t *Trace) authStart(a Attempt) {
	a.Mechanisms = append([]string(nil), a.Mechanisms...)
	t.call(func(t *Trace) func(Attempt) { return t.AuthStart }, a)
}
func (t *Trace) authDone(a Attempt) { t.call(func(t *Trace) func(Attempt) { return t.AuthDone }, a) }
func (t *Trace) attemptDone(a Attempt) {
	t.call(func(t *Trace) func(Attempt) { return t.AttemptDone }, a)
}
func (t *Trace) winner(a Attempt) { t.call(func(t *Trace) func(Attempt) { return t.WinnerChosen }, a) }

// tracingDialer reports a target's TCP connect to a Trace.
type tracingDialer struct {
	d     ContextDialer
	t     *Trace
	a     Attempt
	start time.Time // when the attempt started
}

// dialer wraps d for an attempt that starts now.
func (t *Trace) dialer(d ContextDialer, target plan.Target) ContextDialer {
	if t == nil || t.ConnectStart == nil && t.ConnectDone == nil {
		return d
	}
	return tracingDialer{d, t, Attempt{Host: target.Host, Candidate: target.Candidate}, time.Now()}
}

func (td tracingDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	a := td.a
	a.Addr = addr
	a.Elapsed = time.Since(td.start)
	td.t.call(func(t *Trace) func(Attempt) { return t.ConnectStart }, a)
	nc, err := td.d.DialContext(ctx, network, addr)
	a.Err, a.Elapsed = err, time.Since(td.start)
	td.t.call(func(t *Trace) func(Attempt) { return t.ConnectDone }, a)
	return nc, err
}
