package submit

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/portwise/portwise/internal/plan"
	"github.com/portwise/portwise/internal/wire"
	"github.com/portwise/portwise/tlsmode"
)

// ParseURL reads a Dialer and the host to dial from one string, so that an
// application can take its whole mail configuration from one environment
// variable:
//
//	smtps://user:pass@host[:port]       implicit TLS; 465 without a port
//	smtp://user:pass@host[:port]        STARTTLS; 587 without a port
//	submission://user:pass@host[:port]  the default policy (587, 465, 2525);
//	                                    with a port, that port, its mode detected
//
// The user and password are percent-decoded ("p%40ss" is "p@ss"). The
// query may hold:
//
//	auth=plain|login|xoauth2  the mechanism; without it PLAIN, else LOGIN
//	timeout=30s               Dialer.Timeout (a Go duration)
//	localname=NAME            Dialer.LocalName, the EHLO name
//	tls=starttls|implicit     the mode, overriding the scheme's
//	                          (plaintext is accepted only without a user,
//	                          for a loopback relay)
//
// Without a user the Dialer has no Auth (an IP-authorised relay). A user
// without a password, and auth=xoauth2, leave a *PendingAuth in Dialer.Auth
// for the program to replace with the secret it holds elsewhere (an OAuth2
// token source); dialling with it in place fails before connecting.
//
// The returned host has no port: the port is in Dialer.Candidates. Errors
// wrap ErrBadURL, name the bad field, and show the URL only as RedactURL
// does. The Dialer has no String method; print RedactURL(raw) instead.
func ParseURL(raw string) (*Dialer, string, error) {
	red := RedactURL(raw)
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("submit: %w %s: %s: %s", ErrBadURL, strconv.QuoteToASCII(red), field, fmt.Sprintf(format, args...))
	}
	p, err := splitURL(raw)
	if err != nil {
		return nil, "", bad(p.failed, "%s", err)
	}
	u, err := url.Parse(p.scheme + "://" + p.hostport + p.tail)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			return nil, "", bad("syntax", "%v", ue.Err)
		}
		return nil, "", bad("syntax", "not a URL")
	}
	if p.hasUser {
		u.User = url.UserPassword(p.user, p.pass)
		if !p.hasPass {
			u.User = url.User(p.user)
		}
	}
	d := &Dialer{}
	var mode tlsmode.Mode
	switch strings.ToLower(u.Scheme) {
	case "smtps":
		mode = tlsmode.Implicit
	case "smtp":
		mode = tlsmode.StartTLS
	case "submission":
	case "":
		return nil, "", bad("scheme", "missing; start with smtps://, smtp:// or submission://")
	default:
		return nil, "", bad("scheme", "%q is not one of smtps, smtp, submission", u.Scheme)
	}
	if u.Opaque != "" {
		return nil, "", bad("host", "missing; write %s://host", u.Scheme)
	}
	host := u.Hostname()
	if host == "" {
		return nil, "", bad("host", "missing")
	}
	if err := plan.ValidHost(host); err != nil {
		return nil, "", bad("host", "%s is not a host name", strconv.QuoteToASCII(host))
	}
	port := p.port
	if u.Path != "" && u.Path != "/" {
		return nil, "", bad("path", "a submission URL has no path")
	}
	if u.Fragment != "" {
		return nil, "", bad("fragment", "a submission URL has no fragment")
	}

	mech, ferr := parseQuery(d, u.RawQuery, &mode)
	if ferr != nil {
		return nil, "", bad(ferr.field, "%s", ferr.msg)
	}
	if port == 0 {
		switch mode {
		case tlsmode.Implicit:
			port = 465
		case tlsmode.StartTLS:
			port = 587
		case tlsmode.Plaintext:
			port = 25
		} // submission:// without tls= keeps the default policy
	}
	if port != 0 {
		// submission://host:port without tls= states no mode: the Dialer
		// detects it.
		d.Candidates = []tlsmode.Candidate{{Port: port, Mode: mode}}
	}
	if d.Auth, ferr = urlAuth(u, mech, mode, host); ferr != nil {
		return nil, "", bad(ferr.field, "%s", ferr.msg)
	}
	return d, host, nil
}

// RedactURL returns raw with its password replaced by "xxxxx", for logs and
// error messages. The user information is everything between "://" and
// the last "@", so a password holding "@", "/", "?" or "#" cannot leak
// into what is shown: when it cannot be split into user and password,
// all of it is replaced.
func RedactURL(raw string) string {
	raw = strings.TrimSpace(raw)
	scheme, rest, hasScheme := strings.Cut(raw, "://")
	if !hasScheme {
		scheme, rest = "", raw
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		// No user information; but "user:password" without "@host" reads
		// as a host and a port: a port that is not one is not shown.
		end := strings.IndexAny(rest, "/?#")
		if end < 0 {
			end = len(rest)
		}
		if i := strings.LastIndex(rest[:end], ":"); i >= 0 && !strings.HasSuffix(rest[:end], "]") && !validPort(rest[i+1:end]) {
			rest = rest[:i+1] + "xxxxx" + rest[end:]
		}
		if hasScheme {
			return scheme + "://" + rest
		}
		return rest
	}
	userinfo, host := rest[:at], rest[at+1:]
	shown := "xxxxx"
	if user, _, hasPass := strings.Cut(userinfo, ":"); hasScheme && !strings.ContainsAny(userinfo, "@/?#") && user != "" {
		shown = user
		if hasPass {
			shown += ":xxxxx"
		}
	}
	if hasScheme {
		return scheme + "://" + shown + "@" + host
	}
	return shown + "@" + host
}

// fieldError is what is wrong with one field of a URL.
type fieldError struct{ field, msg string }

func badField(field, format string, args ...any) *fieldError {
	return &fieldError{field, fmt.Sprintf(format, args...)}
}

// parseQuery reads the query parameters into d and mode, and returns the
// mechanism asked for.
func parseQuery(d *Dialer, raw string, mode *tlsmode.Mode) (mech string, ferr *fieldError) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return "", badField("query", "cannot be parsed")
	}
	for key, vals := range q {
		if len(vals) != 1 {
			return "", badField(key, "given %d times", len(vals))
		}
		v := vals[0]
		switch key {
		case "auth":
			mech = strings.ToLower(v)
			if mech != "plain" && mech != "login" && mech != "xoauth2" {
				return "", badField("auth", "%q is not one of plain, login, xoauth2", v)
			}
		case "timeout":
			t, err := time.ParseDuration(v)
			if err != nil || t <= 0 {
				return "", badField("timeout", "%q is not a positive duration such as 30s", v)
			}
			d.Timeout = t
		case "localname":
			if v == "" || strings.ContainsAny(v, " \t") || wire.CheckLine(v) != nil {
				return "", badField("localname", "%q is not a host name", v)
			}
			d.LocalName = v
		case "tls":
			m, err := tlsmode.Parse(v)
			if err != nil {
				return "", badField("tls", "%q is not one of starttls, implicit", v)
			}
			*mode = m
		default:
			return "", badField(key, "unknown parameter; want auth, timeout, localname or tls")
		}
	}
	return mech, nil
}

// urlAuth is the Auth the URL's user information and mechanism ask for.
func urlAuth(u *url.URL, mech string, mode tlsmode.Mode, host string) (Auth, *fieldError) {
	if u.User == nil {
		if mech != "" {
			return nil, badField("auth", "auth=%s needs a user: write %s://USER:PASSWORD@%s", mech, u.Scheme, host)
		}
		return nil, nil
	}
	user := u.User.Username()
	if user == "" {
		return nil, badField("user", "empty user name before \"@\"")
	}
	if mode == tlsmode.Plaintext {
		return nil, badField("tls", "plaintext cannot carry credentials; remove the user or use starttls or implicit")
	}
	pass, hasPass := u.User.Password()
	switch {
	case mech == "xoauth2":
		return &PendingAuth{Username: user, Mechanism: "XOAUTH2"}, nil
	case !hasPass:
		return &PendingAuth{Username: user, Mechanism: strings.ToUpper(mech)}, nil
	case mech == "plain":
		return PlainAuth("", user, pass), nil
	case mech == "login":
		return LoginAuth(user, pass), nil
	}
	return PasswordAuth(user, pass), nil
}

// urlParts are the pieces of a submission URL, split without quoting the
// user information anywhere.
type urlParts struct {
	scheme, hostport, tail string
	port                   int
	hasUser, hasPass       bool
	user, pass             string
	failed                 string // the field at fault when splitting failed
}

// splitURL splits raw into scheme, user information (up to the last
// "@"), host and port, and what follows. Its errors never hold a
// character of the user information.
func splitURL(raw string) (p urlParts, err error) {
	raw = strings.TrimSpace(raw)
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok || scheme == "" {
		p.failed = "scheme"
		if strings.Contains(raw, "@") {
			return p, errors.New("missing; write smtps://USER:PASSWORD@HOST (or smtp://, submission://)")
		}
		return p, errors.New("missing; start with smtps://, smtp:// or submission://")
	}
	p.scheme = scheme
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		userinfo := rest[:at]
		rest = rest[at+1:]
		p.failed = "userinfo"
		if strings.ContainsAny(userinfo, "@/?#") {
			return p, errors.New("cannot be read; percent-encode the characters @ : / ? # in the user and password (%40 for @, %3A for :, %2F for /, %3F for ?, %23 for #)")
		}
		user, pass, hasPass := strings.Cut(userinfo, ":")
		if p.user, err = url.PathUnescape(user); err != nil {
			return p, errors.New("the user has a malformed %-escape")
		}
		if p.pass, err = url.PathUnescape(pass); err != nil {
			return p, errors.New("the password has a malformed %-escape; percent-encode a literal % as %25")
		}
		p.hasUser, p.hasPass = true, hasPass
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	p.hostport, p.tail = rest[:end], rest[end:]
	host, port, hasPort := p.hostport, "", false
	if i := strings.LastIndex(p.hostport, ":"); i >= 0 && !strings.HasSuffix(p.hostport, "]") {
		host, port, hasPort = p.hostport[:i], p.hostport[i+1:], true
	}
	if hasPort {
		if !validPort(port) {
			// Not shown: without "@host", user:password reads as a host
			// and a port.
			p.failed = "port"
			if p.hasUser {
				return p, errors.New("want a number from 1 to 65535")
			}
			return p, errors.New("want a number from 1 to 65535; a user and password go before the host: smtps://USER:PASSWORD@HOST")
		}
		n, _ := strconv.Atoi(port)
		p.port = n
		p.hostport = host + ":" + strconv.Itoa(n)
	}
	return p, nil
}

// validPort reports whether s is a port number, 1 to 65535, in digits.
func validPort(s string) bool {
	if s == "" || len(s) > 5 || strings.Trim(s, "0123456789") != "" {
		return false
	}
	n, _ := strconv.Atoi(s)
	return n >= 1 && n <= 65535
}

// PendingAuth stands in Dialer.Auth for a credential a URL named but
// could not carry: a user without a password, or auth=xoauth2, whose token
// comes from an oauth2.TokenSource. Replace it before dialling, e.g.
//
//	if p, ok := d.Auth.(*submit.PendingAuth); ok {
//		d.Auth = submit.XOAuth2(p.Username, tokenSource)
//	}
//
// Dialling with a PendingAuth in place fails before any connection is made.
type PendingAuth struct {
	Username  string
	Mechanism string // "XOAUTH2", "PLAIN", "LOGIN" or "" (unspecified)
}

func (p *PendingAuth) err() error {
	if p.Mechanism == "XOAUTH2" {
		return fmt.Errorf("submit: xoauth2 in a URL needs a token source: use submit.XOAuth2(%q, tokenSource) as Dialer.Auth", p.Username)
	}
	return fmt.Errorf("submit: the URL names user %q without a password: percent-encode it into the URL (user:PASSWORD@host) or set Dialer.Auth", p.Username)
}

// Start fails: a PendingAuth holds no secret.
func (p *PendingAuth) Start(context.Context, *AuthInfo) (sasl.Client, error) {
	return nil, p.err()
}

// prepare stops the Dial before it spends a connection.
func (p *PendingAuth) prepare(context.Context) error { return p.err() }
