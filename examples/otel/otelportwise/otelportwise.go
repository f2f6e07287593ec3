// Package otelportwise turns portwise's hooks (submit.Trace) into
// OpenTelemetry spans and metrics, in the manner of otelhttptrace: create
// an Instrumentation once from a TracerProvider and a MeterProvider, then
// attach a fresh hook set to the context of each Dial, Client send or
// Mailer.Send:
//
//	inst, err := otelportwise.New(tp, mp)
//	...
//	err = mailer.Send(inst.WithTrace(ctx), from, to, msg)
//
// Each Dial becomes a span, "smtp.dial", a child of the span in ctx, and
// every candidate port it starts a span of its own under it,
// "smtp.attempt"; each message on a connection becomes a span,
// "smtp.message", a child of the span in ctx, linked to the span of the
// attempt that opened its connection, though another Send may have
// dialled it. They have the attributes of the OpenTelemetry semantic
// conventions where they exist (server.address, server.port,
// network.protocol.name, tls.protocol.version, tls.cipher, error.type)
// and smtp.* attributes of their own; an attempt's stages and a Mailer's
// retries are events. The metrics are the smtp.client.* instruments
// listed in README.md.
//
// Nothing recorded is a secret, an address or message content: the hooks
// never see credentials or content; a Dial's error messages are the
// library's sanitised ones; and a message's status says its outcome,
// error.type, step and reply codes, not its error's text, which names
// recipients and quotes the server. Text a server controls (its
// certificate's names, its replies) is left out of attributes except
// through a Dial's messages.
//
// portwise's attempts race, so hooks of different candidates run
// concurrently, and a candidate that lost the race reports its end after
// Dial has returned: its span ends then. Every hook of an attempt carries
// the attempt's ID, by which it finds its span, and every message its
// connection's, so a hook set may serve concurrent calls; a fresh one per
// call (WithTrace) makes each call's spans children of that call's span,
// and its attempts children of its Dial's.
package otelportwise

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/portwise/portwise/submit"
)

// ScopeName is the instrumentation scope of the tracer and the meter, for
// views and filters.
const ScopeName = "github.com/portwise/portwise/examples/otel/otelportwise"

// SpanName is the name of the span of one candidate of a Dial.
const SpanName = "smtp.attempt"

// DialSpanName is the name of the span of one Dial, the parent of the
// spans of its candidates.
const DialSpanName = "smtp.dial"

// MessageSpanName is the name of the span of one message on one
// connection, from MAIL FROM to the server's reply to the message.
const MessageSpanName = "smtp.message"

// Instrumentation holds a tracer and the metric instruments. Create it
// once with New; it is safe for concurrent use, and its hook sets share
// the instruments.
type Instrumentation struct {
	tracer trace.Tracer

	attemptDuration metric.Float64Histogram
	connectDuration metric.Float64Histogram
	tlsDuration     metric.Float64Histogram
	winners         metric.Int64Counter
	auths           metric.Int64Counter
	stripped        metric.Int64Counter
	retries         metric.Int64Counter
	messageDuration metric.Float64Histogram

	// conns links the spans of messages to the spans of the attempts
	// that opened their connections, whichever Send or Dial those were.
	conns *connLinks
}

// durationBuckets are the semantic conventions' boundaries for durations
// in seconds (those of http.client.request.duration), from 5 ms to 10 s.
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// New creates the tracer and the instruments. A nil TracerProvider records
// no spans and a nil MeterProvider no metrics, so a program can take
// either alone.
func New(tp trace.TracerProvider, mp metric.MeterProvider) (*Instrumentation, error) {
	if tp == nil {
		tp = tracenoop.NewTracerProvider()
	}
	if mp == nil {
		mp = metricnoop.NewMeterProvider()
	}
	in := &Instrumentation{tracer: tp.Tracer(ScopeName, trace.WithSchemaURL(semconv.SchemaURL)), conns: newConnLinks(maxConnLinks)}
	m := mp.Meter(ScopeName, metric.WithSchemaURL(semconv.SchemaURL))
	var errs []error
	histogram := func(name, desc string) metric.Float64Histogram {
		h, err := m.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc),
			metric.WithExplicitBucketBoundaries(durationBuckets...))
		errs = append(errs, err)
		return h
	}
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	in.attemptDuration = histogram(MetricAttemptDuration,
		"Duration of each candidate port of a Dial, to its outcome (smtp.outcome); the count is the number of attempts.")
	in.connectDuration = histogram(MetricConnectDuration, "Duration of the TCP connect of each attempt.")
	in.tlsDuration = histogram(MetricTLSHandshakeDuration, "Duration of the TLS handshake of each attempt (after STARTTLS, or at once on implicit TLS).")
	in.winners = counter(MetricDialWinners, "{dial}", "Dials that produced a client, by the port and TLS mode that won.")
	in.auths = counter(MetricAuthentications, "{authentication}", "AUTH exchanges, by mechanism; error.type is set when one failed (auth_failed: the credential was rejected).")
	in.stripped = counter(MetricSTARTTLSStripped, "{attempt}", "STARTTLS attempts that failed because STARTTLS was missing, masked or refused: a downgrade attack or a meddling firewall.")
	in.retries = counter(MetricRetries, "{retry}", "Messages a Mailer sends again, the server not having them: after a temporary refusal, or at once on a new connection (smtp.retry.redial) when the server had closed the pooled one; by error.type.")
	in.messageDuration = histogram(MetricMessageDuration,
		"Duration of each message on a connection, from MAIL FROM to the server's reply to it, by smtp.message.outcome; the count is the number of messages.")
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return in, nil
}

// The names of the metrics New creates. Durations are in seconds, with
// the semantic conventions' buckets from 5 ms to 10 s; every metric has
// server.address, server.port and smtp.tls_mode.
const (
	// MetricAttemptDuration is a histogram with smtp.outcome (won,
	// failed, not_needed, not_used) and, for failed, error.type.
	MetricAttemptDuration = "smtp.client.attempt.duration"
	// MetricConnectDuration is a histogram, with error.type when the
	// connect failed.
	MetricConnectDuration = "smtp.client.connect.duration"
	// MetricTLSHandshakeDuration is a histogram, with
	// tls.protocol.version, or error.type when the handshake failed.
	MetricTLSHandshakeDuration = "smtp.client.tls.handshake.duration"
	// MetricDialWinners is a counter of the ports that won a Dial.
	MetricDialWinners = "smtp.client.dial.winners"
	// MetricAuthentications is a counter with smtp.auth.mechanism and,
	// when AUTH failed, error.type.
	MetricAuthentications = "smtp.client.authentications"
	// MetricSTARTTLSStripped is a counter of stripped STARTTLS: a
	// security signal worth an alert.
	MetricSTARTTLSStripped = "smtp.client.starttls.stripped"
	// MetricRetries is a counter of a Mailer's retries (submit.Trace's
	// Retry hook), with server.address, error.type and smtp.retry.redial
	// (true: a new connection replaced one the server had closed); each
	// also adds an smtp.retry event to the span in the context of the
	// Send.
	MetricRetries = "smtp.client.retries"
	// MetricMessageDuration is a histogram of messages, with
	// smtp.message.outcome and, when the send failed or a recipient was
	// refused, error.type; its count is the number of messages.
	MetricMessageDuration = "smtp.client.message.duration"
)

// Trace returns a new hook set whose spans are children of the span in
// ctx (if any). Attach it with submit.WithTrace, or use WithTrace.
func (in *Instrumentation) Trace(ctx context.Context) *submit.Trace {
	d := newHookSet(in, context.WithoutCancel(ctx))
	return &submit.Trace{
		DialStart:         d.dialStart,
		DialDone:          d.dialDone,
		ConnectStart:      d.connectStart,
		ConnectDone:       d.connectDone,
		TLSHandshakeStart: d.tlsStart,
		TLSHandshakeDone:  d.tlsDone,
		STARTTLSStripped:  d.stripped,
		AuthStart:         d.authStart,
		AuthDone:          d.authDone,
		AttemptDone:       d.attemptDone,
		WinnerChosen:      d.winner,
		GotConn:           d.gotConn,
		MessageStart:      d.messageStart,
		MessageDone:       d.messageDone,
		Retry:             d.retry,
	}
}

// WithTrace returns ctx carrying a new hook set (Trace(ctx)) for the Dial
// or Mailer.Send it is given to. Hooks already in ctx still run.
func (in *Instrumentation) WithTrace(ctx context.Context) context.Context {
	return submit.WithTrace(ctx, in.Trace(ctx))
}
