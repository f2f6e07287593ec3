package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestMessageIsTwoKiBOfShortCRLFLines(t *testing.T) {
	raw := message("bench@example.test", "discard@example.test")
	if len(raw) != messageSize {
		t.Fatalf("message is %d bytes, want %d", len(raw), messageSize)
	}
	if !bytes.HasSuffix(raw, []byte("\r\n")) {
		t.Fatal("message does not end with CRLF")
	}
	lines := strings.Split(strings.TrimSuffix(string(raw), "\r\n"), "\r\n")
	for i, l := range lines {
		if len(l) > 78 || strings.ContainsAny(l, "\r\n") || strings.HasPrefix(l, ".") {
			t.Errorf("line %d %q: longer than 78, a bare CR or LF, or a leading dot", i+1, l)
		}
	}
	// smtp-source -F sends each line of the file with CRLF: the same bytes.
	if back := bytes.ReplaceAll(lfText(raw), []byte("\n"), []byte("\r\n")); !bytes.Equal(back, raw) {
		t.Error("the LF file for smtp-source does not give back the message")
	}
}

func TestBodyFillsExactly(t *testing.T) {
	for n := 3; n < 400; n++ {
		b := body(n)
		if len(b) != n {
			t.Fatalf("body(%d) is %d bytes", n, len(b))
		}
		for _, l := range strings.Split(strings.TrimSuffix(b, "\r\n"), "\r\n") {
			if l == "" || len(l) > 74 {
				t.Fatalf("body(%d) has a line of %d characters", n, len(l))
			}
		}
	}
}

// go-mail composes its own message from the same text; it should stay
// near the others' size, or the comparison is not of the same work.
func TestGoMailSendsTheSameText(t *testing.T) {
	raw := message("bench@example.test", "discard@example.test")
	m, err := goMailMsg("bench@example.test", "discard@example.test", raw)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := m.WriteTo(&out); err != nil {
		t.Fatal(err)
	}
	_, text, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	if !bytes.Contains(out.Bytes(), text) {
		t.Errorf("go-mail's message does not carry the text:\n%s", out.Bytes())
	}
	if n := out.Len(); n < messageSize-200 || n > messageSize+400 {
		t.Errorf("go-mail's message is %d bytes, the others' %d", n, messageSize)
	}
	t.Logf("go-mail's message: %d bytes", out.Len())
}

func TestParseStat(t *testing.T) {
	p, err := parseStat([]byte("4242 (a (b) c) S 17 4242 4242 0 -1 4194560 1 0 0 0 250 50 7 3 20 0 1 0 999 0 0"))
	if err != nil {
		t.Fatal(err)
	}
	want := proc{comm: "a (b) c", ppid: 17, cpu: 3.0, children: 0.1, startTime: 999}
	if p != want {
		t.Errorf("got %+v, want %+v", p, want)
	}
}

// A process that exits between two snapshots is counted once, through its
// parent's children's time, less what it had used before the first.
func TestServerDeltaCountsExitedProcessesOnce(t *testing.T) {
	a := serverSnap{byPid: map[int]proc{
		1: {comm: "master", cpu: 1},
		2: {comm: "smtpd", cpu: 2, startTime: 10},
		3: {comm: "cleanup", cpu: 0.5, startTime: 10},
	}, reaped: 4, at: time.Now()}
	b := serverSnap{byPid: map[int]proc{
		1: {comm: "master", cpu: 1.25},
		2: {comm: "smtpd", cpu: 3, startTime: 10},
		4: {comm: "cleanup", cpu: 0.25, startTime: 20},
	}, reaped: 4 + 0.75 + 0.5} // 3 exited after 0.75 s in all; another, 0.5 s, came and went
	u := serverDelta(a, b)
	want := map[string]float64{"master": 0.25, "smtpd": 1, "cleanup": 0.25, "exited": 0.75}
	for k, v := range want {
		if d := u.byComm[k] - v; d > 1e-9 || d < -1e-9 {
			t.Errorf("%s: %v, want %v", k, u.byComm[k], v)
		}
	}
	if d := u.total - 2.25; d > 1e-9 || d < -1e-9 {
		t.Errorf("total %v, want 2.25", u.total)
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

// A run made of slices is measured as one: its messages over the sum of
// the slices' times, not the mean of the slices' rates.
func TestSlicesAddUpToARun(t *testing.T) {
	var run sample
	run.add(sample{n: 500, seconds: 1, cpu: 0.1, process: 0.2, wall: 1.1, machine: 2, server: serverUse{total: 1, byComm: map[string]float64{"smtpd": 1}}})
	run.add(sample{n: 500, seconds: 3, cpu: 0.3, process: 0.4, wall: 3.3, machine: 4, server: serverUse{total: 2, byComm: map[string]float64{"smtpd": 2}}, attempts: 1})
	m := run.measure()
	if m.rate != 250 || m.clientCPU != 0.4 || m.serverCPU != 3 || m.attempts != 1 || m.serverDetail.byComm["smtpd"] != 3 {
		t.Errorf("got %+v", m)
	}
	if d := m.othersCores - (6-3-0.4)/4.4; d > 1e-9 || d < -1e-9 {
		t.Errorf("others' cores %v", m.othersCores)
	}
}
