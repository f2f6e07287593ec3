package submit

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-sasl"
	"github.com/portwise/portwise/internal/untrusted"
)

// AuthInfo is what an Auth sees of a server when it chooses a mechanism:
// only what was learnt after TLS was verified.
type AuthInfo struct {
	// Host is the host name dialled: the name the certificate matched.
	Host string
	// Mechanisms are the AUTH mechanisms the server advertised after TLS,
	// upper-cased. What it advertised in clear is never shown.
	Mechanisms []string
	// TLS is the verified TLS state of the connection. The Dialer never
	// calls an Auth without one, so it is never nil there.
	TLS *tls.ConnectionState
}

// Offers reports whether the server advertised mech.
func (i *AuthInfo) Offers(mech string) bool {
	return slices.Contains(i.Mechanisms, strings.ToUpper(mech))
}

// Auth is a SASL client factory: for each connection it picks a mechanism
// from what the server offers after TLS and returns a fresh sasl.Client for
// it. An Auth is used by concurrent Dials and must be safe for that.
type Auth interface {
	Start(ctx context.Context, info *AuthInfo) (sasl.Client, error)
}

// AuthFunc adapts a function to the Auth interface.
type AuthFunc func(ctx context.Context, info *AuthInfo) (sasl.Client, error)

// Start calls f.
func (f AuthFunc) Start(ctx context.Context, info *AuthInfo) (sasl.Client, error) {
	return f(ctx, info)
}

func errUnoffered(want string, info *AuthInfo) error {
	return &unofferedError{wants: []string{want}, offered: info.Mechanisms}
}

// unofferedError says which mechanisms would have done and what the server
// offered instead; AnyAuth merges its members'.
type unofferedError struct {
	wants   []string
	offered []string
}

func (e *unofferedError) Error() string {
	offered := "no AUTH at all"
	if len(e.offered) > 0 {
		offered = untrusted.Text(strings.Join(e.offered, " "), untrusted.MaxText)
	}
	want := e.wants[len(e.wants)-1]
	switch n := len(e.wants); {
	case n == 2:
		want = e.wants[0] + " or " + want
	case n > 2:
		want = "one of " + strings.Join(e.wants[:n-1], ", ") + " or " + want
	}
	return fmt.Sprintf("%v: %s needed, the server offers %s after TLS", ErrMechanismUnavailable, want, offered)
}

func (e *unofferedError) Unwrap() error { return ErrMechanismUnavailable }

// PlainAuth authenticates with SASL PLAIN (RFC 4616), sent as an initial
// response so it costs one round trip. identity is usually "".
func PlainAuth(identity, username, password string) Auth {
	return AuthFunc(func(_ context.Context, info *AuthInfo) (sasl.Client, error) {
		if !info.Offers("PLAIN") {
			return nil, errUnoffered("PLAIN", info)
		}
		if err := checkPlain(identity, username, password); err != nil {
			return nil, err
		}
		return sasl.NewPlainClient(identity, username, password), nil
	})
}

// LoginAuth authenticates with the obsolete but common LOGIN mechanism.
// It understands the prompts real servers send ("Username:", "User Name",
// "Password:", "password", base64 or not) and aborts on any other.
func LoginAuth(username, password string) Auth {
	return AuthFunc(func(_ context.Context, info *AuthInfo) (sasl.Client, error) {
		if !info.Offers("LOGIN") {
			return nil, errUnoffered("LOGIN", info)
		}
		if err := checkLogin(username, password); err != nil {
			return nil, err
		}
		return &loginClient{user: username, pass: password}, nil
	})
}

// PasswordAuth uses PLAIN when the server offers it after TLS, else LOGIN:
// AnyAuth(PlainAuth("", username, password), LoginAuth(username, password)).
func PasswordAuth(username, password string) Auth {
	return AnyAuth(PlainAuth("", username, password), LoginAuth(username, password))
}

// loginClient answers LOGIN prompts by what they ask, not by their order.
// With initial set it sends the username as an initial response (the
// one-step variant), so the server's only prompt is for the password.
type loginClient struct {
	user, pass string
	initial    bool
	step       int
	passSent   bool
}

func (c *loginClient) Start() (string, []byte, error) {
	if c.initial {
		return "LOGIN", []byte(c.user), nil
	}
	return "LOGIN", nil, nil
}

func (c *loginClient) Next(challenge []byte) ([]byte, error) {
	return c.NextRaw(string(challenge), challenge)
}

// NextRaw is called by the wire layer with the challenge as sent (text)
// and decoded from base64 (nil when it was not base64).
func (c *loginClient) NextRaw(text string, decoded []byte) ([]byte, error) {
	c.step++
	if c.step > 2 {
		return nil, errors.New("LOGIN: more than two prompts")
	}
	for _, p := range []string{string(decoded), text} {
		switch loginPrompt(p) {
		case "user":
			return []byte(c.user), nil
		case "pass":
			if c.passSent {
				// Answering would send the password twice in one exchange.
				return nil, errors.New("LOGIN: the server asked for the password a second time; portwise cancelled with \"*\" rather than send it again")
			}
			c.passSent = true
			return []byte(c.pass), nil
		}
	}
	return nil, fmt.Errorf("LOGIN: the server prompted \"%s\", which asks for neither the user name nor the password, so portwise cancelled with \"*\" without answering; use PlainAuth if the server offers PLAIN", clipPrompt(text, decoded))
}

func loginPrompt(p string) string {
	// aiosmtpd and older Exchange pad the prompt with NUL ("User Name\x00").
	p = strings.ToLower(strings.TrimRight(strings.TrimSpace(p), "\x00 \t"))
	p = strings.TrimSuffix(p, ":")
	switch strings.ReplaceAll(p, " ", "") {
	case "username", "user":
		return "user"
	case "password", "pass":
		return "pass"
	}
	return ""
}

func clipPrompt(text string, decoded []byte) string {
	s := text
	if decoded != nil && utf8.Valid(decoded) {
		s = string(decoded)
	}
	return untrusted.Text(s, 60)
}
