package submit

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/portwise/portwise/internal/wire"
	"github.com/portwise/portwise/tlsmode"
)

// Sentinel errors. Every error the package returns wraps at most one of them,
// so programs can branch with errors.Is; the wrapping error says to a person
// what happened and what to do.
var (
	// ErrSTARTTLSStripped means a StartTLS port did not advertise STARTTLS.
	// On a port that normally offers it this is a downgrade attack, or a
	// firewall doing "SMTP fixup".
	ErrSTARTTLSStripped = errors.New("STARTTLS not offered")

	// ErrResponseInjection means bytes arrived between the 220 reply to
	// STARTTLS and the TLS handshake (CVE-2011-0411 style injection).
	ErrResponseInjection = errors.New("response injection after STARTTLS")

	// ErrPlaintextAuth means AUTH would have gone over a connection
	// without verified TLS; nothing was sent.
	ErrPlaintextAuth = errors.New("refusing to authenticate without verified TLS")

	// ErrAuthFailed means the server rejected the credentials (a 5xx reply
	// to AUTH). It wraps the server's *smtp.SMTPError.
	ErrAuthFailed = errors.New("authentication failed")

	// ErrOutcomeUnknown means the connection broke after the final "." of
	// DATA and before the server's reply: the message may or may not have
	// been accepted, so resending it blindly may deliver it twice.
	ErrOutcomeUnknown = errors.New("delivery outcome unknown")

	// ErrNoTLS means an Implicit port answered in clear.
	ErrNoTLS = errors.New("port answered without TLS")

	// ErrCertificate means the server's certificate did not verify.
	ErrCertificate = errors.New("certificate not trusted")

	// ErrTLSVersion means the server offers only TLS versions below 1.2
	// (TLS 1.0 or 1.1), which portwise refuses rather than downgrade.
	ErrTLSVersion = errors.New("server offers only TLS below 1.2")

	// ErrProtocol means the server broke the SMTP grammar or exceeded the
	// bounds on what the client reads (line length, reply lines, reply size).
	ErrProtocol = wire.ErrProtocol

	// ErrBadAddress means an address or name held CR, LF or NUL and was
	// refused before anything was sent.
	ErrBadAddress = errors.New("address contains CR, LF or NUL")

	// ErrLineTooLong means the message has a line longer than SMTP allows
	// (998 bytes plus CRLF). portwise does not fold lines: breaking a body
	// line changes the message (and any signature over it); encode the
	// body with quoted-printable or base64 instead, which is lossless.
	ErrLineTooLong = errors.New("message line longer than 998 bytes")
)

// Attempt is the outcome of one candidate in a Dial.
type Attempt struct {
	Candidate tlsmode.Candidate
	Err       error         // nil for the winner
	Elapsed   time.Duration // from this candidate's start to its outcome
	// Host is the server tried when it is not DialError.Host: an SRV
	// target, or a server given to DialServers.
	Host string
}

// DialError is returned by Dial when no candidate produced a client. It lists
// every attempt that was started, in policy order.
type DialError struct {
	Host     string
	Attempts []Attempt
	// Err is set when the whole Dial ended for a reason of its own (the
	// context, a rejected credential) rather than because every candidate
	// failed.
	Err error
}

// Error renders one line per attempt, each saying which port, which step,
// what was seen and what to do.
func (e *DialError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "submit: cannot reach a mail submission server at %s", e.Host)
	if e.Err != nil && !errors.Is(e.Err, ErrAuthFailed) {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	for _, a := range e.Attempts {
		b.WriteString("\n  ")
		if a.Host != "" {
			b.WriteString(a.Host + ":")
		}
		if a.Err == nil {
			fmt.Fprintf(&b, "%d (%s): succeeded in %s", a.Candidate.Port, a.Candidate.Mode, round(a.Elapsed))
			continue
		}
		fmt.Fprintf(&b, "%d (%s): %v", a.Candidate.Port, a.Candidate.Mode, a.Err)
	}
	if len(e.Attempts) == 0 {
		b.WriteString(" (no candidate was tried)")
	}
	return b.String()
}

// Unwrap returns the errors of every attempt (and of the Dial itself), so
// errors.Is(err, ErrSTARTTLSStripped) and errors.As work through a DialError.
func (e *DialError) Unwrap() []error {
	var errs []error
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	for _, a := range e.Attempts {
		if a.Err != nil {
			errs = append(errs, a.Err)
		}
	}
	return errs
}

func round(d time.Duration) time.Duration {
	switch {
	case d > time.Second:
		return d.Round(10 * time.Millisecond)
	case d > time.Millisecond:
		return d.Round(100 * time.Microsecond)
	}
	return d
}

// StepError is the error of one attempt: which step failed and why. Its
// message names the step and tells what to do next.
type StepError struct {
	Port    int
	Step    string // "connect", "banner", "ehlo", "starttls", "tls", "auth", ...
	Err     error
	Elapsed time.Duration
	advice  string
}

// Error names the step and the cause, then the advice for it, if any.
func (e *StepError) Error() string {
	s := e.Step + ": " + e.Err.Error()
	if e.advice != "" {
		s += " — " + e.advice
	}
	return s
}

// Unwrap returns the cause.
func (e *StepError) Unwrap() error { return e.Err }

// stepErr classifies err from a step of an attempt on port and adds advice.
func stepErr(port int, step string, err error, elapsed time.Duration) *StepError {
	se := &StepError{Port: port, Step: step, Err: err, Elapsed: elapsed}
	var opErr *net.OpError
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var hostErr x509.HostnameError
	var smtpErr *smtp.SMTPError
	switch {
	case errors.Is(err, context.Canceled):
		se.advice = "the caller cancelled the dial"
	case errors.Is(err, ErrSTARTTLSStripped), errors.Is(err, ErrResponseInjection),
		errors.Is(err, ErrNoTLS), errors.Is(err, ErrPlaintextAuth), errors.Is(err, ErrCertificate),
		errors.Is(err, ErrTLSVersion):
		// these carry their own advice
	case errors.As(err, &dnsErr):
		se.advice = "the host name does not resolve; check its spelling and your DNS"
	case wire.IsTimeout(err):
		if step == "connect" {
			se.Err = &explained{fmt.Sprintf("connection timed out after %s", round(elapsed)), err}
			se.advice = fmt.Sprintf("port %d is probably blocked by your network or cloud provider (cloud hosts block 25, some networks block 587); try another port", port)
		} else {
			se.Err = &explained{fmt.Sprintf("no reply within %s", round(elapsed)), err}
			switch step {
			case "banner":
				se.advice = fmt.Sprintf("no SMTP greeting: if port %d expects implicit TLS, use tlsmode.Implicit", port)
			case "tls":
				se.advice = "the server stopped answering during the TLS handshake; check that the port speaks the TLS mode configured (465 is implicit TLS, 587/2525 STARTTLS)"
			default:
				se.advice = "the server stopped answering in the middle of the session; try again later"
			}
		}
	case errors.Is(err, syscall.ECONNREFUSED):
		se.Err = &explained{"connection refused", err}
		se.advice = fmt.Sprintf("nothing listens on port %d of that host", port)
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		se.advice = "the server or something on the path closed the connection"
	case errors.As(err, &certErr), errors.As(err, &hostErr):
		// handled by tlsErr
	case errors.As(err, &smtpErr):
		if smtpErr.Code/100 == 4 {
			se.advice = "the server reported a temporary problem; try again later"
		}
	case errors.As(err, &opErr):
		se.advice = "a network error; check connectivity to the host"
	}
	return se
}

// explained replaces a cause's message with a plainer one and keeps the
// cause for errors.Is and errors.As.
type explained struct {
	msg   string
	cause error
}

func (e *explained) Error() string { return e.msg }
func (e *explained) Unwrap() error { return e.cause }

// tlsErr turns a handshake error into one that names what was expected and
// what the certificate says.
func tlsErr(port int, mode tlsmode.Mode, serverName string, err error) error {
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) && mode == tlsmode.Implicit && looksLikeSMTP(rh.RecordHeader[:]) {
		return fmt.Errorf("%w: port %d answered without TLS (%q); it is probably a STARTTLS port — use tlsmode.StartTLS", ErrNoTLS, port, strings.TrimSpace(string(rh.RecordHeader[:])))
	}
	var certErr *tls.CertificateVerificationError
	if errors.As(err, &certErr) && len(certErr.UnverifiedCertificates) > 0 {
		leaf := certErr.UnverifiedCertificates[0]
		names := certNames(leaf)
		var hostErr x509.HostnameError
		var unk x509.UnknownAuthorityError
		var inv x509.CertificateInvalidError
		switch {
		case errors.As(err, &hostErr):
			return fmt.Errorf("%w: the certificate is for %s, not %q — connect with a name the certificate covers, or set TLSConfig.ServerName", ErrCertificate, names, serverName)
		case errors.As(err, &inv) && inv.Reason == x509.Expired:
			return fmt.Errorf("%w: the certificate for %s is outside its validity period (not after %s) — the server's certificate must be renewed", ErrCertificate, names, leaf.NotAfter.UTC().Format(time.DateOnly))
		case errors.As(err, &unk):
			return fmt.Errorf("%w: the certificate for %s is signed by an unknown authority (issuer %q) — install the CA in TLSConfig.RootCAs or the system roots", ErrCertificate, names, leaf.Issuer.String())
		}
		return fmt.Errorf("%w: the certificate for %s did not verify for %q: %v", ErrCertificate, names, serverName, certErr.Err)
	}
	if strings.Contains(err.Error(), "protocol version") {
		return fmt.Errorf("%w: TLS handshake failed (%w), which portwise refuses: the server must enable TLS 1.2 or 1.3", ErrTLSVersion, err)
	}
	return fmt.Errorf("TLS handshake failed: %w", err)
}

func certNames(c *x509.Certificate) string {
	var names []string
	names = append(names, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 && c.Subject.CommonName != "" {
		names = append(names, "CN="+c.Subject.CommonName)
	}
	if len(names) == 0 {
		return "no name"
	}
	return strings.Join(names, ", ")
}

func looksLikeSMTP(h []byte) bool {
	return len(h) >= 3 && h[0] >= '1' && h[0] <= '5' && h[1] >= '0' && h[1] <= '9' && h[2] >= '0' && h[2] <= '9'
}

// IsTemporary reports whether err is worth retrying later: a 4xx reply,
// a timeout, a reset or refused connection. A 5xx reply, a certificate
// failure or a security refusal is not. ErrOutcomeUnknown is not
// temporary: the caller must decide whether a duplicate is acceptable.
func IsTemporary(err error) bool {
	if err == nil || errors.Is(err, ErrOutcomeUnknown) {
		return false
	}
	for _, perm := range []error{ErrSTARTTLSStripped, ErrResponseInjection, ErrPlaintextAuth, ErrAuthFailed, ErrCertificate, ErrTLSVersion, ErrNoTLS, ErrBadAddress, ErrLineTooLong, context.Canceled} {
		if errors.Is(err, perm) {
			return false
		}
	}
	var smtpErr *smtp.SMTPError
	if errors.As(err, &smtpErr) {
		return smtpErr.Code/100 == 4
	}
	return wire.IsTimeout(err) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.EPIPE)
}
