package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portwise/portwise/probe"
	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/tlsmode"
)

// TestDemoServesWhatItLists starts the demo, reads the listeners it prints,
// probes them the way the printed command does and checks that each one
// behaves as its description says, then stops the demo.
func TestDemoServesWhatItLists(t *testing.T) {
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		err := run(ctx, []string{"-ca", caFile}, pw)
		pw.Close()
		errc <- err
	}()

	// The listing: "<port>/<mode>  <description>" lines, then the
	// commands, then "serving".
	type listener struct {
		cand tlsmode.Candidate
		what string
	}
	var (
		listed []listener
		output strings.Builder
	)
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		line := sc.Text()
		output.WriteString(line + "\n")
		if line == "serving; Ctrl-C stops" {
			break
		}
		if f, what, ok := strings.Cut(line, " "); ok && len(listed) < 5 {
			if c, err := tlsmode.ParseCandidate(f); err == nil {
				listed = append(listed, listener{c, strings.TrimSpace(what)})
			}
		}
	}
	go io.Copy(io.Discard, pr) // nothing more is expected; never block run
	if !strings.Contains(output.String(), "serving") {
		t.Fatalf("the demo did not start (%v):\n%s", <-errc, output.String())
	}
	if len(listed) != 5 {
		t.Fatalf("listed %d listeners, want 5:\n%s", len(listed), output.String())
	}
	var cands []string
	for _, l := range listed {
		cands = append(cands, l.cand.String())
	}
	for _, w := range []string{
		"CA certificate: " + caFile + "; account user / pass",
		"probe -ca " + caFile + " -port " + strings.Join(cands, ",") + " -timeout 3s 127.0.0.1",
		"send -v -ca " + caFile + " -port " + cands[0] + " -user user -password-env PW",
	} {
		if !strings.Contains(output.String(), w) {
			t.Errorf("output lacks %q:\n%s", w, output.String())
		}
	}

	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatalf("the CA file: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("%s holds no PEM certificate:\n%s", caFile, pem)
	}

	var probed []tlsmode.Candidate
	for _, l := range listed {
		probed = append(probed, l.cand)
	}
	pctx, pcancel := context.WithTimeout(ctx, 2*time.Minute)
	defer pcancel()
	rep, err := probe.Run(pctx, "127.0.0.1", probe.Options{
		Candidates: probed,
		TLSConfig:  &tls.Config{RootCAs: pool},
		Timeout:    3 * time.Second,
		Auth:       submit.PasswordAuth("user", "pass"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Ports) != len(listed) {
		t.Fatalf("probe reported %d ports, want %d", len(rep.Ports), len(listed))
	}
	if rep.Recommendation == nil || *rep.Recommendation != listed[0].cand || !rep.Ready() {
		t.Errorf("recommendation %v (ready %v), want %v, the good STARTTLS port", rep.Recommendation, rep.Ready(), listed[0].cand)
	}

	codes := func(pr probe.PortReport) []string {
		var c []string
		for _, f := range pr.Findings {
			c = append(c, f.Severity+" "+f.Code)
		}
		return c
	}
	for i, l := range listed {
		pr := rep.Ports[i]
		got := codes(pr)
		var ok bool
		switch {
		case strings.HasPrefix(l.what, "a good STARTTLS port"):
			ok = l.cand.Mode == tlsmode.StartTLS && pr.Usable && pr.CertVerified && len(got) == 0 && pr.AuthResult == "ok"
		case strings.HasPrefix(l.what, "a good implicit TLS port"):
			ok = l.cand.Mode == tlsmode.Implicit && pr.Usable && pr.CertVerified && len(got) == 0
		case strings.Contains(l.what, "STARTTLS a firewall strips"):
			ok = !pr.Usable && slices.Contains(got, probe.SeverityCritical+" "+probe.CodeSTARTTLSMissing)
		case strings.Contains(l.what, "AUTH before TLS"):
			ok = len(pr.AuthMechsBeforeTLS) > 0 && slices.Contains(got, probe.SeverityCritical+" "+probe.CodeAuthBeforeTLS)
		case strings.Contains(l.what, "swallows packets"):
			ok = !pr.Usable && pr.Reachability == probe.ReachTimeout && slices.Contains(got, probe.SeverityWarning+" "+probe.CodePortBlocked)
		default:
			t.Errorf("unexpected listener %q", l.what)
			continue
		}
		if !ok {
			t.Errorf("%s (%s): usable %v, reach %s, cert verified %v, auth %q, before TLS %v, findings %v",
				l.cand, l.what, pr.Usable, pr.Reachability, pr.CertVerified, pr.AuthResult, pr.AuthMechsBeforeTLS, got)
		}
	}

	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return 30s after its context ended")
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(listed[0].cand.Port))
	if c, err := net.DialTimeout("tcp", addr, 5*time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after run returned", addr)
	}
}
