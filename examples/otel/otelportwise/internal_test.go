package otelportwise

import (
	"crypto/tls"
	"errors"
	"slices"
	"testing"

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
