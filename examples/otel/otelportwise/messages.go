package otelportwise

import (
	"container/list"
	"context"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/portwise/portwise/submit"
)

// The attributes of a message's span, and of the connection that carried
// it. Counts and sizes only: no address, no content.
const (
	// MessageTryKey is the Mailer's try at the message, from 1
	// (MessageInfo.Try); a redial keeps the number.
	MessageTryKey = attribute.Key("smtp.message.try")
	// RecipientsKey is how many recipients the message is for.
	RecipientsKey = attribute.Key("smtp.message.recipients")
	// AcceptedKey is how many of them the server accepted at RCPT TO.
	AcceptedKey = attribute.Key("smtp.message.accepted")
	// RejectedKey is how many of them the server refused at RCPT TO.
	RejectedKey = attribute.Key("smtp.message.rejected")
	// MessageSizeKey is the message's size in bytes as the server counts
	// it and SIZE= declares it (RFC 1870: headers and body, CRLF line
	// ends, without dot-stuffing).
	MessageSizeKey = attribute.Key("smtp.message.size")
	// ChunkingKey is true when the message went with BDAT (RFC 3030),
	// false with DATA.
	ChunkingKey = attribute.Key("smtp.message.chunking")
	// MessageOutcomeKey is what the server may hold of the message, as
	// submit.Outcome's String says it: "accepted", "not sent", "refused"
	// or "unknown".
	MessageOutcomeKey = attribute.Key("smtp.message.outcome")
	// QueueIDKey is the server's id for an accepted message, when its
	// reply carried one that portwise recognises (printable, at most 128
	// bytes): the handle to find the message in the server's logs.
	QueueIDKey = attribute.Key("smtp.message.queue_id")
	// ConnIDKey is the connection's ID (submit.ConnInfo.ID), unique in
	// the process: on the span of the attempt that opened it, on its
	// Dial's span and on each message's span.
	ConnIDKey = attribute.Key("smtp.connection.id")
	// ConnMessagesKey is how many messages the connection carried before
	// this one.
	ConnMessagesKey = attribute.Key("smtp.connection.messages")
	// ConnReusedKey is true when a Mailer took the connection idle from
	// its pool, false when it had just dialled it; unset outside a Mailer.
	ConnReusedKey = attribute.Key("smtp.connection.reused")
	// ConnIdleKey is how long, in seconds, a reused connection had been
	// idle in the pool.
	ConnIdleKey = attribute.Key("smtp.connection.idle_time")
)

// messageSpan is the span of one message on one connection.
type messageSpan struct {
	span trace.Span
	ctx  context.Context // the parent with span in it, for measurements
	base []attribute.KeyValue
}

func (d *hookSet) gotConn(c submit.ConnInfo) {
	d.mu.Lock()
	if len(d.got) >= maxConnLinks {
		// GotConn was not followed by a message (one refused before MAIL
		// FROM) on this many connections of a long-lived hook set.
		clear(d.got)
	}
	d.got[c.ID] = c
	d.mu.Unlock()
}

func (d *hookSet) messageStart(m submit.MessageInfo) {
	now := time.Now()
	d.mu.Lock()
	d.messages[m.Conn.ID] = d.startMessage(m, now)
	d.mu.Unlock()
}

// startMessage starts the span of m at start: a child of the caller's
// span, linked to the span of the attempt that opened m's connection
// when the Instrumentation still has it. Call it with d.mu held.
func (d *hookSet) startMessage(m submit.MessageInfo, start time.Time) *messageSpan {
	got, reused := d.got[m.Conn.ID]
	delete(d.got, m.Conn.ID)
	base := []attribute.KeyValue{
		semconv.ServerAddress(m.Conn.Host),
		semconv.ServerPort(m.Conn.Candidate.Port),
		TLSModeKey.String(m.Conn.Candidate.Mode.String()),
	}
	attrs := append(base[:len(base):len(base)],
		ConnIDKey.Int64(int64(m.Conn.ID)),
		ConnMessagesKey.Int(m.Conn.Messages),
		MessageTryKey.Int(m.Try),
		RecipientsKey.Int(m.Recipients),
		ChunkingKey.Bool(m.Chunking))
	if reused {
		attrs = append(attrs, ConnReusedKey.Bool(got.Reused))
		if got.Reused {
			attrs = append(attrs, ConnIdleKey.Float64(got.IdleTime.Seconds()))
		}
	}
	opts := []trace.SpanStartOption{
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithTimestamp(start),
		trace.WithAttributes(attrs...),
	}
	if sc, ok := d.in.conns.get(m.Conn.ID); ok {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
	}
	ctx, span := d.in.tracer.Start(d.parent, MessageSpanName, opts...)
	return &messageSpan{span: span, ctx: ctx, base: base}
}

func (d *hookSet) messageDone(m submit.MessageInfo) {
	now := time.Now()
	d.mu.Lock()
	s := d.messages[m.Conn.ID]
	delete(d.messages, m.Conn.ID)
	if s == nil { // the hook set was attached after MessageStart
		s = d.startMessage(m, now.Add(-m.Elapsed))
	}
	d.mu.Unlock()

	outcome := MessageOutcomeKey.String(m.Outcome.String())
	attrs := []attribute.KeyValue{outcome,
		MessageSizeKey.Int64(m.Size), AcceptedKey.Int(m.Accepted), RejectedKey.Int(m.Rejected)}
	if m.QueueID != "" {
		attrs = append(attrs, QueueIDKey.String(m.QueueID))
	}
	if m.Step != "" {
		attrs = append(attrs, StepKey.String(m.Step))
	}
	kind, reply := errorAttrs(m.Err), replyAttrs(m.Err)
	metricAttrs := append([]attribute.KeyValue{outcome}, kind...)
	attrs = append(append(attrs, kind...), reply...)
	s.span.SetAttributes(attrs...)
	if m.Outcome != submit.OutcomeAccepted {
		s.span.SetStatus(codes.Error, messageStatus(m, kind, reply))
	}
	s.span.End(trace.WithTimestamp(now))
	d.in.messageDuration.Record(s.ctx, m.Elapsed.Seconds(),
		metric.WithAttributes(append(s.base[:len(s.base):len(s.base)], metricAttrs...)...))
}

// messageStatus describes a message that was not accepted in words of
// portwise's own, from its error.type (kind) and reply codes (reply):
// "not sent: recipient_unknown at RCPT TO (550 5.1.1)". Not the error's
// text, which names the recipients, nor the server's, which may echo
// them.
func messageStatus(m submit.MessageInfo, kind, reply []attribute.KeyValue) string {
	s := m.Outcome.String()
	if len(kind) == 0 {
		return s
	}
	s += ": " + kind[0].Value.AsString()
	if m.Step != "" {
		s += " at " + m.Step
	}
	if len(reply) > 0 {
		s += " (" + strconv.FormatInt(reply[0].Value.AsInt64(), 10)
		if len(reply) > 1 {
			s += " " + reply[1].Value.AsString()
		}
		s += ")"
	}
	return s
}

// maxConnLinks bounds the connections whose opening span an
// Instrumentation remembers, so that its memory stays bounded however
// many connections a process opens: some 200 bytes each.
const maxConnLinks = 1024

// connLinks maps a connection's ID to the SpanContext of the attempt that
// opened it, for the links of its messages' spans, which may be under
// another Send than the Dial was. It keeps the max connections last used,
// forgetting the one unused longest: a pooled connection in use stays.
type connLinks struct {
	mu    sync.Mutex
	max   int
	ids   map[uint64]*list.Element // of order
	order *list.List               // of connLink, the last used first
}

type connLink struct {
	id uint64
	sc trace.SpanContext
}

func newConnLinks(max int) *connLinks {
	return &connLinks{max: max, ids: make(map[uint64]*list.Element), order: list.New()}
}

// add remembers that the attempt of sc opened connection id. A
// SpanContext that is not valid (no TracerProvider) is not kept.
func (l *connLinks) add(id uint64, sc trace.SpanContext) {
	if !sc.IsValid() {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.ids[id]; ok {
		e.Value = connLink{id, sc}
		l.order.MoveToFront(e)
		return
	}
	l.ids[id] = l.order.PushFront(connLink{id, sc})
	if l.order.Len() > l.max {
		oldest := l.order.Back()
		l.order.Remove(oldest)
		delete(l.ids, oldest.Value.(connLink).id)
	}
}

// get returns the SpanContext of the attempt that opened connection id,
// if it is still remembered.
func (l *connLinks) get(id uint64) (trace.SpanContext, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.ids[id]
	if !ok {
		return trace.SpanContext{}, false
	}
	l.order.MoveToFront(e)
	return e.Value.(connLink).sc, true
}
