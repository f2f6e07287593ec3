package otelportwise

import (
	"context"
	"crypto/tls"
	"errors"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/portwise/portwise/submit"
)

// The attributes of portwise's own, beside the semantic conventions'.
const (
	// TLSModeKey is the candidate's TLS mode: starttls, implicit or
	// plaintext.
	TLSModeKey = attribute.Key("smtp.tls_mode")
	// OutcomeKey is how an attempt ended: won, failed, not_needed
	// (another port won first) or not_used (the Dial ended first, for
	// instance on a rejected credential). Only failed is an error.
	OutcomeKey = attribute.Key("smtp.outcome")
	// WinnerKey is true on the span of the attempt that became the Dial's
	// client.
	WinnerKey = attribute.Key("smtp.winner")
	// StepKey is the step a failed attempt failed at (connect, banner,
	// ehlo, starttls, tls, auth or token), or a message's ("MAIL FROM",
	// "RCPT TO", "DATA", "message", ...).
	StepKey = attribute.Key("smtp.step")
	// AuthMechanismKey is the SASL mechanism tried ("PLAIN", "XOAUTH2").
	AuthMechanismKey = attribute.Key("smtp.auth.mechanism")
	// AuthMechanismsKey lists the mechanisms the server offered after TLS
	// (an event attribute of smtp.auth.start).
	AuthMechanismsKey = attribute.Key("smtp.auth.mechanisms")
	// ReplyCodeKey is the code of the server's reply that failed the
	// attempt or the message (535, 550).
	ReplyCodeKey = attribute.Key("smtp.reply.code")
	// EnhancedCodeKey is that reply's RFC 3463 enhanced status code
	// ("5.7.8"), when it has a well-formed one.
	EnhancedCodeKey = attribute.Key("smtp.reply.enhanced_code")
)

// The values of OutcomeKey.
const (
	outcomeWon       = "won"
	outcomeFailed    = "failed"
	outcomeNotNeeded = "not_needed"
	outcomeNotUsed   = "not_used"
)

// The span events, in the order a candidate can reach them.
const (
	eventConnectDone = "smtp.connect.done"
	eventTLSStart    = "smtp.tls.handshake.start"
	eventTLSDone     = "smtp.tls.handshake.done"
	eventStripped    = "smtp.starttls.stripped"
	eventAuthStart   = "smtp.auth.start"
	eventAuthDone    = "smtp.auth.done"
)

// attemptSpan is the span of one attempt and the times its hooks need
// for durations.
type attemptSpan struct {
	span trace.Span
	ctx  context.Context // the parent with span in it, for measurements
	// base are the attributes of every measurement: server.address,
	// server.port, smtp.tls_mode.
	base []attribute.KeyValue
	dial *dialSpan // its parent; nil when it hangs from the caller's span

	connectStart, tlsStart time.Time // guarded by the hookSet's mutex
}

// hookSet is the state behind one submit.Trace: the spans started and not
// yet ended, the attempts' by Attempt.ID, the messages' by the ID of
// their connection (which carries one message at a time). Hooks of
// different attempts run concurrently, so every hook takes mu to find its
// span (starting it if need be); it records on the span and the
// instruments, which are safe for concurrent use, after unlocking.
type hookSet struct {
	in     *Instrumentation
	parent context.Context

	mu       sync.Mutex
	dials    []*dialSpan // in the order they started
	open     map[uint64]*attemptSpan
	messages map[uint64]*messageSpan
	// got is what GotConn said of a connection, for the message that
	// starts on it next.
	got map[uint64]submit.ConnInfo
}

func newHookSet(in *Instrumentation, parent context.Context) *hookSet {
	return &hookSet{in: in, parent: parent, open: make(map[uint64]*attemptSpan),
		messages: make(map[uint64]*messageSpan), got: make(map[uint64]submit.ConnInfo)}
}

// span returns the open span of a's attempt, starting it if this is the
// attempt's first hook: ConnectStart, or a later one when the attempt
// ended before connecting. Its parent is the Dial's span when one Dial
// is open, so certainly a's; else the caller's span. Call it with d.mu
// held.
func (d *hookSet) span(a submit.Attempt, now time.Time) *attemptSpan {
	if s := d.open[a.ID]; s != nil {
		return s
	}
	start := now.Add(-a.Elapsed)
	base := []attribute.KeyValue{
		semconv.ServerAddress(a.Host),
		semconv.ServerPort(a.Candidate.Port),
		TLSModeKey.String(a.Candidate.Mode.String()),
	}
	s := &attemptSpan{base: base}
	parent := d.parent
	if len(d.dials) == 1 {
		s.dial = d.dials[0]
		parent = s.dial.ctx
	}
	s.ctx, s.span = d.in.tracer.Start(parent, SpanName,
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithTimestamp(start),
		trace.WithAttributes(base...),
		trace.WithAttributes(semconv.NetworkProtocolName("smtp"), semconv.NetworkTransportTCP))
	d.open[a.ID] = s
	return s
}

// measure returns s's base attributes with more, as a measurement option.
func (s *attemptSpan) measure(more ...attribute.KeyValue) metric.MeasurementOption {
	return metric.WithAttributes(append(s.base[:len(s.base):len(s.base)], more...)...)
}

func (d *hookSet) connectStart(a submit.Attempt) {
	now := time.Now()
	d.mu.Lock()
	s := d.span(a, now)
	s.connectStart = now
	d.mu.Unlock()
}

func (d *hookSet) connectDone(a submit.Attempt) {
	now := time.Now()
	d.mu.Lock()
	s := d.span(a, now)
	started := s.connectStart
	d.mu.Unlock()

	attrs := errorAttrs(a.Err)
	s.span.AddEvent(eventConnectDone, trace.WithTimestamp(now), trace.WithAttributes(attrs...))
	if !started.IsZero() {
		d.in.connectDuration.Record(s.ctx, now.Sub(started).Seconds(), s.measure(attrs...))
	}
}

func (d *hookSet) tlsStart(a submit.Attempt) {
	now := time.Now()
	d.mu.Lock()
	s := d.span(a, now)
	s.tlsStart = now
	d.mu.Unlock()

	s.span.AddEvent(eventTLSStart, trace.WithTimestamp(now))
}

func (d *hookSet) tlsDone(a submit.Attempt) {
	now := time.Now()
	d.mu.Lock()
	s := d.span(a, now)
	started := s.tlsStart
	d.mu.Unlock()

	var attrs []attribute.KeyValue // of the measurement
	if a.Err == nil && a.TLS != nil {
		version := semconv.TLSProtocolVersion(tlsVersion(a.TLS.Version))
		cipher := semconv.TLSCipher(tls.CipherSuiteName(a.TLS.CipherSuite))
		resumed := semconv.TLSResumed(a.TLS.DidResume)
		attrs = []attribute.KeyValue{version}
		s.span.SetAttributes(semconv.TLSProtocolNameTLS, version, cipher, resumed, semconv.TLSEstablished(true))
		if len(a.TLS.PeerCertificates) > 0 {
			// When the certificate expires: the one server-given field
			// recorded, in a fixed format.
			s.span.SetAttributes(semconv.TLSServerNotAfter(a.TLS.PeerCertificates[0].NotAfter.UTC().Format(time.RFC3339)))
		}
		s.span.AddEvent(eventTLSDone, trace.WithTimestamp(now), trace.WithAttributes(version, cipher, resumed))
	} else {
		attrs = errorAttrs(a.Err)
		s.span.SetAttributes(semconv.TLSEstablished(false))
		s.span.AddEvent(eventTLSDone, trace.WithTimestamp(now), trace.WithAttributes(attrs...))
	}
	if !started.IsZero() {
		d.in.tlsDuration.Record(s.ctx, now.Sub(started).Seconds(), s.measure(attrs...))
	}
}

func (d *hookSet) stripped(a submit.Attempt) {
	now := time.Now()
	d.mu.Lock()
	s := d.span(a, now)
	d.mu.Unlock()

	attrs := errorAttrs(a.Err)
	var se *submit.StepError
	if errors.As(a.Err, &se) && se.Step != "" {
		attrs = append(attrs, StepKey.String(se.Step))
	}
	s.span.AddEvent(eventStripped, trace.WithTimestamp(now), trace.WithAttributes(attrs...))
	d.in.stripped.Add(s.ctx, 1, s.measure())
}

func (d *hookSet) authStart(a submit.Attempt) {
	now := time.Now()
	d.mu.Lock()
	s := d.span(a, now)
	d.mu.Unlock()

	s.span.AddEvent(eventAuthStart, trace.WithTimestamp(now),
		trace.WithAttributes(AuthMechanismsKey.StringSlice(saslNames(a.Mechanisms))))
}

func (d *hookSet) authDone(a submit.Attempt) {
	now := time.Now()
	d.mu.Lock()
	s := d.span(a, now)
	d.mu.Unlock()

	attrs := errorAttrs(a.Err)
	if a.Mechanism != "" {
		mech := AuthMechanismKey.String(a.Mechanism)
		attrs = append(attrs, mech)
		s.span.SetAttributes(mech)
	}
	s.span.AddEvent(eventAuthDone, trace.WithTimestamp(now), trace.WithAttributes(attrs...))
	d.in.auths.Add(s.ctx, 1, s.measure(attrs...))
}

func (d *hookSet) attemptDone(a submit.Attempt) {
	now := time.Now()
	d.mu.Lock()
	s := d.span(a, now)
	delete(d.open, a.ID)
	outcome := outcomeOf(a.Err)
	if outcome == outcomeWon && s.dial != nil {
		s.dial.conn = a.ID
	}
	d.mu.Unlock()

	metricAttrs := []attribute.KeyValue{OutcomeKey.String(outcome)}
	spanAttrs := []attribute.KeyValue{OutcomeKey.String(outcome), WinnerKey.Bool(outcome == outcomeWon)}
	if outcome == outcomeWon {
		// The connection is known by this attempt's ID: its messages link
		// to this span.
		spanAttrs = append(spanAttrs, ConnIDKey.Int64(int64(a.ID)))
		d.in.conns.add(a.ID, s.span.SpanContext())
	}
	if a.Mechanism != "" {
		spanAttrs = append(spanAttrs, AuthMechanismKey.String(a.Mechanism))
	}
	if outcome == outcomeFailed {
		et := semconv.ErrorTypeKey.String(ErrorType(a.Err))
		metricAttrs = append(metricAttrs, et)
		spanAttrs = append(spanAttrs, et)
		var se *submit.StepError
		if errors.As(a.Err, &se) && se.Step != "" {
			spanAttrs = append(spanAttrs, StepKey.String(se.Step))
		}
		spanAttrs = append(spanAttrs, replyAttrs(a.Err)...)
		// The message is portwise's: one line, sanitised, with advice.
		s.span.RecordError(a.Err, trace.WithTimestamp(now))
		s.span.SetStatus(codes.Error, a.Err.Error())
	}
	s.span.SetAttributes(spanAttrs...)
	s.span.End(trace.WithTimestamp(now))
	d.in.attemptDuration.Record(s.ctx, a.Elapsed.Seconds(), s.measure(metricAttrs...))
}

func (d *hookSet) winner(a submit.Attempt) {
	d.in.winners.Add(d.parent, 1, metric.WithAttributes(
		semconv.ServerAddress(a.Host),
		semconv.ServerPort(a.Candidate.Port),
		TLSModeKey.String(a.Candidate.Mode.String())))
}

// eventRetry is the event a Mailer's retry adds to the Send's span.
const eventRetry = "smtp.retry"

// retryRedialKey tells a redial (a new connection at once, the server
// having closed the pooled one) from a retry after a refusal.
const retryRedialKey = attribute.Key("smtp.retry.redial")

// retry records a Mailer's decision to send a message again: an event on
// the span of the Send (the parent of its Dials and messages) and the
// counter.
func (d *hookSet) retry(r submit.Retry) {
	attrs := append([]attribute.KeyValue{
		semconv.ServerAddress(r.Host),
		attribute.Int("smtp.retry.try", r.Try),
		attribute.Float64("smtp.retry.delay", r.Delay.Seconds()),
		retryRedialKey.Bool(r.Redial),
	}, errorAttrs(r.Err)...)
	trace.SpanFromContext(d.parent).AddEvent(eventRetry, trace.WithAttributes(attrs...))
	d.in.retries.Add(d.parent, 1, metric.WithAttributes(semconv.ServerAddress(r.Host),
		semconv.ErrorTypeKey.String(ErrorType(r.Err)), retryRedialKey.Bool(r.Redial)))
}
