package submit_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/tlsmode"
)

func TestParseURL(t *testing.T) {
	S, I := tlsmode.StartTLS, tlsmode.Implicit
	tests := []struct {
		raw       string
		host      string
		cands     []tlsmode.Candidate // nil: the default policy
		timeout   time.Duration
		localName string
		auth      bool
		pending   *submit.PendingAuth
	}{
		{raw: "smtps://user:pass@smtp.example.com", host: "smtp.example.com", cands: []tlsmode.Candidate{{Port: 465, Mode: I}}, auth: true},
		{raw: "smtp://user:pass@smtp.example.com", host: "smtp.example.com", cands: []tlsmode.Candidate{{Port: 587, Mode: S}}, auth: true},
		{raw: "submission://user:pass@smtp.example.com", host: "smtp.example.com", auth: true},
		{raw: "submission://relay.internal", host: "relay.internal"},
		{raw: "submission://relay.internal:465", host: "relay.internal", cands: []tlsmode.Candidate{{Port: 465}}}, // mode detected
		{raw: "SMTPS://h.example:2465", host: "h.example", cands: []tlsmode.Candidate{{Port: 2465, Mode: I}}},
		{raw: "smtp://h.example:2525?tls=implicit", host: "h.example", cands: []tlsmode.Candidate{{Port: 2525, Mode: I}}},
		{raw: "submission://h.example?tls=starttls", host: "h.example", cands: []tlsmode.Candidate{{Port: 587, Mode: S}}},
		{raw: "smtp://127.0.0.1:25?tls=plaintext", host: "127.0.0.1", cands: []tlsmode.Candidate{{Port: 25, Mode: tlsmode.Plaintext}}},
		{raw: "smtp://[::1]:587", host: "::1", cands: []tlsmode.Candidate{{Port: 587, Mode: S}}},
		{raw: "smtp://u:p@h.example?timeout=5s&localname=client.example&auth=login", host: "h.example",
			cands: []tlsmode.Candidate{{Port: 587, Mode: S}}, timeout: 5 * time.Second, localName: "client.example", auth: true},
		{raw: "smtp://user@host.example:587?tls=starttls", host: "host.example", cands: []tlsmode.Candidate{{Port: 587, Mode: S}},
			pending: &submit.PendingAuth{Username: "user"}},
		{raw: "smtps://me%40example.com@smtp.gmail.com?auth=xoauth2", host: "smtp.gmail.com", cands: []tlsmode.Candidate{{Port: 465, Mode: I}},
			pending: &submit.PendingAuth{Username: "me@example.com", Mechanism: "XOAUTH2"}},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			d, host, err := submit.ParseURL(tt.raw)
			if err != nil {
				t.Fatal(err)
			}
			if host != tt.host || !slices.Equal(d.Candidates, tt.cands) || d.Timeout != tt.timeout || d.LocalName != tt.localName {
				t.Errorf("got host %q cands %v timeout %v localname %q", host, d.Candidates, d.Timeout, d.LocalName)
			}
			if tt.pending != nil {
				p, ok := d.Auth.(*submit.PendingAuth)
				if !ok || *p != *tt.pending {
					t.Errorf("Auth = %#v; want %#v", d.Auth, tt.pending)
				}
			} else if (d.Auth != nil) != tt.auth {
				t.Errorf("Auth = %v; want set: %v", d.Auth, tt.auth)
			}
		})
	}
}

func TestParseURLErrorsNameTheFieldAndHideThePassword(t *testing.T) {
	const secret = "s3cr3t"
	tests := []struct {
		raw   string
		field string
	}{
		{"imap://user:" + secret + "@h.example", "scheme"},
		{"user:" + secret + "@h.example", "scheme"},
		{"smtp://user:" + secret + "@", "host"},
		{"smtp://user:" + secret + "@h.example:99999", "port"},
		{"smtp://user:" + secret + "@h.example/inbox", "path"},
		{"smtp://user:" + secret + "@h.example?auth=cram-md5", "auth"},
		{"smtp://user:" + secret + "@h.example?timeout=soon", "timeout"},
		{"smtp://user:" + secret + "@h.example?timeout=-1s", "timeout"},
		{"smtp://user:" + secret + "@h.example?localname=a%0D%0AMAIL", "localname"},
		{"smtp://user:" + secret + "@h.example?tls=maybe", "tls"},
		{"smtp://user:" + secret + "@h.example?tls=plaintext", "tls"},
		{"smtp://user:" + secret + "@h.example?port=25", "port"},
		{"smtp://user:" + secret + "@h.example?tls=implicit&tls=starttls", "tls"},
		{"smtp://h.example?auth=plain", "auth"},
		{"smtp://:" + secret + "@h.example", "user"},
		{"smtp://user:" + secret + "%zz@h.example", "userinfo"},
		// Unencoded / ? # move the password into other fields.
		{"smtp://user:123/" + secret + "@h.example", "userinfo"},
		{"smtp://user:" + secret + "#x@h.example", "userinfo"},
		{"smtp://user:" + secret + "?x@h.example", "userinfo"},
		{"smtp://user:" + secret + "@x@h.example", "userinfo"},
		{"smtp://user:" + secret + "@h.example:abc", "port"},
		{"smtp://user:" + secret + "@h.example:0", "port"},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			_, _, err := submit.ParseURL(tt.raw)
			if !errors.Is(err, submit.ErrBadURL) {
				t.Fatalf("err = %v; want ErrBadURL", err)
			}
			msg := err.Error()
			if strings.Contains(msg, secret) || strings.Contains(msg, "123") {
				t.Errorf("error shows the password: %s", msg)
			}
			if !strings.Contains(msg, ": "+tt.field+": ") {
				t.Errorf("error does not name field %q: %s", tt.field, msg)
			}
		})
	}
}

func TestRedactURLNeverShowsThePassword(t *testing.T) {
	tests := []struct{ raw, want string }{
		{"smtps://user:p%40ss@h.example:465?auth=plain", "smtps://user:xxxxx@h.example:465?auth=plain"},
		{"smtp://h.example", "smtp://h.example"},
		{"smtp://user:123/pw@h.example", "smtp://xxxxx@h.example"},
		{"smtp://user:pw#x@h.example", "smtp://xxxxx@h.example"},
		{"user:pw@h.example", "xxxxx@h.example"},
	}
	for _, tt := range tests {
		if got := submit.RedactURL(tt.raw); got != tt.want {
			t.Errorf("RedactURL(%q) = %q; want %q", tt.raw, got, tt.want)
		}
	}
}

func TestParseURLDialsWithTheDecodedCredentials(t *testing.T) {
	srv := submittest.NewServer(t, submittest.Options{Accounts: map[string]string{"me@example.com": "p@ss:/?#"}})
	tests := []struct {
		name, query, mech string
	}{
		{"default", "", "PLAIN"},
		{"plain", "?auth=plain", "PLAIN"},
		{"login", "?auth=LOGIN", "LOGIN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := fmt.Sprintf("smtps://me%%40example.com:p%%40ss%%3A%%2F%%3F%%23@localhost:%d%s", srv.Implicit.Port, tt.query)
			d, host, err := submit.ParseURL(raw)
			if err != nil {
				t.Fatal(err)
			}
			d.TLSConfig = srv.ClientTLSConfig()
			c, err := d.Dial(context.Background(), host)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Quit()
			if c.Mode() != tlsmode.Implicit || c.Mechanism() != tt.mech {
				t.Errorf("dialled %v with %q; want implicit with %s", c.Mode(), c.Mechanism(), tt.mech)
			}
		})
	}
}

func TestPendingAuthFailsBeforeConnecting(t *testing.T) {
	srv := submittest.NewServer(t)
	for _, raw := range []string{
		fmt.Sprintf("smtps://user@localhost:%d?auth=xoauth2", srv.Implicit.Port),
		fmt.Sprintf("smtps://user@localhost:%d", srv.Implicit.Port),
	} {
		d, host, err := submit.ParseURL(raw)
		if err != nil {
			t.Fatal(err)
		}
		d.TLSConfig = srv.ClientTLSConfig()
		_, err = d.Dial(context.Background(), host)
		if err == nil || !strings.Contains(err.Error(), `"user"`) {
			t.Errorf("Dial with %T: err = %v", d.Auth, err)
		}
		if strings.Contains(raw, "xoauth2") && !strings.Contains(err.Error(), "xoauth2 in a URL needs a token source: use submit.XOAuth2") {
			t.Errorf("err = %v; want the XOAuth2 advice", err)
		}
	}
	if n := len(srv.Conns()); n != 0 {
		t.Errorf("%d connections made; want none", n)
	}
}

// TestPasswordsNeverShowThroughURLs is the attack of issue 13: whatever a
// user types in the password, unencoded "@", "/", "?", "#" or ":"
// included, no piece of it appears in ParseURL's error or in RedactURL.
func TestPasswordsNeverShowThroughURLs(t *testing.T) {
	passwords := []string{
		"Zq9@Xw7Kp", "Zq9/Xw7Kp", "Zq9?Xw7Kp", "Zq9#Xw7Kp", "Zq9:Xw7Kp", "Zq9%Xw7Kp",
		"@Zq9Xw7Kp", "Zq9Xw7Kp@", "Zq9@Xw/7Kp", "Zq9@Xw?7Kp", "Zq9@Xw#7Kp", "Zq9@@Xw7Kp",
		"Zq9/Xw@7Kp?Tz", "Zq9 Xw7Kp", "Zq9\tXw7Kp",
	}
	for _, pw := range passwords {
		for _, raw := range []string{
			"smtps://user:" + pw + "@smtp.example.com",
			"smtp://user:" + pw + "@smtp.example.com:587?auth=plain",
			"submission://me@example.com:" + pw + "@smtp.example.com",
			"smtp://user:" + pw + "@smtp.example.com:abc",
			"user:" + pw + "@smtp.example.com",
		} {
			_, _, err := submit.ParseURL(raw)
			shown := []string{submit.RedactURL(raw)}
			if err != nil {
				shown = append(shown, err.Error())
			}
			for _, s := range shown {
				for i := 0; i+3 <= len(pw); i++ {
					if piece := pw[i : i+3]; strings.Contains(s, piece) {
						t.Errorf("%q shows %q of the password %q:\n%s", raw, piece, pw, s)
						break
					}
				}
			}
		}
	}
}

// TestAURLWithoutItsHostNeverShowsThePassword: "smtps://user:PASS" reads
// as a host and a port; neither ParseURL's error nor RedactURL may show it.
func TestAURLWithoutItsHostNeverShowsThePassword(t *testing.T) {
	for _, raw := range []string{"smtps://user:Sup3rSecret", "smtp://user:Sup3rSecret/", "smtps://user:Sup3rSecret?auth=plain", "user:Sup3rSecret", "smtps://user:987654321"} {
		secret := "Sup3rSecret"
		if strings.HasSuffix(raw, "987654321") {
			secret = "987654321"
		}
		if red := submit.RedactURL(raw); strings.Contains(red, secret) {
			t.Errorf("RedactURL(%q) = %q", raw, red)
		}
		_, _, err := submit.ParseURL(raw)
		if err == nil || !errors.Is(err, submit.ErrBadURL) || strings.Contains(err.Error(), secret) {
			t.Errorf("ParseURL(%q): %v", raw, err)
		}
	}
}
