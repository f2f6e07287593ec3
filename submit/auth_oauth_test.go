package submit_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/tlsmode"
	"golang.org/x/oauth2"
)

const (
	refreshSecret = "refresh-secret-3"
	clientSecret  = "client-secret-4"
)

// tokenEndpoint is an OAuth2 token endpoint on loopback that answers the
// refresh grant with the next access token of its list (the last one
// repeats), or with 400 invalid_grant when revoked.
type tokenEndpoint struct {
	*httptest.Server
	mu      sync.Mutex
	hits    int
	tokens  []string
	revoked bool
}

func newTokenEndpoint(t *testing.T, tokens ...string) *tokenEndpoint {
	e := &tokenEndpoint{tokens: tokens}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.hits++
		w.Header().Set("Content-Type", "application/json")
		if r.FormValue("grant_type") != "refresh_token" || r.FormValue("refresh_token") != refreshSecret ||
			r.FormValue("client_secret") != clientSecret || e.revoked || len(e.tokens) == 0 {
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error":"invalid_grant","error_description":"Token has been expired or revoked."}`))
			return
		}
		tok := e.tokens[0]
		if len(e.tokens) > 1 {
			e.tokens = e.tokens[1:]
		}
		json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 3600})
	}))
	t.Cleanup(e.Close)
	return e
}

func (e *tokenEndpoint) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.hits
}

func (e *tokenEndpoint) config() *oauth2.Config {
	return &oauth2.Config{
		ClientID:     "client-id",
		ClientSecret: clientSecret,
		Endpoint:     oauth2.Endpoint{TokenURL: e.URL + "/token", AuthStyle: oauth2.AuthStyleInParams},
		Scopes:       []string{submittest.GoogleScope},
	}
}

func authAttempts(srv *submittest.Server) (attempts, conns int) {
	for _, c := range srv.Conns() {
		attempts += c.AuthAttempts
		conns++
	}
	return attempts, conns
}

var oauthMechs = []struct {
	name string
	new  func(string, oauth2.TokenSource) submit.Auth
}{
	{"XOAUTH2", submit.XOAuth2},
	{"OAUTHBEARER", submit.OAuthBearer},
}

// A stored access token the server no longer accepts (revoked, or stored
// without its expiry) is rejected, refreshed once, and the retry succeeds.
func TestOAuthRefreshesARejectedTokenAndRetriesOnce(t *testing.T) {
	for _, m := range oauthMechs {
		t.Run(m.name, func(t *testing.T) {
			srv := submittest.NewServer(t, submittest.Options{Tokens: map[string]string{testUser: "fresh-access"}})
			ep := newTokenEndpoint(t, "fresh-access")
			stored := &oauth2.Token{AccessToken: "stale-access", RefreshToken: refreshSecret, Expiry: time.Now().Add(time.Hour)}
			ts := submit.RefreshingTokenSource(context.Background(), ep.config(), stored)
			d, logs, tr := traced(srv, m.new(testUser, ts))
			c, err := d.Dial(context.Background(), "127.0.0.1")
			if err != nil {
				t.Fatal(err)
			}
			if c.Mechanism() != m.name {
				t.Errorf("Mechanism() = %q", c.Mechanism())
			}
			if err := c.Send(context.Background(), "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg)); err != nil {
				t.Fatal(err)
			}
			c.Quit()
			if n := ep.count(); n != 1 {
				t.Errorf("token endpoint hit %d times; want exactly once", n)
			}
			if a, n := authAttempts(srv); a != 2 || n != 2 {
				t.Errorf("%d AUTH attempts on %d connections; want 2 on 2 (a new attempt after the refresh)", a, n)
			}
			if !strings.Contains(logs.String(), "portwise auth retry") {
				t.Errorf("the retry is not logged:\n%s", logs)
			}
			assertNoSecret(t, []string{"stale-access", "fresh-access", refreshSecret, clientSecret},
				map[string]string{"transcript": tr.String(), "log": logs.String()})

			// The refreshed token is cached: the next Dial neither fetches
			// nor fails.
			c, err = d.Dial(context.Background(), "127.0.0.1")
			if err != nil {
				t.Fatal(err)
			}
			c.Quit()
			if n := ep.count(); n != 1 {
				t.Errorf("token endpoint hit %d times after a second Dial; want 1", n)
			}
		})
	}
}

func TestOAuthRefreshesAnExpiredTokenBeforeDialling(t *testing.T) {
	srv := submittest.NewServer(t, submittest.Options{Tokens: map[string]string{testUser: "fresh-access"}})
	ep := newTokenEndpoint(t, "fresh-access")
	expired := &oauth2.Token{AccessToken: "stale-access", RefreshToken: refreshSecret, Expiry: time.Now().Add(-time.Hour)}
	for _, ts := range []oauth2.TokenSource{
		ep.config().TokenSource(context.Background(), expired),
		submit.RefreshingTokenSource(context.Background(), ep.config(), expired),
	} {
		before := ep.count()
		c, err := dialerFor(srv, submit.XOAuth2(testUser, ts), cand(srv, srv.StartTLS, tlsmode.StartTLS)).Dial(context.Background(), "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		c.Quit()
		if n := ep.count() - before; n != 1 {
			t.Errorf("token endpoint hit %d times; want 1", n)
		}
	}
	if a, n := authAttempts(srv); a != 2 || n != 2 {
		t.Errorf("%d AUTH attempts on %d connections; want one per Dial", a, n)
	}
}

func TestOAuthRejectionWithoutAFreshTokenIsNotRetried(t *testing.T) {
	tests := []struct {
		name     string
		tokens   []string // what the endpoint hands out
		ts       func(ep *tokenEndpoint, stored *oauth2.Token) oauth2.TokenSource
		hits     int
		attempts int
		words    []string
	}{
		{"cfg.TokenSource cannot be forced", []string{"fresh-access"},
			func(ep *tokenEndpoint, stored *oauth2.Token) oauth2.TokenSource {
				return ep.config().TokenSource(context.Background(), stored)
			}, 0, 1, []string{`status "401"`, `scope "https://mail.google.com/"`, "will not send it", "RefreshingTokenSource"}},
		{"the new token is rejected too", []string{"also-wrong-access"},
			func(ep *tokenEndpoint, stored *oauth2.Token) oauth2.TokenSource {
				return submit.RefreshingTokenSource(context.Background(), ep.config(), stored)
			}, 1, 2, []string{`status "401"`, "expired or been revoked"}},
		{"the refresh token was revoked", nil,
			func(ep *tokenEndpoint, stored *oauth2.Token) oauth2.TokenSource {
				return submit.RefreshingTokenSource(context.Background(), ep.config(), stored)
			}, 1, 1, []string{"a new one could not be fetched", "invalid_grant", "authorise the application again"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := submittest.NewServer(t, submittest.Options{Tokens: map[string]string{testUser: "fresh-access"}})
			ep := newTokenEndpoint(t, tt.tokens...)
			stored := &oauth2.Token{AccessToken: "stale-access", RefreshToken: refreshSecret, Expiry: time.Now().Add(time.Hour)}
			d, logs, tr := traced(srv, submit.XOAuth2(testUser, tt.ts(ep, stored)))
			_, err := d.Dial(context.Background(), "127.0.0.1")
			if !errors.Is(err, submit.ErrAuthFailed) {
				t.Fatalf("err = %v; want ErrAuthFailed", err)
			}
			var de *submit.DialError
			if !errors.As(err, &de) {
				t.Errorf("err is %T; want *DialError", err)
			}
			for _, w := range tt.words {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
			}
			if n := ep.count(); n != tt.hits {
				t.Errorf("token endpoint hit %d times; want %d", n, tt.hits)
			}
			if a, _ := authAttempts(srv); a != tt.attempts {
				t.Errorf("%d AUTH attempts; want %d", a, tt.attempts)
			}
			assertNoSecret(t, []string{"stale-access", "fresh-access", "also-wrong-access", refreshSecret, clientSecret},
				map[string]string{"transcript": tr.String(), "log": logs.String(), "error": err.Error()})
		})
	}
}

func TestOAuthTokenEndpointFailureEndsDialBeforeConnecting(t *testing.T) {
	tests := []struct {
		name   string
		down   bool
		as     bool // an *oauth2.RetrieveError is reachable
		phrase string
	}{
		{"endpoint unreachable", true, false, "connection refused"},
		{"refresh token revoked", false, true, "invalid_grant"},
	}
	for _, tt := range tests {
		for _, m := range oauthMechs {
			t.Run(tt.name+" "+m.name, func(t *testing.T) {
				srv := submittest.NewServer(t, submittest.Options{Tokens: map[string]string{testUser: "fresh-access"}})
				ep := newTokenEndpoint(t, "fresh-access")
				ep.revoked = !tt.down
				if tt.down {
					ep.Close()
				}
				ts := ep.config().TokenSource(context.Background(), &oauth2.Token{RefreshToken: refreshSecret})
				d, logs, _ := traced(srv, m.new(testUser, ts))
				_, err := d.Dial(context.Background(), "127.0.0.1")
				if !errors.Is(err, submit.ErrTokenUnavailable) || !strings.Contains(err.Error(), tt.phrase) {
					t.Fatalf("err = %v; want ErrTokenUnavailable saying %q", err, tt.phrase)
				}
				var re *oauth2.RetrieveError
				if errors.As(err, &re) != tt.as {
					t.Errorf("errors.As(*oauth2.RetrieveError) = %v; want %v", !tt.as, tt.as)
				}
				if submit.IsTemporary(err) && tt.as {
					t.Error("a revoked refresh token is reported as temporary")
				}
				if conns := srv.Conns(); len(conns) != 0 {
					t.Errorf("%d connections made; want none before a token exists", len(conns))
				}
				assertNoSecret(t, []string{refreshSecret, clientSecret}, map[string]string{"error": err.Error(), "log": logs.String()})
			})
		}
	}
}

// A token source that never answers does not hold the Dial past its
// context.
func TestOAuthTokenFetchHonoursTheContext(t *testing.T) {
	srv := submittest.NewServer(t, submittest.Options{Tokens: map[string]string{testUser: "fresh-access"}})
	release := make(chan struct{})
	defer close(release)
	stuck := tokenFunc(func() (*oauth2.Token, error) {
		<-release
		return nil, errors.New("released")
	})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := dialerFor(srv, submit.XOAuth2(testUser, stuck)).Dial(ctx, "127.0.0.1")
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, submit.ErrTokenUnavailable) {
		t.Fatalf("err = %v; want ErrTokenUnavailable wrapping the deadline", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("Dial returned after %s", el)
	}
	if len(srv.Conns()) != 0 {
		t.Error("connected without a token")
	}
}

type tokenFunc func() (*oauth2.Token, error)

func (f tokenFunc) Token() (*oauth2.Token, error) { return f() }

// The refresh belongs to the Dial whose token was rejected: through
// AnyAuth it still happens, and a rejected password is never retried, even
// after an earlier token rejection.
func TestOAuthRefreshThroughAnyAuthOnlyForTheRejectedToken(t *testing.T) {
	srv := submittest.NewServer(t, submittest.Options{Tokens: map[string]string{testUser: "fresh-access"}, AuthMechanisms: []string{"XOAUTH2"}})
	ep := newTokenEndpoint(t, "fresh-access")
	stored := &oauth2.Token{AccessToken: "stale-access", RefreshToken: refreshSecret, Expiry: time.Now().Add(time.Hour)}
	oauth := submit.XOAuth2(testUser, submit.RefreshingTokenSource(context.Background(), ep.config(), stored))
	c, err := dialerFor(srv, submit.AnyAuth(oauth, submit.PasswordAuth(testUser, "wrong")), cand(srv, srv.StartTLS, tlsmode.StartTLS)).Dial(context.Background(), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	c.Quit()
	if a, _ := authAttempts(srv); a != 2 || ep.count() != 1 {
		t.Fatalf("%d AUTH attempts, %d token fetches; want 2 and 1", a, ep.count())
	}

	plain := srv.ListenWith(tlsmode.StartTLS, submittest.Options{AuthMechanisms: []string{"PLAIN"}})
	_, err = dialerFor(srv, submit.AnyAuth(oauth, submit.PasswordAuth(testUser, "wrong")), cand(srv, plain, tlsmode.StartTLS)).Dial(context.Background(), "127.0.0.1")
	if !errors.Is(err, submit.ErrAuthFailed) {
		t.Fatalf("err = %v; want ErrAuthFailed", err)
	}
	if a, _ := authAttempts(srv); a != 3 || ep.count() != 1 {
		t.Errorf("%d AUTH attempts, %d token fetches; want 3 and 1 (the password is not retried)", a, ep.count())
	}
}
