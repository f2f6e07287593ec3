package submit_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/submit/submittest/script"
	"github.com/portwise/portwise/tlsmode"
	"golang.org/x/oauth2"
)

// SASL payloads are base64 on the wire, so CR and LF in an identity cannot
// inject a command; but each mechanism has its own field separator inside
// the payload (PLAIN NUL, XOAUTH2 and OAUTHBEARER 0x01, OAUTHBEARER's GS2
// header ","), and an identity holding it would let whoever chose the
// identity (a URL, an autoconfig document's username) rewrite the other
// fields, such as the authorisation identity or the token.
func TestSASLIdentitiesCannotForgeFields(t *testing.T) {
	ts := func(tok string) oauth2.TokenSource {
		return oauth2.StaticTokenSource(&oauth2.Token{AccessToken: tok, Expiry: time.Now().Add(time.Hour)})
	}
	tests := []struct {
		name string
		mech string
		auth submit.Auth
		// wantIR, when set, is the initial response that must be sent;
		// otherwise nothing may be sent and the Dial fails with ErrBadAddress.
		wantIR string
	}{
		{"PLAIN user with NUL", "PLAIN", submit.PlainAuth("", "victim\x00admin", "pw"), ""},
		{"PLAIN identity with NUL", "PLAIN", submit.PlainAuth("admin\x00x", "u", "pw"), ""},
		{"PLAIN password with NUL", "PLAIN", submit.PlainAuth("", "u", "p\x00w"), ""},
		{"PasswordAuth user with NUL", "PLAIN", submit.PasswordAuth("victim\x00admin", "pw"), ""},
		{"XOAUTH2 user with 0x01", "XOAUTH2", submit.XOAuth2("u\x01auth=Bearer forged", ts("tok")), ""},
		{"XOAUTH2 token with 0x01", "XOAUTH2", submit.XOAuth2("u", ts("tok\x01user=other")), ""},
		{"OAUTHBEARER user with 0x01", "OAUTHBEARER", submit.OAuthBearer("u\x01auth=Bearer forged", ts("tok")), ""},
		{"OAUTHBEARER user with , and = is escaped", "OAUTHBEARER", submit.OAuthBearer("a,b=c", ts("tok")),
			"n,a=a=2Cb=3Dc,\x01host=127.0.0.1\x01auth=Bearer tok\x01\x01"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := submittest.NewServer(t, submittest.Options{})
			steps := append(implicitOpening("AUTH "+tc.mech),
				script.ExpectPrefix("AUTH "+tc.mech+" "), script.Send("235 2.7.0 ok\r\n"))
			c := tlsmode.Candidate{Port: (srv.ListenScript(submittest.Options{}, steps...)).Port, Mode: tlsmode.Implicit}
			d := &submit.Dialer{Candidates: []tlsmode.Candidate{c}, TLSConfig: srv.ClientTLSConfig(), Auth: tc.auth, Timeout: 3 * time.Second}
			cl, err := d.Dial(context.Background(), "127.0.0.1")
			if cl != nil {
				cl.Close()
			}
			var sent []string
			if tc.wantIR != "" || err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				conns, werr := srv.WaitScripts(ctx, c)
				cancel()
				if werr != nil {
					t.Fatal(werr)
				}
				for _, sc := range conns {
					for _, l := range sc.Lines {
						if b64, ok := strings.CutPrefix(l.Text, "AUTH "+tc.mech+" "); ok {
							ir, _ := base64.StdEncoding.DecodeString(b64)
							sent = append(sent, string(ir))
						}
					}
				}
			}
			if tc.wantIR == "" {
				if !errors.Is(err, submit.ErrBadAddress) {
					t.Errorf("err = %v; want ErrBadAddress", err)
				}
				if len(sent) > 0 {
					t.Errorf("sent %q", sent)
				}
				if err != nil && strings.Contains(err.Error(), "user=other") {
					t.Errorf("the error shows the token: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(sent) != 1 || sent[0] != tc.wantIR {
				t.Errorf("initial responses %q; want %q", sent, tc.wantIR)
			}
		})
	}
}

// The host dialled reaches OAUTHBEARER's payload as host=…; a host name
// with a control character is refused before any connection, even with a
// NetDialer (a proxy) that would take any name.
func TestHostWithControlCharacterIsRefused(t *testing.T) {
	srv := submittest.NewServer(t, submittest.Options{})
	steps := append(implicitOpening("AUTH OAUTHBEARER"), script.ExpectPrefix("AUTH OAUTHBEARER "), script.Send("235 2.7.0 ok\r\n"))
	port := (srv.ListenScript(submittest.Options{}, steps...)).Port
	cfg := srv.ClientTLSConfig()
	cfg.ServerName = "127.0.0.1"
	dialled := 0
	d := &submit.Dialer{
		Candidates: []tlsmode.Candidate{{Port: port, Mode: tlsmode.Implicit}},
		TLSConfig:  cfg,
		Auth:       submit.OAuthBearer("u", oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "tok", Expiry: time.Now().Add(time.Hour)})),
		NetDialer: dialFunc(func(ctx context.Context, network, _ string) (net.Conn, error) {
			dialled++
			var nd net.Dialer
			return nd.DialContext(ctx, network, "127.0.0.1:"+strconv.Itoa(port))
		}),
		Timeout: 3 * time.Second,
	}
	for _, host := range []string{"evil\x01auth=x.example.com", "mail\x1b[2J.example.com", "mail.example.com\x7f"} {
		cl, err := d.Dial(context.Background(), host)
		if err == nil {
			cl.Close()
			t.Errorf("Dial(%q) succeeded", host)
		}
	}
	if dialled != 0 {
		t.Errorf("%d connections were made", dialled)
	}
}

type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

func (f dialFunc) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return f(ctx, network, addr)
}
