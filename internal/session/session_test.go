package session_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/portwise/portwise/internal/session"
	"github.com/portwise/portwise/internal/wire"
	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/submit/submittest/script"
	"github.com/portwise/portwise/tlsmode"
)

const banner = "220 mail.test ESMTP\r\n"

func ehlo(caps ...string) string { return script.Reply(250, append([]string{"mail.test"}, caps...)...) }

func toSTARTTLS(caps ...string) []script.Step {
	return []script.Step{script.Send(banner), script.ExpectPrefix("EHLO "), script.Send(ehlo(append(caps, "STARTTLS")...)),
		script.Expect("STARTTLS"), script.Send("220 go ahead\r\n"), script.StartTLS()}
}

func join(parts ...[]script.Step) []script.Step {
	var out []script.Step
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// TestOpen plays each server on a real socket and checks what Open
// observed, which step failed and with which typed cause.
func TestOpen(t *testing.T) {
	afterTLS := []script.Step{script.ExpectPrefix("EHLO "), script.Send(ehlo("AUTH PLAIN", "PIPELINING"))}
	tests := []struct {
		name     string
		steps    []script.Step
		mode     tlsmode.Mode // default: the script's
		failStep string       // "" for success
		cause    func(error) bool
		check    func(t *testing.T, s *session.Session)
		steps2   string // the steps reported, in order
	}{
		{name: "starttls", steps: join(toSTARTTLS("AUTH LOGIN"), afterTLS), steps2: "connect banner ehlo starttls tls ehlo",
			check: func(t *testing.T, s *session.Session) {
				if s.Banner != "mail.test ESMTP" || !s.PreTLSCaps.Has("STARTTLS") || s.Caps.Has("STARTTLS") ||
					strings.Join(s.Caps.AuthMechs(), " ") != "PLAIN" || s.TLS == nil || s.HELO {
					t.Errorf("session %+v", s)
				}
			}},
		{name: "implicit", steps: join([]script.Step{script.StartTLS(), script.Send(banner)}, afterTLS), steps2: "connect tls banner ehlo",
			check: func(t *testing.T, s *session.Session) {
				if s.TLS == nil || s.PreTLSCaps != nil || !s.Caps.Has("PIPELINING") {
					t.Errorf("session %+v", s)
				}
			}},
		{name: "implicit falls back to HELO", steps: []script.Step{script.StartTLS(), script.Send(banner), script.ExpectPrefix("EHLO "),
			script.Send("502 5.5.2 no EHLO\r\n"), script.ExpectPrefix("HELO "), script.Send("250 ok\r\n")}, steps2: "connect tls banner ehlo",
			check: func(t *testing.T, s *session.Session) {
				if !s.HELO || len(s.Caps) != 0 {
					t.Errorf("session %+v", s)
				}
			}},
		{name: "greeting refused", steps: []script.Step{script.Send("554 5.7.1 no service\r\n")}, failStep: "banner",
			cause: replyCode(554, ""), steps2: "connect banner"},
		{name: "busy greeting", steps: []script.Step{script.Send("421 4.7.0 try later\r\n")}, failStep: "banner",
			cause: replyCode(421, ""), steps2: "connect banner"},
		{name: "EHLO busy", steps: []script.Step{script.Send(banner), script.ExpectPrefix("EHLO "), script.Send("421 4.3.2 busy\r\n")},
			failStep: "ehlo", cause: replyCode(421, "EHLO"), steps2: "connect banner ehlo"},
		{name: "STARTTLS missing", steps: []script.Step{script.Send(banner), script.ExpectPrefix("EHLO "), script.Send(ehlo("AUTH PLAIN"))},
			failStep: "starttls", cause: stripped(""), steps2: "connect banner ehlo starttls"},
		{name: "STARTTLS masked", steps: []script.Step{script.Send(banner), script.ExpectPrefix("EHLO "), script.Send(ehlo("XXXXXXXA"))},
			failStep: "starttls", cause: stripped("XXXXXXXA"), steps2: "connect banner ehlo starttls"},
		{name: "EHLO refused in clear", steps: []script.Step{script.Send(banner), script.ExpectPrefix("EHLO "), script.Send("500 what\r\n")},
			mode: tlsmode.StartTLS, failStep: "ehlo", cause: stripped(""), steps2: "connect banner ehlo"},
		{name: "STARTTLS refused", steps: []script.Step{script.Send(banner), script.ExpectPrefix("EHLO "), script.Send(ehlo("STARTTLS")),
			script.Expect("STARTTLS"), script.Send("454 4.7.0 TLS not available\r\n")},
			failStep: "starttls", cause: func(err error) bool { return errors.Is(err, session.ErrRejected) && replyCode(454, "STARTTLS")(err) },
			steps2: "connect banner ehlo starttls"},
		{name: "reply pre-sent before STARTTLS", steps: []script.Step{script.Send(banner), script.ExpectPrefix("EHLO "),
			script.Send(ehlo("STARTTLS") + "220 ready\r\n")}, failStep: "starttls", cause: isInjection, steps2: "connect banner ehlo starttls"},
		{name: "injection after 220", steps: []script.Step{script.Send(banner), script.ExpectPrefix("EHLO "), script.Send(ehlo("STARTTLS")),
			script.Expect("STARTTLS"), script.Send("220 go ahead\r\n250 AUTH PLAIN\r\n")}, failStep: "tls", cause: isInjection,
			steps2: "connect banner ehlo starttls tls"},
		{name: "EHLO refused after STARTTLS is not stripping", steps: join(toSTARTTLS(), []script.Step{script.ExpectPrefix("EHLO "), script.Send("554 no\r\n")}),
			failStep: "ehlo", cause: func(err error) bool {
				var st *session.StrippedError
				return !errors.As(err, &st) && replyCode(554, "EHLO")(err)
			}, steps2: "connect banner ehlo starttls tls ehlo"},
		{name: "malformed reply", steps: []script.Step{script.Send("2200 hi\r\n")}, failStep: "banner",
			cause: func(err error) bool { return errors.Is(err, wire.ErrProtocol) }, steps2: "connect banner"},
		{name: "closed after connect", steps: []script.Step{script.Close()}, failStep: "banner",
			cause: func(err error) bool { return err != nil }, steps2: "connect banner"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := submittest.NewServer(t)
			c := srv.ListenScript(submittest.Options{}, tt.steps...)
			if tt.mode != 0 {
				c.Mode = tt.mode
			}
			var steps []string
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			s, err := session.Open(ctx, session.Config{
				Host: "127.0.0.1", Candidate: c, TLSConfig: srv.ClientTLSConfig(), LocalName: "client.test",
				Dial: (&net.Dialer{}).DialContext,
				Step: func(step string, _ time.Duration, _ error) { steps = append(steps, step) },
			})
			if got := strings.Join(steps, " "); got != tt.steps2 {
				t.Errorf("steps %q; want %q", got, tt.steps2)
			}
			if tt.failStep == "" {
				if err != nil {
					t.Fatal(err)
				}
				defer s.Quit(time.Second)
				tt.check(t, s)
				return
			}
			var se *session.Error
			if !errors.As(err, &se) || se.Step != tt.failStep {
				t.Fatalf("err = %v; want a failure at %s", err, tt.failStep)
			}
			if !tt.cause(se.Err) {
				t.Errorf("cause %T %v is not the one expected", se.Err, se.Err)
			}
			if s == nil || (s.Conn != nil && s.Conn.Close() == nil) {
				t.Error("the connection was left open after a failure")
			}
		})
	}
}

func replyCode(code int, command string) func(error) bool {
	return func(err error) bool {
		var re *wire.ReplyError
		return errors.As(err, &re) && re.Reply.Code == code && re.Command == command
	}
}

func stripped(masked string) func(error) bool {
	return func(err error) bool {
		var st *session.StrippedError
		return errors.As(err, &st) && errors.Is(err, session.ErrStripped) && st.Masked == masked
	}
}

func isInjection(err error) bool { return errors.Is(err, session.ErrInjection) }

// TestSilenceFindsAPortThatSpeaksImplicitTLS: a port stated as STARTTLS
// that greets nobody in clear but answers a TLS handshake is named after
// SilenceWait, not after the whole budget; a port that only greets late
// is not taken for one.
func TestSilenceFindsAPortThatSpeaksImplicitTLS(t *testing.T) {
	srv := submittest.NewServer(t)
	tlsOnly := srv.ListenScript(submittest.Options{}, script.StartTLS(), script.Pause(5*time.Second))
	late := srv.ListenScript(submittest.Options{}, script.Pause(400*time.Millisecond), script.Send(banner),
		script.ExpectPrefix("EHLO "), script.Send(ehlo("STARTTLS")), script.Expect("STARTTLS"), script.Send("454 4.7.0 not now\r\n"))
	for _, tt := range []struct {
		name  string
		port  int
		speak bool
	}{{"implicit TLS", tlsOnly.Port, true}, {"a late greeting", late.Port, false}} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			t0 := time.Now()
			_, err := session.Open(ctx, session.Config{
				Host: "127.0.0.1", Candidate: tlsmode.Candidate{Port: tt.port, Mode: tlsmode.StartTLS},
				TLSConfig: srv.ClientTLSConfig(), LocalName: "localhost", Dial: (&net.Dialer{}).DialContext,
				Silence: 200 * time.Millisecond,
			})
			var speaks *session.SpeaksTLSError
			if got := errors.As(err, &speaks); got != tt.speak {
				t.Fatalf("err = %v after %s; want implicit TLS named: %v", err, time.Since(t0), tt.speak)
			}
			if tt.speak && (time.Since(t0) > time.Second || !strings.Contains(speaks.Seen, "TLS 1.3")) {
				t.Errorf("named after %s: %q", time.Since(t0), speaks.Seen)
			}
		})
	}
	if got := session.SilenceWait(30 * time.Second); got != time.Second {
		t.Errorf("SilenceWait(30s) = %s, want 1s", got)
	}
	if got := session.SilenceWait(2 * time.Second); got != 500*time.Millisecond {
		t.Errorf("SilenceWait(2s) = %s, want a quarter", got)
	}
}
