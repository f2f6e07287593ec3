package submit_test

// Tests of the dial pipeline (issue 14): one plan and one dial for Dial,
// DialServers and the Mailer; losers stopped with a cause; the mode of a
// port that was not stated is detected; a stated mode is never switched.

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/submit/submittest/script"
	"github.com/portwise/portwise/tlsmode"
	"golang.org/x/oauth2"
)

// TestDialServersRefreshesARejectedToken: the Lookup → DialServers flow
// that the README recommends for Gmail renews a rejected access token, as
// Dial does, because both go through the one dial.
func TestDialServersRefreshesARejectedToken(t *testing.T) {
	srv := submittest.NewServer(t, submittest.Options{Tokens: map[string]string{testUser: "fresh-access"}})
	ep := newTokenEndpoint(t, "fresh-access")
	stored := &oauth2.Token{AccessToken: "stale-access", RefreshToken: refreshSecret, Expiry: time.Now().Add(time.Hour)}
	d := srv.Dialer(submit.XOAuth2(testUser, submit.RefreshingTokenSource(context.Background(), ep.config(), stored)))
	d.Timeout = 5 * time.Second
	c, err := d.DialServers(context.Background(), []submit.Server{{Host: "127.0.0.1", Candidates: []tlsmode.Candidate{srv.StartTLS}}})
	if err != nil {
		t.Fatalf("DialServers did not renew the rejected token: %v", err)
	}
	c.Quit()
	if n := ep.count(); n != 1 {
		t.Errorf("token endpoint hit %d times; want once", n)
	}
	if a, n := authAttempts(srv); a != 2 || n != 2 {
		t.Errorf("%d AUTH attempts on %d connections; want the rejected one and the renewed one", a, n)
	}
}

// TestLosersNeverCarryTheCallersContextError: an attempt stopped because
// another port won, or because the Dial ended, says so, and never matches
// context.Canceled or context.DeadlineExceeded while the caller's context
// is alive. Looped, for the race detector and for the timing.
func TestLosersNeverCarryTheCallersContextError(t *testing.T) {
	srv := submittest.NewServer(t)
	// A port that is still in its greeting when the other one is done.
	slow := srv.ListenScript(submittest.Options{}, script.Pause(300*time.Millisecond), script.Send(banner))
	rejecting := srv.ListenWith(tlsmode.Implicit, submittest.Options{AuthReply: "535 5.7.8 Username and Password not accepted"})
	for i := range 20 {
		for _, tt := range []struct {
			name string
			win  tlsmode.Candidate
			auth submit.Auth
			want error
		}{
			{"another port won", srv.Implicit, nil, submit.ErrLostRace},
			{"the dial ended", rejecting, submit.PlainAuth("", "user", "pass"), submit.ErrDialEnded},
		} {
			var mu sync.Mutex
			var losers []error
			done := make(chan struct{}, 4)
			trace := &submit.Trace{AttemptDone: func(a submit.Attempt) {
				if a.Candidate.Port == slow.Port {
					mu.Lock()
					losers = append(losers, a.Err)
					mu.Unlock()
					done <- struct{}{}
				}
			}}
			d := srv.Dialer(tt.auth, slow, tt.win) // the slow port starts first, so it is always a loser
			d.FallbackDelay, d.Timeout = time.Millisecond, 5*time.Second
			ctx := submit.WithTrace(context.Background(), trace)
			c, err := d.Dial(ctx, "127.0.0.1")
			if c != nil {
				c.Close()
			}
			if (err == nil) != (tt.auth == nil) {
				t.Fatalf("%s: err = %v", tt.name, err)
			}
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("run %d, %s: the Dial's error matches a context error nobody caused:\n%v", i, tt.name, err)
			}
			var de *submit.DialError
			if errors.As(err, &de) && (len(de.Attempts) != 2 || !errors.Is(de.Attempts[0].Err, submit.ErrDialEnded)) {
				t.Fatalf("run %d, %s: the slow port is not listed as ended by the Dial:\n%v", i, tt.name, err)
			}
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatalf("%s: the loser never reported", tt.name)
			}
			mu.Lock()
			lerr := losers[0]
			mu.Unlock()
			if errors.Is(lerr, context.Canceled) || errors.Is(lerr, context.DeadlineExceeded) {
				t.Fatalf("run %d, %s: the loser reports a context error: %v", i, tt.name, lerr)
			}
			if !strings.Contains(lerr.Error(), tt.name) {
				t.Fatalf("run %d: the loser's error %q does not say %q", i, lerr, tt.name)
			}
			if !errors.Is(lerr, tt.want) || errors.Is(lerr, submit.ErrLostRace) == errors.Is(lerr, submit.ErrDialEnded) {
				t.Fatalf("run %d: the loser's error %q does not match %v alone", i, lerr, tt.want)
			}
		}
	}
}

// TestUnstatedModeIsDetected: an implicit TLS server on a port whose mode
// the caller did not state (not 465) is reached within FallbackDelay plus
// one handshake, not after the 30 s Timeout waiting for a greeting; the
// winner is remembered, so the next Dial pays no FallbackDelay.
func TestUnstatedModeIsDetected(t *testing.T) {
	srv := submittest.NewServer(t)
	const fallback = 200 * time.Millisecond
	for _, tt := range []struct {
		name string
		c    tlsmode.Candidate
	}{
		{"implicit TLS on an odd port", srv.Implicit},
		{"STARTTLS on an odd port", srv.StartTLS},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := srv.Dialer(submit.PlainAuth("", "user", "pass"), tlsmode.Candidate{Port: tt.c.Port})
			d.FallbackDelay = fallback
			d.Timeout = 30 * time.Second
			start := time.Now()
			c, err := d.Dial(context.Background(), "127.0.0.1")
			if err != nil {
				t.Fatal(err)
			}
			took := time.Since(start)
			c.Quit()
			if c.Mode() != tt.c.Mode {
				t.Errorf("won with %v; the port speaks %v", c.Mode(), tt.c.Mode)
			}
			if took > fallback+500*time.Millisecond {
				t.Errorf("Dial took %s; want within FallbackDelay (%s) plus one handshake", took, fallback)
			}
			start = time.Now()
			c, err = d.Dial(context.Background(), "127.0.0.1")
			if err != nil {
				t.Fatal(err)
			}
			c.Quit()
			if again := time.Since(start); again > fallback/2 || c.Mode() != tt.c.Mode {
				t.Errorf("second Dial took %s on %v; want the remembered mode at once", again, c.Mode())
			}
		})
	}

	// A host:port outside the policy, as SendMail's addr is: detected too.
	d := srv.Dialer(nil)
	d.Candidates, d.FallbackDelay = nil, fallback
	c, err := d.Dial(context.Background(), srv.Addr(srv.Implicit))
	if err != nil {
		t.Fatal(err)
	}
	c.Quit()
	if c.Mode() != tlsmode.Implicit {
		t.Errorf("host:port won with %v", c.Mode())
	}
}

// TestStatedModeIsNeverSwitched: a mode the caller stated is the only one
// tried. When it is wrong the Dial fails quickly with ErrWrongMode, naming
// the mode the port speaks, and no credential goes anywhere.
func TestStatedModeIsNeverSwitched(t *testing.T) {
	srv := submittest.NewServer(t)
	tests := []struct {
		name   string
		c      tlsmode.Candidate
		speaks string
		advice string
	}{
		{"STARTTLS stated on an implicit TLS port", tlsmode.Candidate{Port: srv.Implicit.Port, Mode: tlsmode.StartTLS}, "speaks implicit TLS, not STARTTLS", "/implicit"},
		{"implicit TLS stated on a STARTTLS port", tlsmode.Candidate{Port: srv.StartTLS.Port, Mode: tlsmode.Implicit}, "speaks STARTTLS, not implicit TLS", "/starttls"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(srv.Conns())
			d := srv.Dialer(submit.PlainAuth("", "user", "pass"), tt.c)
			d.Timeout = 30 * time.Second
			start := time.Now()
			_, err := d.Dial(context.Background(), "127.0.0.1")
			if !errors.Is(err, submit.ErrWrongMode) {
				t.Fatalf("err = %v; want ErrWrongMode", err)
			}
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("took %s; want the wrong mode found long before the 30s Timeout", took)
			}
			for _, w := range []string{tt.speaks, tt.advice} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			for _, c := range srv.Conns()[before:] {
				if c.AuthAttempts > 0 {
					t.Error("a credential was sent")
				}
			}
		})
	}
}
