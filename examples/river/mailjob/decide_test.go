package mailjob

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portwise/portwise/examples/river/fleet"
	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/submit/submittest/script"
	"github.com/portwise/portwise/tlsmode"
)

func reply(code int, enh, text string) *submit.Reply {
	return &submit.Reply{Code: code, Enhanced: enh, Text: text}
}

func refusal(addr string, code int) submit.RecipientError {
	enh := fmt.Sprintf("%d.1.1", code/100)
	return submit.RecipientError{Addr: addr, Reply: reply(code, enh, "refused")}
}

// TestDecide maps every kind of outcome onto River's verdict, the
// progress recorded and the error, as the table in Worker's doc says.
func TestDecide(t *testing.T) {
	const id = "<1@example.com>"
	refused := func(addr string) Refusal { return Refusal{Addr: addr, Reply: reply(550, "5.1.1", "refused").Error()} }
	// A real Dial to a port where nothing listens: what the Mailer returns.
	srv := submittest.NewServer(t)
	_, connRefused := srv.Dialer(nil, srv.Listen(tlsmode.Implicit, submittest.Refuse)).Dial(context.Background(), "127.0.0.1")
	if !errors.Is(connRefused, syscall.ECONNREFUSED) {
		t.Fatalf("dialling a closed port: %v", connRefused)
	}
	// A real Dial to a greeting of 554, which anyone on the path can send:
	// permanent by its code, yet not the message's fault.
	refusedGreeting := srv.ListenScript(submittest.Options{}, script.Send("554 5.7.1 go away\r\n"), script.Close())
	_, greeted554 := srv.Dialer(nil, refusedGreeting).Dial(context.Background(), "127.0.0.1")
	if submit.IsTemporary(greeted554) {
		t.Fatalf("a 554 greeting is temporary: %v", greeted554)
	}
	tests := []struct {
		name    string
		ctxErr  error
		pending []string
		prev    Progress
		res     *submit.SendResult
		err     error

		want     verdict
		progress Progress
		errHas   []string // substrings of the error; nil: no error
		errIs    error
	}{
		{
			name: "sent to all", pending: []string{"a@x", "b@x"},
			res:  &submit.SendResult{Accepted: []string{"a@x", "b@x"}},
			want: complete, progress: Progress{Delivered: []string{"a@x", "b@x"}},
		},
		{
			name: "the last pending recipient accepts after earlier ones did", pending: []string{"b@x"},
			prev: Progress{Delivered: []string{"a@x"}},
			res:  &submit.SendResult{Accepted: []string{"b@x"}},
			want: complete, progress: Progress{Delivered: []string{"a@x", "b@x"}},
		},
		{
			name: "the last pending recipient accepts, an earlier one was refused for good", pending: []string{"b@x"},
			prev: Progress{Refused: []Refusal{refused("c@x")}},
			res:  &submit.SendResult{Accepted: []string{"b@x"}},
			want: cancel, progress: Progress{Delivered: []string{"b@x"}, Refused: []Refusal{refused("c@x")}},
			errHas: []string{"refused permanently for c@x (550 5.1.1 refused)", "delivered to b@x"},
		},
		{
			name: "451 to MAIL FROM is retried", pending: []string{"a@x"},
			res: &submit.SendResult{}, err: reply(451, "4.3.0", "try again later"),
			want: retry, errHas: []string{"451 4.3.0"},
		},
		{
			name: "connection refused is retried", pending: []string{"a@x"},
			res: &submit.SendResult{}, err: connRefused,
			want: retry, errIs: syscall.ECONNREFUSED,
		},
		{
			name: "a permanent Dial failure (554 greeting) is retried, not cancelled", pending: []string{"a@x"},
			res: &submit.SendResult{}, err: greeted554,
			want: retry, errHas: []string{"554 5.7.1"},
		},
		{
			name: "550 to MAIL FROM cancels", pending: []string{"a@x"},
			res: &submit.SendResult{}, err: reply(550, "5.7.1", "sender rejected"),
			want: cancel, errHas: []string{id, "not sent, and not retried", "550 5.7.1 sender rejected"},
		},
		{
			name: "a permanent failure after earlier deliveries names them", pending: []string{"b@x"},
			prev: Progress{Delivered: []string{"a@x"}},
			res:  &submit.SendResult{}, err: reply(552, "5.3.4", "message too big"),
			want: cancel, progress: Progress{Delivered: []string{"a@x"}},
			errHas: []string{"552 5.3.4", "delivered earlier to a@x"},
		},
		{
			// One wrong password must not cancel the whole queue: the
			// jobs wait, with River's backoff, for the fix.
			name: "a rejected credential waits for the fix", pending: []string{"a@x"},
			res: &submit.SendResult{}, err: fmt.Errorf("dial: %w", submit.ErrAuthFailed),
			want: retry, errIs: submit.ErrAuthFailed,
		},
		{
			name: "a certificate that does not verify waits for the fix", pending: []string{"a@x"},
			res: &submit.SendResult{}, err: fmt.Errorf("dial: %w", submit.ErrCertificate),
			want: retry, errIs: submit.ErrCertificate,
		},
		{
			name: "a stripped STARTTLS waits", pending: []string{"a@x"},
			res: &submit.SendResult{}, err: fmt.Errorf("dial: %w", submit.ErrSTARTTLSStripped),
			want: retry, errIs: submit.ErrSTARTTLSStripped,
		},
		{
			name: "outcome unknown cancels and says the message may have gone", pending: []string{"a@x", "b@x"},
			res: &submit.SendResult{Accepted: []string{"a@x", "b@x"}}, err: fmt.Errorf("message: %w", submit.ErrOutcomeUnknown),
			want: cancel, errIs: submit.ErrOutcomeUnknown,
			errHas: []string{id, "may have been delivered to a@x, b@x", "check", "before enqueueing it again"},
		},
		{
			name: "outcome unknown while the worker stops still cancels", ctxErr: context.Canceled, pending: []string{"a@x"},
			res: &submit.SendResult{Accepted: []string{"a@x"}}, err: fmt.Errorf("message: %w: %w", submit.ErrOutcomeUnknown, context.Canceled),
			want: cancel, errIs: submit.ErrOutcomeUnknown,
		},
		{
			name: "the worker stopping is retried, not cancelled", ctxErr: context.Canceled, pending: []string{"a@x"},
			res: &submit.SendResult{}, err: fmt.Errorf("dial: %w", context.Canceled),
			want: retry, errIs: context.Canceled,
		},
		{
			name: "the Mailer closing is retried", pending: []string{"a@x"},
			res: &submit.SendResult{}, err: submit.ErrMailerClosed,
			want: retry, errIs: submit.ErrMailerClosed,
		},
		{
			name: "every recipient 4xx: retried, nothing delivered", pending: []string{"a@x", "b@x"},
			res:  &submit.SendResult{Rejected: []submit.RecipientError{refusal("a@x", 450), refusal("b@x", 451)}},
			err:  &submit.SendError{Rejected: []submit.RecipientError{refusal("a@x", 450), refusal("b@x", 451)}},
			want: retry, errHas: []string{"every recipient was refused"},
		},
		{
			name: "some accepted, the rest 4xx: the accepted recorded, retried", pending: []string{"a@x", "b@x"},
			res:  &submit.SendResult{Accepted: []string{"a@x"}, Rejected: []submit.RecipientError{refusal("b@x", 450)}},
			err:  &submit.SendError{Rejected: []submit.RecipientError{refusal("b@x", 450)}, Accepted: 1},
			want: retry, progress: Progress{Delivered: []string{"a@x"}},
		},
		{
			name: "some accepted, one 4xx, one 5xx: both recorded, retried for the 4xx", pending: []string{"a@x", "b@x", "c@x"},
			res:  &submit.SendResult{Accepted: []string{"a@x"}, Rejected: []submit.RecipientError{refusal("b@x", 450), refusal("c@x", 550)}},
			err:  &submit.SendError{Rejected: []submit.RecipientError{refusal("b@x", 450), refusal("c@x", 550)}, Accepted: 1},
			want: retry, progress: Progress{Delivered: []string{"a@x"}, Refused: []Refusal{refused("c@x")}},
		},
		{
			name: "some accepted, the rest 5xx: cancelled naming both", pending: []string{"a@x", "c@x"},
			res:  &submit.SendResult{Accepted: []string{"a@x"}, Rejected: []submit.RecipientError{refusal("c@x", 550)}},
			err:  &submit.SendError{Rejected: []submit.RecipientError{refusal("c@x", 550)}, Accepted: 1},
			want: cancel, progress: Progress{Delivered: []string{"a@x"}, Refused: []Refusal{refused("c@x")}},
			errHas: []string{"refused permanently for c@x (550 5.1.1 refused)", "delivered to a@x"},
		},
		{
			name: "every recipient 5xx: cancelled, delivered to none", pending: []string{"c@x"},
			res:  &submit.SendResult{Rejected: []submit.RecipientError{refusal("c@x", 550)}},
			err:  &submit.SendError{Rejected: []submit.RecipientError{refusal("c@x", 550)}},
			want: cancel, progress: Progress{Refused: []Refusal{refused("c@x")}},
			errHas: []string{"delivered to no recipient"},
		},
		{
			name: "held back by the shared limits: snoozed, nothing recorded", pending: []string{"a@x"},
			res: &submit.SendResult{}, err: &fleet.HoldError{Account: "h/u", Cause: fleet.HoldRate, Wait: time.Second},
			want: snooze, errHas: []string{"no turn"},
		},
		{
			name: "a quota reply to MAIL FROM (a 5xx) snoozes, it does not cancel", pending: []string{"a@x"},
			res: &submit.SendResult{},
			err: &fleet.HoldError{Account: "h/u", Cause: fleet.HoldPaused, Wait: time.Hour, Reason: "gmail-daily: 550 5.4.5 Daily user sending limit exceeded",
				Err: reply(550, "5.4.5", "Daily user sending limit exceeded")},
			want: snooze, errHas: []string{"paused", "550 5.4.5"},
		},
		{
			name: "a quota reply to some recipients: those who accepted recorded, the rest wait, none refused", pending: []string{"a@x", "b@x"},
			res: &submit.SendResult{Accepted: []string{"a@x"}, Rejected: []submit.RecipientError{{Addr: "b@x", Reply: reply(550, "5.4.5", "Daily user sending limit exceeded")}}},
			err: &fleet.HoldError{Account: "h/u", Cause: fleet.HoldPaused, Wait: time.Hour,
				Err: &submit.SendError{Rejected: []submit.RecipientError{{Addr: "b@x", Reply: reply(550, "5.4.5", "Daily user sending limit exceeded")}}, Accepted: 1}},
			want: snooze, progress: Progress{Delivered: []string{"a@x"}},
		},
		{
			name: "the shared limits unreadable: retried", pending: []string{"a@x"},
			res: &submit.SendResult{}, err: fmt.Errorf("%w: taking a turn: connection refused", fleet.ErrUnavailable),
			want: retry, errIs: fleet.ErrUnavailable,
		},
		{
			name: "RCPT accepted but the message refused: nobody has it", pending: []string{"a@x"},
			res: &submit.SendResult{Accepted: []string{"a@x"}}, err: reply(451, "4.7.1", "greylisted"),
			want: retry,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prev := tt.prev.clone()
			p, v, err := decide(tt.ctxErr, id, tt.pending, tt.prev, tt.res, tt.err)
			if v != tt.want {
				t.Errorf("verdict %v, want %v (error: %v)", v, tt.want, err)
			}
			if !p.equal(tt.progress) {
				t.Errorf("progress %+v, want %+v", p, tt.progress)
			}
			if !prev.equal(tt.prev) {
				t.Errorf("decide changed the previous progress to %+v", tt.prev)
			}
			switch {
			case tt.want == complete && err != nil:
				t.Errorf("error %v, want none", err)
			case tt.want != complete && err == nil:
				t.Fatal("no error")
			}
			for _, s := range tt.errHas {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q lacks %q", err, s)
				}
			}
			if tt.errIs != nil && !errors.Is(err, tt.errIs) {
				t.Errorf("error %v is not %v", err, tt.errIs)
			}
			if tt.want == retry && tt.err != nil && err != tt.err {
				t.Errorf("retry returns %v, want the send's error as it is", err)
			}
		})
	}
}

func TestProgressPending(t *testing.T) {
	p := Progress{Delivered: []string{"a@x"}, Refused: []Refusal{{Addr: "c@x"}}}
	if got := p.Pending([]string{"a@x", "b@x", "c@x", "d@x"}); !slices.Equal(got, []string{"b@x", "d@x"}) {
		t.Errorf("Pending = %v", got)
	}
	if got := (Progress{}).Pending([]string{"a@x"}); !slices.Equal(got, []string{"a@x"}) {
		t.Errorf("Pending of nothing done = %v", got)
	}
}
