package tlsmode

import (
	"encoding/json"
	"testing"
)

func TestCandidateJSON(t *testing.T) {
	tests := []struct {
		c    Candidate
		want string
	}{
		{Candidate{Port: 587, Mode: StartTLS}, `{"port":587,"mode":"starttls"}`},
		{Candidate{Port: 465, Mode: Implicit}, `{"port":465,"mode":"implicit"}`},
		{Candidate{Port: 25, Mode: Plaintext}, `{"port":25,"mode":"plaintext"}`},
	}
	for _, tt := range tests {
		b, err := json.Marshal(tt.c)
		if err != nil || string(b) != tt.want {
			t.Errorf("json.Marshal(%v) = %s, %v; want %s", tt.c, b, err, tt.want)
			continue
		}
		var back Candidate
		if err := json.Unmarshal(b, &back); err != nil || back != tt.c {
			t.Errorf("json.Unmarshal(%s) = %v, %v; want %v", b, back, err, tt.c)
		}
	}
}

func TestCandidateJSONRejectsUnknownMode(t *testing.T) {
	var c Candidate
	if err := json.Unmarshal([]byte(`{"port":587,"mode":"start-tls"}`), &c); err == nil {
		t.Errorf("json.Unmarshal accepted mode start-tls: %v", c)
	}
	if b, err := json.Marshal(Candidate{Port: 2465}); err != nil || string(b) != `{"port":2465}` {
		t.Errorf("json.Marshal of a Candidate without a mode = %s, %v; want {\"port\":2465}", b, err)
	}
	if _, err := json.Marshal(Candidate{Port: 587, Mode: 9}); err == nil {
		t.Error("json.Marshal of a Candidate with an invalid Mode succeeded")
	}
}
