package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestQuickstartDeliversWithoutLeakingThePassword(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{"AUTH PLAIN [redacted]", "delivered to [you@example.com] over TLS=true", "Subject: Hello from portwise", "\r\n.a line starting with a dot survives", "implicit"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "app-password") {
		t.Error("the password appears in the output")
	}
}
