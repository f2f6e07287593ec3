package submit_test

// Early pipelining (PIPECONNECT, draft-harris-early-pipe-01): a Dialer
// that saw a server advertise it sends EHLO (and STARTTLS) before the
// banner on the next connection, and AUTH with the EHLO after TLS; every
// reply is still read and checked, and a server that misbehaves fails the
// attempt as it would without, and is forgotten.

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/submit/submittest/script"
	"github.com/portwise/portwise/tlsmode"
)

const (
	pcBanner   = "220 mx ESMTP\r\n"
	pcClear    = "250-mx\r\n250-PIPELINING\r\n250-PIPECONNECT\r\n250 STARTTLS\r\n"
	pcAfterTLS = "250-mx\r\n250-PIPELINING\r\n250-PIPECONNECT\r\n250-CHUNKING\r\n250 AUTH PLAIN\r\n"
)

// pcMessage is the rest of a session: one message and QUIT.
func pcMessage() []script.Step {
	return one(script.ExpectPrefix("MAIL FROM:"), script.ExpectPrefix("RCPT TO:"), script.ExpectBDAT(),
		script.Send("250 ok\r\n250 ok\r\n250 2.0.0 queued\r\n"), script.Expect("QUIT"), script.Send("221 bye\r\n"))
}

// pcNormal is a PIPECONNECT server met by a client that waits for each
// reply (or by one that does not: it greets at once).
func pcNormal(mode tlsmode.Mode, afterTLS string) []script.Step {
	var s []script.Step
	if mode == tlsmode.Implicit {
		s = one(script.StartTLS(), script.Send(pcBanner), script.ExpectPrefix("EHLO "), script.Send(afterTLS))
	} else {
		s = one(script.Send(pcBanner), script.ExpectPrefix("EHLO "), script.Send(pcClear), script.Expect("STARTTLS"),
			script.Send("220 go\r\n"), script.StartTLS(), script.ExpectPrefix("EHLO "), script.Send(afterTLS))
	}
	return append(append(s, script.ExpectPrefix("AUTH PLAIN "), script.Send("235 2.7.0 ok\r\n")), pcMessage()...)
}

// pcEarly is the same server, which reads the client's early commands
// before it says a word: only a client that pipelines early gets through.
func pcEarly(mode tlsmode.Mode) []script.Step {
	if mode == tlsmode.Implicit {
		return append(one(script.StartTLS(), script.ExpectPrefix("EHLO "), script.ExpectPrefix("AUTH PLAIN "),
			script.Send(pcBanner+pcAfterTLS+"235 2.7.0 ok\r\n")), pcMessage()...)
	}
	return append(one(script.ExpectPrefix("EHLO "), script.Expect("STARTTLS"), script.Send(pcBanner+pcClear+"220 go\r\n"),
		script.StartTLS(), script.ExpectPrefix("EHLO "), script.ExpectPrefix("AUTH PLAIN "), script.Send(pcAfterTLS+"235 2.7.0 ok\r\n")),
		pcMessage()...)
}

// pcDial dials and sends one message, and returns the error and the
// client's transcript.
func pcDial(t *testing.T, d *submit.Dialer) (string, error) {
	t.Helper()
	var tr strings.Builder
	d.Transcript = &tr
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := d.Dial(ctx, "127.0.0.1")
	if err == nil {
		err = c.Send(ctx, "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg))
		c.Quit()
	}
	return tr.String(), err
}

// early reports whether a transcript shows EHLO sent before the banner:
// the client says so, and when a banner came, EHLO is above it.
func early(tr string) bool {
	banner := strings.Index(tr, "S: 220 mx")
	return strings.Contains(tr, "*: PIPECONNECT: EHLO") && (banner < 0 || strings.Index(tr, "C: EHLO") < banner)
}

func TestPipeConnectSendsEHLOBeforeTheBannerOnlyOnceTheServerAdvertisedIt(t *testing.T) {
	for _, mode := range []tlsmode.Mode{tlsmode.Implicit, tlsmode.StartTLS} {
		t.Run(mode.String(), func(t *testing.T) {
			srv := submittest.NewServer(t)
			sc := srv.ListenScripts(submittest.Options{}, pcNormal(mode, pcAfterTLS), pcEarly(mode))
			d := srv.Dialer(submit.PlainAuth("", "user", "pass"), sc)
			first, err := pcDial(t, d)
			if err != nil || early(first) {
				t.Fatalf("first session: %v, early %v: never on a first session\n%s", err, early(first), first)
			}
			second, err := pcDial(t, d)
			if err != nil || !early(second) {
				t.Fatalf("second session: %v, early %v\n%s", err, early(second), second)
			}
			recs := waitScripts(t, srv, sc)
			if rec := recs[1]; rec.Err != nil || (mode == tlsmode.StartTLS && strings.Join(rec.ClearLines(), "|") != "EHLO localhost|STARTTLS") {
				t.Errorf("second session: %v, in clear %q; want EHLO and STARTTLS only", rec.Err, rec.ClearLines())
			}
		})
	}
}

func TestPipeConnectNeverWithoutTheAdvertisementOrWhenDisabled(t *testing.T) {
	without := strings.Replace(pcAfterTLS, "250-PIPECONNECT\r\n", "", 1)
	for _, tt := range []struct {
		name     string
		afterTLS string
		disable  bool
	}{
		{"not advertised", without, false},
		{"DisablePipeConnect", pcAfterTLS, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := submittest.NewServer(t)
			sc := srv.ListenScript(submittest.Options{}, pcNormal(tlsmode.Implicit, tt.afterTLS)...)
			d := srv.Dialer(submit.PlainAuth("", "user", "pass"), sc)
			d.DisablePipeConnect = tt.disable
			for i := range 2 {
				tr, err := pcDial(t, d)
				if err != nil || early(tr) {
					t.Fatalf("session %d: %v, early %v\n%s", i+1, err, early(tr), tr)
				}
			}
		})
	}
}

// TestPipeConnectHostileServers: a server remembered for PIPECONNECT that
// then misbehaves fails the attempt exactly as it would without early
// pipelining, nothing more goes in clear, no credential goes where it
// would not, and the server is forgotten: the next Dial waits for the
// banner again.
func TestPipeConnectHostileServers(t *testing.T) {
	tests := []struct {
		name    string
		mode    tlsmode.Mode
		hostile []script.Step
		check   func(error) bool
		noAUTH  bool
	}{
		{"STARTTLS stripped", tlsmode.StartTLS,
			one(script.ExpectPrefix("EHLO "), script.Expect("STARTTLS"),
				script.Send(pcBanner+"250-mx\r\n250-PIPELINING\r\n250 AUTH PLAIN\r\n"+"220 go\r\n"), script.Pause(time.Second)),
			func(err error) bool { return errors.Is(err, submit.ErrSTARTTLSStripped) }, true},
		{"a reply injected after STARTTLS's", tlsmode.StartTLS,
			one(script.ExpectPrefix("EHLO "), script.Expect("STARTTLS"),
				script.Send(pcBanner+pcClear+"220 go\r\n250 AUTH PLAIN injected\r\n"), script.Pause(time.Second)),
			func(err error) bool { return errors.Is(err, submit.ErrResponseInjection) }, true},
		{"a refusal for a banner, STARTTLS", tlsmode.StartTLS,
			one(script.ExpectPrefix("EHLO "), script.Expect("STARTTLS"), script.Send("554 5.7.1 go away\r\n"), script.Close()),
			func(err error) bool {
				return err != nil && !submit.IsTemporary(err) && strings.Contains(err.Error(), "go away")
			}, true},
		{"a refusal for a banner, implicit TLS", tlsmode.Implicit,
			one(script.StartTLS(), script.ExpectPrefix("EHLO "), script.Send("421 4.7.0 too busy\r\n"), script.Close()),
			func(err error) bool { return submit.IsTemporary(err) && strings.Contains(err.Error(), "too busy") }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := submittest.NewServer(t)
			sc := srv.ListenScripts(submittest.Options{}, pcNormal(tt.mode, pcAfterTLS), tt.hostile, pcNormal(tt.mode, pcAfterTLS))
			d := srv.Dialer(submit.PlainAuth("", "user", "pass"), sc)
			if _, err := pcDial(t, d); err != nil {
				t.Fatal(err)
			}
			tr, err := pcDial(t, d)
			if !early(tr) || !tt.check(err) {
				t.Fatalf("hostile session: early %v, err %v\n%s", early(tr), err, tr)
			}
			third, err := pcDial(t, d)
			if err != nil || early(third) {
				t.Errorf("the next Dial: %v, early %v; want the server forgotten\n%s", err, early(third), third)
			}
			rec := waitScripts(t, srv, sc)[1]
			for _, l := range rec.Lines {
				if strings.HasPrefix(l.Text, "AUTH") && tt.noAUTH {
					t.Errorf("AUTH went to the hostile session: %q", l.Text)
				}
				if !l.TLS && l.Text != "EHLO localhost" && l.Text != "STARTTLS" {
					t.Errorf("%q went in clear", l.Text)
				}
			}
		})
	}
}

// TestPipeConnectForgetsAServerThatNoLongerAdvertisesIt: the early session
// works (the server took the early commands), and the next Dial waits for
// the banner.
func TestPipeConnectForgetsAServerThatNoLongerAdvertisesIt(t *testing.T) {
	srv := submittest.NewServer(t)
	without := strings.Replace(pcAfterTLS, "250-PIPECONNECT\r\n", "", 1)
	stopped := append(one(script.StartTLS(), script.ExpectPrefix("EHLO "), script.ExpectPrefix("AUTH PLAIN "),
		script.Send(pcBanner+without+"235 2.7.0 ok\r\n")), pcMessage()...)
	sc := srv.ListenScripts(submittest.Options{}, pcNormal(tlsmode.Implicit, pcAfterTLS), stopped, pcNormal(tlsmode.Implicit, without))
	d := srv.Dialer(submit.PlainAuth("", "user", "pass"), sc)
	for i, wantEarly := range []bool{false, true, false} {
		tr, err := pcDial(t, d)
		if err != nil || early(tr) != wantEarly {
			t.Fatalf("session %d: %v, early %v (want %v)\n%s", i+1, err, early(tr), wantEarly, tr)
		}
	}
}
