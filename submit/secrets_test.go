package submit_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/submit/submittest/script"
	"github.com/portwise/portwise/tlsmode"
)

const (
	secretUser  = "user-0x5ecre7"
	secretPass  = "pass-0x5ecre7-hunter2"
	secretToken = "token-0x5ecre7-ya29"
	secretBody  = "body-0x5ecre7-confidential"
)

// secretForms are every form in which a secret could leak: raw, base64 on
// its own and inside each mechanism's payloads.
func secretForms() []string {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	var forms []string
	for _, s := range []string{secretUser, secretPass, secretToken, secretBody} {
		forms = append(forms, s, b64(s))
	}
	return append(forms,
		b64("\x00"+secretUser+"\x00"+secretPass),
		b64("ir:"+secretToken), b64("step:"+secretToken),
		"0x5ecre7", // the common core: no fragment either
	)
}

// tokenMech is a custom two-step mechanism: a secret in the initial
// response and another in its answer to the first challenge; it refuses a
// second challenge.
type tokenMech struct{ steps int }

func (m *tokenMech) Start() (string, []byte, error) {
	return "X-TOKEN", []byte("ir:" + secretToken), nil
}

func (m *tokenMech) Next(challenge []byte) ([]byte, error) {
	m.steps++
	if m.steps > 1 {
		return nil, fmt.Errorf("X-TOKEN: unexpected challenge %q", challenge)
	}
	return []byte("step:" + secretToken), nil
}

func TestSecretsNeverLeak(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	tokenAuth := submit.AuthFunc(func(_ context.Context, info *submit.AuthInfo) (sasl.Client, error) {
		if !info.Offers("X-TOKEN") {
			return nil, errors.New("X-TOKEN not offered")
		}
		return &tokenMech{}, nil
	})
	opening := implicitOpening("AUTH PLAIN LOGIN X-TOKEN")
	send := one(
		script.ExpectPrefix("MAIL FROM:"), script.Send("250 ok\r\n"),
		script.ExpectPrefix("RCPT TO:"), script.Send("250 ok\r\n"),
		script.Expect("DATA"), script.Send("354 go ahead\r\n"),
		script.ExpectData(), script.Send("250 2.0.0 queued\r\n"),
		script.Expect("QUIT"), script.Send("221 bye\r\n"),
	)
	dropAfterDot := one(
		script.ExpectPrefix("MAIL FROM:"), script.Send("250 ok\r\n"),
		script.ExpectPrefix("RCPT TO:"), script.Send("250 ok\r\n"),
		script.Expect("DATA"), script.Send("354 go ahead\r\n"),
		script.ExpectData(), script.Close(),
	)
	loginPrompts := one(
		script.Expect("AUTH LOGIN"), script.Send("334 "+b64("Username:")+"\r\n"),
		script.Expect(b64(secretUser)), script.Send("334 "+b64("Password:")+"\r\n"),
		script.Expect(b64(secretPass)),
	)
	tokenSteps := one(
		script.Expect("AUTH X-TOKEN "+b64("ir:"+secretToken)), script.Send("334 "+b64("more")+"\r\n"),
		script.Expect(b64("step:"+secretToken)),
	)
	ok := one(script.Send("235 2.7.0 ok\r\n"))
	rejected := one(script.Send("535 5.7.8 Username and Password not accepted\r\n"))

	tests := []struct {
		name    string
		auth    submit.Auth
		steps   [][]script.Step
		sendErr bool // the Dial succeeds and the Send fails
		wantErr error
	}{
		{"PLAIN", submit.PlainAuth("", secretUser, secretPass), [][]script.Step{opening, one(script.Expect("AUTH PLAIN " + b64("\x00"+secretUser+"\x00"+secretPass))), ok, send}, false, nil},
		{"PLAIN 535", submit.PlainAuth("", secretUser, secretPass), [][]script.Step{opening, one(script.ExpectPrefix("AUTH PLAIN ")), rejected}, false, submit.ErrAuthFailed},
		{"PLAIN, drop after the dot", submit.PasswordAuth(secretUser, secretPass), [][]script.Step{opening, one(script.ExpectPrefix("AUTH PLAIN ")), ok, dropAfterDot}, true, submit.ErrOutcomeUnknown},
		{"LOGIN", submit.LoginAuth(secretUser, secretPass), [][]script.Step{opening, loginPrompts, ok, send}, false, nil},
		{"LOGIN 535", submit.LoginAuth(secretUser, secretPass), [][]script.Step{opening, loginPrompts, rejected}, false, submit.ErrAuthFailed},
		{"LOGIN aborted on an unknown prompt", submit.LoginAuth(secretUser, secretPass), [][]script.Step{opening, one(
			script.Expect("AUTH LOGIN"), script.Send("334 "+b64("Mother's maiden name:")+"\r\n"),
			script.Expect("*"), script.Send("501 5.7.0 Authentication aborted\r\n"))}, false, nil},
		{"custom mechanism", tokenAuth, [][]script.Step{opening, tokenSteps, ok, send}, false, nil},
		{"custom mechanism 535", tokenAuth, [][]script.Step{opening, tokenSteps, rejected}, false, submit.ErrAuthFailed},
		{"custom mechanism aborted", tokenAuth, [][]script.Step{opening, tokenSteps, one(
			script.Send("334 "+b64("again?")+"\r\n"),
			script.Expect("*"), script.Send("501 5.7.0 Authentication aborted\r\n"))}, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := submittest.NewServer(t)
			addr := srv.ListenScript(submittest.Options{}, steps(tt.steps...)...)
			var logs, transcript, traced bytes.Buffer
			d := &submit.Dialer{
				Candidates: []tlsmode.Candidate{{Port: addr.Port, Mode: tlsmode.Implicit}},
				TLSConfig:  srv.ClientTLSConfig(),
				Auth:       tt.auth,
				Timeout:    3 * time.Second,
				Logger:     slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
				Transcript: &transcript,
			}
			ctx := submit.WithTrace(context.Background(), traceAll(&traced))

			var errs []error
			c, err := d.Dial(ctx, "127.0.0.1")
			if err == nil {
				msg := "Subject: " + secretBody + "\r\n\r\n" + secretBody + "\r\n"
				err = c.Send(ctx, "a@example.com", []string{"b@example.com"}, strings.NewReader(msg))
				if err == nil {
					err = c.Quit()
				}
				c.Close()
			}
			errs = append(errs, err)
			switch {
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Fatalf("err = %v; want %v", err, tt.wantErr)
			case strings.Contains(tt.name, "aborted") && err == nil:
				t.Fatal("an aborted AUTH succeeded")
			case tt.wantErr == nil && !strings.Contains(tt.name, "aborted") && err != nil:
				t.Fatalf("err = %v", err)
			}

			wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			conns, werr := srv.WaitScripts(wctx, addr)
			if werr != nil {
				t.Fatal(werr)
			}
			// The secrets did travel, under TLS: the check below is not vacuous.
			var wire strings.Builder
			for _, sc := range conns {
				if sc.Err != nil {
					t.Errorf("the client went off script: %v", sc.Err)
				}
				for _, l := range sc.Lines {
					if !l.TLS {
						t.Errorf("line sent before TLS: %q", l.Text)
					}
					wire.WriteString(l.Text + "\n")
				}
			}
			sent := false
			for _, f := range secretForms() {
				sent = sent || strings.Contains(wire.String(), f)
			}
			if want := tt.name != "LOGIN aborted on an unknown prompt"; sent != want {
				t.Errorf("a secret reached the server: %v; want %v:\n%s", sent, want, wire.String())
			}
			outputs := map[string]string{
				"transcript": transcript.String(),
				"log":        logs.String(),
				"trace":      traced.String(),
				"error":      fmt.Sprint(errs),
			}
			for where, out := range outputs {
				for _, s := range secretForms() {
					if strings.Contains(out, s) {
						t.Errorf("secret %q in the %s:\n%s", s, where, out)
					}
				}
			}
			if sent && !strings.Contains(transcript.String(), "[redacted]") {
				t.Errorf("the transcript shows no redacted AUTH payload:\n%s", transcript.String())
			}
		})
	}
}

// traceAll is a Trace printing every argument of every hook to w.
func traceAll(w *bytes.Buffer) *submit.Trace {
	p := func(args ...any) { fmt.Fprintln(w, args...) }
	return &submit.Trace{
		ConnectStart:      func(a submit.Attempt) { p("connect-start", fmt.Sprintf("%+v", a)) },
		ConnectDone:       func(a submit.Attempt) { p("connect-done", fmt.Sprintf("%+v", a)) },
		TLSHandshakeStart: func(a submit.Attempt) { p("tls-start", fmt.Sprintf("%+v", a)) },
		TLSHandshakeDone: func(a submit.Attempt) {
			p("tls-done", a.Candidate, tls.VersionName(a.TLS.Version), a.TLS.ServerName, a.TLS.NegotiatedProtocol, a.Err)
		},
		STARTTLSStripped: func(a submit.Attempt) { p("stripped", fmt.Sprintf("%+v", a)) },
		AuthStart:        func(a submit.Attempt) { p("auth-start", fmt.Sprintf("%+v", a)) },
		AuthDone:         func(a submit.Attempt) { p("auth-done", fmt.Sprintf("%+v", a)) },
		AttemptDone:      func(a submit.Attempt) { p("attempt-done", fmt.Sprintf("%+v", a)) },
		WinnerChosen:     func(a submit.Attempt) { p("winner", fmt.Sprintf("%+v", a)) },
	}
}
