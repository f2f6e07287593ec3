package submit

import (
	"bufio"
	"bytes"
	"errors"
	"strings"
	"testing"
)

func normalise(t *testing.T, in string) string {
	t.Helper()
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	dw := newDataWriter(bw)
	if _, err := dw.Write([]byte(in)); err != nil {
		t.Fatalf("Write(%q): %v", in, err)
	}
	if err := dw.Close(); err != nil {
		t.Fatal(err)
	}
	bw.Flush()
	return buf.String()
}

func TestDataWriterNormalisesAndStuffs(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ".\r\n"},
		{"hi", "hi\r\n.\r\n"},
		{"hi\r\n", "hi\r\n.\r\n"},
		{"a\nb\n", "a\r\nb\r\n.\r\n"},
		{"a\rb", "a\r\nb\r\n.\r\n"},
		{"a\r", "a\r\n.\r\n"},
		{"a\r\r\nb", "a\r\n\r\nb\r\n.\r\n"},
		{".leading", "..leading\r\n.\r\n"},
		{"x\r\n.\r\ny", "x\r\n..\r\ny\r\n.\r\n"},
		// SMTP smuggling payloads (CVE-2023-51764/5/6): none may end DATA.
		{"x\n.\r\nMAIL FROM:<evil>", "x\r\n..\r\nMAIL FROM:<evil>\r\n.\r\n"},
		{"x\r\n.\rMAIL", "x\r\n..\r\nMAIL\r\n.\r\n"},
		{"x\n.\nMAIL", "x\r\n..\r\nMAIL\r\n.\r\n"},
		{"x\r.\rMAIL", "x\r\n..\r\nMAIL\r\n.\r\n"},
	}
	for _, tt := range tests {
		if got := normalise(t, tt.in); got != tt.want {
			t.Errorf("normalise(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

func TestDataWriterSameResultWhateverTheChunking(t *testing.T) {
	in := "a\r\n.b\rc\n\r\n..d\r"
	want := normalise(t, in)
	for split := 0; split <= len(in); split++ {
		var buf bytes.Buffer
		bw := bufio.NewWriter(&buf)
		dw := newDataWriter(bw)
		dw.Write([]byte(in[:split]))
		dw.Write([]byte(in[split:]))
		dw.Close()
		bw.Flush()
		if buf.String() != want {
			t.Errorf("split at %d: %q; want %q", split, buf.String(), want)
		}
	}
}

func TestDataWriterRefusesOverlongLineNamingIt(t *testing.T) {
	var buf bytes.Buffer
	dw := newDataWriter(bufio.NewWriter(&buf))
	in := "ok\r\n" + strings.Repeat("x", maxLineBytes) + "\r\n" + strings.Repeat("y", maxLineBytes+1) + "\r\n"
	_, err := dw.Write([]byte(in))
	if !errors.Is(err, ErrLineTooLong) || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("err = %v; want ErrLineTooLong naming line 3", err)
	}
	// A stuffed dot counts: 998 bytes starting with "." become 999 on the wire.
	dw = newDataWriter(bufio.NewWriter(&buf))
	if _, err := dw.Write([]byte("." + strings.Repeat("z", maxLineBytes-1))); !errors.Is(err, ErrLineTooLong) {
		t.Fatalf("stuffed line: err = %v", err)
	}
}

// unstuff reverses dot-stuffing and drops the terminator, as a server does.
func unstuff(s string) (string, bool) {
	if !strings.HasSuffix(s, ".\r\n") {
		return "", false
	}
	s = strings.TrimSuffix(s, ".\r\n")
	var out []string
	for _, l := range strings.SplitAfter(s, "\r\n") {
		out = append(out, strings.TrimPrefix(l, "."))
	}
	return strings.Join(out, ""), true
}

func FuzzDataWriter(f *testing.F) {
	for _, s := range []string{"", "a", ".\r\n", "x\n.\r\ny", "\r\r\n\n", "x\r\n.\rq", ".."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var buf bytes.Buffer
		bw := bufio.NewWriter(&buf)
		dw := newDataWriter(bw)
		if _, err := dw.Write([]byte(in)); err != nil {
			if errors.Is(err, ErrLineTooLong) {
				return
			}
			t.Fatal(err)
		}
		dw.Close()
		bw.Flush()
		out := buf.String()
		// Only CRLF line endings.
		for i := 0; i < len(out); i++ {
			if out[i] == '\n' && (i == 0 || out[i-1] != '\r') || out[i] == '\r' && (i+1 >= len(out) || out[i+1] != '\n') {
				t.Fatalf("bare CR or LF at %d in %q", i, out)
			}
		}
		// The terminator appears once, at the end.
		if strings.Index("\r\n"+out, "\r\n.\r\n") != len(out)-3 {
			t.Fatalf("early terminator in %q", out)
		}
		// Un-stuffing gives back the input with line endings normalised.
		got, ok := unstuff(out)
		want := strings.NewReplacer("\r\n", "\r\n", "\r", "\r\n", "\n", "\r\n").Replace(in)
		if want != "" && !strings.HasSuffix(want, "\r\n") {
			want += "\r\n"
		}
		if !ok || got != want {
			t.Fatalf("unstuff(%q) = %q; want %q", out, got, want)
		}
	})
}
