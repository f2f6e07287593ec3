package wire

import (
	"bufio"
	"errors"
	"strings"
	"testing"
)

func TestReadReplyParsesValidReplies(t *testing.T) {
	tests := []struct {
		in        string
		code      int
		lines     []string
		enhanced  string
		leftAfter string
	}{
		{"220 mx.example.com ESMTP\r\n", 220, []string{"mx.example.com ESMTP"}, "", ""},
		{"250-mx\r\n250-PIPELINING\r\n250 STARTTLS\r\n", 250, []string{"mx", "PIPELINING", "STARTTLS"}, "", ""},
		{"250\r\n", 250, []string{""}, "", ""},
		{"235 2.7.0 ok\n", 235, []string{"2.7.0 ok"}, "2.7.0", ""},
		{"220 go\r\nEXTRA", 220, []string{"go"}, "", "EXTRA"},
		{"250 tab\there ünïcode\r\n", 250, []string{"tab\there ünïcode"}, "", ""},
	}
	for _, tt := range tests {
		br := bufio.NewReader(strings.NewReader(tt.in))
		r, err := ReadReply(br)
		if err != nil {
			t.Fatalf("ReadReply(%q): %v", tt.in, err)
		}
		if r.Code != tt.code || strings.Join(r.Lines, "|") != strings.Join(tt.lines, "|") {
			t.Errorf("ReadReply(%q) = %d %q", tt.in, r.Code, r.Lines)
		}
		rest := make([]byte, 16)
		n, _ := br.Read(rest)
		if string(rest[:n]) != tt.leftAfter {
			t.Errorf("ReadReply(%q) consumed past the reply: left %q", tt.in, rest[:n])
		}
	}
}

func TestReadReplyRejectsMalformedAndOversized(t *testing.T) {
	long := strings.Repeat("a", MaxLineBytes+1)
	endless := strings.Repeat("250-x\r\n", MaxReplyLines+5) + "250 end\r\n"
	big := strings.Repeat("250-"+strings.Repeat("b", 900)+"\r\n", 80) + "250 end\r\n"
	tests := map[string]string{
		"four-digit code":         "2500 ok\r\n",
		"two-digit code":          "25 OK\r\n",
		"letters":                 "abc\r\n",
		"mixed continuation code": "250-a\r\n251 b\r\n",
		"bad separator":           "250+x\r\n",
		"code out of range":       "999 x\r\n",
		"line too long":           "250 " + long + "\r\n",
		"too many lines":          endless,
		"reply too large":         big,
		"bare CR in text":         "220 ok\rforged\r\n",
		"escape in text":          "220 \x1b[2Jhi\r\n",
		"NUL in continuation":     "250-a\x00\r\n250 b\r\n",
		"DEL in text":             "250 a\x7f\r\n",
	}
	for name, in := range tests {
		_, err := ReadReply(bufio.NewReader(strings.NewReader(in)))
		if !errors.Is(err, ErrProtocol) {
			t.Errorf("%s: err = %v; want ErrProtocol", name, err)
		}
	}
}

func TestReadReplyTruncated(t *testing.T) {
	_, err := ReadReply(bufio.NewReader(strings.NewReader("250-a\r\n250 b")))
	if err == nil {
		t.Fatal("a reply without its final CRLF was accepted")
	}
}

func TestReplyEnhancedCodeAndString(t *testing.T) {
	tests := []struct {
		r        *Reply
		enh, txt string
		str      string
	}{
		{&Reply{Code: 535, Lines: []string{"5.7.8 Username and Password not accepted.", "5.7.8 Learn more"}},
			"5.7.8", "Username and Password not accepted.\nLearn more", "535 5.7.8 Username and Password not accepted. Learn more"},
		{&Reply{Code: 535, Lines: []string{"4.7.8 mismatched class"}}, "", "4.7.8 mismatched class", "535 4.7.8 mismatched class"},
		{&Reply{Code: 421, Lines: []string{"4.7.0"}}, "4.7.0", "", "421 4.7.0"},
		{&Reply{Code: 250, Lines: []string{"ok"}}, "", "ok", "250 ok"},
		{&Reply{Code: 554, Lines: []string{"5.7.1 \u202eevil\x9b"}}, "5.7.1", "\u202eevil\x9b", `554 5.7.1 \u202eevil\x9b`},
		{&Reply{Code: 550, Lines: []string{"5.1.1.1 not enhanced"}}, "", "5.1.1.1 not enhanced", "550 5.1.1.1 not enhanced"},
	}
	for _, tt := range tests {
		enh, txt := tt.r.Enhanced()
		if enh != tt.enh || txt != tt.txt {
			t.Errorf("Enhanced(%q) = %q, %q; want %q, %q", tt.r.Lines, enh, txt, tt.enh, tt.txt)
		}
		if got := tt.r.String(); got != tt.str {
			t.Errorf("String(%q) = %q; want %q", tt.r.Lines, got, tt.str)
		}
	}
}

func TestParseEHLOAuth(t *testing.T) {
	tests := []struct {
		lines []string
		mechs string
		list  string
	}{
		{[]string{"mail", "AUTH PLAIN LOGIN"}, "PLAIN LOGIN", "AUTH PLAIN LOGIN"},
		{[]string{"mail", "AUTH=LOGIN PLAIN"}, "LOGIN PLAIN", "AUTH=LOGIN PLAIN"},
		{[]string{"mail", "auth=login"}, "LOGIN", "AUTH=LOGIN"},
		{[]string{"mail", "AUTH PLAIN LOGIN CRAM-MD5", "AUTH=LOGIN PLAIN"}, "PLAIN LOGIN CRAM-MD5", "AUTH PLAIN LOGIN CRAM-MD5, AUTH=LOGIN PLAIN"},
		{[]string{"mail", "PIPELINING"}, "", "PIPELINING"},
	}
	for _, tt := range tests {
		c := ParseEHLO(&Reply{Code: 250, Lines: tt.lines})
		if got := strings.Join(c.AuthMechs(), " "); got != tt.mechs {
			t.Errorf("AuthMechs(%q) = %q; want %q", tt.lines, got, tt.mechs)
		}
		if got := strings.Join(c.List(), ", "); got != tt.list {
			t.Errorf("List(%q) = %q; want %q", tt.lines, got, tt.list)
		}
	}
}

func TestMaskedKeyword(t *testing.T) {
	tests := map[string]bool{"XXXXXXXA": true, "XXXXXXXX": true, "XXXXA": true, "STARTTLS": false, "XCLIENT": false, "X": false, "8BITMIME": false, "XXXXXXXXXXA": false}
	for kw, want := range tests {
		_, got := Caps{kw: ""}.MaskedKeyword()
		if got != want {
			t.Errorf("MaskedKeyword(%q) = %v; want %v", kw, got, want)
		}
	}
}

func FuzzReadReply(f *testing.F) {
	for _, s := range []string{"250 ok\r\n", "250-a\r\n250 b\r\n", "2500\r\n", "25 OK\r\n", "250-a\r\n251 b\r\n", "\r\n", "250"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		r, err := ReadReply(bufio.NewReader(strings.NewReader(in)))
		if err != nil {
			return
		}
		if r.Code < 200 || r.Code > 599 || len(r.Lines) == 0 || len(r.Lines) > MaxReplyLines {
			t.Fatalf("accepted invalid reply %q: %+v", in, r)
		}
		for _, l := range r.Lines {
			if len(l) > MaxLineBytes || strings.IndexFunc(l, isControl) >= 0 {
				t.Fatalf("line out of bounds in %q", in)
			}
		}
		_ = ParseEHLO(r)
	})
}
