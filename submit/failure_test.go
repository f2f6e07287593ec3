package submit_test

// The failure path (issue 15): what is temporary, what the caller's
// context did, and what the error says, on the wire.

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/submit/submittest/script"
	"github.com/portwise/portwise/tlsmode"
)

// TestFailuresAreClassifiedOnTheWire: each server behaviour gives the
// headline, the sentinel, the temporariness and the one line it should,
// with the server's words once.
func TestFailuresAreClassifiedOnTheWire(t *testing.T) {
	tests := []struct {
		name      string
		steps     []script.Step
		headline  string
		temporary bool
		want      []string
		once      string // the server's text, which must appear exactly once
	}{
		{name: "421 greeting", steps: one(script.StartTLS(), script.Send("421 4.7.0 mail.test Too many connections, try again later\r\n")),
			headline: "temporary refusal", temporary: true, want: []string{"banner: the server greeted with 421 4.7.0", "try again later"},
			once: "Too many connections"},
		{name: "4xx to EHLO keeps its enhanced code", steps: one(script.StartTLS(), script.Send(banner), script.ExpectPrefix("EHLO "),
			script.Send("451-4.3.0 Temporary lookup failure\r\n451 4.3.0 please retry\r\n")),
			headline: "temporary refusal", temporary: true, want: []string{"ehlo: EHLO refused: 451 4.3.0 Temporary lookup failure please retry"},
			once: "Temporary lookup failure"},
		{name: "554 greeting", steps: one(script.StartTLS(), script.Send("554 5.7.1 No SMTP service here\r\n")),
			headline: "refused", want: []string{"the server greeted with 554 5.7.1 No SMTP service here", "refuses connections from this client"}},
		{name: "TLS alert", steps: one(script.Send("\x15\x03\x03\x00\x02\x02\x50")),
			headline: "TLS could not be verified", want: []string{`the server refused the TLS handshake with the alert "internal error"`}},
		{name: "AUTH rejected", steps: steps(implicitOpening("AUTH PLAIN"), one(script.ExpectPrefix("AUTH PLAIN "),
			script.Send("535-5.7.8 Username and Password not accepted. For more information, go to\r\n535 5.7.8  https://support.google.com/mail/?p=BadCredentials d2sm123 - gsmtp\r\n"))),
			headline: "credential rejected", want: []string{"AUTH PLAIN rejected: 535 5.7.8 Username and Password not accepted. For more information, go to https://support.google.com/mail/?p=BadCredentials"},
			once: "Username and Password not accepted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := submittest.NewServer(t)
			c := playScript(srv, tlsmode.Implicit, submittest.Options{}, tt.steps)
			d := dialerFor(srv, submit.PlainAuth("", "user", "pass"), c)
			_, err := d.Dial(context.Background(), "127.0.0.1")
			if err == nil {
				t.Fatal("Dial succeeded")
			}
			msg := err.Error()
			if first, _, _ := strings.Cut(msg, "\n"); !strings.HasSuffix(first, ": "+tt.headline) {
				t.Errorf("headline %q; want %q", first, tt.headline)
			}
			if submit.IsTemporary(err) != tt.temporary {
				t.Errorf("IsTemporary = %v; want %v: %v", !tt.temporary, tt.temporary, err)
			}
			if n := strings.Count(msg, "\n"); n != 1 {
				t.Errorf("%d lines for one attempt:\n%s", n+1, msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error lacks %q:\n%s", w, msg)
				}
			}
			if tt.once != "" && strings.Count(msg, tt.once) != 1 {
				t.Errorf("the server's words appear %d times:\n%s", strings.Count(msg, tt.once), msg)
			}
			var re *submit.Reply
			if strings.Contains(tt.name, "2") || strings.Contains(tt.name, "4") || strings.Contains(tt.name, "5") {
				if !errors.As(err, &re) {
					t.Errorf("no *submit.Reply in %v", err)
				}
			}
		})
	}
}

// TestSendErrorTemporaryWhateverTheOrder: a SendError is temporary only
// if every refused recipient got a 4xx, in whatever order the server
// answered, and it names the recipients worth retrying.
func TestSendErrorTemporaryWhateverTheOrder(t *testing.T) {
	for _, order := range [][]string{{"busy@example.com", "gone@example.com"}, {"gone@example.com", "busy@example.com"}} {
		srv := submittest.NewServer(t, submittest.Options{RejectRecipients: map[string]string{
			"busy@example.com": "450 4.2.1 Mailbox busy, try later",
			"gone@example.com": "550 5.1.1 No such user",
		}})
		c, err := dialerFor(srv, submit.PlainAuth("", "user", "pass"), srv.Implicit).Dial(context.Background(), "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		err = c.Send(context.Background(), "a@example.com", append(order, "ok@example.com"), strings.NewReader(testMsg))
		c.Quit()
		var se *submit.SendError
		if !errors.As(err, &se) {
			t.Fatalf("err = %v; want a SendError", err)
		}
		if submit.IsTemporary(err) || se.Temporary() {
			t.Errorf("order %v: a SendError with a 550 is temporary", order)
		}
		if r := se.Retry(); len(r) != 1 || r[0] != "busy@example.com" {
			t.Errorf("order %v: Retry() = %v; want the 4xx recipient", order, r)
		}
	}
	only4xx := &submit.SendError{Rejected: []submit.RecipientError{{Addr: "a", Reply: &submit.Reply{Code: 451}}, {Addr: "b", Reply: &submit.Reply{Code: 452}}}}
	if !submit.IsTemporary(only4xx) {
		t.Error("a SendError with only 4xx refusals is not temporary")
	}
}

// TestCancellingSendIsTheCallersCancellation: cancelling the context while
// the server is slow to answer gives an error that wraps context.Canceled,
// not "use of closed network connection"; a message whose body was sent
// is also ErrOutcomeUnknown.
func TestCancellingSendIsTheCallersCancellation(t *testing.T) {
	for _, tt := range []struct {
		name    string
		stall   []script.Step
		unknown bool
	}{
		{"during MAIL FROM", one(script.ExpectPrefix("MAIL FROM:"), script.Pause(5*time.Second)), false},
		{"after the final dot", steps(toData, one(script.ExpectData(), script.Pause(5*time.Second))), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := submittest.NewServer(t)
			c := playScript(srv, tlsmode.Implicit, submittest.Options{}, implicitOpening("AUTH PLAIN"), authOK, tt.stall)
			cl, err := dialerFor(srv, submit.PlainAuth("", "user", "pass"), c).Dial(context.Background(), "127.0.0.1")
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(100*time.Millisecond, cancel)
			err = cl.Send(ctx, "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg))
			if !errors.Is(err, context.Canceled) {
				t.Errorf("err = %v; want context.Canceled", err)
			}
			if errors.Is(err, submit.ErrOutcomeUnknown) != tt.unknown {
				t.Errorf("ErrOutcomeUnknown = %v; want %v: %v", !tt.unknown, tt.unknown, err)
			}
			if strings.Contains(err.Error(), "use of closed network connection") {
				t.Errorf("the error speaks of the closed socket: %v", err)
			}
		})
	}
}

// TestTimeoutsAreDeterministic: a server that never greets fails the
// attempt on its own Timeout as a timeout (os.ErrDeadlineExceeded), never
// as the caller's context.DeadlineExceeded; when the caller's deadline
// ends first, always as context.DeadlineExceeded. Looped, because the
// socket's deadline and the context's timer used to race.
func TestTimeoutsAreDeterministic(t *testing.T) {
	srv := submittest.NewServer(t)
	silent := srv.Listen(tlsmode.StartTLS, submittest.Blackhole)
	for i := range 10 {
		d := dialerFor(srv, nil, silent)
		d.Timeout = 50 * time.Millisecond
		_, err := d.Dial(context.Background(), "127.0.0.1")
		if errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, os.ErrDeadlineExceeded) || !submit.IsTemporary(err) {
			t.Fatalf("run %d, the attempt's own Timeout: %v", i, err)
		}
		d = dialerFor(srv, nil, silent)
		d.Timeout = time.Minute
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		_, err = d.Dial(ctx, "127.0.0.1")
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("run %d, the caller's deadline: %v", i, err)
		}
	}
}
