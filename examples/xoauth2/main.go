// Command xoauth2 sends one message with an OAuth2 access token (XOAUTH2),
// as Gmail and Microsoft 365 require for applications.
//
// With a real account it reads everything from the environment:
//
//	PORTWISE_OAUTH_PROVIDER       google or microsoft (default google)
//	PORTWISE_OAUTH_CLIENT_ID      the OAuth client id of your application
//	PORTWISE_OAUTH_CLIENT_SECRET  its secret
//	PORTWISE_OAUTH_REFRESH_TOKEN  a refresh token granted with the mail scope
//	                              (https://mail.google.com/, or for Microsoft
//	                              https://outlook.office.com/SMTP.Send offline_access)
//	PORTWISE_OAUTH_USER           the mailbox, e.g. you@gmail.com
//	PORTWISE_OAUTH_TO             the recipient (default: the user)
//	PORTWISE_OAUTH_TENANT         Microsoft only: the tenant (default "common")
//
// The access token is fetched before any connection is made; if the server
// rejects it, portwise refreshes it and retries once. The refresh token is
// never printed; a provider that rotates it (Microsoft) returns a new one
// that a real application would store.
//
// With none of these set, it runs against an in-process server (submittest)
// and a token endpoint on loopback, and says so: the stored access token is
// rejected, refreshed, and the retry succeeds.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/endpoints"

	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/submittest"
)

func main() {
	if err := run(context.Background(), os.Getenv, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// account is what is needed to send as one OAuth2 user.
type account struct {
	host  string // submission host
	user  string
	to    string
	cfg   *oauth2.Config
	token *oauth2.Token
}

var envNames = []string{"PORTWISE_OAUTH_CLIENT_ID", "PORTWISE_OAUTH_CLIENT_SECRET", "PORTWISE_OAUTH_REFRESH_TOKEN", "PORTWISE_OAUTH_USER"}

// fromEnv builds the account from the environment; ok is false when none
// of the required variables is set.
func fromEnv(getenv func(string) string) (a *account, ok bool, err error) {
	var missing []string
	for _, n := range envNames {
		if getenv(n) == "" {
			missing = append(missing, n)
		}
	}
	if len(missing) == len(envNames) {
		return nil, false, nil
	}
	if len(missing) > 0 {
		return nil, true, fmt.Errorf("set %s too (or none of %s to run the offline demo)", strings.Join(missing, ", "), strings.Join(envNames, ", "))
	}
	a = &account{
		user:  getenv("PORTWISE_OAUTH_USER"),
		to:    getenv("PORTWISE_OAUTH_TO"),
		token: &oauth2.Token{RefreshToken: getenv("PORTWISE_OAUTH_REFRESH_TOKEN")},
		cfg: &oauth2.Config{
			ClientID:     getenv("PORTWISE_OAUTH_CLIENT_ID"),
			ClientSecret: getenv("PORTWISE_OAUTH_CLIENT_SECRET"),
		},
	}
	if a.to == "" {
		a.to = a.user
	}
	switch p := strings.ToLower(getenv("PORTWISE_OAUTH_PROVIDER")); p {
	case "", "google":
		a.host = "smtp.gmail.com"
		a.cfg.Endpoint = endpoints.Google
		a.cfg.Scopes = []string{"https://mail.google.com/"}
	case "microsoft":
		a.host = "smtp.office365.com"
		a.cfg.Endpoint = endpoints.AzureAD(getenv("PORTWISE_OAUTH_TENANT"))
		a.cfg.Scopes = []string{"https://outlook.office.com/SMTP.Send", "offline_access"}
	default:
		return nil, true, fmt.Errorf("PORTWISE_OAUTH_PROVIDER=%q: want google or microsoft", p)
	}
	return a, true, nil
}

func run(ctx context.Context, getenv func(string) string, out io.Writer) error {
	a, real, err := fromEnv(getenv)
	if err != nil {
		return err
	}
	d := &submit.Dialer{Transcript: out} // default policy: 587, 465, 2525; system roots
	if !real {
		fmt.Fprintln(out, "No PORTWISE_OAUTH_* variables set: running against an in-process server and token endpoint.")
		var hits atomic.Int32
		endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"access_token":"demo-fresh-access","token_type":"Bearer","expires_in":3599}`)
		}))
		defer endpoint.Close()
		srv := submittest.NewServer(nil, submittest.Options{Tokens: map[string]string{"demo@example.com": "demo-fresh-access"}})
		defer srv.Close()
		defer func() { fmt.Fprintf(out, "The token endpoint was asked %d time(s).\n", hits.Load()) }()
		a = &account{
			host: "localhost",
			user: "demo@example.com",
			to:   "you@example.com",
			cfg: &oauth2.Config{ClientID: "demo-client", ClientSecret: "demo-secret",
				Endpoint: oauth2.Endpoint{TokenURL: endpoint.URL, AuthStyle: oauth2.AuthStyleInParams}},
			// A stored access token the server no longer accepts, as after
			// a revocation or with a token saved without its expiry.
			token: &oauth2.Token{AccessToken: "demo-stale-access", RefreshToken: "demo-refresh", Expiry: time.Now().Add(time.Hour)},
		}
		d.Candidates, d.TLSConfig = srv.Candidates(), srv.ClientTLSConfig()
		defer func() {
			if m := srv.Messages(); len(m) > 0 {
				fmt.Fprintf(out, "The server received a message from %s as %s over TLS=%v.\n", m[0].From, m[0].AuthUser, m[0].TLS)
			}
		}()
	}

	ts := submit.RefreshingTokenSource(ctx, a.cfg, a.token)
	d.Auth = submit.XOAuth2(a.user, ts)
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	c, err := d.Dial(ctx, a.host)
	if err != nil {
		if errors.Is(err, submit.ErrTokenUnavailable) {
			return fmt.Errorf("no access token (nothing was sent): %w", err)
		}
		return err
	}
	defer c.Quit()
	msg := "From: " + a.user + "\r\nTo: " + a.to + "\r\nSubject: portwise XOAUTH2 test\r\n\r\nSent with an OAuth2 access token.\r\n"
	if err := c.Send(ctx, a.user, []string{a.to}, strings.NewReader(msg)); err != nil {
		return err
	}
	fmt.Fprintf(out, "Sent to %s through port %d (%s) with AUTH %s.\n", a.to, c.Port(), c.Mode(), c.Mechanism())
	return nil
}
