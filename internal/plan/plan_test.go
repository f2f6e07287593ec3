package plan

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/portwise/portwise/tlsmode"
)

func TestTargets(t *testing.T) {
	S, I := tlsmode.StartTLS, tlsmode.Implicit
	c := func(p int, m tlsmode.Mode) tlsmode.Candidate { return tlsmode.Candidate{Port: p, Mode: m} }
	tests := []struct {
		name string
		in   Input
		want string // "host port/mode[?]" per target, "?" marking a detected mode
	}{
		{"default policy", Input{Host: "h"}, "h 587/starttls, h 465/implicit, h 2525/starttls"},
		{"port of the policy keeps its mode", Input{Host: "h", Port: 465}, "h 465/implicit"},
		{"port outside the policy: both modes, usual first", Input{Host: "h", Port: 10465}, "h 10465/starttls?, h 10465/implicit?"},
		{"465 outside a policy: implicit first", Input{Host: "h", Port: 465, Policy: []tlsmode.Candidate{c(587, S)}}, "h 465/implicit?, h 465/starttls?"},
		{"candidate without a mode", Input{Host: "h", Policy: []tlsmode.Candidate{{Port: 2465}, c(587, S)}}, "h 2465/starttls?, h 2465/implicit?, h 587/starttls"},
		{"stated mode never doubled", Input{Host: "h", Port: 2525, Policy: []tlsmode.Candidate{c(2525, I)}}, "h 2525/implicit"},
		{"discovered servers first", Input{Host: "ex.test", Discovered: []Server{{Host: "mail.ex.test", Candidates: []tlsmode.Candidate{c(465, I)}}}},
			"mail.ex.test 465/implicit, ex.test 587/starttls, ex.test 465/implicit, ex.test 2525/starttls"},
		{"discovery ignored with a port", Input{Host: "ex.test", Port: 587, Discovered: []Server{{Host: "mail.ex.test", Candidates: []tlsmode.Candidate{c(465, I)}}}},
			"ex.test 587/starttls"},
		{"servers replace the host", Input{Host: "a", Servers: []Server{{Host: "a", Candidates: []tlsmode.Candidate{c(465, I)}}, {Host: "b"}}},
			"a 465/implicit, b 587/starttls, b 465/implicit, b 2525/starttls"},
		{"duplicates dropped, case-insensitively", Input{Host: "a", Servers: []Server{{Host: "A", Candidates: []tlsmode.Candidate{c(587, S)}}, {Host: "a", Candidates: []tlsmode.Candidate{c(587, S), c(465, I)}}}},
			"A 587/starttls, a 465/implicit"},
		{"winner first", Input{Host: "h", Winner: &Target{Host: "H", Candidate: c(2525, S)}}, "h 2525/starttls, h 587/starttls, h 465/implicit"},
		{"detected winner first", Input{Host: "h", Port: 10465, Winner: &Target{Host: "h", Candidate: c(10465, I)}}, "h 10465/implicit?, h 10465/starttls?"},
		{"winner outside the plan adds nothing", Input{Host: "h", Winner: &Target{Host: "h", Candidate: c(25, S)}}, "h 587/starttls, h 465/implicit, h 2525/starttls"},
		{"winner of another host adds nothing", Input{Host: "h", Winner: &Target{Host: "evil", Candidate: c(587, S)}}, "h 587/starttls, h 465/implicit, h 2525/starttls"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, tg := range Targets(tt.in) {
				s := tg.Host + " " + tg.Candidate.String()
				if tg.Detect {
					s += "?"
				}
				got = append(got, s)
			}
			if g := strings.Join(got, ", "); g != tt.want {
				t.Errorf("Targets = %s\nwant      %s", g, tt.want)
			}
		})
	}
}

func TestSplitHost(t *testing.T) {
	tests := []struct {
		in   string
		host string
		port int
		err  string
	}{
		{"smtp.example.com", "smtp.example.com", 0, ""},
		{" smtp.example.com:587 ", "smtp.example.com", 587, ""},
		{"[::1]:465", "::1", 465, ""},
		{"::1", "::1", 0, ""},
		{"127.0.0.1", "127.0.0.1", 0, ""},
		{"", "", 0, "empty host"},
		{"h:0", "", 0, "invalid port"},
		{"h:70000", "", 0, "invalid port"},
		{"h:abc", "", 0, "invalid port"},
		{":587", "", 0, "no host name"},
		{"a b", "", 0, "invalid host"},
		{"evil\r\nhost", "", 0, "invalid host"},
		{"user@host", "", 0, "invalid host"},
		{"bücher.example", "", 0, "xn--"},
		{"h\u202e.example", "", 0, "xn--"},
	}
	for _, tt := range tests {
		host, port, err := SplitHost(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("SplitHost(%q) err = %v; want %q", tt.in, err, tt.err)
			}
			if err != nil && strings.ContainsAny(err.Error(), "\r\n\u202e") {
				t.Errorf("SplitHost(%q) quotes raw controls: %q", tt.in, err)
			}
			continue
		}
		if err != nil || host != tt.host || port != tt.port {
			t.Errorf("SplitHost(%q) = %q, %d, %v; want %q, %d", tt.in, host, port, err, tt.host, tt.port)
		}
	}
}

func TestCandidates(t *testing.T) {
	p := []tlsmode.Candidate{{Port: 587, Mode: tlsmode.StartTLS}}
	if got := Candidates(p, 0); len(got) != 1 || &got[0] == &p[0] {
		t.Errorf("Candidates(p, 0) = %v; want a copy of p", got)
	}
	if got := Candidates(p, 2525); len(got) != 1 || got[0] != (tlsmode.Candidate{Port: 2525}) {
		t.Errorf("Candidates(p, 2525) = %v; want the port without a mode", got)
	}
}

func TestDiscoverRunsOnlyWhereADialWould(t *testing.T) {
	calls := 0
	find := func(_ context.Context, host string) ([]Server, error) {
		calls++
		return []Server{{Host: "mx." + host}, {Host: "bad host"}, {Host: "smtp." + host}}, errors.New("partial")
	}
	for _, tt := range []struct {
		host  string
		port  int
		calls int
		want  string
	}{
		{"example.com", 0, 1, "mx.example.com smtp.example.com"},
		{"example.com", 587, 0, ""},
		{"192.0.2.1", 0, 0, ""},
	} {
		calls = 0
		got, err := Discover(context.Background(), tt.host, tt.port, find)
		var hosts []string
		for _, s := range got {
			hosts = append(hosts, s.Host)
		}
		if calls != tt.calls || strings.Join(hosts, " ") != tt.want || (tt.calls > 0) != (err != nil) {
			t.Errorf("Discover(%s, %d): %d calls, %v, %v; want %d calls, %q", tt.host, tt.port, calls, hosts, err, tt.calls, tt.want)
		}
	}
}

func TestOnePerPortKeepsTheUsualModeOfADetectedPort(t *testing.T) {
	targets := Targets(Input{Host: "h", Policy: []tlsmode.Candidate{{Port: 587, Mode: tlsmode.StartTLS}, {Port: 10465}, {Port: 2525}}})
	var got []string
	for _, t := range OnePerPort(targets) {
		got = append(got, t.Candidate.String())
	}
	if want := "587/starttls 10465/starttls 2525/starttls"; strings.Join(got, " ") != want {
		t.Errorf("OnePerPort = %v; want %s", got, want)
	}
}
