package headers

import (
	"errors"
	"strings"
	"testing"
)

func TestChecks(t *testing.T) {
	for _, tt := range []struct {
		name  string
		check func() error
		bad   bool
	}{
		{"plain value", func() error { return CheckValue("x", "Subject", "Hello", "") }, false},
		{"CRLF", func() error { return CheckValue("x", "Subject", "ok", "Hi\r\nBcc: e@example.net") }, true},
		{"bare CR", func() error { return CheckValue("x", "Subject", "Hi\rBcc: e@example.net") }, true},
		{"NUL", func() error { return CheckValue("x", "Subject", "a\x00b") }, true},
		{"folded line", func() error { return CheckFolded("x", "Content-Disposition", "attachment;\r\n filename=a") }, false},
		{"folded, not allowed", func() error { return CheckValue("x", "Content-Disposition", "attachment;\r\n filename=a") }, true},
		{"fold without whitespace", func() error { return CheckFolded("x", "X", "a\r\nBcc: e@example.net") }, true},
		{"fold of whitespace alone", func() error { return CheckFolded("x", "X", "a\r\n \r\nBcc: e") }, true},
		{"fold at the end", func() error { return CheckFolded("x", "X", "a\r\n ") }, true},
		{"bare LF in a folded value", func() error { return CheckFolded("x", "X", "a\n b") }, true},
		{"header name", func() error { return CheckName("x", "X-Mailer") }, false},
		{"empty name", func() error { return CheckName("x", "") }, true},
		{"name with a colon", func() error { return CheckName("x", "Bcc: e@example.net\r\nX") }, true},
		{"name with a space", func() error { return CheckName("x", "X Mailer") }, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.check()
			if got := errors.Is(err, ErrInjection); got != tt.bad {
				t.Fatalf("err = %v; want ErrInjection: %v", err, tt.bad)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "x: ") {
				t.Errorf("err = %q; want the adapter's name first", err)
			}
		})
	}
}

func TestMessageID(t *testing.T) {
	for from, domain := range map[string]string{"a@example.com": "@example.com>", "nobody": "@localhost>", "a@": "@localhost>"} {
		id, err := MessageID(from)
		if err != nil || !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, domain) || len(id) != 1+32+len(domain) {
			t.Errorf("MessageID(%q) = %q, %v; want <32 hex digits%s", from, id, err, domain)
		}
	}
	a, _ := MessageID("a@example.com")
	b, _ := MessageID("a@example.com")
	if a == b {
		t.Errorf("two Message-IDs are the same: %s", a)
	}
}
