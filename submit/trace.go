package submit

import (
	"context"
	"crypto/tls"
	"net"

	"github.com/portwise/portwise/tlsmode"
)

// Trace is a set of hooks that run at the stages of a Dial, in the manner of
// net/http/httptrace: attach one to a context with WithTrace and every Dial
// under that context calls the hooks that are set. Applications use them to
// export metrics and traces (to OpenTelemetry, Prometheus, expvar) without
// portwise depending on any of them.
//
// Candidates race, so hooks of different candidates may run concurrently
// and must be safe for that; hooks of one candidate run in order. A hook
// runs on the Dial's goroutines and should return quickly. Hooks never see
// a secret: no credential, no AUTH payload, no message content.
type Trace struct {
	// ConnectStart is called when a candidate starts its TCP connection to
	// addr ("host:port").
	ConnectStart func(c tlsmode.Candidate, addr string)
	// ConnectDone is called when the TCP connection is established or has
	// failed (err).
	ConnectDone func(c tlsmode.Candidate, addr string, err error)
	// TLSHandshakeStart is called before the TLS handshake: at once on an
	// Implicit candidate, after the 220 reply to STARTTLS on a StartTLS one.
	TLSHandshakeStart func(c tlsmode.Candidate)
	// TLSHandshakeDone is called after the handshake with its state and
	// error. A certificate that does not verify is an error here.
	TLSHandshakeDone func(c tlsmode.Candidate, st tls.ConnectionState, err error)
	// STARTTLSStripped is called when a StartTLS candidate fails because
	// STARTTLS was missing, masked or refused; err wraps
	// ErrSTARTTLSStripped and says which.
	STARTTLSStripped func(c tlsmode.Candidate, err error)
	// AuthStart is called before the Dialer's Auth chooses a mechanism on a
	// secure session, with the mechanisms the server offers after TLS.
	AuthStart func(c tlsmode.Candidate, offered []string)
	// AuthDone is called when AUTH ends: mech is the mechanism tried ("" if
	// none was), err is nil on success.
	AuthDone func(c tlsmode.Candidate, mech string, err error)
	// AttemptDone is called once per candidate started, with its outcome:
	// Err is nil for the winner; a secure session that was not needed has
	// an Err saying why (another port won, or the Dial ended).
	AttemptDone func(a Attempt)
	// WinnerChosen is called when a candidate's session becomes the
	// Client that Dial returns.
	WinnerChosen func(c tlsmode.Candidate)
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
	n.ConnectStart = join2(t.ConnectStart, old.ConnectStart)
	n.ConnectDone = join3(t.ConnectDone, old.ConnectDone)
	n.TLSHandshakeStart = join1(t.TLSHandshakeStart, old.TLSHandshakeStart)
	n.TLSHandshakeDone = join3(t.TLSHandshakeDone, old.TLSHandshakeDone)
	n.STARTTLSStripped = join2(t.STARTTLSStripped, old.STARTTLSStripped)
	n.AuthStart = join2(t.AuthStart, old.AuthStart)
	n.AuthDone = join3(t.AuthDone, old.AuthDone)
	n.AttemptDone = join1(t.AttemptDone, old.AttemptDone)
	n.WinnerChosen = join1(t.WinnerChosen, old.WinnerChosen)
	return &n
}

func join1[A any](f, g func(A)) func(A) {
	switch {
	case f == nil:
		return g
	case g == nil:
		return f
	}
	return func(a A) { f(a); g(a) }
}

func join2[A, B any](f, g func(A, B)) func(A, B) {
	switch {
	case f == nil:
		return g
	case g == nil:
		return f
	}
	return func(a A, b B) { f(a, b); g(a, b) }
}

func join3[A, B, C any](f, g func(A, B, C)) func(A, B, C) {
	switch {
	case f == nil:
		return g
	case g == nil:
		return f
	}
	return func(a A, b B, c C) { f(a, b, c); g(a, b, c) }
}

// The calls below are nil-safe, so the Dial code calls them unconditionally.

func (t *Trace) connectStart(c tlsmode.Candidate, addr string) {
	if t != nil && t.ConnectStart != nil {
		t.ConnectStart(c, addr)
	}
}

func (t *Trace) connectDone(c tlsmode.Candidate, addr string, err error) {
	if t != nil && t.ConnectDone != nil {
		t.ConnectDone(c, addr, err)
	}
}

func (t *Trace) tlsStart(c tlsmode.Candidate) {
	if t != nil && t.TLSHandshakeStart != nil {
		t.TLSHandshakeStart(c)
	}
}

func (t *Trace) tlsDone(c tlsmode.Candidate, st tls.ConnectionState, err error) {
	if t != nil && t.TLSHandshakeDone != nil {
		t.TLSHandshakeDone(c, st, err)
	}
}

func (t *Trace) stripped(c tlsmode.Candidate, err error) {
	if t != nil && t.STARTTLSStripped != nil {
		t.STARTTLSStripped(c, err)
	}
}

func (t *Trace) authStart(c tlsmode.Candidate, offered []string) {
	if t != nil && t.AuthStart != nil {
		t.AuthStart(c, append([]string(nil), offered...))
	}
}

func (t *Trace) authDone(c tlsmode.Candidate, mech string, err error) {
	if t != nil && t.AuthDone != nil {
		t.AuthDone(c, mech, err)
	}
}

func (t *Trace) attemptDone(a Attempt) {
	if t != nil && t.AttemptDone != nil {
		t.AttemptDone(a)
	}
}

func (t *Trace) winner(c tlsmode.Candidate) {
	if t != nil && t.WinnerChosen != nil {
		t.WinnerChosen(c)
	}
}

// tracingDialer reports a candidate's TCP connect to a Trace.
type tracingDialer struct {
	d ContextDialer
	t *Trace
	c tlsmode.Candidate
}

func (t *Trace) dialer(d ContextDialer, c tlsmode.Candidate) ContextDialer {
	if t == nil || t.ConnectStart == nil && t.ConnectDone == nil {
		return d
	}
	return tracingDialer{d, t, c}
}

func (td tracingDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	td.t.connectStart(td.c, addr)
	nc, err := td.d.DialContext(ctx, network, addr)
	td.t.connectDone(td.c, addr, err)
	return nc, err
}
