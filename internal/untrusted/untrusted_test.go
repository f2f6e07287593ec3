package untrusted

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestText(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		want string
	}{
		{"plain", "2.7.0 Authentication successful", 300, "2.7.0 Authentication successful"},
		{"letters kept", "Zugang verweigert – ungültig", 300, "Zugang verweigert – ungültig"},
		{"CR rewrites the line", "bad\rsent OK", 300, `bad\rsent OK`},
		{"LF", "a\nb", 300, `a\nb`},
		{"tab", "a\tb", 300, `a\tb`},
		{"ESC hides text", "x\x1b[8mhidden", 300, `x\x1b[8mhidden`},
		{"BEL and NUL", "\a\x00", 300, `\x07\x00`},
		{"DEL", "a\x7fb", 300, `a\x7fb`},
		{"C1 as a character", "a\u0085b\u009bc", 300, `a\u0085b\u009bc`},
		{"C1 as a raw byte", "a\x9b31mb", 300, `a\x9b31mb`},
		{"invalid UTF-8", "a\xff\xfeb", 300, `a\xff\xfeb`},
		{"bidi override", "txt.\u202Eexe", 300, `txt.\u202eexe`},
		{"bidi isolates", "\u2066a\u2067b\u2068c\u2069", 300, `\u2066a\u2067b\u2068c\u2069`},
		{"marks and separators", "\u200e\u200f\u061c\u2028\u2029", 300, `\u200e\u200f\u061c\u2028\u2029`},
		{"clip ASCII", "abcdefghij", 8, "abcde…"},
		{"clip keeps a character whole", "éééééé", 10, "ééé…"},
		{"clip keeps an escape whole", "aaa\x1bbbbb", 8, "aaa…"},
		{"fits exactly", "abcdefgh", 8, "abcdefgh"},
		{"zero", "abc", 0, ""},
		{"url kept whole", "5.7.8 Username and Password not accepted. For more information, go to https://support.google.com/mail/?p=BadCredentials d2-20020a05 - gsmtp", 40,
			"5.7.8 Username and Password not accep… https://support.google.com/mail/?p=BadCredentials"},
		{"url inside the clip", "see https://a.example/x and then much more text after it", 30, "see https://a.example/x and…"},
		{"url trailing dot dropped", "look at http://h.example/p. and a lot more words here", 10, "look at… http://h.example/p"},
		{"url escaped", "go to https://evil.example/\u202efdp.exe now please and so on", 8, "go to… https://evil.example/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Text(tt.in, tt.max); got != tt.want {
				t.Errorf("Text(%q, %d) = %q; want %q", tt.in, tt.max, got, tt.want)
			}
		})
	}
}

func TestNames(t *testing.T) {
	var many []string
	for i := range 300 {
		many = append(many, fmt.Sprintf("n%d.example", i))
	}
	tests := []struct {
		in   []string
		want string
	}{
		{nil, ""},
		{[]string{"a.example"}, "a.example"},
		{[]string{"a", "b\r\nX-Fake: 1"}, `a, b\r\nX-Fake: 1`},
		{many, "n0.example, n1.example, n2.example, n3.example, n4.example and 295 more names"},
		{[]string{strings.Repeat("x", 150)}, strings.Repeat("x", MaxName-len(Ellipsis)) + Ellipsis},
	}
	for _, tt := range tests {
		if got := Names(tt.in, "names"); got != tt.want {
			t.Errorf("Names(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

func TestError(t *testing.T) {
	base := fmt.Errorf("oauth2: cannot fetch token: 400\nResponse: {\"error\":\"\x1b[2Jinvalid\"}: %w", io.EOF)
	err := Error(base)
	if strings.ContainsAny(err.Error(), "\n\x1b") {
		t.Errorf("Error kept controls: %q", err.Error())
	}
	if !errors.Is(err, io.EOF) || !errors.Is(err, base) {
		t.Error("Error hides the wrapped error from errors.Is")
	}
	if Error(err) != err {
		t.Error("Error wraps an already safe error again")
	}
	if Error(nil) != nil {
		t.Error("Error(nil) != nil")
	}
}

// checkSafe fails when out holds a rune Text must escape, is not UTF-8, or
// is longer than bound.
func checkSafe(t *testing.T, in, out string, bound int) {
	t.Helper()
	if !utf8.ValidString(out) {
		t.Fatalf("Text(%q) = %q: not UTF-8", in, out)
	}
	for _, r := range out {
		if Escaped(r) {
			t.Fatalf("Text(%q) = %q: %U survived", in, out, r)
		}
	}
	if len(out) > bound {
		t.Fatalf("Text(%q) = %d bytes; bound %d", in, len(out), bound)
	}
}

func FuzzText(f *testing.F) {
	for _, s := range []string{"", "ok", "a\r\nb", "\x1b[8m", "\xc2\x85", "\x85", "\u202e", "é", "https://x.example/a\x9b b", strings.Repeat("ü", 200)} {
		f.Add(s, 10)
		f.Add(s, 300)
	}
	f.Fuzz(func(t *testing.T, s string, max int) {
		max = max % 1000
		if max < 0 {
			max = -max
		}
		out := Text(s, max)
		checkSafe(t, s, out, max+len(Ellipsis)+1+MaxURL)
		if len(s) <= max && clean(s) && out != s {
			t.Fatalf("Text(%q, %d) = %q: changed clean text that fits", s, max, out)
		}
		if !strings.HasSuffix(out, Ellipsis) && !strings.Contains(out, Ellipsis+" http") && len(out) > max {
			t.Fatalf("Text(%q, %d) = %q: longer than max without a URL", s, max, out)
		}
		// What was kept is a prefix of the escaped text: nothing is
		// reordered, and no character is split.
		full, _ := build(s, len(s)*6+1)
		head, _, _ := strings.Cut(out, Ellipsis)
		if !strings.HasPrefix(full, head) {
			t.Fatalf("Text(%q, %d) = %q: not a prefix of %q", s, max, out, full)
		}
		names := Names([]string{s, s, s, s, s, s, s}, "names")
		checkSafe(t, s, names, MaxNames*(MaxName+len(Ellipsis)+1+MaxURL+2)+32)
	})
}
