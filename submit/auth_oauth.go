package submit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/emersion/go-sasl"
	"github.com/portwise/portwise/internal/untrusted"
	"github.com/portwise/portwise/internal/wire"
	"golang.org/x/oauth2"
)

// XOAuth2 authenticates with Google's and Microsoft's XOAUTH2 mechanism,
// sending "user=<username>\x01auth=Bearer <token>\x01\x01" as an initial
// response. The token is fetched from ts when Dial starts, before any
// connection; a failure there is returned wrapping ErrTokenUnavailable.
//
// When the server rejects the token (Google sends a base64 JSON error
// challenge, answered with an empty line, then 535), the error wraps
// ErrAuthFailed and names the status and scope the server reported, never
// the token. Dial then asks ts for a new token and, if it gives a different
// one, retries exactly once on fresh connections: expired access tokens are
// the most common OAuth failure. A source made by RefreshingTokenSource can
// always be made to refresh; a cfg.TokenSource only refreshes a token whose
// recorded expiry has passed.
//
// A token a server rejected is never sent again: until the source gives a
// different one, every Dial fails before connecting, wrapping both
// ErrAuthFailed and ErrTokenUnavailable.
//
// ts is called at most once per Dial while its token is valid; it should
// cache (every oauth2 source does).
func XOAuth2(username string, ts oauth2.TokenSource) Auth {
	return &oauthAuth{mech: "XOAUTH2", user: username, ts: ts}
}

// OAuthBearer authenticates with OAUTHBEARER (RFC 7628), the standard form
// of XOAUTH2, with the same token handling and refresh as XOAuth2.
func OAuthBearer(username string, ts oauth2.TokenSource) Auth {
	return &oauthAuth{mech: sasl.OAuthBearer, user: username, ts: ts}
}

// oauthAuth is XOAuth2 and OAuthBearer: a token cache in front of the
// caller's source that remembers which access token a server rejected.
type oauthAuth struct {
	mech string
	user string
	ts   oauth2.TokenSource

	mu       sync.Mutex
	tok      *oauth2.Token
	rejected string      // the access token a server refused, "" if none
	fetching *tokenFetch // the request to the source under way, if any
}

// tokenFetch is one call of the token source, shared by every Dial that
// waits for a token while it runs.
type tokenFetch struct {
	done chan struct{}
	tok  *oauth2.Token
	err  error
}

// Start builds the mechanism with the current token.
func (a *oauthAuth) Start(ctx context.Context, info *AuthInfo) (sasl.Client, error) {
	if !info.Offers(a.mech) {
		return nil, errUnoffered(a.mech, info)
	}
	if err := a.checkUser(); err != nil {
		return nil, err
	}
	tok, err := a.token(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkSASLField(a.mech, "access token", tok.AccessToken, "\x00\x01\r\n", true); err != nil {
		return nil, err
	}
	c := &oauthClient{a: a, token: tok.AccessToken}
	if a.mech == sasl.OAuthBearer {
		c.bearer = sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{Username: gs2Name(a.user), Token: tok.AccessToken, Host: info.Host})
	}
	return c, nil
}

// prepare checks the user name and fetches the token before Dial spends a
// connection.
func (a *oauthAuth) prepare(ctx context.Context) error {
	if err := a.checkUser(); err != nil {
		return err
	}
	_, err := a.token(ctx)
	return err
}

// checkUser refuses a user name holding 0x01, which ends a field of both
// mechanisms ("user=U\x01auth=Bearer T" would let U supply the token).
func (a *oauthAuth) checkUser() error {
	return checkSASLField(a.mech, "user name", a.user, "\x00\x01", false)
}

// token returns the cached token while it is valid and not rejected, else
// the token of a fetch: the one under way, or a new one.
func (a *oauthAuth) token(ctx context.Context) (*oauth2.Token, error) {
	a.mu.Lock()
	if t := a.cachedLocked(); t != nil {
		a.mu.Unlock()
		return t, nil
	}
	f := a.fetchLocked()
	a.mu.Unlock()
	return a.await(ctx, f)
}

// cachedLocked is the cached token while it is valid and not rejected;
// mu is held.
func (a *oauthAuth) cachedLocked() *oauth2.Token {
	if a.tok.Valid() && a.tok.AccessToken != a.rejected {
		return a.tok
	}
	return nil
}

// fetchLocked returns the fetch under way, or starts one; mu is held. The
// source takes no context, so its call runs in a goroutine of its own: at
// most one at a time, whatever the number of Dials that give up waiting
// for a stalled token endpoint.
func (a *oauthAuth) fetchLocked() *tokenFetch {
	if a.fetching != nil {
		return a.fetching
	}
	f := &tokenFetch{done: make(chan struct{})}
	a.fetching = f
	go func() {
		t, err := a.ts.Token()
		a.mu.Lock()
		f.tok, f.err = t, err
		if err == nil && t != nil && t.AccessToken != "" && t.AccessToken != a.rejected {
			a.tok = t
		}
		a.fetching = nil
		a.mu.Unlock()
		close(f.done)
	}()
	return f
}

// await waits for f within ctx and judges its token.
func (a *oauthAuth) await(ctx context.Context, f *tokenFetch) (*oauth2.Token, error) {
	select {
	case <-f.done:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w for %s: %w", ErrTokenUnavailable, untrusted.Name(a.user), ctx.Err())
	}
	a.mu.Lock()
	rejected := a.rejected
	a.mu.Unlock()
	switch {
	case f.err != nil:
		// The token endpoint's error body is the endpoint's text.
		return nil, fmt.Errorf("%w for %s: %w", ErrTokenUnavailable, untrusted.Name(a.user), untrusted.Error(f.err))
	case f.tok == nil || f.tok.AccessToken == "":
		return nil, fmt.Errorf("%w for %s: the token source returned no access token", ErrTokenUnavailable, untrusted.Name(a.user))
	case f.tok.AccessToken == rejected:
		return nil, fmt.Errorf("%w for %s: the token source gave again the access token a server rejected, so portwise will not send it; give XOAuth2 or OAuthBearer a source that can refresh (submit.RefreshingTokenSource), or a new token: %w",
			ErrTokenUnavailable, untrusted.Name(a.user), ErrAuthFailed)
	}
	return f.tok, nil
}

// reject records that a server refused the access token: it is never
// handed out again.
func (a *oauthAuth) reject(token string) {
	a.mu.Lock()
	a.rejected = token
	a.mu.Unlock()
}

// refresh fetches a new token after a server refused the access token
// rejected. It reports whether there is a different one to retry with. A
// fetch already under way is joined; when it gives the rejected token
// again, the source is told to expire it and asked once more.
func (a *oauthAuth) refresh(ctx context.Context, rejected string) (bool, error) {
	for {
		a.mu.Lock()
		if t := a.cachedLocked(); t != nil {
			a.mu.Unlock()
			return true, nil // another Dial refreshed it meanwhile
		}
		f, joined := a.fetching, a.fetching != nil
		if !joined {
			if e, ok := a.ts.(tokenExpirer); ok {
				e.expire(rejected)
			}
			f = a.fetchLocked()
		}
		a.mu.Unlock()
		_, err := a.await(ctx, f)
		if err == nil {
			return true, nil
		}
		if !joined || ctx.Err() != nil {
			return false, err
		}
	}
}

// oauthClient is the SASL side of XOAUTH2 and OAUTHBEARER for one
// connection.
type oauthClient struct {
	a      *oauthAuth
	token  string
	bearer sasl.Client // OAUTHBEARER's initial response comes from go-sasl
	steps  int
}

func (c *oauthClient) Start() (string, []byte, error) {
	if c.bearer != nil {
		return c.bearer.Start()
	}
	return "XOAUTH2", []byte("user=" + c.a.user + "\x01auth=Bearer " + c.token + "\x01\x01"), nil
}

// Next answers the server's error challenge. Both mechanisms carry the
// error as JSON in a 334; the client must answer (XOAUTH2: an empty line,
// OAUTHBEARER: 0x01) to get the final reply. go-sasl's OAUTHBEARER client
// returns an error instead, which would cancel the exchange with "*".
func (c *oauthClient) Next([]byte) ([]byte, error) {
	c.steps++
	if c.steps > 1 {
		return nil, fmt.Errorf("%s: unexpected second challenge", c.a.mech)
	}
	if c.bearer != nil {
		return []byte{0x01}, nil
	}
	return []byte{}, nil
}

// rejected records a 5xx rejection of the token, so it is never sent
// again, and reads the status and scope the server gave in its JSON error
// challenge (never the token). The renewal asks the source for a new token.
func (c *oauthClient) rejected(final *wire.Reply, last []byte) (note string, renew renewFunc) {
	if final.Code/100 != 5 {
		return "", nil
	}
	c.a.reject(c.token)
	var je struct {
		Status string `json:"status"`
		Scope  string `json:"scope"`
	}
	if len(last) > 0 && json.Unmarshal(last, &je) == nil && (je.Status != "" || je.Scope != "") {
		note = "the server says: status \"" + untrusted.Name(je.Status) + "\""
		if je.Scope != "" {
			note += ", scope \"" + untrusted.Name(je.Scope) + "\""
		}
	}
	a, token := c.a, c.token
	return note, func(ctx context.Context) (bool, error) { return a.refresh(ctx, token) }
}

// tokenExpirer is implemented by sources that can be told a token was
// rejected, so their next Token call fetches a new one.
type tokenExpirer interface {
	expire(access string)
}

// RefreshingTokenSource is cfg.TokenSource(ctx, tok) that XOAuth2 and
// OAuthBearer can also make refresh when a server rejects an access token
// whose recorded expiry has not passed (it was revoked, the clocks
// disagree, or tok was stored without an expiry). ctx is used for every
// request to the token endpoint, as with cfg.TokenSource; put an
// *http.Client in it with oauth2.HTTPClient to change the transport.
//
// tok needs a RefreshToken; its AccessToken may be empty, in which case the
// first Token call refreshes.
func RefreshingTokenSource(ctx context.Context, cfg *oauth2.Config, tok *oauth2.Token) oauth2.TokenSource {
	s := &refreshingSource{ctx: ctx, cfg: cfg}
	if tok != nil {
		t := *tok
		s.tok = &t
	}
	return s
}

type refreshingSource struct {
	ctx context.Context
	cfg *oauth2.Config

	mu  sync.Mutex
	tok *oauth2.Token
}

// Token returns the current token while it is valid, else refreshes it.
func (s *refreshingSource) Token() (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok.Valid() {
		return s.tok, nil
	}
	if s.tok == nil || s.tok.RefreshToken == "" {
		return nil, errors.New("oauth2: token expired and refresh token is not set")
	}
	// A token without an access token is never valid, so this source
	// refreshes at once; it keeps the refresh token when the endpoint does
	// not rotate it.
	t, err := s.cfg.TokenSource(s.ctx, &oauth2.Token{RefreshToken: s.tok.RefreshToken}).Token()
	if err != nil {
		return nil, err
	}
	s.tok = t
	return t, nil
}

func (s *refreshingSource) expire(access string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok != nil && s.tok.AccessToken == access {
		t := *s.tok
		t.AccessToken = ""
		s.tok = &t
	}
}
