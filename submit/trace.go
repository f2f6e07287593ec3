package submit

import (
	"context"
	"net"
	"time"

	"github.com/portwise/portwise/tlsmode"
)

// Trace is a set of hooks that run at the stages of a Dial and of a
// message, in the manner of net/http/httptrace: attach one to a context
// with WithTrace and every Dial, Client send and Mailer send under that
// context calls the hooks that are set. Applications use them to export
// metrics and traces (to OpenTelemetry, Prometheus, expvar) without
// portwise depending on any of them.
//
// Every hook gets an info struct as it stands at that stage (Attempt,
// DialInfo, ConnInfo, MessageInfo, Retry), which can gain fields. IDs tie
// them together: an Attempt's ID is its connection's ID once it wins, and
// every message carries the ID of the connection it went on. Candidates
// race, so hooks of different candidates may run concurrently and must be
// safe for that; hooks of one candidate, and of one message, run in order.
// A hook runs on the caller's goroutines and should return quickly. Hooks
// never see a secret: no credential, no AUTH payload, no message content;
// the info structs hold no address either, but an Err is the error the
// caller gets, whose text may name recipients (a *SendError): record its
// kind (KindOf), not its text, where addresses must not go. A Trace whose
// hooks are unset costs nothing. Connections a Mailer dials ahead of need
// (see Mailer) are dialled outside any Send, and reach no hook until a
// Send takes them (GotConn).
type Trace struct {
	// DialStart is called when a Dial starts, before any connection
	// (and before fetching an OAuth2 token).
	DialStart func(DialInfo)
	// DialDone is called when a Dial returns: Conn is the connection of
	// the Client it returns, or Err says why there is none.
	DialDone func(DialInfo)
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
	// GotConn is called when a Mailer has a connection for a message: an
	// idle one from its pool (ConnInfo.Reused, IdleTime), or one it has
	// just dialled.
	GotConn func(ConnInfo)
	// MessageStart is called when a message begins on a connection,
	// before MAIL FROM: after the checks that need no server (a message
	// refused by them has no MessageStart).
	MessageStart func(MessageInfo)
	// MessageDone is called when the message's send ends: its Outcome,
	// the recipients accepted and refused, the queue id, or the step that
	// failed and the error.
	MessageDone func(MessageInfo)
	// Retry is called when a Mailer is about to send a message again,
	// the server not having it: after a temporary refusal, before it waits
	// Retry.Delay; or at once on a new connection when the server had
	// closed the pooled one (Retry.Redial).
	Retry func(Retry)
}

// Retry describes a Mailer's decision to send a message again.
type Retry struct {
	Host string
	// Try is the number of the try that failed, from 1.
	Try int
	// Delay is how long the Mailer waits before the next try:
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

// DialInfo is a Dial, for DialStart and DialDone.
type DialInfo struct {
	// Host is what was dialled (the first server's host for
	// DialServers).
	Host string
	// Elapsed is the time since the Dial started (DialDone).
	Elapsed time.Duration
	// Conn is the connection of the Client the Dial returns (DialDone;
	// zero when it failed).
	Conn ConnInfo
	// Err is why the Dial returned no Client (DialDone).
	Err error
}

// ConnInfo identifies one connection: a Client of a Dialer.
type ConnInfo struct {
	// ID is the ID of the Attempt that opened the connection: unique in
	// the process, it links a message to its connection and the
	// connection to its Dial.
	ID        uint64
	Host      string
	Candidate tlsmode.Candidate
	// Messages is how many messages the connection carried before.
	Messages int
	// Reused reports a Mailer's connection taken idle from its pool,
	// after IdleTime there (GotConn).
	Reused   bool
	IdleTime time.Duration
}

// MessageInfo is one message on one connection, for MessageStart and
// MessageDone. It holds no address and no content: counts, sizes, the
// outcome.
type MessageInfo struct {
	// Conn is the connection carrying the message.
	Conn ConnInfo
	// Try is the Mailer's try at the message, from 1 (a Client's send is
	// try 1).
	Try int
	// Recipients is how many recipients the message is for.
	Recipients int
	// Size is the message's size as the server counts it: at
	// MessageStart the size known in advance, or -1 when it streams from
	// a reader of unknown length; at MessageDone the size sent.
	Size int64
	// Chunking reports BDAT (RFC 3030); false is DATA.
	Chunking bool
	// The fields below are set at MessageDone.
	Outcome  Outcome
	Accepted int // recipients accepted
	Rejected int // recipients refused
	// QueueID is the server's id for the message, when it gave one.
	QueueID string
	// Step is the step that failed ("MAIL FROM", "RCPT TO", "DATA",
	// "message", ...), "" when the message was accepted for every
	// recipient.
	Step    string
	Err     error
	Elapsed time.Duration
	// Envelope is the part of Elapsed before the message's content began
	// to go out: MAIL FROM, RCPT TO and DATA up to the server's 354, one
	// reply at a time or in one flight (PIPELINING), or next to nothing
	// when the envelope rides in the content's own flight (BDAT under
	// PIPELINING). It is Elapsed when the content never went out. A
	// timing view splits a send into envelope and message with it; no
	// hook runs in between, so that a message costs no extra call.
	Envelope time.Duration
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
	composeHook(&n.DialStart, old.DialStart)
	composeHook(&n.DialDone, old.DialDone)
	composeHook(&n.GotConn, old.GotConn)
	composeHook(&n.MessageStart, old.MessageStart)
	composeHook(&n.MessageDone, old.MessageDone)
	composeHook(&n.Retry, old.Retry)
	composeHook(&n.ConnectStart, old.ConnectStart)
	composeHook(&n.ConnectDone, old.ConnectDone)
	composeHook(&n.TLSHandshakeStart, old.TLSHandshakeStart)
	composeHook(&n.TLSHandshakeDone, old.TLSHandshakeDone)
	composeHook(&n.STARTTLSStripped, old.STARTTLSStripped)
	composeHook(&n.AuthStart, old.AuthStart)
	composeHook(&n.AuthDone, old.AuthDone)
	composeHook(&n.AttemptDone, old.AttemptDone)
	composeHook(&n.WinnerChosen, old.WinnerChosen)
	return &n
}

// composeHook makes *f call itself, then g.
func composeHook[T any](f *func(T), g func(T)) {
	switch h := *f; {
	case h == nil:
		*f = g
	case g != nil:
		*f = func(v T) { h(v); g(v) }
	}
}

// hook runs f with v when the trace has it; a nil Trace has none.
func hook[T any](t *Trace, f func(*Trace) func(T), v T) {
	if t == nil {
		return
	}
	if h := f(t); h != nil {
		h(v)
	}
}

// dialDone calls DialDone for a Dial of host begun at t0.
func (t *Trace) dialDone(host string, t0 time.Time, c *Client, err error) {
	if t == nil || t.DialDone == nil {
		return
	}
	info := DialInfo{Host: host, Elapsed: time.Since(t0), Err: err}
	if c != nil {
		info.Conn = c.connInfo()
	}
	t.DialDone(info)
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

// dialer wraps d for attempt a, which starts now.
func (t *Trace) dialer(d ContextDialer, a Attempt) ContextDialer {
	if t == nil || t.ConnectStart == nil && t.ConnectDone == nil {
		return d
	}
	return tracingDialer{d, t, Attempt{ID: a.ID, Host: a.Host, Candidate: a.Candidate}, time.Now()}
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
