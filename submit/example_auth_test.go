package submit_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	netsmtp "net/smtp"
	"time"

	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/submittest"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/endpoints"
)

func ExampleXOAuth2() {
	// A stand-in for Google's token endpoint, so the example runs offline.
	endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"ya29.fresh","token_type":"Bearer","expires_in":3599}`)
	}))
	defer endpoint.Close()
	srv := submittest.NewServer(nil, submittest.Options{Tokens: map[string]string{"me@gmail.com": "ya29.fresh"}})
	defer srv.Close()

	cfg := &oauth2.Config{
		ClientID:     "client-id.apps.googleusercontent.com",
		ClientSecret: "client-secret",
		Endpoint:     endpoints.Google,
		Scopes:       []string{"https://mail.google.com/"},
	}
	cfg.Endpoint.TokenURL = endpoint.URL // only for the example
	// A stored refresh token; the access token is fetched before dialling,
	// and refreshed once if the server rejects it.
	stored := &oauth2.Token{RefreshToken: "1//stored-refresh-token"}
	ts := submit.RefreshingTokenSource(context.Background(), cfg, stored)

	d := &submit.Dialer{
		Candidates: srv.Candidates(), // leave nil for smtp.gmail.com
		TLSConfig:  srv.ClientTLSConfig(),
		Auth:       submit.XOAuth2("me@gmail.com", ts),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := d.Dial(ctx, "localhost")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Quit()
	fmt.Println(c.Mechanism())
	// Output: XOAUTH2
}

func ExampleFromNetSMTP() {
	srv := submittest.NewServer(nil, submittest.Options{AuthMechanisms: []string{"CRAM-MD5"}})
	defer srv.Close()
	d := srv.Dialer(submit.FromNetSMTP(netsmtp.CRAMMD5Auth("user", "pass"))) // trusts the test server
	c, err := d.Dial(context.Background(), "localhost")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Quit()
	fmt.Println(c.Mechanism())
	// Output: CRAM-MD5
}

func ExampleAnyAuth() {
	srv := submittest.NewServer(nil) // offers PLAIN and LOGIN only
	defer srv.Close()
	ts := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "token"})
	d := srv.Dialer(submit.AnyAuth(submit.XOAuth2("user", ts), submit.PasswordAuth("user", "pass"))) // trusts the test server
	c, err := d.Dial(context.Background(), "localhost")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Quit()
	fmt.Println(c.Mechanism())
	// Output: PLAIN
}
