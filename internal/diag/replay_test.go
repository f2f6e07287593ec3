package diag

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/portwise/portwise/internal/golden"
	"github.com/portwise/portwise/internal/untrusted"
	"github.com/portwise/portwise/internal/wire"
	"github.com/portwise/portwise/tlsmode"
)

// replayed classifies a record's reply as the failure of its step, the
// way a Dial (AUTH) or a Client (the envelope, the message) meets it.
func replayed(t *testing.T, rec record) Diagnosis {
	t.Helper()
	code, enhanced, text := split(t, rec.wire)
	lines := strings.Split(text, "\n")
	if enhanced != "" {
		for i, l := range lines {
			lines[i] = enhanced + " " + l
		}
	}
	r := &wire.Reply{Code: code, Lines: lines}
	step, command := rec.step, rec.step
	switch {
	case rec.step == "AUTH" || strings.HasPrefix(rec.step, "AUTH "):
		step = "auth"
	case rec.step == "greeting":
		step, command = "banner", ""
	case rec.step == "EHLO":
		step = "ehlo"
	}
	c := tlsmode.Candidate{Port: 587, Mode: tlsmode.StartTLS}
	return Classify(step, c, rec.host, 0, r.Err(command))
}

// TestReplayClassifiesReplies replays every captured reply that has a step
// through Classify, as the failure of that step: the kind, reason and
// temporariness the record states must hold, a known provider's or a
// reason's reply must get advice in both wordings, and the server's words
// appear once, escaped, with any help URL whole. Every replayed record is
// listed in testdata/replies.golden; go test -run Replay -update rewrites
// it after review.
func TestReplayClassifiesReplies(t *testing.T) {
	var b strings.Builder
	for _, rec := range readRecords(t) {
		if rec.step == "" {
			if rec.kind != "" || rec.reason != "" || rec.temporary != "" {
				t.Errorf("%s:%d: kind, reason and temporary need a step", rec.file, rec.line)
			}
			continue
		}
		name := rec.file + ":" + fmt.Sprint(rec.line)
		d := replayed(t, rec)
		if rec.kind != "" && d.Kind.String() != rec.kind {
			t.Errorf("%s: kind %s, want %s (source %s)", name, d.Kind, rec.kind, rec.source)
		}
		if rec.reason != "" && d.Reason.String() != rec.reason {
			t.Errorf("%s: reason %s, want %s (source %s)", name, d.Reason, rec.reason, rec.source)
		}
		if rec.temporary != "" && fmt.Sprint(d.Temporary()) != map[string]string{"yes": "true", "no": "false"}[rec.temporary] {
			t.Errorf("%s: temporary %v, want %s (source %s)", name, d.Temporary(), rec.temporary, rec.source)
		}
		goAdv, cliAdv := d.Advice(Go), d.Advice(CLI)
		if (rec.want != "-" || d.Reason != ReasonNone) && (goAdv == "" || cliAdv == "") {
			t.Errorf("%s: advice missing: go %q, cli %q", name, goAdv, cliAdv)
		}
		for _, a := range []Audience{Go, CLI} {
			checkSaidOnce(t, name, d, d.Sentence(a, d.Where()))
		}
		sentinel := "-"
		if s := Sentinel(d.Kind); s != nil {
			sentinel = s.Error()
		}
		fmt.Fprintf(&b, "## %s %s\nstep: %s; kind: %s; headline: %s; temporary: %v; sentinel: %s; reason: %s\nline: %s\ngo:   %s\ncli:  %s\n\n",
			name, rec.source, rec.step, d.Kind, Headline(d.Kind), d.Temporary(), sentinel, d.Reason, d.Line(), goAdv, cliAdv)
	}
	golden.Check(t, "replies.golden", []byte(b.String()), *update, "go test ./internal/diag -run Replay")
}

// checkSaidOnce checks a rendering of a reply: one line, no byte a
// terminal would act on, the server's text once, and every URL of the
// server's text whole.
func checkSaidOnce(t *testing.T, name string, d Diagnosis, s string) {
	t.Helper()
	if strings.ContainsAny(s, "\r\n") || !utf8.ValidString(s) {
		t.Errorf("%s: not one line of text: %q", name, s)
	}
	for _, r := range s {
		if untrusted.Escaped(r) {
			t.Errorf("%s: unescaped %U in %q", name, r, s)
		}
	}
	said := d.said()
	if n := strings.Count(s, said); n != 1 {
		t.Errorf("%s: the server's words appear %d times in %q", name, n, s)
	}
	for _, f := range strings.Fields(said) {
		if strings.HasPrefix(f, "https://") || strings.HasPrefix(f, "http://") {
			if !strings.Contains(s, f) {
				t.Errorf("%s: URL %s cut in %q", name, f, s)
			}
		}
	}
}
