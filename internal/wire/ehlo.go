package wire

import (
	"slices"
	"strings"
)

// Caps holds EHLO capabilities: upper-cased keyword to parameters.
type Caps map[string]string

// ParseEHLO reads the capabilities from an EHLO reply (every line after the
// first). Keywords are upper-cased; a keyword that is not an RFC 5321
// esmtp-keyword (letters, digits, hyphens) is kept but can never match one.
func ParseEHLO(r *Reply) Caps {
	caps := make(Caps)
	if r == nil || len(r.Lines) < 2 {
		return caps
	}
	for _, l := range r.Lines[1:] {
		kw, params, _ := strings.Cut(strings.TrimSpace(l), " ")
		if kw == "" {
			continue
		}
		kw = strings.ToUpper(kw)
		if mech, ok := strings.CutPrefix(kw, "AUTH="); ok {
			// The pre-RFC 4954 form some servers still send beside (or
			// instead of) AUTH: "AUTH=LOGIN PLAIN".
			caps[legacyAuth] = strings.TrimSpace(mech + " " + params)
			continue
		}
		caps[kw] = strings.TrimSpace(params)
	}
	return caps
}

// CapsOf reads capabilities from "KEYWORD params" lines, as List writes
// them: the inverse of List.
func CapsOf(lines []string) Caps {
	return ParseEHLO(&Reply{Lines: append([]string{""}, lines...)})
}

// Has reports whether the keyword was advertised.
func (c Caps) Has(kw string) bool {
	_, ok := c[strings.ToUpper(kw)]
	return ok
}

// legacyAuth is where ParseEHLO keeps the mechanisms of an "AUTH=" line.
const legacyAuth = "AUTH="

// AuthMechs returns the SASL mechanisms advertised with AUTH, upper-cased,
// including those of the legacy "AUTH=LOGIN PLAIN" form.
func (c Caps) AuthMechs() []string {
	var mechs []string
	for _, kw := range []string{"AUTH", legacyAuth} {
		for _, m := range strings.Fields(strings.ToUpper(c[kw])) {
			if !slices.Contains(mechs, m) {
				mechs = append(mechs, m)
			}
		}
	}
	return mechs
}

// List returns the capabilities as sorted "KEYWORD params" lines.
func (c Caps) List() []string {
	out := make([]string, 0, len(c))
	for k, v := range c {
		switch {
		case k == legacyAuth:
			k += v
		case v != "":
			k += " " + v
		}
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// MaskedKeyword returns a keyword that looks like STARTTLS masked by a
// middlebox: only X's, or X's and one trailing letter ("XXXXXXXA"), of the
// length of "STARTTLS". Cisco-style firewalls rewrite the keyword this way.
func (c Caps) MaskedKeyword() (string, bool) {
	for k := range c {
		if isMasked(k) {
			return k, true
		}
	}
	return "", false
}

func isMasked(k string) bool {
	if len(k) < 4 || len(k) > len("STARTTLS") {
		return false
	}
	body := k
	if last := k[len(k)-1]; last != 'X' && last >= 'A' && last <= 'Z' {
		body = k[:len(k)-1]
	}
	return strings.Trim(body, "X") == "" && len(body) >= 3
}
