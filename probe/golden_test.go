package probe_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/portwise/portwise/internal/golden"
	"github.com/portwise/portwise/probe"
	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/tlsmode"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestReportGolden pins the JSON shape of a Report (the field names are a
// public contract) and the text rendering, on a host with one port of each
// common kind. What varies between runs (ports, durations, dates) is
// normalised first.
func TestReportGolden(t *testing.T) {
	t.Parallel()
	srv := submittest.NewServer(t)
	expiring := srv.ListenWith(tlsmode.Implicit, submittest.Options{CertNotAfter: time.Now().Add(5*24*time.Hour + time.Hour)})
	stripped := srv.Listen(tlsmode.StartTLS, submittest.StripSTARTTLS)
	leaky := srv.Listen(tlsmode.StartTLS, submittest.AuthBeforeTLS)
	refused := srv.Listen(tlsmode.StartTLS, submittest.Refuse)
	addrs := []tlsmode.Candidate{srv.StartTLS, srv.Implicit, expiring, stripped, leaky, refused}
	modes := []tlsmode.Mode{tlsmode.StartTLS, tlsmode.Implicit, tlsmode.Implicit, tlsmode.StartTLS, tlsmode.StartTLS, tlsmode.StartTLS}
	var cands []tlsmode.Candidate
	for i, a := range addrs {
		cands = append(cands, tlsmode.Candidate{Port: a.Port, Mode: modes[i]})
	}
	rep := run(t, srv, probe.Options{}, cands...)
	normalise(rep, cands)

	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	js = renumber(append(js, '\n'), cands)
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "report.golden.json", js, *update, "go test ./probe -run Golden")
	golden.Check(t, "report.golden.txt", renumber(text.Bytes(), cands), *update, "go test ./probe -run Golden")
}

var (
	dates     = regexp.MustCompile(`\d{4}-\d{2}-\d{2}`)
	durations = regexp.MustCompile(`\b\d+(\.\d+)?(ns|µs|ms|s)\b`)
)

// normalise zeroes what varies from run to run.
func normalise(rep *probe.Report, cands []tlsmode.Candidate) {
	fixed := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range rep.Ports {
		p := &rep.Ports[i]
		p.ConnectTime, p.Elapsed = 0, 0
		for j := range p.Steps {
			p.Steps[j].Start, p.Steps[j].Elapsed = 0, 0
		}
		if !p.CertNotAfter.IsZero() {
			p.CertNotAfter = fixed
		}
		if p.CertDaysLeft > 300 { // a year, give or take a leap day
			p.CertDaysLeft = 365
		}
		if p.TLSCipher != "" { // AES or ChaCha20, depending on the CPU
			p.TLSCipher = "TLS_AES_128_GCM_SHA256"
		}
		for j := range p.Findings {
			p.Findings[j].Message = dates.ReplaceAllString(p.Findings[j].Message, "2030-01-02")
		}
	}
	rep.Advice = durations.ReplaceAllString(rep.Advice, "1ms")
	rep.Advice = regexp.MustCompile(`\d+ days left`).ReplaceAllString(rep.Advice, "365 days left")
}

// renumber replaces the listeners' ports by 10001, 10002, ... in candidate
// order.
func renumber(b []byte, cands []tlsmode.Candidate) []byte {
	for i, c := range cands {
		re := regexp.MustCompile(`\b` + strconv.Itoa(c.Port) + `\b`)
		b = re.ReplaceAll(b, []byte(strconv.Itoa(10001+i)))
	}
	return b
}
