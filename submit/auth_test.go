package submit_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	netsmtp "net/smtp"
	"strings"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/tlsmode"
	"golang.org/x/oauth2"
)

const (
	testPass  = "pass-secret-1"
	testToken = "token-secret-1"
	testUser  = "me@example.com"
)

// allMechs serves every mechanism submittest knows.
var allMechs = []string{"PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER", "CRAM-MD5"}

func authServer(t *testing.T, mechs ...string) *submittest.Server {
	return submittest.NewServer(t, submittest.Options{
		Accounts:       map[string]string{testUser: testPass},
		Tokens:         map[string]string{testUser: testToken},
		AuthMechanisms: mechs,
	})
}

func static(token string) oauth2.TokenSource {
	return oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token})
}

// traced dials srv's STARTTLS listener with a transcript and a debug log.
func traced(srv *submittest.Server, auth submit.Auth) (*submit.Dialer, *bytes.Buffer, *bytes.Buffer) {
	var logs, tr bytes.Buffer
	d := dialerFor(srv, auth, cand(srv, srv.StartTLS, tlsmode.StartTLS))
	d.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d.Transcript = &tr
	return d, &logs, &tr
}

// assertNoSecret fails when a secret, raw or in base64 at any of the three
// alignments, appears in one of outs, or when a client line after "AUTH"
// shows anything but [redacted] or "*".
func assertNoSecret(t *testing.T, secrets []string, outs map[string]string) {
	t.Helper()
	for name, out := range outs {
		for _, s := range secrets {
			forms := []string{s}
			for pad := range 3 {
				// The middle of the encoding does not depend on the bytes
				// around s: skip the first group when s does not start it,
				// and always the last.
				enc := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("x", pad) + s))
				start := 0
				if pad > 0 {
					start = 4
				}
				forms = append(forms, enc[start:len(enc)-4])
			}
			for _, f := range forms {
				if strings.Contains(out, f) {
					t.Errorf("%s contains secret %q (as %q):\n%s", name, s, f, out)
				}
			}
		}
	}
	for _, line := range strings.Split(outs["transcript"], "\n") {
		_, c, ok := strings.Cut(line, " C: ")
		if !ok {
			continue
		}
		if strings.HasPrefix(c, "AUTH ") && len(strings.Fields(c)) == 3 && !strings.HasSuffix(c, " [redacted]") {
			t.Errorf("AUTH initial response shown: %q", line)
		}
	}
}

func TestEachMechanismAuthenticatesWithoutLeakingSecrets(t *testing.T) {
	srv := authServer(t, allMechs...)
	// Each case authenticates once with good secrets and once with wrong
	// ones; neither may appear in the transcript, the log or the error.
	tests := []struct {
		name     string
		mech     string
		auth     func(pass, token string) submit.Auth
		mechList []string
	}{
		{"PlainAuth", "PLAIN", func(p, _ string) submit.Auth { return submit.PlainAuth("", testUser, p) }, nil},
		{"LoginAuth", "LOGIN", func(p, _ string) submit.Auth { return submit.LoginAuth(testUser, p) }, nil},
		{"PasswordAuth", "PLAIN", func(p, _ string) submit.Auth { return submit.PasswordAuth(testUser, p) }, nil},
		{"XOAuth2", "XOAUTH2", func(_, tok string) submit.Auth { return submit.XOAuth2(testUser, static(tok)) }, nil},
		{"OAuthBearer", "OAUTHBEARER", func(_, tok string) submit.Auth { return submit.OAuthBearer(testUser, static(tok)) }, nil},
		{"SASL go-sasl PLAIN", "PLAIN", func(p, _ string) submit.Auth {
			return submit.SASL(func() sasl.Client { return sasl.NewPlainClient("", testUser, p) })
		}, nil},
		{"FromNetSMTP PlainAuth", "PLAIN", func(p, _ string) submit.Auth {
			return submit.FromNetSMTP(netsmtp.PlainAuth("", testUser, p, "127.0.0.1"))
		}, nil},
		{"FromNetSMTP CRAMMD5Auth", "CRAM-MD5", func(p, _ string) submit.Auth {
			return submit.FromNetSMTP(netsmtp.CRAMMD5Auth(testUser, p))
		}, nil},
		{"AnyAuth skips EXTERNAL", "LOGIN", func(p, _ string) submit.Auth {
			return submit.AnyAuth(submit.SASL(func() sasl.Client { return sasl.NewExternalClient("") }), submit.LoginAuth(testUser, p))
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, logs, tr := traced(srv, tt.auth(testPass, testToken))
			c, err := d.Dial(context.Background(), "127.0.0.1")
			if err != nil {
				t.Fatal(err)
			}
			if c.Mechanism() != tt.mech {
				t.Errorf("Mechanism() = %q; want %q", c.Mechanism(), tt.mech)
			}
			if err := c.Send(context.Background(), "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg)); err != nil {
				t.Fatal(err)
			}
			c.Quit()
			msgs := srv.Messages()
			if got := msgs[len(msgs)-1].AuthUser; got != testUser {
				t.Errorf("server saw user %q", got)
			}
			if !strings.Contains(tr.String(), "C: AUTH "+tt.mech) {
				t.Errorf("transcript lacks AUTH %s:\n%s", tt.mech, tr)
			}
			assertNoSecret(t, []string{testPass, testToken}, map[string]string{"transcript": tr.String(), "log": logs.String()})

			const wrongPass, wrongToken = "wrong-pass-secret-2", "wrong-token-secret-2"
			d, logs, tr = traced(srv, tt.auth(wrongPass, wrongToken))
			_, err = d.Dial(context.Background(), "127.0.0.1")
			if !errors.Is(err, submit.ErrAuthFailed) {
				t.Fatalf("wrong secret: err = %v; want ErrAuthFailed", err)
			}
			assertNoSecret(t, []string{wrongPass, wrongToken, testPass, testToken},
				map[string]string{"transcript": tr.String(), "log": logs.String(), "error": err.Error()})
		})
	}
	assertNothingInClear(t, srv)
}

func TestLoginAuthUnderstandsRealPrompts(t *testing.T) {
	srv := submittest.NewServer(t)
	prompts := [][2]string{
		{"Username:", "Password:"},
		{"User Name", "Password"},
		{"username:", "password"},
		{"USERNAME:", "PASSWORD:"},
		{"User Name:", "password:"},
		// aiosmtpd and older Exchange pad the prompt with a NUL, which
		// only base64 can carry; some servers add trailing spaces.
		{"User Name\x00", "Password\x00"},
		{"Username: ", "Password:  "},
	}
	for _, p := range prompts {
		for _, clear := range []bool{false, true} {
			if clear && strings.Contains(p[0]+p[1], "\x00") {
				continue // a reply line cannot hold NUL
			}
			name := strings.ReplaceAll(p[0]+","+p[1], "\x00", "<NUL>")
			if clear {
				name += " in clear"
			}
			t.Run(name, func(t *testing.T) {
				addr := srv.ListenWith(tlsmode.StartTLS, submittest.Options{LoginPrompts: p, LoginPromptsClear: clear, AuthMechanisms: []string{"LOGIN"}})
				var tr bytes.Buffer
				d := dialerFor(srv, submit.LoginAuth("user", "pass"), cand(srv, addr, tlsmode.StartTLS))
				d.Transcript = &tr
				c, err := d.Dial(context.Background(), "127.0.0.1")
				if err != nil {
					t.Fatal(err)
				}
				defer c.Quit()
				wantPrompt := base64.StdEncoding.EncodeToString([]byte(p[0]))
				if clear {
					wantPrompt = p[0]
				}
				if c.Mechanism() != "LOGIN" || !strings.Contains(tr.String(), "S: 334 "+wantPrompt) {
					t.Errorf("mechanism %q; transcript:\n%s", c.Mechanism(), tr.String())
				}
			})
		}
	}
}

func TestLoginAuthCancelsOnAnyOtherPrompt(t *testing.T) {
	srv := submittest.NewServer(t)
	tests := []struct {
		prompts   [2]string
		clear     bool
		answered  int // responses sent before "*"
		wantQuote string
	}{
		{[2]string{"Account:", "Password:"}, false, 0, `"Account:"`},
		{[2]string{"Account:", "Password:"}, true, 0, `"Account:"`},
		{[2]string{"Username:", "One-time code:"}, false, 1, `"One-time code:"`},
		{[2]string{"Username:", "One-time code:"}, true, 1, `"One-time code:"`},
	}
	for _, tt := range tests {
		t.Run(tt.wantQuote, func(t *testing.T) {
			addr := srv.ListenWith(tlsmode.StartTLS, submittest.Options{LoginPrompts: tt.prompts, LoginPromptsClear: tt.clear})
			var tr bytes.Buffer
			d := dialerFor(srv, submit.LoginAuth("user", "pass"), cand(srv, addr, tlsmode.StartTLS))
			d.Transcript = &tr
			_, err := d.Dial(context.Background(), "127.0.0.1")
			if err == nil || !strings.Contains(err.Error(), tt.wantQuote) || !strings.Contains(err.Error(), `cancelled with "*"`) {
				t.Fatalf("err = %v; want it to quote %s and say it cancelled", err, tt.wantQuote)
			}
			if errors.Is(err, submit.ErrAuthFailed) {
				t.Error("a cancelled exchange is reported as rejected credentials")
			}
			s := tr.String()
			if !strings.Contains(s, "C: *") || !strings.Contains(s, "S: 501") {
				t.Errorf("no \"*\" and 501 in the transcript:\n%s", s)
			}
			if n := strings.Count(s, "C: [redacted]"); n != tt.answered {
				t.Errorf("%d prompts answered; want %d (the password must not go to an unknown prompt):\n%s", n, tt.answered, s)
			}
		})
	}
}

func TestAuthFailureRepliesAreExplained(t *testing.T) {
	srv := submittest.NewServer(t)
	tests := []struct {
		reply     string
		auth      submit.Auth
		failed    bool // wraps ErrAuthFailed
		temporary bool
		words     []string
	}{
		{"535 5.7.8 Username and Password not accepted", submit.PlainAuth("", "user", "pass"), true, false, []string{"rejected: 535 5.7.8 Username and Password not accepted", "Gmail", "app password"}},
		{"534 5.7.9 Application-specific password required", submit.PlainAuth("", "user", "pass"), true, false, []string{"app password", "OAuth2", "534 5.7.9"}},
		{"538 5.7.11 Encryption required for requested authentication mechanism", submit.LoginAuth("user", "pass"), true, false, []string{"AUTH LOGIN rejected: 538 5.7.11", "requires more encryption"}},
		{"454 4.7.0 Temporary authentication failure", submit.PlainAuth("", "user", "pass"), false, true, []string{"temporary reply to AUTH PLAIN: 454 4.7.0", "try again later"}},
		{"454 4.7.0 Temporary authentication failure", submit.XOAuth2("user", static("t")), false, true, []string{"try again later"}},
	}
	for _, tt := range tests {
		t.Run(tt.reply, func(t *testing.T) {
			addr := srv.ListenWith(tlsmode.StartTLS, submittest.Options{AuthReply: tt.reply, Tokens: map[string]string{"user": "t"}})
			_, err := dialerFor(srv, tt.auth, cand(srv, addr, tlsmode.StartTLS)).Dial(context.Background(), "127.0.0.1")
			if err == nil {
				t.Fatal("Dial succeeded")
			}
			if errors.Is(err, submit.ErrAuthFailed) != tt.failed || submit.IsTemporary(err) != tt.temporary {
				t.Errorf("ErrAuthFailed=%v temporary=%v; want %v %v: %v", errors.Is(err, submit.ErrAuthFailed), submit.IsTemporary(err), tt.failed, tt.temporary, err)
			}
			for _, w := range tt.words {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
			}
		})
	}
}

func TestMechanismChoiceUsesOnlyPostTLSCapabilities(t *testing.T) {
	srv := authServer(t)
	tests := []struct {
		name     string
		mechs    []string
		faults   []submittest.Fault
		noAfter  bool
		auth     submit.Auth
		wantMech string
		wantErr  string
	}{
		{"PasswordAuth prefers PLAIN", []string{"LOGIN", "PLAIN"}, nil, false, submit.PasswordAuth(testUser, testPass), "PLAIN", ""},
		{"PasswordAuth falls back to LOGIN", []string{"LOGIN"}, nil, false, submit.PasswordAuth(testUser, testPass), "LOGIN", ""},
		{"PlainAuth without PLAIN", []string{"LOGIN", "XOAUTH2"}, nil, false, submit.PlainAuth("", testUser, testPass), "", "PLAIN needed, the server offers LOGIN XOAUTH2 after TLS"},
		{"XOAuth2 without XOAUTH2", []string{"PLAIN"}, nil, false, submit.XOAuth2(testUser, static(testToken)), "", "XOAUTH2 needed, the server offers PLAIN after TLS"},
		{"no AUTH at all", []string{}, nil, false, submit.PasswordAuth(testUser, testPass), "", "PLAIN or LOGIN needed, the server offers no AUTH at all after TLS"},
		{"AnyAuth first offered", []string{"PLAIN", "OAUTHBEARER"}, nil, false, submit.AnyAuth(submit.XOAuth2(testUser, static(testToken)), submit.OAuthBearer(testUser, static(testToken)), submit.PlainAuth("", testUser, testPass)), "OAUTHBEARER", ""},
		{"AnyAuth none offered", []string{"CRAM-MD5"}, nil, false, submit.AnyAuth(submit.XOAuth2(testUser, static(testToken)), submit.PasswordAuth(testUser, testPass)), "", "one of XOAUTH2, PLAIN or LOGIN needed, the server offers CRAM-MD5 after TLS"},
		{"AUTH only before TLS", nil, []submittest.Fault{submittest.AuthBeforeTLS}, true, submit.PasswordAuth(testUser, testPass), "", "the server offers no AUTH at all after TLS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := srv.ListenWith(tlsmode.StartTLS, submittest.Options{AuthMechanisms: tt.mechs, NoAuthAfterTLS: tt.noAfter}, tt.faults...)
			c, err := dialerFor(srv, tt.auth, cand(srv, addr, tlsmode.StartTLS)).Dial(context.Background(), "127.0.0.1")
			if tt.wantErr != "" {
				if !errors.Is(err, submit.ErrMechanismUnavailable) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v; want ErrMechanismUnavailable saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Quit()
			if c.Mechanism() != tt.wantMech {
				t.Errorf("Mechanism() = %q; want %q", c.Mechanism(), tt.wantMech)
			}
		})
	}
	for _, c := range srv.Conns() {
		if c.AuthAttempts > 1 {
			t.Errorf("%d AUTH attempts on one connection", c.AuthAttempts)
		}
	}
	assertNothingInClear(t, srv)
}

// serverInfoAuth records the ServerInfo net/smtp Auths get.
type serverInfoAuth struct {
	netsmtp.Auth
	seen *netsmtp.ServerInfo
}

func (a *serverInfoAuth) Start(si *netsmtp.ServerInfo) (string, []byte, error) {
	a.seen = si
	return a.Auth.Start(si)
}

func TestFromNetSMTPSeesTheVerifiedConnection(t *testing.T) {
	srv := authServer(t, "PLAIN", "CRAM-MD5")
	a := &serverInfoAuth{Auth: netsmtp.PlainAuth("", testUser, testPass, "127.0.0.1")}
	c, err := dialerFor(srv, submit.FromNetSMTP(a), cand(srv, srv.Implicit, tlsmode.Implicit)).Dial(context.Background(), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	c.Quit()
	if a.seen == nil || a.seen.Name != "127.0.0.1" || !a.seen.TLS || strings.Join(a.seen.Auth, " ") != "PLAIN CRAM-MD5" {
		t.Errorf("ServerInfo = %+v", a.seen)
	}
	// net/smtp's own check of the host name still applies.
	wrong := submit.FromNetSMTP(netsmtp.PlainAuth("", testUser, testPass, "mail.example.com"))
	_, err = dialerFor(srv, wrong, cand(srv, srv.Implicit, tlsmode.Implicit)).Dial(context.Background(), "127.0.0.1")
	if err == nil || !strings.Contains(err.Error(), "wrong host name") {
		t.Errorf("err = %v; want net/smtp's wrong host name", err)
	}
}

// emptyLogin is a net/smtp Auth for LOGIN that starts with an empty
// initial response, as net/smtp-era LOGIN adapters do.
type emptyLogin struct{ user, pass string }

func (l emptyLogin) Start(*netsmtp.ServerInfo) (string, []byte, error) { return "LOGIN", []byte{}, nil }
func (l emptyLogin) Next(challenge []byte, more bool) ([]byte, error) {
	if !more {
		return nil, nil
	}
	if strings.Contains(strings.ToLower(string(challenge)), "user") {
		return []byte(l.user), nil
	}
	return []byte(l.pass), nil
}

// TestOneNetSMTPAdapterForSendMailAndFromNetSMTP: SendMail and
// FromNetSMTP drive net/smtp Auths the same way: a mechanism the server
// does not offer fails before anything is sent, and an empty initial
// response goes as a bare "AUTH LOGIN".
func TestOneNetSMTPAdapterForSendMailAndFromNetSMTP(t *testing.T) {
	srv := authServer(t, "PLAIN", "LOGIN")
	d := dialerFor(srv, submit.FromNetSMTP(emptyLogin{testUser, testPass}), cand(srv, srv.Implicit, tlsmode.Implicit))
	d.Transcript = new(strings.Builder)
	c, err := d.Dial(context.Background(), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	c.Quit()
	if tr := d.Transcript.(*strings.Builder).String(); !strings.Contains(tr, "C: AUTH LOGIN\n") {
		t.Errorf("an empty initial response did not go as a bare AUTH LOGIN:\n%s", tr)
	}
	cram := submit.FromNetSMTP(netsmtp.CRAMMD5Auth(testUser, "secret"))
	_, err = dialerFor(srv, cram, cand(srv, srv.Implicit, tlsmode.Implicit)).Dial(context.Background(), "127.0.0.1")
	if !errors.Is(err, submit.ErrMechanismUnavailable) {
		t.Errorf("CRAM-MD5 where the server offers PLAIN LOGIN: %v, want ErrMechanismUnavailable", err)
	}
	for _, r := range srv.Conns() {
		if r.AuthMechanism == "CRAM-MD5" {
			t.Error("AUTH CRAM-MD5 went to a server that does not offer it")
		}
	}
}
