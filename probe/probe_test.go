package probe_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portwise/portwise/probe"
	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/submit/submittest/script"
	"github.com/portwise/portwise/tlsmode"
)

// host is what the probes dial; the certificates name "localhost", which
// ClientTLSConfig sets as the ServerName.
const host = "127.0.0.1"

// run probes the given candidates of srv with a short timeout.
func run(t *testing.T, srv *submittest.Server, o probe.Options, cands ...tlsmode.Candidate) *probe.Report {
	t.Helper()
	o.Candidates = cands
	if o.TLSConfig == nil {
		o.TLSConfig = srv.ClientTLSConfig()
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := probe.Run(ctx, host, o)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(rep.Ports) != len(cands) {
		t.Fatalf("got %d port reports for %d candidates", len(rep.Ports), len(cands))
	}
	return rep
}

func codes(r probe.PortReport) []string {
	var out []string
	for _, f := range r.Findings {
		out = append(out, f.Severity+" "+f.Code)
	}
	return out
}

func TestRunFindsEachProblem(t *testing.T) {
	t.Parallel()
	srv := submittest.NewServer(t)
	type listen func() tlsmode.Candidate
	with := func(mode tlsmode.Mode, o submittest.Options, faults ...submittest.Fault) listen {
		return func() tlsmode.Candidate { return srv.ListenWith(mode, o, faults...) }
	}
	plain := submittest.Options{}
	cases := []struct {
		name     string
		addr     listen
		mode     tlsmode.Mode // the candidate's configured mode
		reach    string
		findings []string // severity and code, in order
		usable   bool
		workMode tlsmode.Mode // the mode the report says worked
		msg      string       // part of a finding's message
		legacy   string
		timeout  time.Duration // 0: 10s; short only where the wait is the point
	}{
		{name: "good STARTTLS", addr: func() tlsmode.Candidate { return srv.StartTLS }, mode: tlsmode.StartTLS, reach: "open", usable: true},
		{name: "good implicit", addr: func() tlsmode.Candidate { return srv.Implicit }, mode: tlsmode.Implicit, reach: "open", usable: true},
		{name: "STARTTLS stripped", addr: with(tlsmode.StartTLS, plain, submittest.StripSTARTTLS), mode: tlsmode.StartTLS, reach: "open",
			findings: []string{"critical starttls-missing"}, msg: "does not offer STARTTLS"},
		{name: "STARTTLS masked", addr: with(tlsmode.StartTLS, plain, submittest.MaskSTARTTLS), mode: tlsmode.StartTLS, reach: "open",
			findings: []string{"critical starttls-masked"}, msg: `"XXXXXXXA"`},
		{name: "STARTTLS rejected", addr: with(tlsmode.StartTLS, plain, submittest.RejectSTARTTLS), mode: tlsmode.StartTLS, reach: "open",
			findings: []string{"critical starttls-missing"}, msg: "454"},
		{name: "response injection", addr: with(tlsmode.StartTLS, plain, submittest.InjectAfterSTARTTLS), mode: tlsmode.StartTLS, reach: "open",
			findings: []string{"critical starttls-injection"}},
		{name: "AUTH before TLS", addr: with(tlsmode.StartTLS, plain, submittest.AuthBeforeTLS), mode: tlsmode.StartTLS, reach: "open", usable: true,
			findings: []string{"critical auth-before-tls"}, msg: "AUTH PLAIN LOGIN before TLS"},
		{name: "certificate expiring", addr: with(tlsmode.Implicit, submittest.Options{CertNotAfter: time.Now().Add(5*24*time.Hour + time.Hour)}), mode: tlsmode.Implicit, reach: "open", usable: true,
			findings: []string{"warning cert-expiring"}, msg: "expires in 5 days"},
		{name: "certificate expired", addr: with(tlsmode.Implicit, submittest.Options{CertExpired: true}), mode: tlsmode.Implicit, reach: "open",
			findings: []string{"critical cert-expired"}},
		{name: "wrong name", addr: with(tlsmode.StartTLS, submittest.Options{CertName: "mail.example.net"}), mode: tlsmode.StartTLS, reach: "open",
			findings: []string{"critical cert-name-mismatch"}, msg: `covers mail.example.net, not "localhost"`},
		{name: "self-signed", addr: with(tlsmode.Implicit, submittest.Options{SelfSigned: true}), mode: tlsmode.Implicit, reach: "open",
			findings: []string{"critical cert-untrusted"}, msg: "self-signed"},
		{name: "TLS 1.1 only", addr: with(tlsmode.StartTLS, submittest.Options{MaxTLSVersion: tls.VersionTLS11}), mode: tlsmode.StartTLS, reach: "open",
			findings: []string{"critical tls-legacy-accepted"}, msg: "only TLS 1.1", legacy: "TLS 1.1"},
		{name: "TLS 1.0 accepted beside 1.3", addr: with(tlsmode.Implicit, submittest.Options{MinTLSVersion: tls.VersionTLS10}), mode: tlsmode.Implicit, reach: "open", usable: true,
			findings: []string{"warning tls-legacy-accepted"}, msg: "also accepts TLS 1.0", legacy: "TLS 1.0"},
		{name: "TLS 1.0 only", addr: with(tlsmode.Implicit, submittest.Options{MinTLSVersion: tls.VersionTLS10, MaxTLSVersion: tls.VersionTLS10}), mode: tlsmode.Implicit, reach: "open",
			findings: []string{"critical tls-legacy-accepted"}, msg: "only TLS 1.0", legacy: "TLS 1.0"},
		{name: "TLS alert", addr: func() tlsmode.Candidate { return srv.ListenScript(plain, script.Send("\x15\x03\x03\x00\x02\x02\x50")) }, mode: tlsmode.Implicit, reach: "open",
			findings: []string{"critical tls-handshake-failed"}, msg: `the server refused the TLS handshake with the alert "internal error"`},
		{name: "no AUTH after TLS", addr: with(tlsmode.StartTLS, submittest.Options{NoAuthAfterTLS: true}), mode: tlsmode.StartTLS, reach: "open", usable: true,
			findings: []string{"warning auth-missing"}, msg: "offers no AUTH after TLS"},
		{name: "only NTLM", addr: with(tlsmode.StartTLS, submittest.Options{AuthMechanisms: []string{"NTLM", "GSSAPI"}}), mode: tlsmode.StartTLS, reach: "open", usable: true,
			findings: []string{"warning auth-unusable"}, msg: "offers only AUTH NTLM GSSAPI after TLS"},
		{name: "blackholed", addr: with(tlsmode.StartTLS, plain, submittest.Blackhole), mode: tlsmode.StartTLS, reach: "timeout",
			findings: []string{"warning port-blocked"}, msg: "sent nothing", timeout: 2 * time.Second},
		{name: "blackholed implicit", addr: with(tlsmode.Implicit, plain, submittest.Blackhole), mode: tlsmode.Implicit, reach: "timeout",
			findings: []string{"warning port-blocked"}, timeout: 2 * time.Second},
		{name: "refused", addr: with(tlsmode.StartTLS, plain, submittest.Refuse), mode: tlsmode.StartTLS, reach: "refused",
			findings: []string{"info port-refused"}, msg: "nothing listens"},
		{name: "clear on implicit port", addr: with(tlsmode.Implicit, plain, submittest.ClearOnImplicit), mode: tlsmode.Implicit, reach: "open", usable: true,
			findings: []string{"warning wrong-tls-mode"}, workMode: tlsmode.StartTLS, msg: "speaks STARTTLS"},
		{name: "STARTTLS configured on implicit port", addr: func() tlsmode.Candidate { return srv.Implicit }, mode: tlsmode.StartTLS, reach: "open", usable: true,
			findings: []string{"warning wrong-tls-mode"}, workMode: tlsmode.Implicit, msg: "expects implicit TLS", timeout: 3 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := tlsmode.Candidate{Port: (tc.addr()).Port, Mode: tc.mode}
			rep := run(t, srv, probe.Options{Timeout: tc.timeout}, c)
			r := rep.Ports[0]
			if r.Reachability != tc.reach {
				t.Errorf("Reachability = %q, want %q", r.Reachability, tc.reach)
			}
			if got := codes(r); !slices.Equal(got, tc.findings) {
				t.Errorf("findings = %q, want %q\n%+v", got, tc.findings, r.Findings)
			}
			if r.Usable != tc.usable {
				t.Errorf("Usable = %v, want %v (error %q)", r.Usable, tc.usable, r.Error)
			}
			want := tc.workMode
			if want == 0 {
				want = tc.mode
			}
			if r.Mode != want || r.ConfiguredMode != tc.mode {
				t.Errorf("Mode, ConfiguredMode = %v, %v; want %v, %v", r.Mode, r.ConfiguredMode, want, tc.mode)
			}
			if tc.msg != "" && !strings.Contains(findingText(r), tc.msg) {
				t.Errorf("no finding mentions %q:\n%s", tc.msg, findingText(r))
			}
			if r.TLSLegacy != tc.legacy {
				t.Errorf("TLSLegacy = %q, want %q", r.TLSLegacy, tc.legacy)
			}
			switch {
			case tc.usable:
				if rep.Recommendation == nil || *rep.Recommendation != (tlsmode.Candidate{Port: c.Port, Mode: want}) {
					t.Errorf("Recommendation = %v, want %d/%v", rep.Recommendation, c.Port, want)
				}
				if r.TLSVersion != "TLS 1.3" || !r.CertVerified || len(r.EHLOAfterTLS) == 0 || r.Error != "" {
					t.Errorf("usable port: TLSVersion %q, CertVerified %v, EHLOAfterTLS %q, Error %q", r.TLSVersion, r.CertVerified, r.EHLOAfterTLS, r.Error)
				}
			default:
				if rep.Recommendation != nil {
					t.Errorf("Recommendation = %v, want none", rep.Recommendation)
				}
				if r.Error == "" || rep.Advice == "" {
					t.Errorf("unusable port without Error (%q) or Advice (%q)", r.Error, rep.Advice)
				}
			}
		})
	}
}

func findingText(r probe.PortReport) string {
	var b strings.Builder
	for _, f := range r.Findings {
		b.WriteString(f.Message + "\n")
	}
	return b.String()
}

func TestRunReportsServerDetails(t *testing.T) {
	t.Parallel()
	srv := submittest.NewServer(t, submittest.Options{EnableDSN: true, EnableSMTPUTF8: true, EnableREQUIRETLS: true, MaxMessageBytes: 10 << 20})
	c := tlsmode.Candidate{Port: srv.StartTLS.Port, Mode: tlsmode.StartTLS}
	r := run(t, srv, probe.Options{}, c).Ports[0]
	checks := []struct {
		what string
		ok   bool
	}{
		{"banner", strings.Contains(r.Banner, "localhost")},
		{"STARTTLS before TLS", slices.Contains(r.EHLO, "STARTTLS")},
		{"no AUTH before TLS", r.AuthMechsBeforeTLS == nil},
		{"AUTH after TLS", slices.Equal(r.AuthMechs, []string{"PLAIN", "LOGIN"})},
		{"SIZE", r.SizeLimit == 10<<20},
		{"PIPELINING", r.Pipelining},
		{"CHUNKING", r.Chunking},
		{"SMTPUTF8", r.SMTPUTF8},
		{"DSN", r.DSN},
		{"REQUIRETLS (after TLS only)", r.RequireTLS && !slices.Contains(r.EHLO, "REQUIRETLS")},
		{"cipher", strings.HasPrefix(r.TLSCipher, "TLS_")},
		{"names", slices.Equal(r.CertSubjects, []string{"localhost", "127.0.0.1", "::1"})},
		{"issuer", strings.Contains(r.CertIssuer, "portwise submittest CA")},
		{"chain", len(r.CertChain) == 1 && strings.Contains(r.CertChain[0], "localhost")},
		{"days left", r.CertDaysLeft >= 364 && r.CertDaysLeft <= 366},
		{"not after", time.Until(r.CertNotAfter) > 360*24*time.Hour},
		{"no legacy TLS", r.TLSLegacy == ""},
		{"steps", len(r.Steps) >= 6 && r.Steps[0].Name == "connect"},
		{"elapsed", r.Elapsed >= r.ConnectTime && r.ConnectTime > 0},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: not as expected in %+v", c.what, r)
		}
	}
}

func TestRunRecommendsInPolicyOrder(t *testing.T) {
	t.Parallel()
	srv := submittest.NewServer(t)
	blocked := srv.Listen(tlsmode.StartTLS, submittest.Blackhole)
	stripped := srv.Listen(tlsmode.StartTLS, submittest.StripSTARTTLS)
	leaky := srv.Listen(tlsmode.StartTLS, submittest.AuthBeforeTLS)
	cands := []tlsmode.Candidate{
		{Port: blocked.Port, Mode: tlsmode.StartTLS},
		{Port: stripped.Port, Mode: tlsmode.StartTLS},
		{Port: leaky.Port, Mode: tlsmode.StartTLS},
		{Port: srv.Implicit.Port, Mode: tlsmode.Implicit},
		{Port: srv.StartTLS.Port, Mode: tlsmode.StartTLS},
	}
	var mu sync.Mutex
	var seen []int
	rep := run(t, srv, probe.Options{Timeout: 4 * time.Second, OnPort: func(r probe.PortReport) {
		mu.Lock()
		seen = append(seen, r.Port)
		mu.Unlock()
	}}, cands...)
	// The leaky port works, but a port without a critical finding comes first.
	if want := cands[3]; rep.Recommendation == nil || *rep.Recommendation != want {
		t.Errorf("Recommendation = %v, want %v", rep.Recommendation, want)
	}
	if !strings.HasPrefix(rep.Advice, "Use "+cands[3].String()+": ") {
		t.Errorf("Advice = %q", rep.Advice)
	}
	for i, r := range rep.Ports {
		if r.Port != cands[i].Port {
			t.Errorf("Ports[%d] is %d, want candidate order", i, r.Port)
		}
	}
	slices.Sort(seen)
	want := []int{}
	for _, c := range cands {
		want = append(want, c.Port)
	}
	slices.Sort(want)
	if !slices.Equal(seen, want) {
		t.Errorf("OnPort saw %v, want each of %v once", seen, want)
	}
	// Nothing but EHLO, STARTTLS and QUIT ever travelled in clear.
	for _, c := range srv.Conns() {
		for _, l := range c.Clear {
			verb, _, _ := strings.Cut(l, " ")
			if verb != "EHLO" && verb != "STARTTLS" && verb != "QUIT" {
				t.Errorf("%s: client sent %q in clear", c.Addr, l)
			}
		}
		if c.AuthAttempts > 0 {
			t.Errorf("%s: the probe tried AUTH without being asked", c.Addr)
		}
	}
}

func TestRunChecksAuthOnRecommendedPortOnly(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, pass, result string
		ready              bool
	}{
		{"accepted", "pass", "ok", true},
		{"rejected", "wrong", "failed", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := submittest.NewServer(t)
			leaky := srv.Listen(tlsmode.StartTLS, submittest.AuthBeforeTLS)
			cands := []tlsmode.Candidate{
				{Port: leaky.Port, Mode: tlsmode.StartTLS},
				{Port: srv.Implicit.Port, Mode: tlsmode.Implicit},
				{Port: srv.StartTLS.Port, Mode: tlsmode.StartTLS},
			}
			rep := run(t, srv, probe.Options{Auth: submit.PasswordAuth("user", tc.pass)}, cands...)
			r := rep.Ports[1]
			if r.AuthResult != tc.result || rep.Ready() != tc.ready {
				t.Fatalf("AuthResult %q, Ready %v; want %q, %v (findings %+v)", r.AuthResult, rep.Ready(), tc.result, tc.ready, r.Findings)
			}
			if rep.Recommendation == nil || *rep.Recommendation != cands[1] {
				t.Errorf("Recommendation = %v, want %v", rep.Recommendation, cands[1])
			}
			if tc.ready && r.AuthMechanism != "PLAIN" {
				t.Errorf("AuthMechanism = %q, want PLAIN", r.AuthMechanism)
			}
			if !tc.ready && (!slices.Contains(codes(r), "critical auth-failed") || !strings.Contains(rep.Advice, "authentication failed")) {
				t.Errorf("findings %q, advice %q: want auth-failed", codes(r), rep.Advice)
			}
			for _, o := range []probe.PortReport{rep.Ports[0], rep.Ports[2]} {
				if o.AuthResult != "" {
					t.Errorf("port %d: AuthResult %q; only the recommended port is tried", o.Port, o.AuthResult)
				}
			}
			attempts := 0
			for _, c := range srv.Conns() {
				attempts += c.AuthAttempts
				for _, l := range c.Clear {
					if strings.HasPrefix(strings.ToUpper(l), "AUTH") {
						t.Errorf("%s: AUTH sent in clear: %q", c.Addr, l)
					}
				}
			}
			if attempts != 1 {
				t.Errorf("%d AUTH attempts, want exactly 1", attempts)
			}
			if strings.Contains(findingText(r)+rep.Advice, tc.pass) && tc.pass != "pass" {
				t.Errorf("the password appears in the report")
			}
		})
	}
}

func TestRunNothingAnswers(t *testing.T) {
	t.Parallel()
	srv := submittest.NewServer(t)
	refused := srv.Listen(tlsmode.StartTLS, submittest.Refuse)
	refused2 := srv.Listen(tlsmode.Implicit, submittest.Refuse)
	rep := run(t, srv, probe.Options{},
		tlsmode.Candidate{Port: refused.Port, Mode: tlsmode.StartTLS},
		tlsmode.Candidate{Port: refused2.Port, Mode: tlsmode.Implicit})
	if rep.Recommendation != nil || rep.Ready() {
		t.Errorf("Recommendation = %v, want none", rep.Recommendation)
	}
	if !strings.Contains(rep.Advice, "No submission port of 127.0.0.1 answered") || !strings.Contains(rep.Advice, "refused") {
		t.Errorf("Advice = %q", rep.Advice)
	}
}

// dnsFailure is a dialer for a name that does not resolve: DNS is the one
// thing the loopback-only test network cannot show for real.
type dnsFailure struct{}

func (dnsFailure) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return nil, &net.OpError{Op: "dial", Net: network, Err: &net.DNSError{Err: "no such host", Name: "mail.invalid", IsNotFound: true}}
}

func TestRunDNSFailure(t *testing.T) {
	rep, err := probe.Run(context.Background(), "mail.invalid", probe.Options{NetDialer: dnsFailure{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Ports {
		if r.Reachability != probe.ReachDNSError || !slices.Equal(codes(r), []string{"critical dns-error"}) {
			t.Errorf("port %d: %q %q", r.Port, r.Reachability, codes(r))
		}
	}
	if len(rep.Ports) != 4 || !strings.Contains(rep.Advice, "does not resolve") {
		t.Errorf("%d ports, advice %q", len(rep.Ports), rep.Advice)
	}
}

func TestRunRejectsBadInput(t *testing.T) {
	for _, tc := range []struct {
		host string
		o    probe.Options
	}{
		{"", probe.Options{}},
		{"a b", probe.Options{}},
		{"host", probe.Options{Candidates: []tlsmode.Candidate{{Port: 0, Mode: tlsmode.StartTLS}}}},
		{"host", probe.Options{Candidates: []tlsmode.Candidate{{Port: 587, Mode: 9}}}},
		{"host", probe.Options{Candidates: []tlsmode.Candidate{}}},
	} {
		if _, err := probe.Run(context.Background(), tc.host, tc.o); err == nil {
			t.Errorf("Run(%q, %+v) succeeded", tc.host, tc.o)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := probe.Run(ctx, "host", probe.Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Run: %v", err)
	}
}

func TestRunHostPortChecksOnePort(t *testing.T) {
	t.Parallel()
	srv := submittest.NewServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := probe.Run(ctx, srv.Addr(srv.Implicit), probe.Options{TLSConfig: srv.ClientTLSConfig(), Ports: []int{1}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Ports) != 1 || rep.Ports[0].Port != srv.Implicit.Port || rep.Ports[0].ConfiguredMode != tlsmode.StartTLS {
		t.Fatalf("ports %+v", rep.Ports)
	}
	// ForPort says STARTTLS for an odd port; the probe finds it is implicit.
	if rep.Recommendation == nil || rep.Recommendation.Mode != tlsmode.Implicit {
		t.Errorf("Recommendation = %v", rep.Recommendation)
	}
}

// TestStepsShareRunsClock: every step says when it began, counted from the
// start of Run, so that the ports can be drawn side by side: a port's steps
// follow one another, and the AUTH check, which runs once every port is
// done, begins after the last of them ended.
func TestStepsShareRunsClock(t *testing.T) {
	t.Parallel()
	srv := submittest.NewServer(t)
	cands := []tlsmode.Candidate{{Port: srv.StartTLS.Port, Mode: tlsmode.StartTLS}, {Port: srv.Implicit.Port, Mode: tlsmode.Implicit}}
	t0 := time.Now()
	rep := run(t, srv, probe.Options{Auth: submit.PasswordAuth("user", "pass")}, cands...)
	total := time.Since(t0)
	var lastEnd, authStart time.Duration
	for _, p := range rep.Ports {
		var prev *probe.Step
		for i, st := range p.Steps {
			if st.Start < 0 || st.Elapsed < 0 || st.Start+st.Elapsed > total {
				t.Errorf("port %d step %s: start %v, elapsed %v, outside the run's %v", p.Port, st.Name, st.Start, st.Elapsed, total)
			}
			if st.Attempt == "auth" {
				authStart = st.Start
				continue
			}
			if prev != nil && prev.Attempt == st.Attempt && st.Start < prev.Start+prev.Elapsed {
				t.Errorf("port %d: %s began at %v, before %s ended at %v", p.Port, st.Name, st.Start, prev.Name, prev.Start+prev.Elapsed)
			}
			lastEnd = max(lastEnd, st.Start+st.Elapsed)
			prev = &p.Steps[i]
		}
	}
	if authStart == 0 || authStart < lastEnd {
		t.Errorf("the AUTH check began at %v; the ports' checks ended at %v", authStart, lastEnd)
	}
}
