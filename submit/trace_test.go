package submit_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/tlsmode"
)

// recorder is a Trace that writes one line per hook call.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, fmt.Sprintf(format, args...))
}

func (r *recorder) lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

func errWord(err error) string {
	if err == nil {
		return "ok"
	}
	return "error"
}

func (r *recorder) trace() *submit.Trace {
	return &submit.Trace{
		ConnectStart: func(a submit.Attempt) {
			r.add("connect-start %d %v", a.Candidate.Port, strings.HasSuffix(a.Addr, fmt.Sprintf(":%d", a.Candidate.Port)))
		},
		ConnectDone: func(a submit.Attempt) { r.add("connect-done %d %s", a.Candidate.Port, errWord(a.Err)) },
		TLSHandshakeStart: func(a submit.Attempt) {
			r.add("tls-start %d", a.Candidate.Port)
		},
		TLSHandshakeDone: func(a submit.Attempt) {
			r.add("tls-done %d %s complete=%v chains=%v", a.Candidate.Port, errWord(a.Err), a.TLS.HandshakeComplete, len(a.TLS.VerifiedChains) > 0)
		},
		STARTTLSStripped: func(a submit.Attempt) {
			r.add("stripped %d %v", a.Candidate.Port, errors.Is(a.Err, submit.ErrSTARTTLSStripped))
		},
		AuthStart: func(a submit.Attempt) {
			r.add("auth-start %d %s", a.Candidate.Port, strings.Join(a.Mechanisms, " "))
		},
		AuthDone: func(a submit.Attempt) {
			r.add("auth-done %d %s %s", a.Candidate.Port, a.Mechanism, errWord(a.Err))
		},
		AttemptDone: func(a submit.Attempt) {
			r.add("attempt-done %d %s elapsed=%v", a.Candidate.Port, errWord(a.Err), a.Elapsed > 0)
		},
		WinnerChosen: func(a submit.Attempt) { r.add("winner %d", a.Candidate.Port) },
	}
}

func TestTraceHooksFireInOrderOnTheWire(t *testing.T) {
	srv := submittest.NewServer(t)
	stripped := srv.Listen(tlsmode.StartTLS, submittest.StripSTARTTLS)
	badCert := srv.ListenWith(tlsmode.Implicit, submittest.Options{SelfSigned: true})
	sp, bp := stripped.Port, badCert.Port
	st, ip := srv.StartTLS.Port, srv.Implicit.Port

	tests := []struct {
		name  string
		cands []tlsmode.Candidate
		auth  submit.Auth
		want  []string
	}{
		{
			name:  "starttls wins",
			cands: []tlsmode.Candidate{{Port: st, Mode: tlsmode.StartTLS}},
			auth:  submit.PlainAuth("", "user", "pass"),
			want: []string{
				fmt.Sprintf("connect-start %d true", st),
				fmt.Sprintf("connect-done %d ok", st),
				fmt.Sprintf("tls-start %d", st),
				fmt.Sprintf("tls-done %d ok complete=true chains=true", st),
				fmt.Sprintf("auth-start %d PLAIN LOGIN", st),
				fmt.Sprintf("auth-done %d PLAIN ok", st),
				fmt.Sprintf("attempt-done %d ok elapsed=true", st),
				fmt.Sprintf("winner %d", st),
			},
		},
		{
			name: "stripped, untrusted, then implicit wins",
			cands: []tlsmode.Candidate{
				{Port: sp, Mode: tlsmode.StartTLS},
				{Port: bp, Mode: tlsmode.Implicit},
				{Port: ip, Mode: tlsmode.Implicit},
			},
			auth: submit.LoginAuth("user", "pass"),
			want: []string{
				fmt.Sprintf("connect-start %d true", sp),
				fmt.Sprintf("connect-done %d ok", sp),
				fmt.Sprintf("stripped %d true", sp),
				fmt.Sprintf("attempt-done %d error elapsed=true", sp),
				fmt.Sprintf("connect-start %d true", bp),
				fmt.Sprintf("connect-done %d ok", bp),
				fmt.Sprintf("tls-start %d", bp),
				fmt.Sprintf("tls-done %d error complete=false chains=false", bp),
				fmt.Sprintf("attempt-done %d error elapsed=true", bp),
				fmt.Sprintf("connect-start %d true", ip),
				fmt.Sprintf("connect-done %d ok", ip),
				fmt.Sprintf("tls-start %d", ip),
				fmt.Sprintf("tls-done %d ok complete=true chains=true", ip),
				fmt.Sprintf("auth-start %d PLAIN LOGIN", ip),
				fmt.Sprintf("auth-done %d LOGIN ok", ip),
				fmt.Sprintf("attempt-done %d ok elapsed=true", ip),
				fmt.Sprintf("winner %d", ip),
			},
		},
		{
			name:  "rejected credential",
			cands: []tlsmode.Candidate{{Port: ip, Mode: tlsmode.Implicit}},
			auth:  submit.PlainAuth("", "user", "wrong"),
			want: []string{
				fmt.Sprintf("connect-start %d true", ip),
				fmt.Sprintf("connect-done %d ok", ip),
				fmt.Sprintf("tls-start %d", ip),
				fmt.Sprintf("tls-done %d ok complete=true chains=true", ip),
				fmt.Sprintf("auth-start %d PLAIN LOGIN", ip),
				fmt.Sprintf("auth-done %d PLAIN error", ip),
				fmt.Sprintf("attempt-done %d error elapsed=true", ip),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			d := dialerFor(srv, tt.auth, tt.cands...)
			d.FallbackDelay = -1 // one after another: a deterministic order
			c, err := d.Dial(submit.WithTrace(context.Background(), rec.trace()), "127.0.0.1")
			if c != nil {
				c.Close()
			}
			if (err == nil) != strings.HasPrefix(tt.want[len(tt.want)-1], "winner") {
				t.Fatalf("err = %v", err)
			}
			if got := rec.lines(); !slices.Equal(got, tt.want) {
				t.Errorf("events:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

func TestTraceReportsRaceLosers(t *testing.T) {
	srv := submittest.NewServer(t)
	rec := &recorder{}
	d := dialerFor(srv, nil, srv.Candidates()...)
	// Both ports reach a secure session before the winner is picked.
	d.FallbackDelay = time.Nanosecond
	c, err := d.Dial(submit.WithTrace(context.Background(), rec.trace()), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The loser may still be closing when Dial returns; it reports itself.
	eventually(t, "the loser reported", func() bool {
		return strings.Count(strings.Join(rec.lines(), "\n"), "attempt-done") == 2
	})
	var winners, done, ok int
	for _, e := range rec.lines() {
		switch {
		case strings.HasPrefix(e, "winner"):
			winners++
		case strings.HasPrefix(e, "attempt-done"):
			done++
			if strings.Contains(e, " ok ") {
				ok++
			}
		case strings.HasPrefix(e, "auth"):
			t.Errorf("AUTH hook without an Auth: %s", e)
		}
	}
	if winners != 1 || done != 2 || ok != 1 {
		t.Errorf("winners=%d attempt-done=%d (ok %d); want 1, 2, 1:\n%s", winners, done, ok, strings.Join(rec.lines(), "\n"))
	}
}

func TestWithTraceComposes(t *testing.T) {
	if submit.ContextTrace(context.Background()) != nil {
		t.Fatal("a bare context has a Trace")
	}
	var order []string
	outer := &submit.Trace{
		WinnerChosen: func(submit.Attempt) { order = append(order, "outer") },
		ConnectStart: func(submit.Attempt) { order = append(order, "outer-connect") },
	}
	inner := &submit.Trace{WinnerChosen: func(submit.Attempt) { order = append(order, "inner") }}
	ctx := submit.WithTrace(submit.WithTrace(context.Background(), outer), inner)
	if submit.WithTrace(ctx, nil) != ctx {
		t.Error("WithTrace(ctx, nil) made a new context")
	}
	tr := submit.ContextTrace(ctx)
	tr.WinnerChosen(submit.Attempt{})
	tr.ConnectStart(submit.Attempt{})
	if want := []string{"inner", "outer", "outer-connect"}; !slices.Equal(order, want) {
		t.Errorf("hooks ran %v; want %v", order, want)
	}
	if tr.AuthDone != nil {
		t.Error("a hook neither trace set is non-nil")
	}
}
