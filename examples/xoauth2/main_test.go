package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestDemoRefreshesTheRejectedTokenWithoutPrintingSecrets(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), func(string) string { return "" }, &out); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{
		"No PORTWISE_OAUTH_* variables set",
		"C: AUTH XOAUTH2 [redacted]",
		"S: 535 5.7.8",
		"S: 235",
		"with AUTH XOAUTH2",
		"asked 1 time(s)",
		"as demo@example.com over TLS=true",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	for _, secret := range []string{"demo-stale-access", "demo-fresh-access", "demo-refresh", "demo-secret"} {
		if strings.Contains(s, secret) {
			t.Errorf("output contains %q", secret)
		}
	}
}

func TestFromEnv(t *testing.T) {
	full := map[string]string{
		"PORTWISE_OAUTH_CLIENT_ID":     "id",
		"PORTWISE_OAUTH_CLIENT_SECRET": "secret",
		"PORTWISE_OAUTH_REFRESH_TOKEN": "rt",
		"PORTWISE_OAUTH_USER":          "me@example.com",
	}
	with := func(k, v string) map[string]string {
		m := map[string]string{k: v}
		for kk, vv := range full {
			if kk != k {
				m[kk] = vv
			}
		}
		return m
	}
	tests := []struct {
		name     string
		env      map[string]string
		real     bool
		host     string
		tokenURL string
		err      string
	}{
		{"none: demo", nil, false, "", "", ""},
		{"google by default", full, true, "smtp.gmail.com", "https://oauth2.googleapis.com/token", ""},
		{"microsoft", with("PORTWISE_OAUTH_PROVIDER", "Microsoft"), true, "smtp.office365.com", "https://login.microsoftonline.com/common/oauth2/v2.0/token", ""},
		{"missing one", with("PORTWISE_OAUTH_USER", ""), true, "", "", "set PORTWISE_OAUTH_USER too"},
		{"unknown provider", with("PORTWISE_OAUTH_PROVIDER", "yahoo"), true, "", "", "want google or microsoft"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, real, err := fromEnv(func(k string) string { return tt.env[k] })
			if real != tt.real {
				t.Errorf("real = %v", real)
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("err = %v; want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.real && (a.host != tt.host || a.cfg.Endpoint.TokenURL != tt.tokenURL || a.to != "me@example.com" || a.token.RefreshToken != "rt") {
				t.Errorf("account = %+v, endpoint %s", a, a.cfg.Endpoint.TokenURL)
			}
		})
	}
}
