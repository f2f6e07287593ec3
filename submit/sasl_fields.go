package submit

import (
	"fmt"
	"strings"
)

// SASL payloads travel base64-encoded, so no identity can inject an SMTP
// command; but inside the payload each mechanism separates its fields with
// a byte of its own (PLAIN NUL, XOAUTH2 and OAUTHBEARER 0x01), and an
// identity holding it would rewrite the fields after it: the authorisation
// identity, or the token. Such values are refused before anything is sent.

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

// gs2Name encodes a user name as an RFC 5801 saslname for OAUTHBEARER's GS2
// header, where "," ends the field: "=" becomes "=3D" and "," "=2C".
func gs2Name(s string) string {
	return strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s)
}
