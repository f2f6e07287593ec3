// Package diag is portwise's one diagnosis of a failed submission step.
// submit's errors, probe's findings and the command's messages are all
// worded from the Kind that Classify finds, so the library, the probe and
// the CLI cannot drift apart in what they call a failure.
//
// The sentinels live here so that Classify can recognise them; submit
// re-exports them under the same names, as package os re-exports io/fs's.
package diag

import (
	"errors"
	"fmt"
	"os"

	"github.com/portwise/portwise/internal/wire"
	"github.com/portwise/portwise/tlsmode"
)

// Sentinels of the dial path, re-exported by submit; see its docs.
var (
	ErrSTARTTLSStripped     = errors.New("STARTTLS not offered")
	ErrResponseInjection    = errors.New("response injection")
	ErrPlaintextAuth        = errors.New("refusing to authenticate without verified TLS")
	ErrAuthFailed           = errors.New("authentication failed")
	ErrOutcomeUnknown       = errors.New("delivery outcome unknown")
	ErrWrongMode            = errors.New("port speaks the other TLS mode")
	ErrCertificate          = errors.New("certificate not trusted")
	ErrTLSVersion           = errors.New("server offers only TLS below 1.2")
	ErrProtocol             = wire.ErrProtocol
	ErrBadAddress           = errors.New("address or field would inject a command or forge a field")
	ErrMechanismUnavailable = errors.New("authentication mechanism not offered")
	ErrTokenUnavailable     = errors.New("cannot get an OAuth2 access token")
)

// Internal causes that Classify recognises; they never reach a caller
// unwrapped.
var (
	// ErrLostRace marks an attempt stopped because another port won.
	ErrLostRace = errors.New("not needed: another port won")
	// ErrDialEnded marks an attempt stopped because the Dial ended
	// without a winner (a refused credential, a temporary refusal).
	ErrDialEnded = errors.New("not used: the dial ended before this port was ready")
	// ErrConfig marks a mistake in what the caller configured (a nil
	// Auth, a URL without a password): retrying cannot help.
	ErrConfig = errors.New("configuration error")
	// ErrTimeout is an attempt that used up its own time budget
	// (Dialer.Timeout), as opposed to the caller's context: it is
	// os.ErrDeadlineExceeded, as a socket's deadline is, and never
	// context.DeadlineExceeded.
	ErrTimeout = timeoutError{}
)

// Configf is a configuration error: its message is the format's, and
// errors.Is(err, ErrConfig) holds. %w verbs wrap as fmt.Errorf's do.
func Configf(format string, args ...any) error {
	return &configError{fmt.Errorf(format, args...)}
}

type configError struct{ err error }

func (e *configError) Error() string        { return e.err.Error() }
func (e *configError) Unwrap() error        { return e.err }
func (e *configError) Is(target error) bool { return target == ErrConfig }

type timeoutError struct{}

func (timeoutError) Error() string        { return "timed out" }
func (timeoutError) Is(target error) bool { return target == os.ErrDeadlineExceeded }
func (timeoutError) Timeout() bool        { return true }
func (timeoutError) Temporary() bool      { return true }

// WrongModeError is a port that speaks the other TLS mode than the one
// stated for it.
type WrongModeError struct {
	Port   int
	Stated tlsmode.Mode // the mode configured
	Speaks tlsmode.Mode // the mode the port answered in
	Seen   string       // what gave it away, sanitised ("220 mail ESMTP", "a TLS handshake")
}

// Error says what the port speaks and what it was configured for.
func (e *WrongModeError) Error() string {
	s := fmt.Sprintf("port %d speaks %s, not %s", e.Port, ModeWords(e.Speaks), ModeWords(e.Stated))
	if e.Seen != "" {
		s += " (" + e.Seen + ")"
	}
	return s
}

// Unwrap returns ErrWrongMode.
func (e *WrongModeError) Unwrap() error { return ErrWrongMode }

// ModeWords names a mode for a person: "STARTTLS", "implicit TLS".
func ModeWords(m tlsmode.Mode) string {
	switch m {
	case tlsmode.StartTLS:
		return "STARTTLS"
	case tlsmode.Implicit:
		return "implicit TLS"
	case tlsmode.Plaintext:
		return "plaintext"
	}
	return "an unknown mode"
}

// Other is the other TLS mode: Implicit for StartTLS and the reverse.
func Other(m tlsmode.Mode) tlsmode.Mode {
	if m == tlsmode.Implicit {
		return tlsmode.StartTLS
	}
	return tlsmode.Implicit
}
