package submittest_test

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"slices"
	"testing"

	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/tlsmode"
)

// reply sends line, empty ones included, and reads the reply.
func (w *wire) reply(line string) (int, []string) {
	w.t.Helper()
	if err := w.text.PrintfLine("%s", line); err != nil {
		w.t.Fatal(err)
	}
	return w.cmd("")
}

func TestAuthMechanismsOnTheWire(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	s := submittest.NewServer(t, submittest.Options{Tokens: map[string]string{"bob": "tok"}})
	tests := []struct {
		name  string
		opts  submittest.Options
		mechs string // advertised
		run   func(w *wire) bool
	}{
		{"XOAUTH2 accepts the token", submittest.Options{}, "AUTH PLAIN LOGIN XOAUTH2 OAUTHBEARER", func(w *wire) bool {
			code, _ := w.cmd("AUTH XOAUTH2 " + b64("user=bob\x01auth=Bearer tok\x01\x01"))
			return code == 235
		}},
		{"XOAUTH2 error challenge then 535", submittest.Options{}, "AUTH PLAIN LOGIN XOAUTH2 OAUTHBEARER", func(w *wire) bool {
			code, lines := w.cmd("AUTH XOAUTH2 " + b64("user=bob\x01auth=Bearer old\x01\x01"))
			if code != 334 || lines[0] != b64(`{"status":"401","schemes":"Bearer","scope":"https://mail.google.com/"}`) {
				t.Errorf("challenge %d %q", code, lines)
			}
			code, lines = w.reply("")
			return code == 535 && lines[0] == "5.7.8 Username and Password not accepted"
		}},
		{"OAUTHBEARER error challenge then 535", submittest.Options{}, "AUTH PLAIN LOGIN XOAUTH2 OAUTHBEARER", func(w *wire) bool {
			code, _ := w.cmd("AUTH OAUTHBEARER " + b64("n,a=bob,\x01auth=Bearer old\x01\x01"))
			if code != 334 {
				return false
			}
			code, _ = w.reply(b64("\x01"))
			return code == 535
		}},
		{"OAUTHBEARER accepts the token", submittest.Options{}, "AUTH PLAIN LOGIN XOAUTH2 OAUTHBEARER", func(w *wire) bool {
			code, _ := w.cmd("AUTH OAUTHBEARER " + b64("n,a=bob,\x01host=localhost\x01auth=Bearer tok\x01\x01"))
			return code == 235
		}},
		{"CRAM-MD5", submittest.Options{AuthMechanisms: []string{"cram-md5"}}, "AUTH CRAM-MD5", func(w *wire) bool {
			code, lines := w.cmd("AUTH CRAM-MD5")
			ch, err := base64.StdEncoding.DecodeString(lines[0])
			if code != 334 || err != nil {
				return false
			}
			m := hmac.New(md5.New, []byte("pass"))
			m.Write(ch)
			code, _ = w.reply(b64("user " + hex.EncodeToString(m.Sum(nil))))
			return code == 235
		}},
		{"unadvertised mechanism", submittest.Options{AuthMechanisms: []string{"LOGIN"}}, "AUTH LOGIN", func(w *wire) bool {
			code, _ := w.cmd("AUTH PLAIN " + b64("\x00user\x00pass"))
			return code == 504
		}},
		{"clear LOGIN prompts", submittest.Options{LoginPromptsClear: true, LoginPrompts: [2]string{"User Name", "Password:"}}, "AUTH PLAIN LOGIN XOAUTH2 OAUTHBEARER", func(w *wire) bool {
			code, lines := w.cmd("AUTH LOGIN")
			if code != 334 || lines[0] != "User Name" {
				return false
			}
			if code, lines = w.reply(b64("user")); code != 334 || lines[0] != "Password:" {
				return false
			}
			code, _ = w.reply(b64("pass"))
			return code == 235
		}},
		{"clear LOGIN cancelled", submittest.Options{LoginPromptsClear: true}, "AUTH PLAIN LOGIN XOAUTH2 OAUTHBEARER", func(w *wire) bool {
			w.cmd("AUTH LOGIN")
			code, _ := w.reply("*")
			return code == 501
		}},
		{"forced reply", submittest.Options{AuthReply: "534 5.7.9 Please log in with your web browser"}, "AUTH PLAIN LOGIN XOAUTH2 OAUTHBEARER", func(w *wire) bool {
			code, lines := w.cmd("AUTH PLAIN " + b64("\x00user\x00pass"))
			return code == 534 && lines[0] == "5.7.9 Please log in with your web browser"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := s.ListenWith(tlsmode.StartTLS, tt.opts, submittest.AuthBeforeTLS)
			w := dialWire(t, s.Addr(addr))
			if caps := w.ehlo(); !slices.Contains(caps, tt.mechs) {
				t.Errorf("EHLO %q lacks %q", caps, tt.mechs)
			}
			if !tt.run(w) {
				t.Error("exchange failed")
			}
		})
	}
}
