package otelportwise

import (
	"context"
	"strings"
	"time"

	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/portwise/portwise/submit"
)

// dialSpan is the span of one Dial, the parent of its attempts' spans.
type dialSpan struct {
	span  trace.Span
	ctx   context.Context // the caller's with span in it
	start time.Time
	// conn is the ID of the attempt that won, once one has: the
	// connection DialDone reports. Guarded by the hookSet's mutex.
	conn uint64
}

func (d *hookSet) dialStart(info submit.DialInfo) {
	now := time.Now()
	ctx, span := d.in.tracer.Start(d.parent, DialSpanName,
		trace.WithTimestamp(now),
		trace.WithAttributes(semconv.ServerAddress(info.Host)))
	d.mu.Lock()
	d.dials = append(d.dials, &dialSpan{span: span, ctx: ctx, start: now})
	d.mu.Unlock()
}

func (d *hookSet) dialDone(info submit.DialInfo) {
	now := time.Now()
	d.mu.Lock()
	s := d.endDial(info, now)
	d.mu.Unlock()
	if s == nil {
		return // the hook set was attached after DialStart
	}

	if info.Err != nil {
		s.span.SetAttributes(errorAttrs(info.Err)...)
		// The first line says how the Dial ended; the attempts' spans
		// have the line of each port.
		msg, _, _ := strings.Cut(info.Err.Error(), "\n")
		s.span.SetStatus(codes.Error, msg)
	} else {
		s.span.SetAttributes(
			semconv.ServerPort(info.Conn.Candidate.Port),
			TLSModeKey.String(info.Conn.Candidate.Mode.String()),
			ConnIDKey.Int64(int64(info.Conn.ID)))
	}
	s.span.End(trace.WithTimestamp(now))
}

// endDial removes and returns the open Dial that info ends: the one its
// winning attempt belonged to; else, when Dials under this hook set
// overlap (their attempts then hang from the caller's span), the one that
// started nearest to now minus Elapsed, as DialInfo carries no ID of its
// Dial. Call it with d.mu held.
func (d *hookSet) endDial(info submit.DialInfo, now time.Time) *dialSpan {
	best := -1
	var bestDist time.Duration
	for i, s := range d.dials {
		if info.Conn.ID != 0 && s.conn == info.Conn.ID {
			best = i
			break
		}
		if dist := s.start.Sub(now.Add(-info.Elapsed)).Abs(); best < 0 || dist < bestDist {
			best, bestDist = i, dist
		}
	}
	if best < 0 {
		return nil
	}
	s := d.dials[best]
	d.dials = append(d.dials[:best:best], d.dials[best+1:]...)
	return s
}
