package probe_test

import (
	"context"
	"crypto/tls"
	"io"
	"reflect"
	"testing"
	"time"

	"github.com/portwise/portwise/probe"
	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/tlsmode"
)

// The public contract of the package, checked by the compiler: a
// renamed or re-typed name breaks this file before it breaks a user.
var (
	_ = probe.Options{
		Candidates: []tlsmode.Candidate(nil),
		TLSConfig:  (*tls.Config)(nil),
		Timeout:    time.Duration(0),
		NetDialer:  submit.ContextDialer(nil),
		Auth:       submit.Auth(nil),
	}
	_ func(context.Context, string, probe.Options) (*probe.Report, error) = probe.Run
	_ func(*probe.Report, io.Writer) error                                = (*probe.Report).WriteText
)

// TestContractJSON checks the field types and JSON names of the report, which
// `portwise probe -json` prints and other programs parse.
func TestContractJSON(t *testing.T) {
	type field struct {
		name, tag string
		typ       any
	}
	cases := []struct {
		typ    any
		fields []field
	}{
		{probe.Report{}, []field{
			{"Host", "host", ""},
			{"Ports", "ports", []probe.PortReport(nil)},
			{"Recommendation", "recommendation", (*tlsmode.Candidate)(nil)},
			{"Advice", "advice", ""},
		}},
		{probe.PortReport{}, []field{
			{"Port", "port", 0},
			{"Mode", "mode", tlsmode.Mode(0)},
			{"Reachability", "reachability", ""},
			{"ConnectTime", "connect_ns", time.Duration(0)},
			{"Banner", "banner,omitempty", ""},
			{"EHLO", "ehlo,omitempty", []string(nil)},
			{"EHLOAfterTLS", "ehlo_after_tls,omitempty", []string(nil)},
			{"TLSVersion", "tls_version,omitempty", ""},
			{"CertSubjects", "cert_names,omitempty", []string(nil)},
			// omitempty never omits a struct; omitzero (Go 1.24) leaves
			// out the zero time as intended.
			{"CertNotAfter", "cert_not_after,omitzero", time.Time{}},
			{"CertVerified", "cert_verified", false},
			{"AuthMechs", "auth_mechs,omitempty", []string(nil)},
			{"AuthResult", "auth_result,omitempty", ""},
			{"Findings", "findings,omitempty", []probe.Finding(nil)},
		}},
		{probe.Finding{}, []field{
			{"Severity", "severity", ""},
			{"Code", "code", ""},
			{"Message", "message", ""},
		}},
		{tlsmode.Candidate{}, []field{
			{"Port", "port", 0},
			// A candidate without a mode (the Dialer detects it) leaves
			// the mode out.
			{"Mode", "mode,omitzero", tlsmode.Mode(0)},
		}},
	}
	for _, c := range cases {
		st := reflect.TypeOf(c.typ)
		for _, f := range c.fields {
			sf, ok := st.FieldByName(f.name)
			if !ok {
				t.Errorf("%s.%s is missing", st, f.name)
				continue
			}
			if want := reflect.TypeOf(f.typ); sf.Type != want {
				t.Errorf("%s.%s is a %s, want %s", st, f.name, sf.Type, want)
			}
			if got := sf.Tag.Get("json"); got != f.tag {
				t.Errorf("%s.%s has json tag %q, want %q", st, f.name, got, f.tag)
			}
		}
	}
}

// TestContractStrings checks the stable strings programs branch on.
func TestContractStrings(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{probe.ReachOpen, "open"},
		{probe.ReachRefused, "refused"},
		{probe.ReachTimeout, "timeout"},
		{probe.ReachDNSError, "dns-error"},
		{probe.SeverityInfo, "info"},
		{probe.SeverityWarning, "warning"},
		{probe.SeverityCritical, "critical"},
		{probe.CodePortBlocked, "port-blocked"},
		{probe.CodePortRefused, "port-refused"},
		{probe.CodeAuthBeforeTLS, "auth-before-tls"},
		{probe.CodeSTARTTLSMissing, "starttls-missing"},
		{probe.CodeSTARTTLSMasked, "starttls-masked"},
		{probe.CodeWrongTLSMode, "wrong-tls-mode"},
		{probe.CodeTLSLegacy, "tls-legacy-accepted"},
		{probe.CodeCertUntrusted, "cert-untrusted"},
		{probe.CodeCertNameMismatch, "cert-name-mismatch"},
		{probe.CodeCertExpired, "cert-expired"},
		{probe.CodeCertExpiring, "cert-expiring"},
		{probe.CodeAuthFailed, "auth-failed"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, the contract says %q", c.got, c.want)
		}
	}
	if probe.DefaultTimeout != 10*time.Second {
		t.Errorf("DefaultTimeout is %v; the contract says 10s", probe.DefaultTimeout)
	}
}
