package submittest

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Mechanism names the server knows besides go-sasl's PLAIN and LOGIN.
const (
	mechXOAuth2     = "XOAUTH2"
	mechOAuthBearer = "OAUTHBEARER"
	mechCRAMMD5     = "CRAM-MD5"
)

// GoogleScope is the scope the XOAUTH2 error challenge names, as Gmail's
// does.
const GoogleScope = "https://mail.google.com/"

// authMechanisms is what the listener advertises (and accepts) after TLS.
func (o Options) authMechanisms() []string {
	if o.AuthMechanisms != nil {
		out := make([]string, len(o.AuthMechanisms))
		for i, m := range o.AuthMechanisms {
			out[i] = strings.ToUpper(m)
		}
		return out
	}
	mechs := []string{sasl.Plain, sasl.Login}
	if o.Tokens != nil {
		mechs = append(mechs, mechXOAuth2, mechOAuthBearer)
	}
	return mechs
}

// extraAuth returns the server side of the mechanisms go-smtp's sessions
// do not have out of the box, or nil. accept records a successful login.
func (o Options) extraAuth(mech, hostname string, accept func(username string)) sasl.Server {
	switch mech {
	case mechXOAuth2:
		return &xoauth2Server{tokens: o.Tokens, accept: accept}
	case mechOAuthBearer:
		return &oauthBearerServer{inner: sasl.NewOAuthBearerServer(func(opts sasl.OAuthBearerOptions) *sasl.OAuthBearerError {
			if want, ok := o.Tokens[opts.Username]; ok && opts.Username != "" && want == opts.Token {
				accept(opts.Username)
				return nil
			}
			return &sasl.OAuthBearerError{Status: "invalid_token", Schemes: "bearer", Scope: GoogleScope}
		})}
	case mechCRAMMD5:
		return &cramMD5Server{hostname: hostname, accounts: o.Accounts, accept: accept}
	}
	return nil
}

// errBadCredentials is the final reply to a rejected token, worded as
// Gmail words it.
var errBadCredentials = &smtp.SMTPError{
	Code:         535,
	EnhancedCode: smtp.EnhancedCode{5, 7, 8},
	Message:      "Username and Password not accepted",
}

// xoauth2Server is Google's XOAUTH2: "user=U\x01auth=Bearer T\x01\x01"; a
// wrong token gets a 334 carrying base64 JSON, then 535 whatever the
// client answers.
type xoauth2Server struct {
	tokens map[string]string
	accept func(string)
	failed bool
}

func (x *xoauth2Server) Next(response []byte) ([]byte, bool, error) {
	if x.failed {
		return nil, true, errBadCredentials
	}
	if response == nil {
		return []byte{}, false, nil // no initial response: ask for it
	}
	var user, token string
	for _, f := range strings.Split(string(response), "\x01") {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "user":
			user = v
		case "auth":
			if len(v) > 7 && strings.EqualFold(v[:7], "Bearer ") {
				token = v[7:]
			}
		}
	}
	if !strings.HasSuffix(string(response), "\x01\x01") || user == "" || token == "" {
		return nil, true, &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 5, 2}, Message: "Malformed XOAUTH2 response"}
	}
	if want, ok := x.tokens[user]; ok && want == token {
		x.accept(user)
		return nil, true, nil
	}
	x.failed = true
	return []byte(`{"status":"401","schemes":"Bearer","scope":"` + GoogleScope + `"}`), false, nil
}

// oauthBearerServer turns go-sasl's OAUTHBEARER server's failure into the
// 535 a mail server sends (go-smtp would answer 454 to a plain error), and
// guards against its dummy-response check indexing an empty response.
type oauthBearerServer struct {
	inner  sasl.Server
	failed bool
}

func (b *oauthBearerServer) Next(response []byte) ([]byte, bool, error) {
	if b.failed {
		return nil, true, errBadCredentials
	}
	sent := response != nil
	ch, done, err := b.inner.Next(response)
	switch {
	case err != nil:
		return nil, true, errBadCredentials
	case !done && sent:
		b.failed = true // ch is the JSON error; the client answers 0x01
	}
	return ch, done, nil
}

// cramMD5Server is RFC 2195's CRAM-MD5: a challenge, then "user hexdigest"
// where the digest is HMAC-MD5 of the challenge keyed with the password.
type cramMD5Server struct {
	hostname  string
	accounts  map[string]string
	accept    func(string)
	challenge []byte
}

func (c *cramMD5Server) Next(response []byte) ([]byte, bool, error) {
	if c.challenge == nil {
		var n [8]byte
		rand.Read(n[:])
		c.challenge = fmt.Appendf(nil, "<%s@%s>", hex.EncodeToString(n[:]), c.hostname)
		return c.challenge, false, nil
	}
	user, digest, ok := strings.Cut(string(response), " ")
	pass, known := c.accounts[user]
	if !ok || !known {
		return nil, true, smtp.ErrAuthFailed
	}
	m := hmac.New(md5.New, []byte(pass))
	m.Write(c.challenge)
	if !hmac.Equal([]byte(hex.EncodeToString(m.Sum(nil))), []byte(digest)) {
		return nil, true, smtp.ErrAuthFailed
	}
	c.accept(user)
	return nil, true, nil
}

// clearLoginServer is LOGIN with prompts in clear ("334 Username:"), which
// go-smtp cannot send since it base64-encodes every challenge. It runs the
// whole exchange on the connection inside go-smtp's first call: the client
// waits for each prompt, so go-smtp's reader holds nothing unread.
type clearLoginServer struct {
	c       *smtp.Conn
	prompts [2]string
	check   func(username, password string) error
}

func (l *clearLoginServer) Next(response []byte) ([]byte, bool, error) {
	username := string(response)
	if len(response) == 0 {
		var err error
		if username, err = l.ask(l.prompts[0]); err != nil {
			return nil, true, err
		}
	}
	password, err := l.ask(l.prompts[1])
	if err != nil {
		return nil, true, err
	}
	return nil, true, l.check(username, password)
}

func (l *clearLoginServer) ask(prompt string) (string, error) {
	nc := l.c.Conn()
	if _, err := io.WriteString(nc, "334 "+prompt+"\r\n"); err != nil {
		return "", err
	}
	line, err := readRawLine(nc)
	if err != nil {
		return "", err
	}
	if line == "*" {
		return "", &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 0, 0}, Message: "Negotiation cancelled"}
	}
	b, err := base64.StdEncoding.DecodeString(line)
	if err != nil {
		return "", &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 5, 2}, Message: "Invalid base64 data"}
	}
	return string(b), nil
}

// readRawLine reads one line byte by byte, so nothing after it is taken
// from go-smtp's reader, and at most 1000 bytes.
func readRawLine(r io.Reader) (string, error) {
	var line []byte
	var b [1]byte
	for len(line) < 1000 {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return "", err
		}
		if b[0] == '\n' {
			return string(bytes.TrimSuffix(line, []byte("\r"))), nil
		}
		line = append(line, b[0])
	}
	return "", errors.New("submittest: AUTH response line too long")
}

// forcedReply ends every exchange of its mechanism with reply, whatever the
// credential check said.
type forcedReply struct {
	sasl.Server
	reply *smtp.SMTPError
}

func (f *forcedReply) Next(response []byte) ([]byte, bool, error) {
	ch, done, err := f.Server.Next(response)
	if done || err != nil {
		return nil, true, f.reply
	}
	return ch, false, nil
}
