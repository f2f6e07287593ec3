package otelportwise_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
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

func TestSuccessfulDial(t *testing.T) {
	srv := submittest.NewServer(t)
	tests := []struct {
		name string
		cand tlsmode.Candidate
		mode string
	}{
		{"starttls", srv.StartTLS, "starttls"},
		{"implicit", srv.Implicit, "implicit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			ctx, send := h.parent("send")
			c, err := srv.Dialer(submit.PlainAuth("", "user", "pass"), tt.cand).Dial(h.inst.WithTrace(ctx), "127.0.0.1")
			if err != nil {
				t.Fatal(err)
			}
			c.Quit()
			send.End()

			spans := h.attempts(t, 1)
			metrics := h.metrics(t)
			t.Logf("exported:\n%s", dump(h.exporter.GetSpans(), metrics))
			if len(spans) != 1 {
				t.Fatalf("%d attempt spans, want 1", len(spans))
			}
			s := spans[0]
			dials := named(h.exporter.GetSpans(), otelportwise.DialSpanName)
			if len(dials) != 1 {
				t.Fatalf("%d dial spans, want 1", len(dials))
			}
			dial := dials[0]
			if dial.Parent.SpanID() != send.SpanContext().SpanID() || dial.Status.Code != codes.Unset {
				t.Errorf("dial span: parent %v status %v; want the send span %v, unset", dial.Parent.SpanID(), dial.Status.Code, send.SpanContext().SpanID())
			}
			if s.Parent.SpanID() != dial.SpanContext.SpanID() || s.SpanKind != trace.SpanKindClient {
				t.Errorf("parent %v kind %v; want the dial span %v, client", s.Parent.SpanID(), s.SpanKind, dial.SpanContext.SpanID())
			}
			conn := attrs(s.Attributes)["smtp.connection.id"]
			if conn == "" || conn == "0" {
				t.Errorf("the winner's smtp.connection.id = %q", conn)
			}
			wantAttrs(t, "dial span", attrs(dial.Attributes), map[string]string{
				"server.address": "127.0.0.1", "server.port": strconv.Itoa(tt.cand.Port),
				"smtp.tls_mode": tt.mode, "smtp.connection.id": conn,
			}, "error.type")
			if s.Status.Code != codes.Unset {
				t.Errorf("status %v %q, want unset", s.Status.Code, s.Status.Description)
			}
			port := strconv.Itoa(tt.cand.Port)
			wantAttrs(t, "span", attrs(s.Attributes), map[string]string{
				"server.address":        "127.0.0.1",
				"server.port":           port,
				"network.protocol.name": "smtp",
				"network.transport":     "tcp",
				"smtp.tls_mode":         tt.mode,
				"tls.protocol.name":     "tls",
				"tls.protocol.version":  "1.3",
				"tls.established":       "true",
				"tls.resumed":           "false",
				"smtp.auth.mechanism":   "PLAIN",
				"smtp.outcome":          "won",
				"smtp.winner":           "true",
			}, "error.type", "smtp.step")
			if a := attrs(s.Attributes); !strings.HasPrefix(a["tls.cipher"], "TLS_") || a["tls.server.not_after"] == "" {
				t.Errorf("tls.cipher = %q, tls.server.not_after = %q", a["tls.cipher"], a["tls.server.not_after"])
			}
			want := "smtp.connect.done smtp.tls.handshake.start smtp.tls.handshake.done smtp.auth.start smtp.auth.done"
			if got := strings.Join(eventNames(s), " "); got != want {
				t.Errorf("events %s\nwant   %s", got, want)
			}
			wantAttrs(t, "auth.start", event(s, "smtp.auth.start"), map[string]string{"smtp.auth.mechanisms": `["PLAIN","LOGIN"]`})
			wantAttrs(t, "auth.done", event(s, "smtp.auth.done"), map[string]string{"smtp.auth.mechanism": "PLAIN"}, "error.type")
			wantAttrs(t, "connect.done", event(s, "smtp.connect.done"), nil, "error.type")

			base := map[string]string{"server.address": "127.0.0.1", "server.port": port, "smtp.tls_mode": tt.mode}
			with := func(kv ...string) map[string]string {
				m := map[string]string{}
				for k, v := range base {
					m[k] = v
				}
				for i := 0; i < len(kv); i += 2 {
					m[kv[i]] = kv[i+1]
				}
				return m
			}
			checks := []struct {
				metric string
				attrs  map[string]string
				want   int64
			}{
				{otelportwise.MetricAttemptDuration, with("smtp.outcome", "won"), 1},
				{otelportwise.MetricConnectDuration, base, 1},
				{otelportwise.MetricTLSHandshakeDuration, with("tls.protocol.version", "1.3"), 1},
				{otelportwise.MetricDialWinners, base, 1},
				{otelportwise.MetricAuthentications, with("smtp.auth.mechanism", "PLAIN"), 1},
				{otelportwise.MetricSTARTTLSStripped, nil, 0},
			}
			for _, c := range checks {
				points := metrics[c.metric]
				if got := total(points, c.attrs); got != c.want || (c.want > 0 && len(points) != 1) {
					t.Errorf("%s%v = %d in %d points, want %d in one", c.metric, c.attrs, got, len(points), c.want)
				}
				for _, p := range points {
					if _, ok := p.attrs["error.type"]; ok {
						t.Errorf("%s has error.type on a success: %v", c.metric, p.attrs)
					}
				}
			}
			if p := metrics[otelportwise.MetricAttemptDuration]; len(p) == 1 && (p[0].sum <= 0 || p[0].sum > 10) {
				t.Errorf("attempt duration %vs", p[0].sum)
			}
		})
	}
}

func TestStrippedPortLosesToImplicit(t *testing.T) {
	srv := submittest.NewServer(t)
	stripped := srv.Listen(tlsmode.StartTLS, submittest.StripSTARTTLS)
	h := newHarness(t)
	d := srv.Dialer(submit.PlainAuth("", "user", "pass"), stripped, srv.Implicit)
	d.FallbackDelay = -1 // one after another: the stripped port first
	c, err := d.Dial(h.inst.WithTrace(context.Background()), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	c.Quit()

	spans := h.attempts(t, 2)
	metrics := h.metrics(t)
	t.Logf("exported:\n%s", dump(h.exporter.GetSpans(), metrics))
	if len(spans) != 2 {
		t.Fatalf("%d attempt spans, want 2", len(spans))
	}
	bad, good := spans[0], spans[1]
	if bad.Status.Code != codes.Error || !strings.Contains(bad.Status.Description, "STARTTLS") {
		t.Errorf("stripped span status %v %q; want Error naming STARTTLS", bad.Status.Code, bad.Status.Description)
	}
	wantAttrs(t, "stripped span", attrs(bad.Attributes), map[string]string{
		"server.port":   strconv.Itoa(stripped.Port),
		"smtp.tls_mode": "starttls",
		"smtp.outcome":  "failed",
		"smtp.winner":   "false",
		"error.type":    "starttls_stripped",
		"smtp.step":     "starttls",
	}, "tls.protocol.version", "smtp.auth.mechanism")
	if got, want := strings.Join(eventNames(bad), " "), "smtp.connect.done smtp.starttls.stripped exception"; got != want {
		t.Errorf("stripped span events %s, want %s", got, want)
	}
	wantAttrs(t, "stripped event", event(bad, "smtp.starttls.stripped"), map[string]string{"error.type": "starttls_stripped", "smtp.step": "starttls"})
	wantAttrs(t, "exception event", event(bad, "exception"), map[string]string{"exception.type": "*submit.StepError"})

	if good.Status.Code != codes.Unset {
		t.Errorf("winner status %v %q", good.Status.Code, good.Status.Description)
	}
	wantAttrs(t, "winner span", attrs(good.Attributes), map[string]string{
		"server.port":   strconv.Itoa(srv.Implicit.Port),
		"smtp.tls_mode": "implicit",
		"smtp.outcome":  "won",
		"smtp.winner":   "true",
	}, "error.type")

	sp, ip := strconv.Itoa(stripped.Port), strconv.Itoa(srv.Implicit.Port)
	checks := []struct {
		metric string
		attrs  map[string]string
		want   int64
	}{
		{otelportwise.MetricSTARTTLSStripped, nil, 1},
		{otelportwise.MetricSTARTTLSStripped, map[string]string{"server.port": sp, "smtp.tls_mode": "starttls"}, 1},
		{otelportwise.MetricAttemptDuration, map[string]string{"server.port": sp, "smtp.outcome": "failed", "error.type": "starttls_stripped"}, 1},
		{otelportwise.MetricAttemptDuration, map[string]string{"server.port": ip, "smtp.outcome": "won"}, 1},
		{otelportwise.MetricAttemptDuration, nil, 2},
		{otelportwise.MetricDialWinners, map[string]string{"server.port": ip, "smtp.tls_mode": "implicit"}, 1},
		{otelportwise.MetricDialWinners, nil, 1},
		{otelportwise.MetricTLSHandshakeDuration, nil, 1},
		{otelportwise.MetricConnectDuration, nil, 2},
	}
	for _, c := range checks {
		if got := total(metrics[c.metric], c.attrs); got != c.want {
			t.Errorf("%s%v = %d, want %d", c.metric, c.attrs, got, c.want)
		}
	}
}

func TestRejectedPassword(t *testing.T) {
	const password = "hunter2-not-the-password"
	srv := submittest.NewServer(t)
	h := newHarness(t)
	d := srv.Dialer(submit.PlainAuth("", "user", password)) // STARTTLS and implicit TLS
	d.FallbackDelay = time.Nanosecond                       // both race to a secure session
	_, err := d.Dial(h.inst.WithTrace(context.Background()), "127.0.0.1")
	if !errors.Is(err, submit.ErrAuthFailed) {
		t.Fatalf("err = %v, want ErrAuthFailed", err)
	}

	spans := h.attempts(t, 2)
	metrics := h.metrics(t)
	t.Logf("exported:\n%s", dump(h.exporter.GetSpans(), metrics))
	if found := h.leaks(t, password); len(found) > 0 {
		t.Errorf("the password is in the telemetry: %v", found)
	}
	dials := named(h.exporter.GetSpans(), otelportwise.DialSpanName)
	if len(dials) != 1 {
		t.Fatalf("%d dial spans, want 1", len(dials))
	}
	if d := dials[0]; d.Status.Code != codes.Error || d.Status.Description == "" || strings.Contains(d.Status.Description, "\n") ||
		!strings.HasPrefix(err.Error(), d.Status.Description) {
		t.Errorf("dial span status %v %q; want Error, the first line of %q", d.Status.Code, d.Status.Description, err)
	} else {
		wantAttrs(t, "dial span", attrs(d.Attributes), map[string]string{"error.type": "auth_failed", "server.address": "127.0.0.1"}, "smtp.connection.id")
	}
	// One port got the credential and its rejection; the other, whichever
	// it was, ended unused: the Dial ended on the rejection.
	var rejected, unused []string
	for _, s := range spans {
		a := attrs(s.Attributes)
		switch a["smtp.outcome"] {
		case "failed":
			rejected = append(rejected, a["server.port"])
			wantAttrs(t, "rejected span", a, map[string]string{
				"error.type": "auth_failed", "smtp.step": "auth", "smtp.auth.mechanism": "PLAIN",
				"smtp.reply.code": "535", "smtp.reply.enhanced_code": "5.7.8", "smtp.winner": "false",
			})
			if s.Status.Code != codes.Error || !strings.Contains(s.Status.Description, "535") {
				t.Errorf("rejected span status %v %q; want Error quoting the 535", s.Status.Code, s.Status.Description)
			}
			wantAttrs(t, "auth.done", event(s, "smtp.auth.done"), map[string]string{"smtp.auth.mechanism": "PLAIN", "error.type": "auth_failed"})
		case "not_used":
			unused = append(unused, a["server.port"])
			if s.Status.Code != codes.Unset {
				t.Errorf("an unused port's span has status %v %q", s.Status.Code, s.Status.Description)
			}
			wantAttrs(t, "unused span", a, nil, "error.type", "smtp.step")
		default:
			t.Errorf("span with outcome %q", a["smtp.outcome"])
		}
	}
	if len(rejected) != 1 || len(unused) != 1 {
		t.Fatalf("rejected on %v, unused %v; want one of each", rejected, unused)
	}
	checks := []struct {
		metric string
		attrs  map[string]string
		want   int64
	}{
		{otelportwise.MetricAuthentications, map[string]string{"smtp.auth.mechanism": "PLAIN", "error.type": "auth_failed", "server.port": rejected[0]}, 1},
		{otelportwise.MetricAuthentications, nil, 1},
		{otelportwise.MetricAttemptDuration, map[string]string{"smtp.outcome": "failed", "error.type": "auth_failed"}, 1},
		{otelportwise.MetricAttemptDuration, map[string]string{"smtp.outcome": "not_used"}, 1},
		{otelportwise.MetricDialWinners, nil, 0},
	}
	for _, c := range checks {
		if got := total(metrics[c.metric], c.attrs); got != c.want {
			t.Errorf("%s%v = %d, want %d", c.metric, c.attrs, got, c.want)
		}
	}
}

// A port that accepted the connection and never greets is still waiting
// when the other wins: it reports after Dial returns, and its span ends
// then, neither an error nor a winner. A hook run before ours holds the
// loser's report until Dial has returned, so that it is late every time.
func TestLateLoserSpanEnds(t *testing.T) {
	srv := submittest.NewServer(t)
	silent := srv.Listen(tlsmode.StartTLS, submittest.Blackhole)
	h := newHarness(t)
	d := srv.Dialer(submit.PlainAuth("", "user", "pass"), silent, srv.Implicit)
	d.FallbackDelay = 20 * time.Millisecond
	returned := make(chan struct{})
	gate := &submit.Trace{AttemptDone: func(a submit.Attempt) {
		if a.Err != nil {
			select {
			case <-returned:
			case <-time.After(10 * time.Second): // never block a Dial for good
			}
		}
	}}
	ctx := submit.WithTrace(h.inst.WithTrace(context.Background()), gate) // gate's hooks run first
	c, err := d.Dial(ctx, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if n, open := len(named(h.exporter.GetSpans(), otelportwise.SpanName)), h.open.names(); n != 1 || len(open) != 1 {
		t.Errorf("when Dial returned: %d attempt span(s) ended, %v open; want the winner's ended, the loser's open", n, open)
	}
	close(returned)
	c.Quit()

	spans := h.attempts(t, 2)
	metrics := h.metrics(t)
	t.Logf("exported:\n%s", dump(h.exporter.GetSpans(), metrics))
	if len(spans) != 2 {
		t.Fatalf("%d attempt spans, want 2", len(spans))
	}
	// Told apart by port, not by start: a span starts when its attempt's
	// goroutine reaches the connect, and a loaded machine may run the
	// silent port's later than the other's, though the race started it
	// first.
	loser, winner := spans[0], spans[1]
	if attrs(winner.Attributes)["server.port"] == strconv.Itoa(silent.Port) {
		loser, winner = winner, loser
	}
	wantAttrs(t, "loser", attrs(loser.Attributes), map[string]string{
		"server.port": strconv.Itoa(silent.Port), "smtp.outcome": "not_needed", "smtp.winner": "false",
	}, "error.type", "smtp.step")
	if loser.Status.Code != codes.Unset {
		t.Errorf("loser status %v %q, want unset", loser.Status.Code, loser.Status.Description)
	}
	if !loser.EndTime.After(winner.EndTime) {
		t.Errorf("the loser ended at %v, before the winner at %v", loser.EndTime, winner.EndTime)
	}
	wantAttrs(t, "winner", attrs(winner.Attributes), map[string]string{"smtp.outcome": "won"})
	if got := total(metrics[otelportwise.MetricAttemptDuration], map[string]string{"smtp.outcome": "not_needed", "server.port": strconv.Itoa(silent.Port)}); got != 1 {
		t.Errorf("not_needed attempts = %d, want 1", got)
	}
}

// Many Dials at once, each with its own hook set (as a Mailer's Sends
// have, one context each) or all sharing one: every span ends, once,
// with one outcome and its own attempt's events (the hooks carry the
// attempt's ID), and the metrics count every attempt.
func TestConcurrentDials(t *testing.T) {
	srv := submittest.NewServer(t)
	const dials = 8
	for _, shared := range []bool{false, true} {
		t.Run(fmt.Sprintf("shared=%v", shared), func(t *testing.T) {
			h := newHarness(t)
			d := srv.Dialer(submit.PlainAuth("", "user", "pass"))
			d.FallbackDelay = time.Nanosecond // both ports of each Dial race
			sharedCtx := h.inst.WithTrace(context.Background())
			var wg sync.WaitGroup
			errs := make(chan error, dials)
			for range dials {
				wg.Go(func() {
					ctx := sharedCtx
					if !shared {
						ctx = h.inst.WithTrace(context.Background())
					}
					c, err := d.Dial(ctx, "127.0.0.1")
					if err != nil {
						errs <- err
						return
					}
					c.Quit()
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			// Each Dial starts both ports: 2*dials spans, the losers' maybe late.
			spans := h.attempts(t, 2*dials)
			checkSpans(t, spans, dials)
			metrics := h.metrics(t)
			if got := total(metrics[otelportwise.MetricDialWinners], nil); got != dials {
				t.Errorf("winners = %d, want %d", got, dials)
			}
			if got := total(metrics[otelportwise.MetricAttemptDuration], nil); got != int64(len(spans)) {
				t.Errorf("attempts = %d, want one per span, %d", got, len(spans))
			}
		})
	}
}

// A Mailer sending from many goroutines, each Send in a span of its own:
// the Dials it makes are children of the Send that made them; each
// message is a child of its Send, linked to the attempt that opened its
// connection, most of them dialled by another Send.
func TestMailerConcurrentSends(t *testing.T) {
	srv := submittest.NewServer(t)
	h := newHarness(t)
	d := srv.Dialer(submit.PlainAuth("", "user", "pass"))
	m := &submit.Mailer{Dialer: d, Host: "127.0.0.1", MaxConns: 3}
	defer m.Close()
	const sends = 12
	sendSpans := make(chan trace.SpanContext, sends)
	var wg sync.WaitGroup
	for i := range sends {
		wg.Go(func() {
			ctx, span := h.parent("send")
			defer span.End()
			sendSpans <- span.SpanContext()
			msg := fmt.Sprintf("From: app@example.com\r\nTo: you@example.com\r\nSubject: %d\r\n\r\nhello\r\n", i)
			if err := m.Send(h.inst.WithTrace(ctx), "app@example.com", []string{"you@example.com"}, strings.NewReader(msg)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	close(sendSpans)
	m.Close()
	sendIDs := map[trace.SpanID]bool{}
	for sc := range sendSpans {
		sendIDs[sc.SpanID()] = true
	}
	if got := len(srv.Messages()); got != sends {
		t.Fatalf("%d messages, want %d", got, sends)
	}
	// Between 1 and MaxConns Dials, each of which may start both ports.
	spans := h.attempts(t, 1)
	dials := checkSpans(t, spans, -1)
	if dials < 1 || dials > 3 {
		t.Errorf("%d Dials won, want 1 to 3 (MaxConns)", dials)
	}
	dialSends := map[trace.SpanID]trace.SpanID{} // a dial span's parent
	for _, s := range named(h.exporter.GetSpans(), otelportwise.DialSpanName) {
		dialSends[s.SpanContext.SpanID()] = s.Parent.SpanID()
		if !sendIDs[s.Parent.SpanID()] {
			t.Errorf("dial span %v has parent %v, not a send span", s.SpanContext.SpanID(), s.Parent.SpanID())
		}
	}
	winners := map[trace.SpanID]tracetest.SpanStub{}
	for _, s := range spans {
		if _, ok := dialSends[s.Parent.SpanID()]; !ok {
			t.Errorf("attempt span %v has parent %v, not a dial span", s.SpanContext.SpanID(), s.Parent.SpanID())
		}
		if attrs(s.Attributes)["smtp.winner"] == "true" {
			winners[s.SpanContext.SpanID()] = s
		}
	}
	msgs := named(h.exporter.GetSpans(), otelportwise.MessageSpanName)
	if len(msgs) != sends {
		t.Fatalf("%d message spans, want %d", len(msgs), sends)
	}
	parents := map[trace.SpanID]bool{}
	elsewhere := 0 // messages on a connection another Send dialled
	for _, s := range msgs {
		if !sendIDs[s.Parent.SpanID()] || parents[s.Parent.SpanID()] {
			t.Errorf("message span %v has parent %v, not a send span of its own", s.SpanContext.SpanID(), s.Parent.SpanID())
		}
		parents[s.Parent.SpanID()] = true
		if len(s.Links) != 1 {
			t.Errorf("message span %v has %d links, want 1", s.SpanContext.SpanID(), len(s.Links))
			continue
		}
		w, ok := winners[s.Links[0].SpanContext.SpanID()]
		if !ok || attrs(w.Attributes)["smtp.connection.id"] != attrs(s.Attributes)["smtp.connection.id"] {
			t.Errorf("message span %v links to %v, not the winner of its connection %s", s.SpanContext.SpanID(), s.Links[0].SpanContext.SpanID(), attrs(s.Attributes)["smtp.connection.id"])
		}
		if dialSends[w.Parent.SpanID()] != s.Parent.SpanID() {
			elsewhere++
		}
	}
	if elsewhere < sends-dials {
		t.Errorf("%d messages on a connection another Send dialled, want at least %d", elsewhere, sends-dials)
	}
	if got := total(h.metrics(t)[otelportwise.MetricDialWinners], nil); got != int64(dials) {
		t.Errorf("winners = %d, want %d", got, dials)
	}
}

// checkSpans checks that each span has one outcome, error.type exactly
// when it failed, the events of one attempt at most once each, and TLS
// and AUTH on the winners; and that wins spans won (-1: any
// number). It returns the number won.
func checkSpans(t *testing.T, spans tracetest.SpanStubs, wins int) int {
	t.Helper()
	won := 0
	for _, s := range spans {
		a := attrs(s.Attributes)
		switch a["smtp.outcome"] {
		case "won":
			won++
			if a["tls.protocol.version"] != "1.3" || a["smtp.auth.mechanism"] != "PLAIN" {
				t.Errorf("a winner without TLS or AUTH: %v", a)
			}
		case "not_needed", "not_used":
		case "failed":
			t.Errorf("a failed attempt: %v", a)
		default:
			t.Errorf("a span without an outcome: %v", a)
		}
		seen := map[string]bool{}
		for _, e := range s.Events {
			if seen[e.Name] {
				t.Errorf("span %v has two %s events: %v", s.SpanContext.SpanID(), e.Name, eventNames(s))
			}
			seen[e.Name] = true
		}
		if _, ok := a["error.type"]; ok != (a["smtp.outcome"] == "failed") {
			t.Errorf("error.type on outcome %s: %v", a["smtp.outcome"], a)
		}
	}
	if wins >= 0 && won != wins {
		t.Errorf("%d spans won, want %d", won, wins)
	}
	return won
}

// Without providers the hooks do nothing, and Dial works as without them.
func TestNilProviders(t *testing.T) {
	srv := submittest.NewServer(t)
	inst, err := otelportwise.New(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := srv.Dialer(submit.PlainAuth("", "user", "pass")).Dial(inst.WithTrace(context.Background()), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	c.Quit()
}

func TestMailerRetryIsAnEventAndACount(t *testing.T) {
	// Every second MAIL FROM is refused for now: the Mailer sends the
	// message again, and says so through the Retry hook.
	srv := submittest.NewServer(t, submittest.Options{FailEvery: 2})
	h := newHarness(t)
	d := srv.Dialer(submit.PlainAuth("", "user", "pass"))
	m := &submit.Mailer{Dialer: d, Host: "127.0.0.1", RetryDelay: time.Millisecond}
	defer m.Close()
	ctx, span := h.parent("send")
	if err := m.Send(h.inst.WithTrace(ctx), "app@example.com", []string{"you@example.com"}, strings.NewReader("Subject: x\r\n\r\nhello\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := m.Send(h.inst.WithTrace(ctx), "app@example.com", []string{"you@example.com"}, strings.NewReader("Subject: y\r\n\r\nhello\r\n")); err != nil {
		t.Fatal(err)
	}
	span.End()
	m.Close()
	var send tracetest.SpanStub
	for _, s := range h.exporter.GetSpans() {
		if s.Name == "send" {
			send = s
		}
	}
	ev := event(send, "smtp.retry")
	if ev == nil || ev["smtp.retry.try"] != "1" || ev["error.type"] == "" || ev["server.address"] != "127.0.0.1" || ev["smtp.retry.redial"] != "false" {
		t.Fatalf("send span events %v (%v); want one smtp.retry with attempt 1, error.type, not a redial", eventNames(send), ev)
	}
	if got := total(h.metrics(t)[otelportwise.MetricRetries], map[string]string{"server.address": "127.0.0.1", "smtp.retry.redial": "false"}); got != 1 {
		t.Errorf("%s = %d, want 1", otelportwise.MetricRetries, got)
	}
	if st := m.Stats(); st.Retried != 1 || st.Sent != 2 {
		t.Errorf("stats %+v", st)
	}
}
