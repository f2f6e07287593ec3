package tlsmode

import (
	"fmt"
	"strings"
)

// Mode is how a submission connection is secured.
type Mode uint8

const (
	// StartTLS connects in clear and upgrades with the STARTTLS command before
	// anything else is sent (RFC 3207, RFC 6409). Ports 587 and 2525.
	StartTLS Mode = iota + 1
	// Implicit starts TLS with the first byte (RFC 8314 "submissions", port 465).
	Implicit
	// Plaintext uses no TLS at all. It exists only for IP-authorised relays on
	// loopback; authentication is always refused on it.
	Plaintext
)

// String returns "starttls", "implicit" or "plaintext".
func (m Mode) String() string {
	switch m {
	case StartTLS:
		return "starttls"
	case Implicit:
		return "implicit"
	case Plaintext:
		return "plaintext"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// Secure reports whether the mode carries TLS (StartTLS or Implicit).
func (m Mode) Secure() bool { return m == StartTLS || m == Implicit }

// MarshalText encodes the mode as its String form. The zero Mode and unknown
// values are an error, so a configuration file never records a mode that
// cannot be read back.
func (m Mode) MarshalText() ([]byte, error) {
	switch m {
	case StartTLS, Implicit, Plaintext:
		return []byte(m.String()), nil
	}
	return nil, fmt.Errorf("tlsmode: cannot marshal invalid mode %d", uint8(m))
}

// UnmarshalText decodes a mode with the same rules as Parse.
func (m *Mode) UnmarshalText(b []byte) error {
	v, err := Parse(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// Parse reads a mode from a configuration string. It accepts, ignoring case and
// surrounding spaces, "starttls", "implicit" and "plaintext", and the aliases
// "tls" and "ssl" for Implicit.
func Parse(s string) (Mode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "starttls":
		return StartTLS, nil
	case "implicit", "tls", "ssl":
		return Implicit, nil
	case "plaintext":
		return Plaintext, nil
	}
	return 0, fmt.Errorf("tlsmode: unknown mode %q: want one of starttls, implicit (or tls, ssl), plaintext", s)
}
