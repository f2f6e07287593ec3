package probe

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/portwise/portwise/internal/diag"
	"github.com/portwise/portwise/internal/untrusted"
	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/tlsmode"
)

// recommend returns the index of the best port: the first usable one in
// policy order without a critical finding, else the first usable one; -1
// when none is usable.
func recommend(ports []PortReport) int {
	first := -1
	for i, r := range ports {
		if !r.Usable {
			continue
		}
		if !hasSeverity(r, SeverityCritical) {
			return i
		}
		if first < 0 {
			first = i
		}
	}
	return first
}

func hasSeverity(r PortReport, severity string) bool {
	for _, f := range r.Findings {
		if f.Severity == severity {
			return true
		}
	}
	return false
}

// auth checks the credential on the recommended port through a
// submit.Dialer, so every guarantee of the Dialer applies: verified TLS,
// one attempt, nothing in clear.
func (p *prober) auth(ctx context.Context, r *PortReport) {
	d := &submit.Dialer{
		Candidates:    []tlsmode.Candidate{{Port: r.Port, Mode: r.Mode}},
		TLSConfig:     p.o.TLSConfig,
		Auth:          p.o.Auth,
		LocalName:     p.localName,
		Timeout:       p.timeout,
		NetDialer:     p.o.NetDialer,
		FallbackDelay: -1,
	}
	t0 := time.Now()
	c, err := d.Dial(ctx, p.host)
	st := Step{Attempt: "auth", Name: "auth", Start: t0.Sub(p.start), Elapsed: time.Since(t0)}
	if err == nil {
		r.AuthResult = "ok"
		r.AuthMechanism = c.Mechanism()
		c.Quit()
		r.Steps = append(r.Steps, st)
		return
	}
	// One candidate was dialled, so its attempt's failure is the whole
	// story: the diagnosis the Dialer made, worded as the command words
	// it, on one line.
	msg := fmt.Sprintf("port %d: authentication failed: %s", r.Port, untrusted.Reply(err.Error()))
	if d, ok := diag.Of(err); ok {
		msg = d.Sentence(diag.CLI, portWhere(r.Port))
	}
	st.Error = msg
	r.Steps = append(r.Steps, st)
	r.AuthResult = "failed"
	r.Findings = append(r.Findings, Finding{Severity: SeverityCritical, Code: CodeAuthFailed, Message: msg})
}

// advise returns the recommendation and the sentence explaining it.
func advise(host string, ports []PortReport, best int) (*tlsmode.Candidate, string) {
	if best >= 0 {
		r := ports[best]
		c := &tlsmode.Candidate{Port: r.Port, Mode: r.Mode}
		if r.AuthResult == "failed" {
			return c, fmt.Sprintf("Port %v is secure, but authentication failed there: %s.", c, strings.TrimSuffix(lastFinding(r, CodeAuthFailed), "."))
		}
		var b strings.Builder
		fmt.Fprintf(&b, "Use %v", c)
		if r.Host != "" {
			fmt.Fprintf(&b, " on %s (from %s's SRV records)", r.Host, host)
		}
		if r.Mode != r.ConfiguredMode {
			fmt.Fprintf(&b, " (%s, not %s as configured)", diag.ModeWords(r.Mode), r.ConfiguredMode)
		}
		fmt.Fprintf(&b, ": it answered in %s, negotiated %s and its certificate verifies (%d days left)", roundDuration(r.ConnectTime), r.TLSVersion, r.CertDaysLeft)
		if r.AuthResult == "ok" {
			fmt.Fprintf(&b, ", and AUTH %s succeeded", r.AuthMechanism)
		}
		if crit := firstOf(r, SeverityCritical); crit != "" {
			fmt.Fprintf(&b, "; but note: %s", strings.TrimSuffix(crit, "."))
		}
		b.WriteString(".")
		return c, b.String()
	}

	// Nothing usable: explain the most promising port's problem, or say
	// that nothing answered.
	var closed []string
	for _, r := range ports {
		if r.Reachability == ReachOpen {
			msg := firstOf(r, SeverityCritical)
			if msg == "" {
				msg = r.Error
			}
			return nil, fmt.Sprintf("No port of %s offers a usable secure session; %d/%s: %s.", host, r.Port, r.ConfiguredMode, strings.TrimSuffix(msg, "."))
		}
		closed = append(closed, fmt.Sprintf("%d %s", r.Port, r.Reachability))
	}
	if len(ports) > 0 && ports[0].Reachability == ReachDNSError {
		return nil, fmt.Sprintf("The host name %s does not resolve; check its spelling and your DNS.", host)
	}
	return nil, fmt.Sprintf("No submission port of %s answered (%s); check the host name, and whether your network or cloud provider blocks outgoing mail ports.", host, strings.Join(closed, ", "))
}

func firstOf(r PortReport, severity string) string {
	for _, f := range r.Findings {
		if f.Severity == severity {
			return f.Message
		}
	}
	return ""
}

func lastFinding(r PortReport, code string) string {
	for i := len(r.Findings) - 1; i >= 0; i-- {
		if r.Findings[i].Code == code {
			return r.Findings[i].Message
		}
	}
	return ""
}

func roundDuration(d time.Duration) time.Duration { return diag.Round(d) }

// Ready reports whether a program configured with the recommendation
// would work: there is a usable secure port and, when authentication was
// checked, the credential was accepted there.
func (r *Report) Ready() bool {
	if r.Recommendation == nil {
		return false
	}
	for _, p := range r.Ports {
		if p.Port == r.Recommendation.Port && p.AuthResult == "failed" {
			return false
		}
	}
	return true
}
