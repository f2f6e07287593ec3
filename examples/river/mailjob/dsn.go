package mailjob

import (
	"errors"
	"net/url"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// masked stands for a password in what a person reads.
const masked = "xxxxx"

// RedactDSN returns dsn with every password masked, for errors, logs and
// status output. It knows the forms PostgreSQL's clients (pgx, libpq)
// read:
//
//	postgres://user:PASSWORD@host/db              the URL's user information
//	postgres://host/db?password=PASSWORD          a query parameter (and sslpassword)
//	host=h user=u password=PASSWORD               the keyword/value form
//	password='PASS WORD' or password=PASS\ WORD   quoted or escaped, spaces and all
//
// What is not a URL or keywords (sqlite:PATH) is returned as it is. A DSN
// it cannot read is masked more than needed rather than less: a password
// with an unencoded @ masks the host too, an unterminated quote masks to
// the end.
func RedactDSN(dsn string) string {
	r, _ := redactDSN(dsn)
	return r
}

// dsnSecrets returns the passwords of dsn, as written and as decoded, so
// that they can be masked wherever a library quoted them in an error.
func dsnSecrets(dsn string) []string {
	_, secrets := redactDSN(dsn)
	return secrets
}

func redactDSN(dsn string) (string, []string) {
	if scheme, rest, ok := strings.Cut(dsn, "://"); ok && isScheme(scheme) {
		return redactURL(scheme, rest)
	}
	if strings.Contains(dsn, "=") {
		return redactKeywords(dsn)
	}
	return dsn, nil
}

func isScheme(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '+' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// isPasswordKey reports a parameter that holds a secret: pgx and libpq
// read password and sslpassword (the client key's passphrase).
func isPasswordKey(k string) bool {
	k = strings.ToLower(k)
	return k == "password" || k == "sslpassword"
}

// redactURL masks the password of the user information (everything
// between the first ':' and the last '@', so that an unencoded '@' in the
// password cannot leave part of it shown) and the values of password
// query parameters.
func redactURL(scheme, rest string) (string, []string) {
	var secrets []string
	var b strings.Builder
	b.WriteString(scheme + "://")
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		user, pass, hasPass := strings.Cut(rest[:at], ":")
		b.WriteString(user)
		if hasPass {
			b.WriteString(":" + masked)
			secrets = append(secrets, decodings(pass)...)
		}
		b.WriteString("@")
		rest = rest[at+1:]
	}
	hostPath, query, hasQuery := strings.Cut(rest, "?")
	b.WriteString(hostPath)
	if !hasQuery {
		return b.String(), secrets
	}
	query, fragment, hasFragment := strings.Cut(query, "#")
	params := strings.Split(query, "&")
	for i, p := range params {
		k, v, hasValue := strings.Cut(p, "=")
		if dk, err := url.QueryUnescape(k); err == nil {
			k = dk
		}
		if hasValue && isPasswordKey(k) {
			secrets = append(secrets, decodings(v)...)
			params[i] = p[:len(p)-len(v)] + masked
		}
	}
	b.WriteString("?" + strings.Join(params, "&"))
	if hasFragment {
		b.WriteString("#" + fragment)
	}
	return b.String(), secrets
}

// decodings are s and its percent-decodings, each of which a library may
// quote.
func decodings(s string) []string {
	out := []string{s}
	if d, err := url.PathUnescape(s); err == nil && d != s {
		out = append(out, d)
	}
	if d, err := url.QueryUnescape(s); err == nil && d != s {
		out = append(out, d)
	}
	return out
}

// redactKeywords masks password values in the keyword/value form, read as
// libpq reads it: "keyword = value" pairs separated by spaces, a value
// either single-quoted or bare up to the next space, with a backslash
// escaping the next character in both.
func redactKeywords(dsn string) (string, []string) {
	var (
		b       strings.Builder
		secrets []string
		i       int
	)
	for i < len(dsn) {
		// Spaces between pairs, kept.
		j := i
		for j < len(dsn) && isSpace(dsn[j]) {
			j++
		}
		b.WriteString(dsn[i:j])
		i = j
		if i == len(dsn) {
			break
		}
		// The keyword, up to '=' or a space.
		for j < len(dsn) && dsn[j] != '=' && !isSpace(dsn[j]) {
			j++
		}
		key := dsn[i:j]
		for j < len(dsn) && isSpace(dsn[j]) {
			j++
		}
		if j == len(dsn) || dsn[j] != '=' {
			// Not a pair: a word pgx will refuse. Keep it; it holds no
			// value of a password.
			b.WriteString(dsn[i:j])
			i = j
			continue
		}
		j++ // '='
		for j < len(dsn) && isSpace(dsn[j]) {
			j++
		}
		b.WriteString(dsn[i:j])
		i = j
		end, value := scanValue(dsn, i)
		if isPasswordKey(key) {
			b.WriteString(masked)
			secrets = append(secrets, value, dsn[i:end])
		} else {
			b.WriteString(dsn[i:end])
		}
		i = end
	}
	return b.String(), secrets
}

// scanValue reads the value that starts at dsn[i]: its end and its
// unescaped text. An unterminated quote runs to the end.
func scanValue(dsn string, i int) (int, string) {
	var v strings.Builder
	quoted := i < len(dsn) && dsn[i] == '\''
	if quoted {
		i++
	}
	for i < len(dsn) {
		c := dsn[i]
		switch {
		case c == '\\' && i+1 < len(dsn):
			v.WriteByte(dsn[i+1])
			i += 2
			continue
		case quoted && c == '\'':
			return i + 1, v.String()
		case !quoted && isSpace(c):
			return i, v.String()
		}
		v.WriteByte(c)
		i++
	}
	return i, v.String()
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// redactedError is an error whose text has the DSN's passwords masked; it
// unwraps to the original, so errors.Is and errors.As still see through.
type redactedError struct {
	msg string
	err error
}

// Error is the masked text.
func (e *redactedError) Error() string { return e.msg }

// Unwrap returns the original error.
func (e *redactedError) Unwrap() error { return e.err }

// redactErr masks the passwords of dsn wherever err's text quotes them.
// pgx masks the connection string it could not parse on a best-effort basis
// (its words): a quoted password with an escaped quote comes back half
// shown, and half a password is no longer found by its value. So the
// quotation of a *pgconn.ParseConfigError is replaced by RedactDSN's, and
// then every password of dsn still in the text is masked.
func redactErr(err error, dsn string) error {
	if err == nil {
		return nil
	}
	secrets := dsnSecrets(dsn)
	msg := err.Error()
	var pce *pgconn.ParseConfigError
	if errors.As(err, &pce) {
		inner := pce.Error()
		if i := strings.LastIndex(inner, "`: "); i >= 0 {
			msg = strings.Replace(msg, inner, "cannot parse `"+RedactDSN(pce.ConnString)+"`: "+inner[i+len("`: "):], 1)
		}
	}
	msg = maskAll(msg, secrets)
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}

// maskAll replaces every secret in s, the longest first so that one
// password containing another is masked whole.
func maskAll(s string, secrets []string) string {
	secrets = append([]string(nil), secrets...)
	sort.Slice(secrets, func(i, j int) bool { return len(secrets[i]) > len(secrets[j]) })
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, masked)
		}
	}
	return s
}
