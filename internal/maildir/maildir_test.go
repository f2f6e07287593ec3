package maildir

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestIndexFindsByAHeaderField(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"1": "Message-ID: <a@example.test>\r\nSubject: first\r\n\r\nSubject: in the body\r\n",
		"2": "message-id:   <b@example.test>  \r\nSubject: a long\r\n\tfolded subject\r\n\r\nbody\r\n",
		"3": "From: x\r\n\r\nMessage-ID: <c@example.test>\r\n",
	}
	for name, s := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct{ field, value, want string }{
		{"Message-ID", "<a@example.test>", "1"},
		{"Message-ID", "<b@example.test>", "2"},
		{"Message-ID", "<c@example.test>", ""}, // in the body, not the header
		{"Subject", "first", "1"},
		{"Subject", "a long\tfolded subject", "2"},
		{"Subject", "in the body", ""},
	} {
		got := NewIndex(tt.field).Find(dir, tt.value)
		if want := filepath.Join(dir, tt.want); tt.want == "" && got != "" || tt.want != "" && got != want {
			t.Errorf("Find(%s %q) = %q; want file %q", tt.field, tt.value, got, tt.want)
		}
	}
}

func TestWaitSeesAFileThatArrivesLater(t *testing.T) {
	dir := t.TempDir()
	x := NewIndex("Subject")
	if _, ok := x.Wait(dir, "late", 150*time.Millisecond); ok {
		t.Fatal("found a message in an empty maildir")
	}
	tmp := filepath.Join(t.TempDir(), "msg")
	if err := os.WriteFile(tmp, []byte("Subject: late\r\n\r\nbody\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(150 * time.Millisecond)
		os.Rename(tmp, filepath.Join(dir, "msg")) // as a server moves a message from tmp/ to new/
	}()
	b, ok := x.Wait(dir, "late", 5*time.Second)
	if !ok || string(b) != "Subject: late\r\n\r\nbody\r\n" {
		t.Fatalf("Wait = %q, %v", b, ok)
	}
}
