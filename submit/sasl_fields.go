package submit

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/emersion/go-sasl"
	"github.com/portwise/portwise/internal/wire"
)

// SASL payloads travel base64-encoded, so no identity can inject an SMTP
// command; but inside the payload each mechanism separates its fields with
// a byte of its own (PLAIN NUL, XOAUTH2 and OAUTHBEARER 0x01, OAUTHBEARER's
// header ","), and a value holding it would rewrite the fields after it:
// the authorisation identity, or the token. Such values are refused before
// anything is sent, by the Auths that know their fields (checkPlain) and,
// for every Auth whatever built it, by checkPayload on the wire.

// checkSASLField refuses v when it holds one of seps. secret values are not
// quoted in the error.
func checkSASLField(mech, what, v, seps string, secret bool) error {
	if !strings.ContainsAny(v, seps) {
		return nil
	}
	shown := ""
	if !secret {
		shown = fmt.Sprintf(" %q", v)
	}
	return fmt.Errorf("submit: %s %s%s holds a control character that separates the fields of the mechanism, so it would forge them; nothing was sent: %w", mech, what, shown, ErrBadAddress)
}

// checkPlain checks the fields of PLAIN (RFC 4616: NUL separates them).
func checkPlain(identity, username, password string) error {
	if err := checkSASLField("PLAIN", "authorisation identity", identity, "\x00", false); err != nil {
		return err
	}
	if err := checkSASLField("PLAIN", "user name", username, "\x00", false); err != nil {
		return err
	}
	return checkSASLField("PLAIN", "password", password, "\x00", true)
}

// checkLogin checks the fields of LOGIN: each is one line of the exchange.
func checkLogin(username, password string) error {
	if err := checkSASLField("LOGIN", "user name", username, "\x00\r\n", false); err != nil {
		return err
	}
	return checkSASLField("LOGIN", "password", password, "\x00\r\n", true)
}

// gs2Name encodes a user name as an RFC 5801 saslname for OAUTHBEARER's GS2
// header, where "," ends the field: "=" becomes "=3D" and "," "=2C".
func gs2Name(s string) string {
	return strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s)
}

// checkPayload refuses a payload of a mechanism whose fields it would
// forge: PLAIN with other than two NULs, LOGIN with NUL, CR or LF,
// XOAUTH2 and OAUTHBEARER whose separators are out of place. Payloads of
// other mechanisms are not looked at. The payload is never quoted.
func checkPayload(mech string, p []byte, initial bool) error {
	bad := func(why string) error {
		return fmt.Errorf("submit: the %s payload %s, so it would forge the mechanism's fields; nothing was sent: %w", strings.ToUpper(mech), why, ErrBadAddress)
	}
	switch strings.ToUpper(mech) {
	case "PLAIN":
		if n := bytes.Count(p, []byte{0}); n != 2 {
			return bad(fmt.Sprintf("holds %d NUL separators instead of 2 (a field holds NUL)", n))
		}
	case "LOGIN":
		if bytes.ContainsAny(p, "\x00\r\n") {
			return bad("holds NUL, CR or LF")
		}
	case "XOAUTH2":
		if !initial {
			if len(p) != 0 {
				return bad("answers the error challenge with something other than an empty line")
			}
			return nil
		}
		// user={user}\x01auth=Bearer {token}\x01\x01
		if !bytes.HasPrefix(p, []byte("user=")) || !bytes.HasSuffix(p, []byte("\x01\x01")) ||
			bytes.Count(p, []byte{1}) != 3 || !bytes.Contains(p, []byte("\x01auth=")) || bytes.ContainsAny(p, "\x00\r\n") {
			return bad("does not have the form user=U^Aauth=Bearer T^A^A with one field each")
		}
	case "OAUTHBEARER":
		if !initial {
			if !bytes.Equal(p, []byte{1}) {
				return bad("answers the error challenge with something other than ^A")
			}
			return nil
		}
		// gs2-header ("n,a=user,") then ^A-separated key=value pairs, ^A^A.
		i := bytes.IndexByte(p, 1)
		if i < 0 || bytes.Count(p[:i], []byte(",")) != 2 || !bytes.HasSuffix(p, []byte("\x01\x01")) || bytes.ContainsAny(p, "\x00\r\n") {
			return bad("does not have the form of an RFC 7628 initial response")
		}
		for _, kv := range bytes.Split(bytes.TrimSuffix(p[i+1:], []byte("\x01\x01")), []byte{1}) {
			k, _, ok := bytes.Cut(kv, []byte("="))
			if !ok || len(k) == 0 || bytes.IndexFunc(k, func(r rune) bool { return r < 'A' || r > 'z' || r > 'Z' && r < 'a' }) >= 0 {
				return bad("has a key=value pair out of place")
			}
		}
	}
	return nil
}

// fieldChecker is a SASL client whose payloads are checked before they go
// out, whoever built it.
type fieldChecker struct {
	sasl.Client
	mech string
}

// rawFieldChecker is a fieldChecker for a client that wants raw
// challenges (LOGIN prompts sent in clear).
type rawFieldChecker struct {
	fieldChecker
	raw wire.RawChallenger
}

// checkFields wraps mech so that no payload can forge the fields of PLAIN,
// LOGIN, XOAUTH2 or OAUTHBEARER, whichever Auth built it (net/smtp's
// PlainAuth, a go-sasl client, a custom one).
func checkFields(mech sasl.Client) sasl.Client {
	fc := fieldChecker{Client: mech}
	if raw, ok := mech.(wire.RawChallenger); ok {
		return &rawFieldChecker{fieldChecker: fc, raw: raw}
	}
	return &fc
}

func (c *fieldChecker) Start() (string, []byte, error) {
	mech, ir, err := c.Client.Start()
	if err != nil {
		return mech, ir, err
	}
	c.mech = mech
	if ir != nil {
		if err := checkPayload(mech, ir, true); err != nil {
			return "", nil, err
		}
	}
	return mech, ir, nil
}

func (c *fieldChecker) Next(challenge []byte) ([]byte, error) {
	resp, err := c.Client.Next(challenge)
	if err == nil {
		err = checkPayload(c.mech, resp, false)
	}
	return resp, err
}

func (c *rawFieldChecker) NextRaw(text string, decoded []byte) ([]byte, error) {
	resp, err := c.raw.NextRaw(text, decoded)
	if err == nil {
		err = checkPayload(c.mech, resp, false)
	}
	return resp, err
}
