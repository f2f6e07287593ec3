package otelportwise_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/portwise/portwise/examples/otel/otelportwise"
	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/tlsmode"
)

// A Mailer sends three messages one after another, each under a span of
// its own, over the one connection the first Send dialled: each message
// is an smtp.message span, a child of its Send's span, linked to the
// span of the attempt that opened the connection, and says how many
// messages the connection carried before it and whether it was reused.
func TestMailerMessageSpans(t *testing.T) {
	srv := submittest.NewServer(t)
	h := newHarness(t)
	m := &submit.Mailer{Dialer: srv.Dialer(submit.PlainAuth("", "user", "pass"), srv.Implicit), Host: "127.0.0.1", MaxConns: 1}
	defer m.Close()
	const n = 3
	var sends []trace.SpanContext
	for i := range n {
		ctx, span := h.parent("send")
		msg := fmt.Sprintf("From: app@example.com\r\nSubject: %d\r\n\r\nhello\r\n", i)
		if err := m.Send(h.inst.WithTrace(ctx), "app@example.com", []string{"you@example.com", "them@example.com"}, strings.NewReader(msg)); err != nil {
			t.Fatal(err)
		}
		span.End()
		sends = append(sends, span.SpanContext())
	}
	m.Close()

	msgs := h.ended(t, otelportwise.MessageSpanName, n)
	all := h.exporter.GetSpans()
	metrics := h.metrics(t)
	t.Logf("exported:\n%s", dump(all, metrics))
	attempts := named(all, otelportwise.SpanName)
	if len(msgs) != n || len(attempts) != 1 {
		t.Fatalf("%d message spans and %d attempt spans, want %d and 1", len(msgs), len(attempts), n)
	}
	winner := attempts[0]
	conn := attrs(winner.Attributes)["smtp.connection.id"]
	delivered := srv.Messages()
	if len(delivered) != n {
		t.Fatalf("the server has %d messages, want %d", len(delivered), n)
	}
	for i, s := range msgs {
		what := fmt.Sprintf("message %d", i)
		if s.Parent.SpanID() != sends[i].SpanID() || s.SpanKind != trace.SpanKindClient || s.Status.Code != codes.Unset {
			t.Errorf("%s: parent %v kind %v status %v; want send span %v, client, unset", what, s.Parent.SpanID(), s.SpanKind, s.Status.Code, sends[i].SpanID())
		}
		if len(s.Links) != 1 || s.Links[0].SpanContext.SpanID() != winner.SpanContext.SpanID() {
			t.Errorf("%s: links %v, want one to the attempt span %v", what, s.Links, winner.SpanContext.SpanID())
		}
		want := map[string]string{
			"server.address":           "127.0.0.1",
			"server.port":              strconv.Itoa(srv.Implicit.Port),
			"smtp.tls_mode":            "implicit",
			"smtp.connection.id":       conn,
			"smtp.connection.messages": strconv.Itoa(i),
			"smtp.connection.reused":   strconv.FormatBool(i > 0),
			"smtp.message.try":         "1",
			"smtp.message.recipients":  "2",
			"smtp.message.accepted":    "2",
			"smtp.message.rejected":    "0",
			"smtp.message.outcome":     "accepted",
			"smtp.message.queue_id":    delivered[i].QueueID,
			"smtp.message.size":        strconv.FormatInt(delivered[i].Size, 10),
		}
		absent := []string{"error.type", "smtp.step", "smtp.reply.code"}
		if i == 0 {
			absent = append(absent, "smtp.connection.idle_time")
		} else if _, ok := attrs(s.Attributes)["smtp.connection.idle_time"]; !ok {
			t.Errorf("%s: reused without smtp.connection.idle_time", what)
		}
		wantAttrs(t, what, attrs(s.Attributes), want, absent...)
		if _, ok := attrs(s.Attributes)["smtp.message.chunking"]; !ok {
			t.Errorf("%s: no smtp.message.chunking", what)
		}
	}
	points := metrics[otelportwise.MetricMessageDuration]
	if got := total(points, map[string]string{"smtp.message.outcome": "accepted", "smtp.tls_mode": "implicit"}); got != n || len(points) != 1 {
		t.Errorf("%s: %d accepted in %d points, want %d in one", otelportwise.MetricMessageDuration, got, len(points), n)
	}
	for _, p := range points {
		if _, ok := p.attrs["error.type"]; ok {
			t.Errorf("error.type on accepted messages: %v", p.attrs)
		}
	}
}

// The server takes one message per connection, then answers MAIL FROM
// with a 421 and closes: the Mailer's second Send tries the pooled
// connection, fails with the message not sent, and redials. Its span has
// an smtp.retry event with smtp.retry.redial, and two message spans, each
// linked to the attempt that opened its own connection: the first Send's
// and its own.
func TestMailerRedial(t *testing.T) {
	srv := submittest.NewServer(t, submittest.Options{MaxMessagesPerConn: 1})
	h := newHarness(t)
	m := &submit.Mailer{Dialer: srv.Dialer(submit.PlainAuth("", "user", "pass"), srv.Implicit), Host: "127.0.0.1", MaxConns: 1}
	defer m.Close()
	var sends []trace.SpanContext
	for i := range 2 {
		ctx, span := h.parent(fmt.Sprintf("send %d", i+1))
		msg := fmt.Sprintf("Subject: %d\r\n\r\nhello\r\n", i)
		if err := m.Send(h.inst.WithTrace(ctx), "app@example.com", []string{"you@example.com"}, strings.NewReader(msg)); err != nil {
			t.Fatal(err)
		}
		span.End()
		sends = append(sends, span.SpanContext())
	}
	m.Close()

	msgs := h.ended(t, otelportwise.MessageSpanName, 3)
	all := h.exporter.GetSpans()
	metrics := h.metrics(t)
	t.Logf("exported:\n%s", dump(all, metrics))
	attempts := named(all, otelportwise.SpanName)
	dials := named(all, otelportwise.DialSpanName)
	if len(msgs) != 3 || len(attempts) != 2 || len(dials) != 2 {
		t.Fatalf("%d message, %d attempt, %d dial spans; want 3, 2, 2", len(msgs), len(attempts), len(dials))
	}
	for i, d := range dials {
		if d.Parent.SpanID() != sends[i].SpanID() {
			t.Errorf("dial %d is under %v, want send %d's span", i, d.Parent.SpanID(), i+1)
		}
	}
	first, second := attempts[0], attempts[1]
	tests := []struct {
		send    int
		link    tracetest.SpanStub
		status  codes.Code
		want    map[string]string
		absent  []string
		comment string
	}{
		{0, first, codes.Unset, map[string]string{
			"smtp.message.outcome": "accepted", "smtp.connection.reused": "false", "smtp.connection.messages": "0",
		}, []string{"error.type", "smtp.step"}, "the first message, on a new connection"},
		{1, first, codes.Error, map[string]string{
			"smtp.message.outcome": "not sent", "smtp.connection.reused": "true", "smtp.connection.messages": "1",
			"smtp.step": "MAIL FROM", "smtp.reply.code": "421", "smtp.reply.enhanced_code": "4.7.0", "smtp.message.accepted": "0",
		}, []string{"smtp.message.queue_id"}, "the second, refused on the reused connection"},
		{1, second, codes.Unset, map[string]string{
			"smtp.message.outcome": "accepted", "smtp.connection.reused": "false", "smtp.connection.messages": "0",
			"smtp.message.try": "1", // a redial is not a retry of the Mailer's
		}, []string{"error.type", "smtp.step"}, "the second again, on the redialled connection"},
	}
	for i, tt := range tests {
		s := msgs[i]
		if s.Parent.SpanID() != sends[tt.send].SpanID() {
			t.Errorf("%s: parent %v, want send %d's span", tt.comment, s.Parent.SpanID(), tt.send+1)
		}
		if len(s.Links) != 1 || s.Links[0].SpanContext.SpanID() != tt.link.SpanContext.SpanID() {
			t.Errorf("%s: links %v, want one to %v", tt.comment, s.Links, tt.link.SpanContext.SpanID())
		}
		if s.Status.Code != tt.status {
			t.Errorf("%s: status %v %q, want %v", tt.comment, s.Status.Code, s.Status.Description, tt.status)
		}
		tt.want["smtp.connection.id"] = attrs(tt.link.Attributes)["smtp.connection.id"]
		wantAttrs(t, tt.comment, attrs(s.Attributes), tt.want, tt.absent...)
	}
	if et := attrs(msgs[1].Attributes)["error.type"]; et == "" || !strings.HasPrefix(msgs[1].Status.Description, "not sent: "+et+" at MAIL FROM (421 4.7.0)") {
		t.Errorf("refused message: error.type %q, status %q", et, msgs[1].Status.Description)
	}

	var send2 tracetest.SpanStub
	for _, s := range all {
		if s.SpanContext.SpanID() == sends[1].SpanID() {
			send2 = s
		}
	}
	ev := event(send2, "smtp.retry")
	wantAttrs(t, "retry event", ev, map[string]string{
		"smtp.retry.redial": "true", "smtp.retry.try": "1", "smtp.retry.delay": "0", "server.address": "127.0.0.1",
	})
	if ev["error.type"] == "" {
		t.Errorf("retry event without error.type: %v", ev)
	}
	if got := total(metrics[otelportwise.MetricRetries], map[string]string{"smtp.retry.redial": "true"}); got != 1 {
		t.Errorf("%s{smtp.retry.redial=true} = %d, want 1", otelportwise.MetricRetries, got)
	}
	durations := metrics[otelportwise.MetricMessageDuration]
	if a, ns := total(durations, map[string]string{"smtp.message.outcome": "accepted"}), total(durations, map[string]string{"smtp.message.outcome": "not sent"}); a != 2 || ns != 1 {
		t.Errorf("%s: %d accepted, %d not sent; want 2, 1", otelportwise.MetricMessageDuration, a, ns)
	}
	if st := m.Stats(); st.Retried != 1 || st.Sent != 2 {
		t.Errorf("stats %+v", st)
	}
}

// A Client's messages that fail, or partly: a refused recipient, every
// recipient refused, a connection dropped after the message. Each span
// says the outcome, the step and error.type; status Error unless the
// server accepted the message for some recipient.
func TestMessageFailures(t *testing.T) {
	const nobody = "nobody@example.com"
	srv := submittest.NewServer(t, submittest.Options{RejectRecipients: map[string]string{
		nobody: "550 5.1.1 <" + nobody + ">: Recipient address rejected: User unknown",
	}})
	dropping := srv.Listen(tlsmode.Implicit, submittest.DropAfterDot)
	tests := []struct {
		name    string
		cand    tlsmode.Candidate
		to      []string
		wantErr error
		outcome string
		status  string // "" for unset
		want    map[string]string
		absent  []string
	}{
		{
			"a recipient refused", srv.Implicit, []string{"you@example.com", nobody}, nil, "accepted", "",
			map[string]string{"smtp.message.accepted": "1", "smtp.message.rejected": "1", "error.type": "recipient_unknown",
				"smtp.step": "RCPT TO", "smtp.reply.code": "550", "smtp.reply.enhanced_code": "5.1.1"},
			nil,
		},
		{
			"every recipient refused", srv.Implicit, []string{nobody}, nil, "not sent",
			"not sent: recipient_unknown at RCPT TO (550 5.1.1)",
			map[string]string{"smtp.message.accepted": "0", "smtp.message.rejected": "1", "error.type": "recipient_unknown", "smtp.step": "RCPT TO"},
			[]string{"smtp.message.queue_id"},
		},
		{
			"dropped after the message", dropping, []string{"you@example.com"}, submit.ErrOutcomeUnknown, "unknown",
			"unknown: outcome_unknown at message",
			map[string]string{"smtp.message.accepted": "1", "smtp.message.rejected": "0", "error.type": "outcome_unknown", "smtp.step": "message"},
			[]string{"smtp.message.queue_id", "smtp.reply.code"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			c, err := srv.Dialer(submit.PlainAuth("", "user", "pass"), tt.cand).Dial(h.inst.WithTrace(context.Background()), "127.0.0.1")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx, span := h.parent("send")
			err = c.Send(h.inst.WithTrace(ctx), "app@example.com", tt.to, strings.NewReader("Subject: x\r\n\r\nhello\r\n"))
			span.End()
			if err == nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want one (%v)", err, tt.wantErr)
			}

			msgs := h.ended(t, otelportwise.MessageSpanName, 1)
			metrics := h.metrics(t)
			t.Logf("exported:\n%s", dump(h.exporter.GetSpans(), metrics))
			attempts := named(h.exporter.GetSpans(), otelportwise.SpanName)
			if len(msgs) != 1 || len(attempts) != 1 {
				t.Fatalf("%d message spans, %d attempt spans; want 1 each", len(msgs), len(attempts))
			}
			s := msgs[0]
			// The Dial had a context of its own; the message still links
			// to the span of the attempt that opened its connection.
			if s.Parent.SpanID() != span.SpanContext().SpanID() || len(s.Links) != 1 || s.Links[0].SpanContext.SpanID() != attempts[0].SpanContext.SpanID() {
				t.Errorf("parent %v, links %v; want the send span %v and a link to %v", s.Parent.SpanID(), s.Links, span.SpanContext().SpanID(), attempts[0].SpanContext.SpanID())
			}
			switch {
			case tt.status == "" && s.Status.Code != codes.Unset:
				t.Errorf("status %v %q, want unset", s.Status.Code, s.Status.Description)
			case tt.status != "" && (s.Status.Code != codes.Error || s.Status.Description != tt.status):
				t.Errorf("status %v %q, want Error %q", s.Status.Code, s.Status.Description, tt.status)
			}
			tt.want["smtp.message.outcome"] = tt.outcome
			tt.want["smtp.message.try"] = "1"
			// Outside a Mailer there is no pool: reuse is not said.
			wantAttrs(t, "message span", attrs(s.Attributes), tt.want, append(tt.absent, "smtp.connection.reused")...)
			if got := total(metrics[otelportwise.MetricMessageDuration], map[string]string{"smtp.message.outcome": tt.outcome, "error.type": tt.want["error.type"]}); got != 1 {
				t.Errorf("%s{%s, %s} = %d, want 1", otelportwise.MetricMessageDuration, tt.outcome, tt.want["error.type"], got)
			}
		})
	}
}

// Nothing exported holds an address, a word of a message, the login or
// the password, though the server's refusal echoes the address and a
// retry and a refused recipient put errors that quote them through every
// hook.
func TestTelemetryHoldsNoAddressOrContent(t *testing.T) {
	const (
		login    = "login-qx7"
		password = "hunter2-not-the-password"
		from     = "sender.zz9@example.com"
		to       = "rcpt.zz9@example.com"
		refused  = "nobody.zz9@example.com"
	)
	srv := submittest.NewServer(t, submittest.Options{
		Accounts:         map[string]string{login: password},
		RejectRecipients: map[string]string{refused: "550 5.1.1 <" + refused + ">: Recipient address rejected: User unknown"},
		FailEvery:        2, // the second MAIL FROM: a retry
	})
	h := newHarness(t)
	m := &submit.Mailer{Dialer: srv.Dialer(submit.PlainAuth("", login, password)), Host: "127.0.0.1", RetryDelay: time.Millisecond}
	defer m.Close()
	// Accepted for one recipient; the same, after a retry; refused for
	// every recipient, so that the span's status is an error's.
	for i, rcpts := range [][]string{{to, refused}, {to, refused}, {refused}} {
		ctx, span := h.parent("send")
		msg := fmt.Sprintf("From: <%s>\r\nTo: <%s>\r\nSubject: subject-words-zz9 %d\r\n\r\nbody-words-zz9\r\n", from, to, i)
		err := m.Send(h.inst.WithTrace(ctx), from, rcpts, strings.NewReader(msg))
		span.End()
		if err == nil || !strings.Contains(err.Error(), refused) {
			t.Fatalf("err = %v, want the refusal of %s", err, refused)
		}
	}
	m.Close()
	msgs := h.ended(t, otelportwise.MessageSpanName, 4)
	if st := m.Stats(); st.Retried == 0 || msgs[len(msgs)-1].Status.Code != codes.Error {
		t.Fatalf("stats %+v, last status %v; want a retry, an error", st, msgs[len(msgs)-1].Status.Code)
	}
	if found := h.leaks(t, login, password, "zz9", "@"); len(found) > 0 {
		t.Errorf("found in the telemetry: %v\n%s", found, dump(h.exporter.GetSpans(), h.metrics(t)))
	}
}
