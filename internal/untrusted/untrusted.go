// Package untrusted makes text that came from a peer safe to show a person.
//
// A server's reply, a certificate's names, an autoconfig document, an SRV
// target or a token endpoint's error body is written by whoever is on the
// other end. Printed raw, a carriage return or an ANSI escape rewrites the
// terminal line ("sent OK"), ESC[8m hides what follows, a bidi override
// reorders it, and 300 certificate names make a 21 KB error. Every string
// from a peer goes through Text (or Names, or Error) once, at the point
// where it becomes part of an error message, a log record, a transcript or
// the command's text output. Programs that need the raw bytes read them
// from typed fields, never from messages.
package untrusted

import (
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Bounds of what a peer's text may take up in a message.
const (
	// MaxText bounds one reply or message from a peer, in bytes after
	// escaping: long enough for a provider's explanation, short enough
	// for one line of an error.
	MaxText = 300
	// MaxName bounds one name: a certificate name, a host, an issuer.
	MaxName = 100
	// MaxNames is how many names of a list are shown before "and N more".
	MaxNames = 5
	// MaxURL bounds the help URL that Text keeps whole.
	MaxURL = 200
)

// Ellipsis marks text that was clipped.
const Ellipsis = "…"

// Text returns s with every rune that could drive or deceive a terminal
// escaped visibly, clipped to at most max bytes (plus a help URL kept
// whole, see below) without splitting a UTF-8 character or an escape.
//
// Escaped are the C0 controls (\t, \n, \r, \x1b ...), DEL (\x7f), the C1
// controls as characters (\u0085) or as bytes that are not UTF-8 (\x9b),
// any other byte that is not UTF-8, and the bidirectional formatting
// characters (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069) and
// line and paragraph separators (U+2028, U+2029). Everything else,
// including non-ASCII letters, is kept.
//
// When s carries an http or https URL that the clip would cut, the URL is
// kept whole after the clipped text ("… https://..."), up to MaxURL
// bytes: providers put the page that explains a refusal there.
func Text(s string, max int) string {
	if max < 0 {
		max = 0
	}
	if len(s) <= max && clean(s) {
		return s // the common case: no allocation
	}
	out, cut := escape(s, max)
	if !cut {
		return out
	}
	if max < len(Ellipsis) {
		return ""
	}
	url := findURL(s)
	if url == "" {
		return out + Ellipsis
	}
	u, _ := escape(url, MaxURL)
	if strings.Contains(out, u) {
		return out + Ellipsis
	}
	return out + Ellipsis + " " + u
}

// Reply is Text bounded by MaxText, for a server's reply or message.
func Reply(s string) string { return Text(s, MaxText) }

// Name is Text bounded by MaxName, for one name.
func Name(s string) string { return Text(s, MaxName) }

// Names joins at most MaxNames names, each made safe with Name, and counts
// the rest: "a.example, b.example and 297 more names". noun is the plural
// used in the count ("names", "entries"). An empty list gives "".
func Names(names []string, noun string) string {
	var b strings.Builder
	for i, n := range names {
		if i == MaxNames {
			b.WriteString(" and " + strconv.Itoa(len(names)-MaxNames) + " more " + noun)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(Name(n))
	}
	return b.String()
}

// Error wraps err, whose message may hold a peer's text (an x509 error
// quoting certificate names, an oauth2 error quoting the token endpoint's
// body), so that its message is made safe with Reply; errors.Is and
// errors.As still see err. A nil err gives nil.
func Error(err error) error {
	if err == nil {
		return nil
	}
	var safe *safeError
	if errors.As(err, &safe) && safe == err {
		return err
	}
	return &safeError{err}
}

type safeError struct{ err error }

func (e *safeError) Error() string { return Reply(e.err.Error()) }
func (e *safeError) Unwrap() error { return e.err }

// Escaped reports whether r is a rune that Text escapes.
func Escaped(r rune) bool {
	switch {
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f:
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f, r == 0x2028, r == 0x2029:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

// clean reports whether s is valid UTF-8 without a rune to escape.
func clean(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 || Escaped(r) {
			return false
		}
		i += n
	}
	return true
}

// escape escapes s into at most max bytes; cut reports that s did not
// fit, in which case the result leaves room for Ellipsis within max.
func escape(s string, max int) (out string, cut bool) {
	if out, fits := build(s, max); fits {
		return out, false
	}
	out, _ = build(s, max-len(Ellipsis))
	return out, true
}

// build escapes s piece by piece while the pieces fit in limit bytes.
func build(s string, limit int) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		piece := s[i : i+n]
		switch {
		case r == utf8.RuneError && n == 1:
			piece = `\x` + hex2(s[i])
		case Escaped(r):
			piece = escapeRune(r)
		}
		if b.Len()+len(piece) > limit {
			return b.String(), false
		}
		b.WriteString(piece)
		i += n
	}
	return b.String(), true
}

func escapeRune(r rune) string {
	switch r {
	case '\t':
		return `\t`
	case '\n':
		return `\n`
	case '\r':
		return `\r`
	}
	if r < 0x80 {
		return `\x` + hex2(byte(r))
	}
	h := strconv.FormatInt(int64(r), 16)
	return `\u` + strings.Repeat("0", 4-len(h)) + h
}

func hex2(c byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[c>>4], digits[c&0xf]})
}

// findURL returns the first http or https URL in s: up to the next space
// or control, without trailing punctuation.
func findURL(s string) string {
	i := strings.Index(s, "https://")
	if j := strings.Index(s, "http://"); j >= 0 && (i < 0 || j < i) {
		i = j
	}
	if i < 0 {
		return ""
	}
	u := s[i:]
	if end := strings.IndexFunc(u, func(r rune) bool { return r <= ' ' || Escaped(r) || r == '"' || r == '<' || r == '>' }); end >= 0 {
		u = u[:end]
	}
	return strings.TrimRight(u, ".,;:)]}'")
}
