package chaos

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/tlsmode"
)

// TestCheckFlagsEachBrokenInvariant feeds the checker one message at a
// time, as a run would have recorded it, and asks for exactly the
// violations it names.
func TestCheckFlagsEachBrokenInvariant(t *testing.T) {
	unknown := fmt.Errorf("wrapped: %w", submit.ErrOutcomeUnknown)
	refused := errors.New("550 refused")
	deadline := fmt.Errorf("wrapped: %w", context.DeadlineExceeded)
	canceled := fmt.Errorf("wrapped: %w", context.Canceled)
	for _, tt := range []struct {
		name   string
		err    error
		copies int
		// took is how long the Send ran, its context ending at 1 s.
		took      time.Duration
		cancelled bool
		mailAfter bool // the server saw MAIL FROM after the whole body
		want      []string
	}{
		{"nil, one copy", nil, 1, 0, false, false, nil},
		{"nil, no copy", nil, 0, 0, false, false, []string{"nil-not-stored"}},
		{"nil, two copies", nil, 2, 0, false, false, []string{"duplicate"}},
		{"unknown, no copy", unknown, 0, 0, false, false, nil},
		{"unknown, one copy", unknown, 1, 0, false, false, nil},
		{"unknown, two copies", unknown, 2, 0, false, false, []string{"duplicate"}},
		{"refused, no copy", refused, 0, 0, false, false, nil},
		{"refused, one copy", refused, 1, 0, false, false, []string{"error-but-stored"}},
		{"back within the slack", deadline, 0, time.Second + DefaultSlack, false, false, nil},
		{"back after the slack", deadline, 0, time.Second + DefaultSlack + time.Millisecond, false, false, []string{"late-return"}},
		{"deadline error before the deadline", deadline, 0, time.Second / 2, false, false, []string{"foreign-context-error"}},
		{"cancelled, and says so", canceled, 0, time.Second, true, false, nil},
		{"canceled error, not cancelled", canceled, 0, time.Second / 2, false, false, []string{"foreign-context-error"}},
		{"MAIL FROM after the whole body", nil, 1, 0, false, true, []string{"mail-after-body"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			reg := newRegistry(1, Scenario{Mode: tlsmode.Implicit})
			m := newMessage(1, 0, "test", "rcpt@example.test")
			c := reg.newConn("127.0.0.1:1")
			reg.sawMail(c, 0, "MAIL FROM:<m0@example.test>")
			reg.sawBody(c, 0, "DATA")
			if tt.mailAfter {
				reg.sawMail(c, 0, "MAIL FROM:<m0@example.test>")
			}
			start := reg.start
			res := result{start: start, end: start.Add(tt.took), deadline: start.Add(time.Second), err: tt.err}
			res.ctxEnd = res.deadline
			if tt.cancelled {
				res.cancelled, res.ctxEnd = start.Add(time.Second/2), start.Add(time.Second/2)
			}
			rep := &Report{}
			check(rep, &checkInput{
				reg: reg, msgs: []*message{m}, results: []result{res}, copies: map[string]int{m.id: tt.copies},
				dials: &dialTracker{}, slack: DefaultSlack, own: true,
			})
			var got []string
			for _, v := range rep.Violations {
				got = append(got, v.Class)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("violations %v; want %v", got, tt.want)
			}
		})
	}
}

func TestCheckFlagsAnAuthAfterTheRejectionWasKnown(t *testing.T) {
	reg := newRegistry(1, Scenario{Mode: tlsmode.Implicit, Revoke: true})
	m := newMessage(1, 0, "test", "rcpt@example.test")
	start := reg.start
	authErr := fmt.Errorf("wrapped: %w", submit.ErrAuthFailed)
	results := []result{
		{start: start, end: start.Add(time.Millisecond), deadline: start.Add(time.Second), err: authErr},
		// Started after the first ErrAuthFailed, and got something else.
		{start: start.Add(2 * time.Millisecond), end: start.Add(3 * time.Millisecond), deadline: start.Add(time.Second), err: errors.New("451 try later")},
	}
	for i := range results {
		results[i].ctxEnd = results[i].deadline
	}
	reg.auth.rejected = []rejection{{conn: 1}, {conn: 2, late: true}}
	rep := &Report{}
	check(rep, &checkInput{
		reg: reg, msgs: []*message{m, newMessage(1, 1, "test", "rcpt@example.test")}, results: results, copies: map[string]int{},
		dials: &dialTracker{dials: []*dialRecord{{n: 1}}}, slack: DefaultSlack, own: true,
	})
	var got []string
	for _, v := range rep.Violations {
		got = append(got, v.Class)
	}
	want := []string{"auth-not-remembered", "auth-not-remembered", "auth-after-rejection"}
	if !slices.Equal(got, want) {
		t.Errorf("violations %v; want %v", got, want)
	}
}
