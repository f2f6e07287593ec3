// Package headers holds what the adapters share about the header of a
// message they compose or pass on: the check that a caller's value cannot
// start a header of its own (a Bcc, say), and the Message-ID given to a
// message that has none.
package headers

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// ErrInjection is each adapter's ErrBadHeader: a header name or value
// holds CR, LF or NUL, with which it could add a header of its own.
var ErrInjection = errors.New("header would inject another header")

// CheckValue refuses CR, LF and NUL in each of vals, the value of field:
// portwise turns a bare CR into a line break, as it turns every line
// ending into CRLF, so any of them could start a header. The error is
// prefixed with pkg, the adapter's name, and wraps ErrInjection.
func CheckValue(pkg, field string, vals ...string) error {
	for _, v := range vals {
		if strings.ContainsAny(v, "\r\n\x00") {
			return refused(pkg, field, v)
		}
	}
	return nil
}

// CheckFolded is CheckValue for values that may be folded already: a CRLF
// followed by spaces or tabs and then text (a folded line, which adds no
// header) is allowed.
func CheckFolded(pkg, field string, vals ...string) error {
	for _, v := range vals {
		for i := 0; i < len(v); i++ {
			switch v[i] {
			case '\r':
				if j := foldEnd(v, i); j > 0 {
					i = j - 1
					continue
				}
			case '\n', 0:
			default:
				continue
			}
			return refused(pkg, field, v)
		}
	}
	return nil
}

// CheckName refuses a header name that is empty or holds anything but
// printable ASCII other than space and colon (RFC 5322's ftext).
func CheckName(pkg, name string) error {
	if name == "" || strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r > '~' || r == ':' }) {
		return fmt.Errorf("%s: header name %q: %w", pkg, name, ErrInjection)
	}
	return nil
}

func refused(pkg, field, v string) error {
	return fmt.Errorf("%s: %s %q holds CR, LF or NUL: %w", pkg, field, v, ErrInjection)
}

// foldEnd returns the index just past the CRLF and the whitespace of a
// folded line starting at v[i], or 0 when v[i:] is not one: a line of
// whitespace alone could end the header for a lenient reader.
func foldEnd(v string, i int) int {
	if !strings.HasPrefix(v[i:], "\r\n") {
		return 0
	}
	j := i + 2
	for j < len(v) && (v[j] == ' ' || v[j] == '\t') {
		j++
	}
	if j == i+2 || j == len(v) || v[j] == '\r' || v[j] == '\n' {
		return 0
	}
	return j
}

// MessageID returns a new Message-ID at the domain of the address from
// (localhost when it has none): 128 random bits in hex.
func MessageID(from string) (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	domain := "localhost"
	if i := strings.LastIndexByte(from, '@'); i >= 0 && i+1 < len(from) {
		domain = from[i+1:]
	}
	return "<" + hex.EncodeToString(b) + "@" + domain + ">", nil
}
