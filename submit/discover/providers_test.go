package discover_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/portwise/portwise/submit/discover"
	"github.com/portwise/portwise/tlsmode"
)

func c(p int, m tlsmode.Mode) tlsmode.Candidate { return tlsmode.Candidate{Port: p, Mode: m} }

func TestForHostMatchesProviderHosts(t *testing.T) {
	S, I := tlsmode.StartTLS, tlsmode.Implicit
	tests := []struct {
		host string
		want []tlsmode.Candidate // nil: no preset
	}{
		{"smtp.gmail.com", []tlsmode.Candidate{c(587, S), c(465, I)}},
		{"SMTP.Gmail.com.", []tlsmode.Candidate{c(587, S), c(465, I)}},
		{"smtp.office365.com", []tlsmode.Candidate{c(587, S)}},
		{"smtp-mail.outlook.com", []tlsmode.Candidate{c(587, S)}},
		{"email-smtp.eu-west-1.amazonaws.com", []tlsmode.Candidate{c(587, S), c(465, I), c(2587, S), c(2465, I), c(25, S)}},
		{"smtp.sendgrid.net", []tlsmode.Candidate{c(587, S), c(465, I), c(2525, S)}},
		{"smtp.mailgun.org", []tlsmode.Candidate{c(587, S), c(465, I), c(2525, S)}},
		{"smtp.postmarkapp.com", []tlsmode.Candidate{c(587, S), c(2525, S), c(25, S)}},
		{"smtp.fastmail.com", []tlsmode.Candidate{c(465, I), c(587, S)}},
		{"smtp.mail.me.com", []tlsmode.Candidate{c(587, S)}},
		{"smtp.zoho.com", []tlsmode.Candidate{c(465, I), c(587, S)}},
		{"smtp.mail.yahoo.com", []tlsmode.Candidate{c(465, I), c(587, S)}},
		{"email-smtp.amazonaws.com", nil},
		{"email-smtp.a.b.amazonaws.com", nil},
		{"evil-smtp.gmail.com.example", nil},
		{"gmail.com", nil},
		{"smtp.example.com", nil},
	}
	for _, tt := range tests {
		p, ok := discover.ProviderForHost(tt.host)
		if ok != (tt.want != nil) || !slices.Equal(p.Candidates, tt.want) {
			t.Errorf("ProviderForHost(%q) = %v, %v; want %v", tt.host, p.Candidates, ok, tt.want)
		}
	}
}

func TestProviderForHostReturnsACopy(t *testing.T) {
	a, _ := discover.ProviderForHost("smtp.gmail.com")
	a.Candidates[0].Port = 1
	b, _ := discover.ProviderForHost("smtp.gmail.com")
	if b.Candidates[0].Port != 587 {
		t.Fatalf("ProviderForHost shares its table: %v", b.Candidates)
	}
}

func TestProviderLookups(t *testing.T) {
	tests := []struct {
		by, name, want string // want "": no match
		find           func(string) (discover.Provider, bool)
	}{
		{"domain", "gmail.com", "Gmail", discover.ProviderForDomain},
		{"domain", "Hotmail.com", "Outlook.com", discover.ProviderForDomain},
		{"domain", "me.com", "iCloud", discover.ProviderForDomain},
		{"domain", "example.com", "", discover.ProviderForDomain},
		{"mx", "aspmx.l.google.com.", "Gmail", discover.ProviderForMX},
		{"mx", "example-com.mail.protection.outlook.com", "Microsoft 365", discover.ProviderForMX},
		{"mx", "in1-smtp.messagingengine.com", "Fastmail", discover.ProviderForMX},
		{"mx", "google.com.evil.example", "", discover.ProviderForMX},
		{"mx", "notgoogle.com", "", discover.ProviderForMX},
		{"host", "smtp.sendgrid.net", "SendGrid", discover.ProviderForHost},
	}
	for _, tt := range tests {
		p, ok := tt.find(tt.name)
		if ok != (tt.want != "") || p.Name != tt.want {
			t.Errorf("ProviderFor%s(%q) = %q, %v; want %q", tt.by, tt.name, p.Name, ok, tt.want)
		}
	}
	if p, _ := discover.ProviderForHost("smtp.sendgrid.net"); p.Username != "apikey" || !slices.Contains(p.Auth, discover.AuthAPIKey) {
		t.Errorf("SendGrid = %+v; want user apikey with an API key", p)
	}
	if p, _ := discover.ProviderForHost("email-smtp.us-east-1.amazonaws.com"); p.Host != "email-smtp.us-east-1.amazonaws.com" {
		t.Errorf("SES Host = %q; want the regional host", p.Host)
	}
}

func TestEveryProviderIsComplete(t *testing.T) {
	for _, p := range discover.Providers() {
		if p.Name == "" || p.Host == "" || len(p.Candidates) == 0 || len(p.Auth) == 0 || !strings.HasPrefix(p.Docs, "https://") {
			t.Errorf("incomplete preset %+v", p)
		}
		for _, c := range p.Candidates {
			if !c.Mode.Secure() {
				t.Errorf("%s: %v is not a secure candidate", p.Name, c)
			}
			if (c.Port == 465 || c.Port == 2465) != (c.Mode == tlsmode.Implicit) {
				t.Errorf("%s: %v has the wrong mode for its port", p.Name, c)
			}
		}
	}
}
