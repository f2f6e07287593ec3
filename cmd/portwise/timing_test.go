package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/portwise/portwise/internal/golden"
	"github.com/portwise/portwise/probe"
	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/tlsmode"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func msec(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }

// sendFixture is a send as the default policy plays it against a host
// whose 587 is slow to greet and then shows an untrusted certificate: 465
// starts after the 300 ms head start and wins; 2525 starts when 587 fails
// and loses; the fourth candidate never starts. The queue id carries an
// escape sequence, as a hostile server's could.
func sendFixture() timeline {
	return timeline{
		command: "send", host: "smtp.example.com", total: msec(521.4), winner: 1, sent: true, queueID: "4F2A1\x1b[2J",
		lanes: []lane{
			{cand: tlsmode.Candidate{Port: 587, Mode: tlsmode.StartTLS}, started: true, start: msec(0.2), end: msec(412.6),
				outcome: outcomeFailed, reason: "failed: tls: the certificate for mail.example.net is signed by an unknown authority — pass the server's CA with -ca FILE",
				steps: []span{
					{name: "connect", start: msec(0.3), elapsed: msec(21.2)},
					{name: "banner", start: msec(21.5), elapsed: msec(290.4)},
					{name: "ehlo", start: msec(312.0), elapsed: msec(24.1)},
					{name: "starttls", start: msec(336.2), elapsed: msec(23.8)},
					{name: "tls", start: msec(360.1), elapsed: msec(52.3), failed: true},
				}},
			{cand: tlsmode.Candidate{Port: 465, Mode: tlsmode.Implicit}, started: true, start: msec(300.4), end: msec(521.4),
				outcome: outcomeWon,
				steps: []span{
					{name: "connect", start: msec(300.5), elapsed: msec(22.0)},
					{name: "tls", start: msec(322.6), elapsed: msec(61.7)},
					{name: "banner", start: msec(384.4), elapsed: msec(24.9)},
					{name: "ehlo", start: msec(409.4), elapsed: msec(22.3)},
					{name: "auth", start: msec(431.8), elapsed: msec(40.2)},
					{name: "envelope", start: msec(472.3), elapsed: msec(0.05)},
					{name: "message", start: msec(472.35), elapsed: msec(49.05)},
				}},
			{cand: tlsmode.Candidate{Port: 2525, Mode: tlsmode.StartTLS}, started: true, start: msec(412.8), end: msec(472.4),
				outcome: outcomeLost, reason: "lost the race: 465/implicit won first",
				steps: []span{
					{name: "connect", start: msec(412.9), elapsed: msec(20.8)},
					{name: "banner", start: msec(433.8), elapsed: msec(23.9)},
					{name: "ehlo", start: msec(457.8), elapsed: msec(14.5)},
				}},
			{cand: tlsmode.Candidate{Port: 25, Mode: tlsmode.StartTLS}, outcome: outcomeNotStarted, reason: "not started: 465/implicit won before its turn"},
		},
	}
}

// probeFixture is a probe's report: a good STARTTLS port with its legacy
// TLS checks and the AUTH check, a port that speaks the other mode, and an
// SRV target whose name and error carry terminal controls.
func probeFixture() *probe.Report {
	step := func(attempt, name string, start, elapsed float64, err string) probe.Step {
		return probe.Step{Attempt: attempt, Name: name, Start: msec(start), Elapsed: msec(elapsed), Error: err}
	}
	return &probe.Report{
		Host:           "example.com",
		Recommendation: &tlsmode.Candidate{Port: 587, Mode: tlsmode.StartTLS},
		Ports: []probe.PortReport{
			{Port: 587, Mode: tlsmode.StartTLS, ConfiguredMode: tlsmode.StartTLS, Usable: true, AuthResult: "ok", Steps: []probe.Step{
				step("probe", "connect", 0.1, 20.5, ""), step("probe", "banner", 20.7, 31.0, ""), step("probe", "ehlo", 51.8, 21.0, ""),
				step("probe", "starttls", 72.9, 20.9, ""), step("probe", "tls", 93.9, 44.0, ""), step("probe", "ehlo", 138.0, 21.2, ""),
				step("tls-legacy", "tls", 160.0, 42.0, "no TLS 1.0 handshake"), step("tls-legacy", "tls", 202.5, 41.8, "no TLS 1.1 handshake"),
				step("auth", "auth", 251.0, 150.2, ""),
			}},
			{Port: 465, Mode: tlsmode.StartTLS, ConfiguredMode: tlsmode.Implicit, Usable: false,
				Error: "port 465 answered in clear (\"220 mx\") instead of starting TLS", Steps: []probe.Step{
					step("probe", "connect", 0.2, 20.1, ""), step("probe", "tls", 20.4, 21.0, "tls: first record does not look like a TLS handshake"),
					step("other-mode", "connect", 41.6, 20.2, ""), step("other-mode", "banner", 61.9, 20.4, ""),
					step("other-mode", "ehlo", 82.4, 20.8, ""), step("other-mode", "starttls", 103.3, 20.5, ""),
					step("other-mode", "tls", 123.9, 43.6, ""), step("other-mode", "ehlo", 167.6, 20.9, ""),
				}},
			{Host: "mx\x1b[8m.evil.example", Port: 2525, Mode: tlsmode.StartTLS, ConfiguredMode: tlsmode.StartTLS,
				Error: "port 2525: connect: no answer \u202egnp.ecilam\u202c within 10s", Steps: []probe.Step{
					step("probe", "connect", 0.1, 10000.0, "i/o timeout"),
				}},
		},
	}
}

// TestWaterfallGolden pins the -timing view: the rows, the bars on one
// axis, the figures, the reasons, the legend and the queue id, in plain
// text at 80 columns, in colour at 100, and the JSON of the same figures;
// then of a probe.
func TestWaterfallGolden(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		tl   timeline
	}{
		{"send", sendFixture()},
		{"probe", probeTimeline(probeFixture())},
	} {
		var plain, colour bytes.Buffer
		if err := tc.tl.draw(&plain, drawOptions{width: 80}); err != nil {
			t.Fatal(err)
		}
		if err := tc.tl.draw(&colour, drawOptions{width: 100, colour: true}); err != nil {
			t.Fatal(err)
		}
		js, err := json.MarshalIndent(tc.tl.json(), "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		golden.Check(t, "timing-"+tc.name+".golden.txt", plain.Bytes(), *update, "go test ./cmd/portwise -run Golden")
		golden.Check(t, "timing-"+tc.name+".golden.ansi", colour.Bytes(), *update, "go test ./cmd/portwise -run Golden")
		golden.Check(t, "timing-"+tc.name+".golden.json", append(escapeJSON(js), '\n'), *update, "go test ./cmd/portwise -run Golden")
		if bytes.Contains(plain.Bytes(), []byte("\x1b")) {
			t.Errorf("%s: an escape in the plain text:\n%q", tc.name, plain.String())
		}
		if c := terminalControl(stripSGR(colour.String())); c >= 0 {
			t.Errorf("%s: %U outside the view's own colour codes:\n%q", tc.name, c, colour.String())
		}
	}
}

// TestWaterfallFitsAndAligns: at any width from 50 columns, every line
// fits, and the bars of every row start and end in the same columns.
func TestWaterfallFitsAndAligns(t *testing.T) {
	t.Parallel()
	for _, tl := range []timeline{sendFixture(), probeTimeline(probeFixture())} {
		for width := 50; width <= 200; width += 5 {
			for _, colour := range []bool{false, true} {
				var b bytes.Buffer
				if err := tl.draw(&b, drawOptions{width: width, colour: colour}); err != nil {
					t.Fatal(err)
				}
				rows := checkWaterfall(t, stripSGR(b.String()), width)
				if rows != len(tl.lanes) {
					t.Errorf("width %d: %d rows with a bar, want %d:\n%s", width, rows, len(tl.lanes), b.String())
				}
			}
		}
	}
}

// checkWaterfall checks that every line of a plain view fits in width and
// that the bars line up; it returns how many rows have a bar.
func checkWaterfall(t *testing.T, view string, width int) int {
	t.Helper()
	open, close, rows := -1, -1, 0
	for _, line := range strings.Split(strings.TrimRight(view, "\n"), "\n") {
		if n := utf8.RuneCountInString(line); n > width {
			t.Errorf("a line of %d columns in %d:\n%s", n, width, line)
		}
		r := []rune(line)
		first, last := -1, -1
		for i, c := range r {
			if c == '│' {
				if first < 0 {
					first = i
				}
				last = i
			}
		}
		if first < 0 {
			continue
		}
		rows++
		if open < 0 {
			open, close = first, last
		}
		if first != open || last != close || first == last {
			t.Errorf("a bar spans columns %d-%d, the first %d-%d:\n%s", first, last, open, close, view)
		}
	}
	return rows
}

// stripSGR removes ANSI SGR sequences (ESC [ ... m).
func stripSGR(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b && i+1 < len(s) && s[i+1] == '[' {
			if j := strings.IndexByte(s[i:], 'm'); j >= 0 {
				i += j
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func TestFmtDur(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		0: "0ms", 4 * time.Microsecond: "<0.01ms", 5 * time.Microsecond: "0.01ms", 213 * time.Microsecond: "0.21ms",
		msec(9.994): "9.99ms", msec(41.25): "41.2ms", msec(412.6): "413ms", 2*time.Second + msec(4): "2.00s",
		75 * time.Second: "75.0s", -time.Second: "0ms",
	} {
		if got := fmtDur(d); got != want {
			t.Errorf("fmtDur(%v) = %q, want %q", d, got, want)
		}
	}
}

// timingDoc is the JSON of send -json and of probe -json -timing's
// "timing", decoded strictly.
type timingDoc struct {
	Command string             `json:"command"`
	Host    string             `json:"host"`
	TotalMS float64            `json:"total_ms"`
	Winner  *tlsmode.Candidate `json:"winner"`
	Sent    *bool              `json:"sent"`
	QueueID string             `json:"queue_id"`
	Ports   []struct {
		Host      string   `json:"host"`
		Port      int      `json:"port"`
		Mode      string   `json:"mode"`
		Outcome   string   `json:"outcome"`
		Reason    string   `json:"reason"`
		StartMS   *float64 `json:"start_ms"`
		ElapsedMS *float64 `json:"elapsed_ms"`
		Steps     []struct {
			Name      string  `json:"name"`
			Attempt   string  `json:"attempt"`
			StartMS   float64 `json:"start_ms"`
			ElapsedMS float64 `json:"elapsed_ms"`
			Failed    bool    `json:"failed"`
		} `json:"steps"`
	} `json:"ports"`
}

func decodeTiming(t *testing.T, s string) timingDoc {
	t.Helper()
	var doc timingDoc
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("not the timing document: %v\n%s", err, s)
	}
	return doc
}

// TestSendTimingThroughARealRace runs the command against submittest: a
// port that swallows the greeting starts first, the good port after the
// 300 ms head start and wins, the third never starts. Its JSON has every
// step of the winner, in order, on the Dial's clock; the text view marks
// the winner and lines up its bars; the message went once.
func TestSendTimingThroughARealRace(t *testing.T) {
	t.Parallel()
	srv, ca := server(t)
	blackhole := tlsmode.Candidate{Port: srv.Listen(tlsmode.StartTLS, submittest.Blackhole).Port, Mode: tlsmode.StartTLS}
	good := tlsmode.Candidate{Port: srv.StartTLS.Port, Mode: tlsmode.StartTLS}
	spare := tlsmode.Candidate{Port: srv.Implicit.Port, Mode: tlsmode.Implicit}
	args := []string{"-ca", ca, "-port", ports(srv, blackhole, good, spare), "-timeout", "5s", "-user", "user",
		"-password-env", "PORTWISE_TEST_PW", "-from", "me@example.com", "-to", "you@example.com", "127.0.0.1"}
	env := []string{"PORTWISE_TEST_PW=pass", "COLUMNS=90"}

	r := portwise(t, "body\n", env, append([]string{"send", "-json"}, args...)...)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	doc := decodeTiming(t, r.stdout)
	msgs := srv.Messages()
	if len(msgs) != 1 || doc.Sent == nil || !*doc.Sent || doc.QueueID != msgs[0].QueueID || doc.Winner == nil || *doc.Winner != good {
		t.Fatalf("sent %v, queue id %q, winner %v; the server has %d messages", doc.Sent, doc.QueueID, doc.Winner, len(msgs))
	}
	if len(doc.Ports) != 3 {
		t.Fatalf("%d ports, want 3:\n%s", len(doc.Ports), r.stdout)
	}
	lost, won, idle := doc.Ports[0], doc.Ports[1], doc.Ports[2]
	if lost.Port != blackhole.Port || lost.Outcome != "lost" || !strings.Contains(lost.Reason, "lost the race") ||
		len(lost.Steps) == 0 || lost.Steps[len(lost.Steps)-1].Name != "banner" {
		t.Errorf("the blackholed port: %+v", lost)
	}
	if idle.Port != spare.Port || idle.Outcome != "not-started" || idle.StartMS != nil || len(idle.Steps) != 0 {
		t.Errorf("the third port: %+v", idle)
	}
	var names []string
	prevEnd := 0.0
	for _, s := range won.Steps {
		names = append(names, s.Name)
		if s.StartMS < prevEnd-0.001 || s.ElapsedMS < 0 || s.Failed {
			t.Errorf("step %s starts at %.3f ms, before the last one ended (%.3f ms), or failed", s.Name, s.StartMS, prevEnd)
		}
		prevEnd = s.StartMS + s.ElapsedMS
	}
	if want := "connect banner ehlo starttls tls ehlo auth envelope message"; strings.Join(names, " ") != want {
		t.Errorf("the winner's steps are %q, want %q", names, want)
	}
	if won.Outcome != "won" || won.StartMS == nil || *won.StartMS < 299 || prevEnd > doc.TotalMS+0.001 || won.Steps[0].StartMS < *won.StartMS-0.5 {
		t.Errorf("the winner: %+v; it starts after the 300 ms head start and ends by the total %.3f ms", won, doc.TotalMS)
	}

	r = portwise(t, "body\n", env, append([]string{"send", "-timing"}, args...)...)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout, "\x1b[") {
		t.Errorf("colour codes on a pipe:\n%s", r.stdout)
	}
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	if rows := checkWaterfall(t, strings.Join(lines[:len(lines)-1], "\n"), 90); rows != 3 {
		t.Errorf("%d rows with a bar, want 3:\n%s", rows, r.stdout)
	}
	for _, want := range []string{good.String() + " won", good.String() + "  │", "not started: " + good.String() + " won before its turn", "▀ message", "queued as "} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("the view lacks %q:\n%s", want, r.stdout)
		}
	}
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "sent ") {
		t.Errorf("the last line is %q, want the sent line", last)
	}
	for _, l := range lines {
		if strings.HasPrefix(l, good.String()) && !strings.HasSuffix(l, " won") {
			t.Errorf("the winner's row does not end with its outcome: %q", l)
		}
	}
}

// TestSendTimingWhenNothingWorks: the view and the JSON come out for a send
// that fails too, the failure in the command's words; the error still goes
// to stderr.
func TestSendTimingWhenNothingWorks(t *testing.T) {
	t.Parallel()
	srv, ca := server(t)
	stripped := tlsmode.Candidate{Port: srv.Listen(tlsmode.StartTLS, submittest.StripSTARTTLS).Port, Mode: tlsmode.StartTLS}
	args := []string{"-ca", ca, "-port", stripped.String(), "-from", "me@example.com", "-to", "you@example.com", "127.0.0.1"}
	r := portwise(t, "body\n", nil, append([]string{"send", "-json"}, args...)...)
	doc := decodeTiming(t, r.stdout)
	if r.code != 1 || !strings.Contains(r.stderr, "STARTTLS") || doc.Sent == nil || *doc.Sent || doc.Winner != nil || len(doc.Ports) != 1 {
		t.Fatalf("exit %d, stderr %q, document %+v", r.code, r.stderr, doc)
	}
	p := doc.Ports[0]
	if last := p.Steps[len(p.Steps)-1]; p.Outcome != "failed" || !strings.HasPrefix(p.Reason, "failed: starttls: ") || last.Name != "starttls" || !last.Failed {
		t.Errorf("the port: %+v", p)
	}
	r = portwise(t, "body\n", nil, append([]string{"send", "-timing"}, args...)...)
	if r.code != 1 || !strings.Contains(r.stdout, "failed: starttls: ") || !strings.HasSuffix(r.stdout, "not sent\n") {
		t.Errorf("exit %d\nstdout:\n%s", r.code, r.stdout)
	}
}

// TestProbeTiming: probe -timing adds the waterfall after the report, and
// -json -timing a "timing" object beside the report's fields.
func TestProbeTiming(t *testing.T) {
	t.Parallel()
	srv, ca := server(t)
	good := tlsmode.Candidate{Port: srv.StartTLS.Port, Mode: tlsmode.StartTLS}
	stripped := tlsmode.Candidate{Port: srv.Listen(tlsmode.StartTLS, submittest.StripSTARTTLS).Port, Mode: tlsmode.StartTLS}
	args := []string{"probe", "-timing", "-ca", ca, "-port", ports(srv, good, stripped), "127.0.0.1"}
	r := portwise(t, "", nil, args...)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	_, view, ok := strings.Cut(r.stdout, "\nprobe of 127.0.0.1: ")
	if !ok || !strings.Contains(r.stdout, "Recommendation: "+good.String()) {
		t.Fatalf("no waterfall after the report:\n%s", r.stdout)
	}
	if rows := checkWaterfall(t, view, 80); rows != 2 || !strings.Contains(view, ", "+good.String()+" recommended\n") {
		t.Errorf("%d rows:\n%s", rows, view)
	}
	for _, l := range strings.Split(view, "\n") {
		if strings.HasPrefix(l, good.String()+" ") && !strings.HasSuffix(l, " recommended") ||
			strings.HasPrefix(l, stripped.String()+" ") && !strings.HasSuffix(l, " unusable") {
			t.Errorf("a row without its outcome: %q", l)
		}
	}

	r = portwise(t, "", nil, append([]string{"probe", "-json"}, args[1:]...)...)
	var doc struct {
		probe.Report
		Timing json.RawMessage `json:"timing"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || r.code != 0 {
		t.Fatalf("exit %d, %v:\n%s", r.code, err, r.stdout)
	}
	tm := decodeTiming(t, string(doc.Timing))
	if doc.Host != "127.0.0.1" || len(doc.Ports) != 2 || tm.Command != "probe" || tm.Winner == nil || *tm.Winner != good || len(tm.Ports) != 2 ||
		len(tm.Ports[0].Steps) != len(doc.Ports[0].Steps) || tm.Sent != nil {
		t.Errorf("report %+v\ntiming %+v", doc.Report, tm)
	}
}

// TestSendTimerRecordsARace drives the collector in this process, so that
// the race detector watches its hooks and Logger records arrive from the
// racing attempts' goroutines: the lane of every attempt, its steps in
// order, the winner's message, the loser's reason.
func TestSendTimerRecordsARace(t *testing.T) {
	t.Parallel()
	srv := submittest.NewServer(t)
	blackhole := tlsmode.Candidate{Port: srv.Listen(tlsmode.StartTLS, submittest.Blackhole).Port, Mode: tlsmode.StartTLS}
	good := tlsmode.Candidate{Port: srv.Implicit.Port, Mode: tlsmode.Implicit}
	policy := []tlsmode.Candidate{blackhole, good}
	st := newSendTimer("127.0.0.1", 0, policy)
	d := &submit.Dialer{Candidates: policy, TLSConfig: srv.ClientTLSConfig(), Auth: submit.PasswordAuth("user", "pass"),
		FallbackDelay: 50 * time.Millisecond, Timeout: 5 * time.Second, Logger: st.logger()}
	ctx, cancel := context.WithTimeout(submit.WithTrace(context.Background(), st.trace()), 10*time.Second)
	defer cancel()
	c, err := d.Dial(ctx, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.SendWith(ctx, "a@example.com", []string{"b@example.com"}, strings.NewReader("Subject: x\r\n\r\nbody\r\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Quit()
	st.settle(time.Second)
	tl := st.timeline()
	if tl.winner != 1 || !tl.sent || tl.queueID != res.QueueID || len(tl.lanes) != 2 {
		t.Fatalf("winner %d, sent %v, queue id %q, %d lanes", tl.winner, tl.sent, tl.queueID, len(tl.lanes))
	}
	lost, won := tl.lanes[0], tl.lanes[1]
	if lost.outcome != outcomeLost || lost.reason != "lost the race: "+good.String()+" won first" || won.start < 50*time.Millisecond {
		t.Errorf("lanes %+v", tl.lanes)
	}
	var names []string
	for i, s := range won.steps {
		names = append(names, s.name)
		if i > 0 && s.start < won.steps[i-1].start || s.start < won.start || s.start+s.elapsed > tl.total {
			t.Errorf("step %s at %v+%v, lane %v-%v, total %v", s.name, s.start, s.elapsed, won.start, won.end, tl.total)
		}
	}
	if got, want := strings.Join(names, " "), "connect tls banner ehlo auth envelope message"; got != want {
		t.Errorf("steps %q, want %q", got, want)
	}
}
