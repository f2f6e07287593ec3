package otelportwise_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/portwise/portwise/examples/otel/otelportwise"
)

// harness is an SDK pipeline in memory: spans go to an exporter as they
// end, metrics to a ManualReader, and a span processor keeps the spans
// started and not yet ended.
type harness struct {
	tp       *sdktrace.TracerProvider
	exporter *tracetest.InMemoryExporter
	reader   *sdkmetric.ManualReader
	open     *openSpans
	inst     *otelportwise.Instrumentation
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{exporter: tracetest.NewInMemoryExporter(), reader: sdkmetric.NewManualReader(), open: &openSpans{m: map[trace.SpanID]string{}}}
	h.tp = sdktrace.NewTracerProvider(sdktrace.WithSyncer(h.exporter), sdktrace.WithSpanProcessor(h.open))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(h.reader))
	t.Cleanup(func() {
		_ = h.tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	inst, err := otelportwise.New(h.tp, mp)
	if err != nil {
		t.Fatal(err)
	}
	h.inst = inst
	return h
}

// parent starts a span for the test's own operation, the parent of the
// attempts.
func (h *harness) parent(name string) (context.Context, trace.Span) {
	return h.tp.Tracer("test").Start(context.Background(), name)
}

// attempts waits until no span is left open and at least n attempt spans
// have ended (a race's loser may report after Dial returns), then returns
// the attempt spans by start time.
func (h *harness) attempts(t *testing.T, n int) tracetest.SpanStubs {
	t.Helper()
	return h.ended(t, otelportwise.SpanName, n)
}

// ended waits until no span is left open and at least n spans called
// name have ended, then returns those by start time; name "" is every
// span.
func (h *harness) ended(t *testing.T, name string, n int) tracetest.SpanStubs {
	t.Helper()
	var got tracetest.SpanStubs
	deadline := time.Now().Add(10 * time.Second)
	for {
		got = named(h.exporter.GetSpans(), name)
		open := h.open.names()
		if len(open) == 0 && len(got) >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: %d %q spans ended, want %d; still open: %v", len(got), name, n, open)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return got
}

// named returns the spans called name ("": all), by start time.
func named(spans tracetest.SpanStubs, name string) tracetest.SpanStubs {
	var got tracetest.SpanStubs
	for _, s := range spans {
		if name == "" || s.Name == name {
			got = append(got, s)
		}
	}
	sort.SliceStable(got, func(i, j int) bool { return got[i].StartTime.Before(got[j].StartTime) })
	return got
}

// openSpans is a SpanProcessor that knows which spans have started and
// not ended.
type openSpans struct {
	mu sync.Mutex
	m  map[trace.SpanID]string
}

func (o *openSpans) OnStart(_ context.Context, s sdktrace.ReadWriteSpan) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.m[s.SpanContext().SpanID()] = s.Name()
}

func (o *openSpans) OnEnd(s sdktrace.ReadOnlySpan) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.m, s.SpanContext().SpanID())
}

func (o *openSpans) Shutdown(context.Context) error   { return nil }
func (o *openSpans) ForceFlush(context.Context) error { return nil }

func (o *openSpans) names() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var names []string
	for _, n := range o.m {
		names = append(names, n)
	}
	return names
}

// attrs returns a span's or an event's attributes as a map of their
// values' strings.
func attrs(kvs []attribute.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.String()
	}
	return m
}

func eventNames(s tracetest.SpanStub) []string {
	var names []string
	for _, e := range s.Events {
		names = append(names, e.Name)
	}
	return names
}

// event returns the attributes of s's first event called name, or nil.
func event(s tracetest.SpanStub, name string) map[string]string {
	for _, e := range s.Events {
		if e.Name == name {
			return attrs(e.Attributes)
		}
	}
	return nil
}

// wantAttrs checks that got has every key of want with its value, and
// none of the keys in absent.
func wantAttrs(t *testing.T, what string, got, want map[string]string, absent ...string) {
	t.Helper()
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s: %s = %q (set %v), want %q", what, k, g, ok, v)
		}
	}
	for _, k := range absent {
		if g, ok := got[k]; ok {
			t.Errorf("%s: %s = %q, want it unset", what, k, g)
		}
	}
}

// leaks returns where any of words appears in what was exported: a span's
// name, status, attributes, events and links, a metric's attributes.
func (h *harness) leaks(t *testing.T, words ...string) []string {
	t.Helper()
	var found []string
	check := func(where, text string) {
		for _, w := range words {
			if strings.Contains(text, w) {
				found = append(found, fmt.Sprintf("%q in %s", w, where))
			}
		}
	}
	checkKVs := func(where string, kvs []attribute.KeyValue) {
		for _, kv := range kvs {
			check(where+" "+string(kv.Key), string(kv.Key)+"="+kv.Value.String())
		}
	}
	for _, s := range h.exporter.GetSpans() {
		check("span name", s.Name)
		check(s.Name+" status", s.Status.Description)
		checkKVs(s.Name, s.Attributes)
		for _, e := range s.Events {
			check(s.Name+" event name", e.Name)
			checkKVs(s.Name+" event "+e.Name, e.Attributes)
		}
		for _, l := range s.Links {
			checkKVs(s.Name+" link", l.Attributes)
		}
	}
	for name, points := range h.metrics(t) {
		for _, p := range points {
			for k, v := range p.attrs {
				check(name+" "+k, k+"="+v)
			}
		}
	}
	return found
}

// point is one data point of a metric, summed up: a counter's value or a
// histogram's count.
type point struct {
	attrs map[string]string
	value int64
	sum   float64 // a histogram's sum
}

// metrics collects every metric, by name.
func (h *harness) metrics(t *testing.T) map[string][]point {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := h.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string][]point{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != otelportwise.ScopeName {
			t.Errorf("scope %q, want %q", sm.Scope.Name, otelportwise.ScopeName)
		}
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range d.DataPoints {
					out[m.Name] = append(out[m.Name], point{attrs: attrs(dp.Attributes.ToSlice()), value: dp.Value})
				}
			case metricdata.Histogram[float64]:
				for _, dp := range d.DataPoints {
					out[m.Name] = append(out[m.Name], point{attrs: attrs(dp.Attributes.ToSlice()), value: int64(dp.Count), sum: dp.Sum})
				}
			default:
				t.Errorf("metric %s has data of type %T", m.Name, m.Data)
			}
		}
	}
	return out
}

// total adds up the points of a metric whose attributes include match.
func total(points []point, match map[string]string) int64 {
	var n int64
next:
	for _, p := range points {
		for k, v := range match {
			if p.attrs[k] != v {
				continue next
			}
		}
		n += p.value
	}
	return n
}

// dump renders spans and metrics as text, for failures and for
// go test -v (README.md quotes it). Spans are numbered in the order they
// started and drawn under their parent when it is among them; a link
// names the span it points to by its number.
func dump(spans tracetest.SpanStubs, metrics map[string][]point) string {
	spans = named(spans, "")
	num := map[trace.SpanID]int{}
	children := map[trace.SpanID][]int{}
	var roots []int
	for i, s := range spans {
		num[s.SpanContext.SpanID()] = i + 1
	}
	for i, s := range spans {
		if _, ok := num[s.Parent.SpanID()]; ok {
			children[s.Parent.SpanID()] = append(children[s.Parent.SpanID()], i)
		} else {
			roots = append(roots, i)
		}
	}
	var b strings.Builder
	var draw func(i int, indent string)
	draw = func(i int, indent string) {
		s := spans[i]
		fmt.Fprintf(&b, "%s#%d %s (%s, %v)", indent, i+1, s.Name, s.SpanKind, s.EndTime.Sub(s.StartTime).Round(time.Microsecond))
		if s.Status.Code != 0 {
			fmt.Fprintf(&b, " status=%s %q", s.Status.Code, s.Status.Description)
		}
		b.WriteString("\n")
		for _, l := range s.Links {
			if n, ok := num[l.SpanContext.SpanID()]; ok {
				fmt.Fprintf(&b, "%s    link -> #%d\n", indent, n)
			} else {
				fmt.Fprintf(&b, "%s    link -> %v\n", indent, l.SpanContext.SpanID())
			}
		}
		for _, kv := range sortedKVs(s.Attributes) {
			fmt.Fprintf(&b, "%s    %s\n", indent, kv)
		}
		for _, e := range s.Events {
			fmt.Fprintf(&b, "%s  +%-9v %s", indent, e.Time.Sub(s.StartTime).Round(time.Microsecond), e.Name)
			for _, kv := range sortedKVs(e.Attributes) {
				if strings.HasPrefix(kv, "exception.message=") {
					kv = "exception.message=(the status's)"
				}
				fmt.Fprintf(&b, " %s", kv)
			}
			b.WriteString("\n")
		}
		for _, c := range children[s.SpanContext.SpanID()] {
			draw(c, indent+"  ")
		}
	}
	for _, i := range roots {
		draw(i, "")
	}
	var names []string
	for name := range metrics {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		for _, p := range metrics[name] {
			var kvs []string
			for k, v := range p.attrs {
				kvs = append(kvs, k+"="+v)
			}
			slices.Sort(kvs)
			if strings.HasSuffix(name, ".duration") {
				fmt.Fprintf(&b, "metric %s{%s} count=%d sum=%.4fs\n", name, strings.Join(kvs, ","), p.value, p.sum)
			} else {
				fmt.Fprintf(&b, "metric %s{%s} %d\n", name, strings.Join(kvs, ","), p.value)
			}
		}
	}
	return b.String()
}

func sortedKVs(kvs []attribute.KeyValue) []string {
	out := make([]string, 0, len(kvs))
	for _, kv := range kvs {
		out = append(out, string(kv.Key)+"="+kv.Value.String())
	}
	slices.Sort(out)
	return out
}
