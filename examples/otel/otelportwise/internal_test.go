package otelportwise

import (
	"crypto/tls"
	"errors"
	"slices"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/portwise/portwise/submit"
)

func TestOutcomeOf(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{nil, outcomeWon},
		{&submit.StepError{Step: "banner", Err: submit.ErrLostRace}, outcomeNotNeeded},
		{&submit.StepError{Err: submit.ErrDialEnded}, outcomeNotUsed},
		{&submit.StepError{Step: "auth", Err: submit.ErrAuthFailed}, outcomeFailed},
		{errors.New(submit.ErrLostRace.Error()), outcomeFailed}, // the sentinel, not its words
	}
	for _, tt := range tests {
		if got := outcomeOf(tt.err); got != tt.want {
			t.Errorf("outcomeOf(%#v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestSASLNames(t *testing.T) {
	many := make([]string, 40)
	for i := range many {
		many[i] = "X-" + string(rune('A'+i%26))
	}
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{"usual", []string{"PLAIN", "LOGIN", "XOAUTH2", "SCRAM-SHA-256"}, []string{"PLAIN", "LOGIN", "XOAUTH2", "SCRAM-SHA-256"}},
		{"none", nil, []string{}},
		{"hostile", []string{"PLAIN", "<script>", "A\x1b[31m", "WAY-TOO-LONG-FOR-A-SASL-NAME", "", "gssapi"}, []string{"PLAIN"}},
		{"bounded", many, many[:maxMechanisms]},
	}
	for _, tt := range tests {
		if got := saslNames(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("%s: saslNames = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestIsEnhancedCode(t *testing.T) {
	tests := map[string]bool{
		"5.7.8": true, "4.7.0": true, "2.0.0": true, "5.1.10": true, "5.123.456": true,
		"": false, "5.7": false, "6.7.8": false, "5.7.8.1": false, "5..8": false, "5.7.": false,
		"5.7.1234": false, "5.7.8 ": false, "5,7,8": false,
	}
	for in, want := range tests {
		if got := isEnhancedCode(in); got != want {
			t.Errorf("isEnhancedCode(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestTLSVersion(t *testing.T) {
	tests := map[uint16]string{tls.VersionTLS12: "1.2", tls.VersionTLS13: "1.3", tls.VersionTLS10: "1.0", 0x0305: "0x0305"}
	for v, want := range tests {
		if got := tlsVersion(v); got != want {
			t.Errorf("tlsVersion(%#x) = %q, want %q", v, got, want)
		}
	}
}

// The links to connections stay within their bound, forgetting the
// connection unused longest: one still carrying messages stays.
func TestConnLinksStayBounded(t *testing.T) {
	sc := func(id uint64) trace.SpanContext {
		return trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{byte(id), byte(id >> 8)}})
	}
	l := newConnLinks(3)
	for id := uint64(1); id <= 3; id++ {
		l.add(id, sc(id))
	}
	if got, ok := l.get(1); !ok || !got.Equal(sc(1)) { // 1 carries a message: it is the last used
		t.Fatalf("get(1) = %v, %v", got, ok)
	}
	l.add(4, sc(4)) // forgets 2
	l.add(5, trace.SpanContext{})
	for id, want := range map[uint64]bool{1: true, 2: false, 3: true, 4: true, 5: false} {
		if got, ok := l.get(id); ok != want || ok && !got.Equal(sc(id)) {
			t.Errorf("get(%d) = %v, %v; want it kept: %v", id, got, ok, want)
		}
	}
	for id := uint64(6); id < 1000; id++ {
		l.add(id, sc(id))
	}
	if len(l.ids) != 3 || l.order.Len() != 3 {
		t.Errorf("%d ids, %d in order; want 3", len(l.ids), l.order.Len())
	}
	if _, ok := l.get(999); !ok {
		t.Error("the last added is forgotten")
	}
}
