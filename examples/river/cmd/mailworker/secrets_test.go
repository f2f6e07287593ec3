package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestPasswordsNeverPrinted runs mailworker's commands with a PostgreSQL
// password in every form a DSN can hold one, on every path where the DSN
// can reach a person (an error, the log, the usage text), and checks that
// the password appears nowhere.
func TestPasswordsNeverPrinted(t *testing.T) {
	const secret = "Pw0rd-s3cret"
	smtp := "smtps://me:" + secret + "@127.0.0.1:1"
	tests := []struct {
		name string
		args []string
	}{
		{"work, URL user information, nothing listening", []string{"work", "-db", "postgres://mail:" + secret + "@127.0.0.1:1/queue?connect_timeout=2", "-smtp", smtp}},
		{"work, ?password= query, bad port", []string{"work", "-db", "postgres://mail@127.0.0.1:99999/queue?sslmode=disable&password=" + secret, "-smtp", smtp}},
		{"enqueue, keyword/value, nothing listening", []string{"enqueue", "-db", "host=127.0.0.1 port=1 user=mail password=" + secret + " connect_timeout=2", "-from", "a@example.com", "-to", "b@example.com"}},
		{"enqueue, quoted with spaces and an escaped quote, bad option", []string{"enqueue", "-db", `host=127.0.0.1 password='it\'s my ` + secret + `' sslmode=bogus`, "-from", "a@example.com", "-to", "b@example.com"}},
		{"the DSN given as the command", []string{"postgres://mail:" + secret + "@db/queue"}},
		{"the DSN given without -db, keyword/value", []string{"enqueue", "-from", "a@example.com", "-to", "b@example.com", "host=db password=" + secret}},
		{"work, the DSN given without -db", []string{"work", "-smtp", smtp, "postgres://mail@db/queue?password=" + secret}},
		{"usage", []string{"work", "-db", "postgres://mail:" + secret + "@db/queue", "-h"}},
		{"a bad flag after the DSN", []string{"enqueue", "-db", "host=db password=" + secret, "-n", "many"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var stdout, stderr bytes.Buffer
			err := run(ctx, tt.args, &stdout, &stderr)
			if err == nil {
				t.Fatal("no error")
			}
			for name, text := range map[string]string{"error": err.Error(), "stdout": stdout.String(), "stderr": stderr.String()} {
				if strings.Contains(text, secret) {
					t.Errorf("%s shows the password:\n%s", name, text)
				}
			}
			t.Logf("error: %v", err)
		})
	}
}
