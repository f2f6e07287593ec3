package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/portwise/portwise/internal/plan"
	"github.com/portwise/portwise/internal/untrusted"
	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/tlsmode"
)

// DefaultTimeout bounds each connection to a port when Options.Timeout is 0.
const DefaultTimeout = 10 * time.Second

// ExpiringWithin is how close to its end a certificate must be for the
// cert-expiring finding.
const ExpiringWithin = 14 * 24 * time.Hour

// Options configure Run. The zero value probes 587, 465, 2525 and 25 with
// the system roots and a 10 s timeout per port.
type Options struct {
	// Candidates are the ports to check with the mode each is expected to
	// speak, in order of preference. nil means DefaultCandidates().
	Candidates []tlsmode.Candidate
	// Ports are extra ports to check after Candidates, each with
	// tlsmode.ForPort's mode; ports already in Candidates are skipped.
	Ports []int
	// TLSConfig is cloned for every handshake. Its RootCAs (nil: the
	// system roots) and ServerName (default: the host) are what
	// certificates are checked against; its verification callbacks are not
	// used, since probe must see a certificate that fails in order to
	// describe it.
	TLSConfig *tls.Config
	// Timeout bounds each connection made to a port; 0 means 10s. A port
	// whose first connection got an answer may be connected to again (the
	// other TLS mode, the legacy TLS check), each time with this budget.
	Timeout time.Duration
	// NetDialer makes the TCP connections; nil means a *net.Dialer.
	NetDialer submit.ContextDialer
	// Auth, when set, is tried on the recommended port through a
	// submit.Dialer: only over verified TLS, at most once.
	Auth submit.Auth
	// LocalName is the EHLO name; "" means "localhost".
	LocalName string
	// Discover, when set and the host has no port, makes Run find servers
	// for the host first (for RFC 6186 SRV records, a discover.SRV's
	// Lookup) and check every one's ports too, ahead of the candidates on
	// the name itself, as submit.Dialer does with the same option. Their
	// reports carry Host. What went wrong finding them (a target outside
	// discover.SRV.AllowedDomains, not contacted) is in
	// Report.DiscoveryError.
	Discover func(ctx context.Context, host string) ([]submit.Server, error)
	// OnPort, when set, is called with each port's report as soon as that
	// port is done (before the authentication check), one call at a time,
	// so a command can show progress.
	OnPort func(PortReport)
}

// DefaultCandidates returns the ports Run checks when Options.Candidates is
// nil, in order of preference: 587/starttls, 465/implicit, 2525/starttls
// and 25/starttls. 25 is for relaying between servers and is blocked by
// most cloud providers, so it comes last.
func DefaultCandidates() []tlsmode.Candidate {
	return append(tlsmode.Default(), tlsmode.Candidate{Port: 25, Mode: tlsmode.StartTLS})
}

// Report is the outcome of Run. It marshals to JSON with the documented,
// stable field names; Recommendation marshals as {"port":587,"mode":"starttls"}.
type Report struct {
	Host  string       `json:"host"`
	Ports []PortReport `json:"ports"` // in the order of the candidates
	// Recommendation is the best candidate to configure; nil when no port
	// offers a usable secure session. When authentication was checked and
	// failed, the port is still recommended and Ready reports false.
	Recommendation *tlsmode.Candidate `json:"recommendation"`
	// RecommendedHost is the SRV target the recommendation is on, when it
	// is not Host (Options.Discovery).
	RecommendedHost string `json:"recommended_host,omitempty"`
	Advice          string `json:"advice"` // one sentence for a person
	// DiscoveryError says why SRV discovery found nothing usable or
	// refused a target (Options.Discovery); empty otherwise.
	DiscoveryError string `json:"discovery_error,omitempty"`
}

// Reachability values of a PortReport.
const (
	ReachOpen        = "open"        // the TCP connection was accepted and the server answered
	ReachRefused     = "refused"     // nothing listens on the port
	ReachTimeout     = "timeout"     // no connection, or no answer at all, within the timeout
	ReachDNSError    = "dns-error"   // the host name did not resolve
	ReachUnreachable = "unreachable" // any other network error (no route, reset before a greeting)
)

// PortReport is what one port showed. Fields that were not observed keep
// their zero value; booleans and numbers are always present in JSON.
type PortReport struct {
	// Host is the SRV target this port belongs to (Options.Discovery);
	// empty for the host Run was given.
	Host string `json:"host,omitempty"`
	Port int    `json:"port"`
	// Mode is the mode that worked, or else the one tried; it differs from
	// ConfiguredMode when the port speaks the other mode (wrong-tls-mode).
	Mode           tlsmode.Mode  `json:"mode"`
	ConfiguredMode tlsmode.Mode  `json:"configured_mode"`
	Reachability   string        `json:"reachability"`
	ConnectTime    time.Duration `json:"connect_ns"`
	Elapsed        time.Duration `json:"elapsed_ns"` // the whole check of this port
	// Usable reports a secure session: TLS 1.2 or later, a certificate
	// that verifies for the host, EHLO read after TLS. submit.Dialer would
	// succeed here.
	Usable bool   `json:"usable"`
	Error  string `json:"error,omitempty"` // why the port is not usable, when it is not

	Banner       string   `json:"banner,omitempty"`
	EHLO         []string `json:"ehlo,omitempty"`           // capabilities before TLS
	EHLOAfterTLS []string `json:"ehlo_after_tls,omitempty"` // capabilities after TLS
	// AuthMechsBeforeTLS are the mechanisms advertised in clear: a
	// client that trusts them sends its password unencrypted.
	AuthMechsBeforeTLS []string `json:"auth_mechs_before_tls,omitempty"`
	// Extensions of the capabilities that count (after TLS; in clear when
	// there was no TLS).
	SizeLimit  int64 `json:"size_limit"` // SIZE; 0: none advertised or no limit
	Pipelining bool  `json:"pipelining"`
	SMTPUTF8   bool  `json:"smtputf8"`
	Chunking   bool  `json:"chunking"`
	RequireTLS bool  `json:"requiretls"`
	DSN        bool  `json:"dsn"`

	TLSVersion string `json:"tls_version,omitempty"` // "TLS 1.3"
	TLSCipher  string `json:"tls_cipher,omitempty"`  // "TLS_AES_128_GCM_SHA256"
	// TLSLegacy is the version a second handshake limited to TLS 1.0 and
	// 1.1 negotiated ("TLS 1.1"); "" when the server refused it or it was
	// not tried.
	TLSLegacy    string    `json:"tls_legacy,omitempty"`
	CertSubjects []string  `json:"cert_names,omitempty"` // SANs of the leaf (CN= when it has none)
	CertIssuer   string    `json:"cert_issuer,omitempty"`
	CertChain    []string  `json:"cert_chain,omitempty"` // subjects, leaf first, as the server sent them
	CertNotAfter time.Time `json:"cert_not_after,omitzero"`
	CertDaysLeft int       `json:"cert_days_left"` // whole days until CertNotAfter; negative once expired
	// CertVerified reports that the chain verifies against the roots,
	// is in its validity period and covers the host name.
	CertVerified bool   `json:"cert_verified"`
	CertError    string `json:"cert_error,omitempty"`
	OCSPStapled  bool   `json:"ocsp_stapled"`

	AuthMechs     []string `json:"auth_mechs,omitempty"`     // after TLS
	AuthResult    string   `json:"auth_result,omitempty"`    // "ok", "failed", "" when not tried
	AuthMechanism string   `json:"auth_mechanism,omitempty"` // the mechanism that was tried

	Steps    []Step    `json:"steps,omitempty"`
	Findings []Finding `json:"findings,omitempty"`
}

// Step is one step of one connection, with when it began and its
// duration.
type Step struct {
	// Attempt names the connection: "probe" (the configured mode),
	// "other-mode" (the other TLS mode, after a wrong-mode symptom),
	// "tls-legacy" (the TLS 1.0/1.1 check) or "auth" (the Dialer).
	Attempt string `json:"attempt"`
	Name    string `json:"name"` // connect, banner, ehlo, starttls, tls, auth
	// Start is when the step began, from the start of Run: the steps of
	// every port share one clock, so that they can be drawn side by side
	// (portwise probe -timing).
	Start   time.Duration `json:"start_ns"`
	Elapsed time.Duration `json:"elapsed_ns"`
	Error   string        `json:"error,omitempty"`
}

// Severities of a Finding.
const (
	SeverityInfo     = "info"
	SeverityWarning  = "warning"
	SeverityCritical = "critical"
)

// Finding codes. They are stable: programs may branch on them.
const (
	CodePortBlocked       = "port-blocked"         // no connection or no answer within the timeout
	CodePortRefused       = "port-refused"         // nothing listens
	CodeDNSError          = "dns-error"            // the host name does not resolve
	CodeAuthBeforeTLS     = "auth-before-tls"      // AUTH advertised in clear
	CodeSTARTTLSMissing   = "starttls-missing"     // no STARTTLS, or STARTTLS refused, on a STARTTLS port
	CodeSTARTTLSMasked    = "starttls-masked"      // STARTTLS replaced by XXXXXXXA (firewall SMTP inspection)
	CodeSTARTTLSInjection = "starttls-injection"   // bytes between the STARTTLS 220 and the handshake
	CodeWrongTLSMode      = "wrong-tls-mode"       // the port speaks the other TLS mode
	CodeTLSFailed         = "tls-handshake-failed" // the handshake failed (other than a version problem)
	CodeTLSLegacy         = "tls-legacy-accepted"  // TLS 1.0 or 1.1 accepted
	CodeCertUntrusted     = "cert-untrusted"       // self-signed or unknown issuer
	CodeCertNameMismatch  = "cert-name-mismatch"   // the certificate does not cover the host name
	CodeCertExpired       = "cert-expired"         // outside its validity period
	CodeCertExpiring      = "cert-expiring"        // ends within 14 days
	CodeAuthFailed        = "auth-failed"          // the credential check failed
	CodeAuthMissing       = "auth-missing"         // a submission port offers no AUTH after TLS
	CodeAuthUnusable      = "auth-unusable"        // only mechanisms portwise cannot use (NTLM, GSSAPI)
	CodeProtocol          = "protocol-error"       // any other failure of the SMTP dialogue
)

// Finding is one problem or notable fact about a port.
type Finding struct {
	Severity string `json:"severity"` // "info", "warning", "critical"
	Code     string `json:"code"`     // one of the Code constants
	Message  string `json:"message"`
}

// Run probes host ("name" or "name:port"; with a port only that port is
// checked, with the mode of a matching candidate or tlsmode.ForPort). Every
// port is checked concurrently. Run returns an error only for a host it
// cannot use or a ctx that ends; unreachable ports are findings in the
// report, not errors.
func Run(ctx context.Context, host string, o Options) (*Report, error) {
	t0 := time.Now()
	h, port, err := plan.SplitHost(host)
	if err != nil {
		return nil, fmt.Errorf("probe: %w", err)
	}
	cands := candidates(o, port)
	if len(cands) == 0 {
		return nil, errors.New("probe: no candidates to check")
	}
	for _, c := range cands {
		if c.Port < 1 || c.Port > 65535 || (c.Mode != 0 && c.Mode != tlsmode.StartTLS && c.Mode != tlsmode.Implicit && c.Mode != tlsmode.Plaintext) {
			return nil, fmt.Errorf("probe: invalid candidate %v", c)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("probe: %w", err)
	}
	rep := &Report{Host: h}
	// The Dial's plan (internal/plan), one check per port: the check
	// itself tries the other TLS mode when a port shows the symptoms.
	in := plan.Input{Host: h, Port: port, Policy: cands}
	if o.Discover != nil {
		var err error
		in.Discovered, err = plan.Discover(ctx, h, port, func(ctx context.Context, host string) ([]plan.Server, error) {
			servers, err := o.Discover(ctx, host)
			out := make([]plan.Server, len(servers))
			for i, s := range servers {
				out[i] = plan.Server{Host: s.Host, Candidates: s.Candidates}
			}
			return out, err
		})
		if err != nil {
			rep.DiscoveryError = untrusted.Text(err.Error(), 2*untrusted.MaxText)
		}
	}
	type task struct {
		p *prober
		c tlsmode.Candidate
	}
	var tasks []task
	p := newProber(h, o, t0)
	probers := map[string]*prober{strings.ToLower(h): p}
	for _, t := range plan.OnePerPort(plan.Targets(in)) {
		tp := probers[strings.ToLower(t.Host)]
		if tp == nil {
			tp = newProber(t.Host, o, t0)
			probers[strings.ToLower(t.Host)] = tp
		}
		tasks = append(tasks, task{tp, t.Candidate})
	}
	rep.Ports = make([]PortReport, len(tasks))

	var (
		wg sync.WaitGroup
		mu sync.Mutex // serialises OnPort
	)
	for i, t := range tasks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pr := t.p.port(ctx, t.c)
			if t.p != p {
				pr.Host = t.p.host
			}
			rep.Ports[i] = pr
			if o.OnPort != nil {
				mu.Lock()
				o.OnPort(pr)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return rep, fmt.Errorf("probe: %w", err)
	}

	best := recommend(rep.Ports)
	if best >= 0 && o.Auth != nil {
		tasks[best].p.auth(ctx, &rep.Ports[best])
	}
	if best >= 0 {
		rep.RecommendedHost = rep.Ports[best].Host
	}
	rep.Recommendation, rep.Advice = advise(h, rep.Ports, best)
	return rep, nil
}

// candidates is the policy to plan with: Options.Candidates (or the
// default ones) and Options.Ports. A port without a stated mode is checked
// with its usual one (tlsmode.ForPort, as internal/plan orders them); the
// check tries the other mode when the port shows the symptoms of it.
func candidates(o Options, port int) []tlsmode.Candidate {
	cands := slices.Clone(o.Candidates)
	if cands == nil {
		cands = DefaultCandidates()
	}
	for _, p := range o.Ports {
		if !slices.ContainsFunc(cands, func(c tlsmode.Candidate) bool { return c.Port == p }) {
			cands = append(cands, tlsmode.Candidate{Port: p})
		}
	}
	return cands
}

// prober holds what every port's check shares.
type prober struct {
	host       string
	serverName string
	o          Options
	timeout    time.Duration
	dialer     submit.ContextDialer
	localName  string
	now        func() time.Time
	start      time.Time // when Run began: Step.Start counts from it
}

func newProber(host string, o Options, start time.Time) *prober {
	p := &prober{host: host, o: o, timeout: o.Timeout, dialer: o.NetDialer, localName: o.LocalName, now: time.Now, start: start}
	if p.timeout <= 0 {
		p.timeout = DefaultTimeout
	}
	if p.dialer == nil {
		p.dialer = &net.Dialer{}
	}
	if p.localName == "" {
		p.localName = "localhost"
	}
	p.serverName = host
	if o.TLSConfig != nil && o.TLSConfig.ServerName != "" {
		p.serverName = o.TLSConfig.ServerName
	}
	return p
}
