package tlsmode

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseAcceptsWordsAndAliases(t *testing.T) {
	tests := []struct {
		in   string
		want Mode
	}{
		{"starttls", StartTLS},
		{"STARTTLS", StartTLS},
		{" StartTLS ", StartTLS},
		{"implicit", Implicit},
		{"tls", Implicit},
		{"SSL", Implicit},
		{"plaintext", Plaintext},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("Parse(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseRejectsUnknownNamingAcceptedWords(t *testing.T) {
	for _, in := range []string{"", "none", "start-tls", "plain"} {
		_, err := Parse(in)
		if err == nil {
			t.Fatalf("Parse(%q) succeeded", in)
		}
		for _, word := range []string{"starttls", "implicit", "plaintext"} {
			if !strings.Contains(err.Error(), word) {
				t.Errorf("Parse(%q) error %q does not name %q", in, err, word)
			}
		}
	}
}

func TestModeTextRoundTrip(t *testing.T) {
	type cfg struct {
		Mode Mode `json:"mode"`
	}
	for _, m := range []Mode{StartTLS, Implicit, Plaintext} {
		b, err := json.Marshal(cfg{m})
		if err != nil {
			t.Fatal(err)
		}
		var back cfg
		if err := json.Unmarshal(b, &back); err != nil || back.Mode != m {
			t.Errorf("round trip of %v via %s = %v, %v", m, b, back.Mode, err)
		}
	}
	if _, err := json.Marshal(cfg{}); err == nil {
		t.Error("marshalling the zero Mode succeeded")
	}
	var c cfg
	if err := json.Unmarshal([]byte(`{"mode":"ssl"}`), &c); err != nil || c.Mode != Implicit {
		t.Errorf(`unmarshal "ssl" = %v, %v`, c.Mode, err)
	}
	if err := json.Unmarshal([]byte(`{"mode":"bogus"}`), &c); err == nil {
		t.Error(`unmarshal "bogus" succeeded`)
	}
}

func TestDefaultIsFreshEachCall(t *testing.T) {
	a := Default()
	want := "587/starttls 465/implicit 2525/starttls"
	var got []string
	for _, c := range a {
		got = append(got, c.String())
	}
	if strings.Join(got, " ") != want {
		t.Fatalf("Default() = %v; want %s", got, want)
	}
	a[0].Port = 1
	if Default()[0].Port != 587 {
		t.Fatal("Default() shares its slice between calls")
	}
}

func TestForPort(t *testing.T) {
	for port, want := range map[int]Mode{465: Implicit, 587: StartTLS, 2525: StartTLS, 25: StartTLS, 1025: StartTLS} {
		if got := ForPort(port); got != want {
			t.Errorf("ForPort(%d) = %v; want %v", port, got, want)
		}
	}
}

func TestParseCandidate(t *testing.T) {
	tests := []struct {
		in      string
		want    Candidate
		wantErr bool
	}{
		{"587/starttls", Candidate{587, StartTLS}, false},
		{"465", Candidate{465, 0}, false},
		{"2465", Candidate{Port: 2465}, false},
		{"2525/ssl", Candidate{2525, Implicit}, false},
		{"0", Candidate{}, true},
		{"70000/starttls", Candidate{}, true},
		{"587/none", Candidate{}, true},
		{"abc", Candidate{}, true},
	}
	for _, tt := range tests {
		got, err := ParseCandidate(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseCandidate(%q) = %v, %v; want %v, err=%v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
