package otelportwise_test

import (
	"context"
	"fmt"
	"log"
	"slices"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/portwise/portwise/examples/otel/otelportwise"
	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/tlsmode"
)

// The wiring: providers built once (here with in-memory exporters; in
// production an OTLP exporter and a periodic reader), an Instrumentation
// built from them once, and a hook set attached to the context of each
// Dial or Mailer.Send. The server strips STARTTLS on its first port, so
// the Dial falls back to implicit TLS, and both attempts are recorded.
func Example() {
	srv := submittest.NewServer(nil)
	defer srv.Close()
	stripped := srv.Listen(tlsmode.StartTLS, submittest.StripSTARTTLS)

	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	defer tp.Shutdown(context.Background())
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())

	inst, err := otelportwise.New(tp, mp)
	if err != nil {
		log.Fatal(err)
	}

	d := srv.Dialer(submit.PlainAuth("", "user", "pass"), stripped, srv.Implicit)
	d.FallbackDelay = -1 // one port after the other, for a stable output
	ctx, send := tp.Tracer("app").Start(context.Background(), "send welcome mail")
	c, err := d.Dial(inst.WithTrace(ctx), "127.0.0.1")
	if err != nil {
		log.Fatal(err)
	}
	c.Quit()
	send.End()

	for _, s := range spans.GetSpans() {
		if s.Name != otelportwise.SpanName {
			continue // the application's own span, their parent
		}
		a := attribute.NewSet(s.Attributes...)
		mode, _ := a.Value("smtp.tls_mode")
		outcome, _ := a.Value("smtp.outcome")
		fmt.Printf("span %q %s %s", s.Name, mode.String(), outcome.String())
		if et, ok := a.Value("error.type"); ok {
			fmt.Printf(" error.type=%s (%s)", et.String(), s.Status.Code)
		}
		for _, e := range s.Events {
			fmt.Printf(" [%s]", e.Name)
		}
		fmt.Println()
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		log.Fatal(err)
	}
	metrics := rm.ScopeMetrics[0].Metrics
	slices.SortFunc(metrics, func(a, b metricdata.Metrics) int { return strings.Compare(a.Name, b.Name) })
	for _, m := range metrics {
		if sum, ok := m.Data.(metricdata.Sum[int64]); ok {
			for _, dp := range sum.DataPoints {
				mode, _ := dp.Attributes.Value("smtp.tls_mode")
				fmt.Printf("metric %s{smtp.tls_mode=%s} %d\n", m.Name, mode.String(), dp.Value)
			}
		}
	}
	// Output:
	// span "smtp.attempt" starttls failed error.type=starttls_stripped (Error) [smtp.connect.done] [smtp.starttls.stripped] [exception]
	// span "smtp.attempt" implicit won [smtp.connect.done] [smtp.tls.handshake.start] [smtp.tls.handshake.done] [smtp.auth.start] [smtp.auth.done]
	// metric smtp.client.authentications{smtp.tls_mode=implicit} 1
	// metric smtp.client.dial.winners{smtp.tls_mode=implicit} 1
	// metric smtp.client.starttls.stripped{smtp.tls_mode=starttls} 1
}

// A Mailer's messages, each under the span of the Send that made it: the
// first Send dials the connection and the second reuses it, and both
// messages link to the span of the attempt that opened it, under the
// first Send's Dial.
func Example_messages() {
	srv := submittest.NewServer(nil)
	defer srv.Close()
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	defer tp.Shutdown(context.Background())
	inst, err := otelportwise.New(tp, nil) // spans only
	if err != nil {
		log.Fatal(err)
	}

	m := &submit.Mailer{Dialer: srv.Dialer(submit.PlainAuth("", "user", "pass"), srv.Implicit), Host: "127.0.0.1"}
	defer m.Close()
	for _, name := range []string{"send welcome mail", "send receipt"} {
		ctx, span := tp.Tracer("app").Start(context.Background(), name)
		err := m.Send(inst.WithTrace(ctx), "app@example.com", []string{"you@example.com"},
			strings.NewReader("Subject: hello\r\n\r\nhello\r\n"))
		span.End()
		if err != nil {
			log.Fatal(err)
		}
	}

	byID := map[trace.SpanID]tracetest.SpanStub{}
	for _, s := range spans.GetSpans() {
		byID[s.SpanContext.SpanID()] = s
	}
	for _, s := range spans.GetSpans() {
		if s.Name != otelportwise.MessageSpanName {
			continue
		}
		a := attribute.NewSet(s.Attributes...)
		outcome, _ := a.Value(otelportwise.MessageOutcomeKey)
		reused, _ := a.Value(otelportwise.ConnReusedKey)
		before, _ := a.Value(otelportwise.ConnMessagesKey)
		opener := byID[s.Links[0].SpanContext.SpanID()]
		dial := byID[opener.Parent.SpanID()]
		fmt.Printf("%s under %q: %s; connection reused=%v after %d message(s), opened by %s under %s under %q\n",
			s.Name, byID[s.Parent.SpanID()].Name, outcome.AsString(), reused.AsBool(), before.AsInt64(),
			opener.Name, dial.Name, byID[dial.Parent.SpanID()].Name)
	}
	// Output:
	// smtp.message under "send welcome mail": accepted; connection reused=false after 0 message(s), opened by smtp.attempt under smtp.dial under "send welcome mail"
	// smtp.message under "send receipt": accepted; connection reused=true after 1 message(s), opened by smtp.attempt under smtp.dial under "send welcome mail"
}
