package probe

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/portwise/portwise/internal/untrusted"
)

// TextOptions change how a Report is rendered as text.
type TextOptions struct {
	// Color adds ANSI colours: red for critical findings, yellow for
	// warnings, green for what works. Use it only on a terminal.
	Color bool
}

// WriteText renders the report for a person, without colour: a table with
// one row per port, then each port that answered in detail with its
// findings, then the recommendation.
func (r *Report) WriteText(w io.Writer) error {
	return r.WriteTextOptions(w, TextOptions{})
}

// WriteTextOptions is WriteText with options.
func (r *Report) WriteTextOptions(w io.Writer, o TextOptions) error {
	bw := bufio.NewWriter(w)
	pen := pen{color: o.Color}
	fmt.Fprintf(bw, "%s\n\n", pen.bold(fmt.Sprintf("portwise probe %s: %d %s", r.Host, len(r.Ports), plural(len(r.Ports), "port", "ports"))))

	t := table{pen: pen}
	t.add(cell{s: "PORT"}, cell{s: "MODE"}, cell{s: "REACH"}, cell{s: "CONNECT"}, cell{s: "TLS"}, cell{s: "CERTIFICATE"}, cell{s: "AUTH AFTER TLS"}, cell{s: "FINDINGS"})
	for _, p := range r.Ports {
		t.add(
			cell{s: portLabel(p)},
			cell{s: p.Mode.String()},
			cell{s: p.Reachability, c: reachColor(p.Reachability)},
			cell{s: connectText(p)},
			tlsCell(p),
			certCell(p),
			cell{s: dash(untrusted.Text(strings.Join(p.AuthMechs, " "), 40))},
			findingsCell(p),
		)
	}
	t.write(bw)

	for _, p := range r.Ports {
		if p.Reachability != ReachOpen && len(p.Findings) == 0 {
			continue
		}
		fmt.Fprintf(bw, "\n%s\n", pen.bold(portLabel(p)+"/"+p.Mode.String()))
		kv := func(k, v string) {
			if v != "" {
				fmt.Fprintf(bw, "  %-12s %s\n", k, v)
			}
		}
		// Everything below that the server wrote is made safe and bounded
		// (untrusted): a banner or a certificate name cannot drive the
		// terminal or break the layout.
		kv("banner", safe(oneLine(p.Banner)))
		kv("before TLS", safe(strings.Join(p.EHLO, ", ")))
		if p.TLSVersion != "" {
			tlsLine := p.TLSVersion
			if p.TLSCipher != "" {
				tlsLine += ", " + p.TLSCipher
			}
			if p.OCSPStapled {
				tlsLine += ", OCSP stapled"
			} else if p.TLSCipher != "" {
				tlsLine += ", no OCSP staple"
			}
			if p.TLSLegacy != "" && p.TLSLegacy != p.TLSVersion {
				tlsLine += "; also accepts " + p.TLSLegacy
			}
			kv("TLS", tlsLine)
		}
		if len(p.CertSubjects) > 0 {
			kv("certificate", fmt.Sprintf("%s; issuer %s; until %s (%d days)", untrusted.Names(p.CertSubjects, "names"), untrusted.Name(p.CertIssuer), p.CertNotAfter.Format(time.DateOnly), p.CertDaysLeft))
		}
		kv("after TLS", safe(strings.Join(p.EHLOAfterTLS, ", ")))
		if p.EHLO != nil || p.EHLOAfterTLS != nil {
			kv("extensions", extensions(p))
		}
		switch p.AuthResult {
		case "ok":
			kv("auth", pen.paint(green, "ok ("+untrusted.Name(p.AuthMechanism)+")"))
		case "failed":
			kv("auth", pen.paint(red, "failed"))
		}
		for _, f := range p.Findings {
			fmt.Fprintf(bw, "  %s %s: %s\n", pen.paint(severityColor(f.Severity), fmt.Sprintf("%-12s", f.Severity)), f.Code, safe(f.Message))
		}
	}

	fmt.Fprintln(bw)
	if r.DiscoveryError != "" {
		fmt.Fprintf(bw, "%s %s\n", pen.bold("SRV discovery:"), safe(oneLine(r.DiscoveryError)))
	}
	if r.Recommendation != nil {
		rec := r.Recommendation.String()
		if r.RecommendedHost != "" {
			rec += " on " + untrusted.Name(r.RecommendedHost)
		}
		fmt.Fprintf(bw, "%s %s\n", pen.bold("Recommendation:"), pen.paint(green, rec))
	} else {
		fmt.Fprintf(bw, "%s %s\n", pen.bold("Recommendation:"), pen.paint(red, "none"))
	}
	fmt.Fprintln(bw, safe(r.Advice))
	return bw.Flush()
}

// portLabel names a port, with its SRV target's host when it has one.
func portLabel(p PortReport) string {
	if p.Host != "" {
		return net.JoinHostPort(untrusted.Name(p.Host), strconv.Itoa(p.Port))
	}
	return strconv.Itoa(p.Port)
}

func connectText(p PortReport) string {
	switch p.Reachability {
	case ReachOpen, ReachRefused:
		return roundDuration(p.ConnectTime).String()
	case ReachTimeout:
		return roundDuration(p.Elapsed.Truncate(100*time.Millisecond)).String() + "+"
	}
	return "-"
}

func tlsCell(p PortReport) cell {
	switch {
	case p.TLSVersion == "":
		return cell{s: "-"}
	case p.Usable || p.CertError != "":
		if p.TLSLegacy != "" {
			return cell{s: p.TLSVersion + " (+" + strings.TrimPrefix(p.TLSLegacy, "TLS ") + ")", c: yellow}
		}
		return cell{s: p.TLSVersion, c: green}
	}
	return cell{s: p.TLSVersion + " only", c: red}
}

func certCell(p PortReport) cell {
	if len(p.CertSubjects) == 0 && p.CertError == "" {
		return cell{s: "-"}
	}
	if p.CertVerified {
		s := fmt.Sprintf("ok, %d days", p.CertDaysLeft)
		if lastFinding(p, CodeCertExpiring) != "" {
			return cell{s: s, c: yellow}
		}
		return cell{s: s, c: green}
	}
	var why []string
	for _, f := range p.Findings {
		switch f.Code {
		case CodeCertExpired:
			why = append(why, "expired")
		case CodeCertUntrusted:
			why = append(why, "untrusted")
		case CodeCertNameMismatch:
			why = append(why, "wrong name")
		}
	}
	return cell{s: dash(strings.Join(why, ", ")), c: red}
}

func findingsCell(p PortReport) cell {
	n := map[string]int{}
	for _, f := range p.Findings {
		n[f.Severity]++
	}
	var parts []string
	for _, s := range []string{SeverityCritical, SeverityWarning, SeverityInfo} {
		if n[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n[s], s))
		}
	}
	switch {
	case len(parts) == 0 && p.Usable:
		return cell{s: "ok", c: green}
	case len(parts) == 0:
		return cell{s: "-"}
	case n[SeverityCritical] > 0:
		return cell{s: strings.Join(parts, ", "), c: red}
	case n[SeverityWarning] > 0:
		return cell{s: strings.Join(parts, ", "), c: yellow}
	}
	return cell{s: strings.Join(parts, ", ")}
}

func extensions(p PortReport) string {
	var parts []string
	if p.SizeLimit > 0 {
		parts = append(parts, "SIZE "+sizeText(p.SizeLimit))
	} else {
		parts = append(parts, "no SIZE limit")
	}
	for _, e := range []struct {
		name string
		on   bool
	}{{"PIPELINING", p.Pipelining}, {"CHUNKING", p.Chunking}, {"SMTPUTF8", p.SMTPUTF8}, {"DSN", p.DSN}, {"REQUIRETLS", p.RequireTLS}} {
		if e.on {
			parts = append(parts, e.name)
		} else {
			parts = append(parts, "no "+e.name)
		}
	}
	return strings.Join(parts, ", ")
}

func sizeText(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " / ") }

// safe makes a value from the server (or a message quoting one) safe and
// bounded for a terminal, on one line.
func safe(s string) string { return untrusted.Text(s, 4*untrusted.MaxText) }

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// ANSI colours.
const (
	red    = "31"
	green  = "32"
	yellow = "33"
	cyan   = "36"
)

func reachColor(r string) string {
	switch r {
	case ReachOpen:
		return green
	case ReachRefused, ReachTimeout:
		return yellow
	}
	return red
}

func severityColor(s string) string {
	switch s {
	case SeverityCritical:
		return red
	case SeverityWarning:
		return yellow
	}
	return cyan
}

// pen paints text when colour is on.
type pen struct{ color bool }

func (p pen) paint(code, s string) string {
	if !p.color || code == "" {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

func (p pen) bold(s string) string { return p.paint("1", s) }

// cell is one table cell: its text and its colour.
type cell struct {
	s string
	c string
}

// table aligns columns on the width of the plain text, so colours do not
// disturb the layout (text/tabwriter would count the escape codes).
type table struct {
	pen  pen
	rows [][]cell
}

func (t *table) add(cells ...cell) { t.rows = append(t.rows, cells) }

func (t *table) write(w io.Writer) {
	var widths []int
	for _, row := range t.rows {
		for i, c := range row {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], len([]rune(c.s)))
		}
	}
	for _, row := range t.rows {
		var b strings.Builder
		for i, c := range row {
			b.WriteString(t.pen.paint(c.c, c.s))
			if i < len(row)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-len([]rune(c.s))+2))
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}
