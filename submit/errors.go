package submit

import (
	"crypto/tls"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/portwise/portwise/internal/diag"
	"github.com/portwise/portwise/internal/untrusted"
	"github.com/portwise/portwise/internal/wire"
	"github.com/portwise/portwise/tlsmode"
)

// Sentinel errors, for programs to branch on with errors.Is. Every error of
// the package that has a sentinel wraps it; its message says to a person
// what happened and what to do. README.md has them in one table.
var (
	// ErrSTARTTLSStripped means a StartTLS port did not advertise STARTTLS,
	// masked it (XXXXXXXA), refused it, or refused EHLO: a downgrade
	// attack, or a firewall doing "SMTP fixup". Nothing was sent in clear.
	ErrSTARTTLSStripped = diag.ErrSTARTTLSStripped

	// ErrResponseInjection means bytes arrived before the TLS handshake
	// that the client had not asked for (CVE-2011-0411 style injection).
	ErrResponseInjection = diag.ErrResponseInjection

	// ErrPlaintextAuth means AUTH would have gone over a connection
	// without verified TLS; nothing was sent.
	ErrPlaintextAuth = diag.ErrPlaintextAuth

	// ErrAuthFailed means the server rejected the credential (a 5xx reply
	// to AUTH), or that a credential known to be rejected was not sent
	// again. The error holds the server's *Reply.
	ErrAuthFailed = diag.ErrAuthFailed

	// ErrOutcomeUnknown means the connection broke after the message was
	// sent and before the server's reply: it may or may not have been
	// accepted, so resending it blindly may deliver it twice.
	ErrOutcomeUnknown = diag.ErrOutcomeUnknown

	// ErrWrongMode means the port speaks the other TLS mode than the one
	// stated for it: an implicit TLS port answered in clear, or a STARTTLS
	// port answered only a TLS handshake. The message names the mode the
	// port speaks. A stated mode is never switched.
	ErrWrongMode = diag.ErrWrongMode

	// ErrCertificate means the server's certificate did not verify for the
	// host dialled (unknown authority, another name, expired), or TLS was
	// configured without verification.
	ErrCertificate = diag.ErrCertificate

	// ErrTLSVersion means the server offers only TLS versions below 1.2,
	// which portwise refuses rather than downgrade.
	ErrTLSVersion = diag.ErrTLSVersion

	// ErrProtocol means the server broke the SMTP grammar or exceeded the
	// bounds on what the client reads (line length, reply lines, size).
	ErrProtocol = diag.ErrProtocol

	// ErrBadAddress means an address, a name or a SASL field held a
	// character that would inject a command or forge a field (CR, LF,
	// NUL, and the separators of the SASL mechanisms); nothing was sent.
	ErrBadAddress = diag.ErrBadAddress

	// ErrMechanismUnavailable means the server does not offer, after TLS,
	// the mechanism the Auth needs.
	ErrMechanismUnavailable = diag.ErrMechanismUnavailable

	// ErrTokenUnavailable means an OAuth2 token source gave no usable
	// access token (the endpoint is down, the refresh token was revoked,
	// or it gave again a token a server rejected). Nothing was sent.
	ErrTokenUnavailable = diag.ErrTokenUnavailable

	// ErrLostRace is the error of an attempt stopped because another port
	// won the race: not a failure of its port. A Trace's AttemptDone sees
	// it, usually after Dial returned.
	ErrLostRace = diag.ErrLostRace

	// ErrDialEnded is the error of an attempt stopped because the Dial
	// ended before the port was ready, decided by another port's outcome
	// (a rejected credential, a temporary refusal): not a failure of its
	// port. DialError.Attempts lists such attempts with it.
	ErrDialEnded = diag.ErrDialEnded

	// ErrLineTooLong means the message has a line longer than SMTP allows
	// (998 bytes plus CRLF). portwise does not fold lines: breaking a body
	// line changes the message (and any signature over it); encode the
	// body with quoted-printable or base64 instead, which is lossless.
	ErrLineTooLong = errors.New("message line longer than 998 bytes")

	// ErrExtensionMissing means the message needs an SMTP extension the server
	// did not advertise after TLS (SMTPUTF8, DSN, REQUIRETLS); nothing was sent.
	ErrExtensionMissing = errors.New("server lacks a required SMTP extension")

	// ErrMessageTooLarge means the message is larger than the server's
	// advertised SIZE limit; nothing was sent.
	ErrMessageTooLarge = errors.New("message larger than the server accepts")

	// ErrMailerClosed is returned by Send after Close.
	ErrMailerClosed = errors.New("mailer closed")

	// ErrBadURL means ParseURL could not read a configuration URL. The message
	// names the field at fault and never contains the password.
	ErrBadURL = errors.New("invalid submission URL")
)

// Reply is a server's reply: what the server said, for programs to
// inspect. Its Error quotes it safely; Text is raw.
type Reply struct {
	Code int // 535
	// Enhanced is the RFC 3463 enhanced status code ("5.7.8"), or ""
	// when the server sent none.
	Enhanced string
	// Text is the reply's text without the codes, its lines joined by
	// "\n", exactly as the server sent it. It is untrusted: print Error
	// instead, which escapes controls and bounds the length.
	Text string
}

func newReply(r *wire.Reply) *Reply {
	if r == nil {
		return nil
	}
	enh, text := r.Enhanced()
	return &Reply{Code: r.Code, Enhanced: enh, Text: text}
}

// Error renders the reply on one line as a person would quote it,
// "535 5.7.8 Username and Password not accepted", made safe.
func (r *Reply) Error() string {
	s := strconv.Itoa(r.Code)
	if r.Enhanced != "" {
		s += " " + r.Enhanced
	}
	if text := strings.Join(strings.Fields(r.Text), " "); text != "" {
		s += " " + untrusted.Reply(text)
	}
	return s
}

// Temporary reports a 4xx reply: the server may accept later.
func (r *Reply) Temporary() bool { return r.Code/100 == 4 }

// StepError is one failed step: a port's attempt in a Dial, or a command
// of a Client. Like net.OpError it says where (host and candidate), which
// step, and why, in one line; Advice says what to do. errors.Is finds the
// sentinel of the failure (ErrAuthFailed, ErrCertificate, ...) and the
// cause; errors.As finds the *Reply when the server's reply failed it.
type StepError struct {
	// Step is "connect", "banner", "ehlo", "starttls", "tls", "auth" or
	// "token" in a Dial; "MAIL FROM", "RCPT TO", "DATA", "message",
	// "RSET", "NOOP" or "QUIT" on a Client.
	Step      string
	Host      string
	Candidate tlsmode.Candidate
	Elapsed   time.Duration
	// Reply is the server's reply that failed the step, if one did.
	Reply *Reply
	// Err is the cause: a network, TLS or protocol error, the caller's
	// context error, or the reply.
	Err error

	rec // the diagnosis, made once where the step failed
}

// rec keeps the diagnosis of a StepError where internal/diag.Of finds it,
// so the command and the probe render it without classifying it again.
type rec = diag.Record

func newStepError(step, host string, c tlsmode.Candidate, elapsed time.Duration, err error) *StepError {
	d := diag.Classify(step, c, host, elapsed, err)
	return &StepError{Step: step, Host: host, Candidate: c, Elapsed: elapsed, Reply: newReply(d.Reply), Err: err, rec: diag.Recorded(d)}
}

// diagnosis is the StepError's diagnosis; one built by a program rather
// than by the package is classified from its fields.
func (e *StepError) diagnosis() diag.Diagnosis {
	if d, ok := diag.Of(e); ok {
		return d
	}
	var r *Reply
	if e.Reply != nil || errors.As(e.Err, &r) {
		if r == nil {
			r = e.Reply
		}
		command := e.Step
		if command == "banner" {
			command = "" // the greeting answers no command
		}
		return diag.Refused(command, e.Host, r.Code, r.Enhanced, r.Text)
	}
	return diag.Classify(e.Step, e.Candidate, e.Host, e.Elapsed, e.Err)
}

// Error is one line: the candidate, the step, what was seen, and (after
// " — ") what to do.
func (e *StepError) Error() string {
	d := e.diagnosis()
	return d.Sentence(diag.Go, d.Where())
}

// Advice says what to do about the failure, in Go terms ("add the CA to
// Dialer.TLSConfig.RootCAs"); "" when the message says it all.
func (e *StepError) Advice() string { return e.diagnosis().Advice(diag.Go) }

// Temporary reports whether the step may succeed if tried again later:
// 4xx replies, and connection-level failures (timeouts, resets), unless a
// provider's known reply says otherwise. README has the table.
func (e *StepError) Temporary() bool { return e.diagnosis().Temporary() }

// Unwrap returns the failure's sentinel, the reply and the cause.
func (e *StepError) Unwrap() []error {
	errs := make([]error, 0, 3)
	if s := diag.Sentinel(e.diagnosis().Kind); s != nil && !errors.Is(e.Err, s) {
		errs = append(errs, s)
	}
	if e.Reply != nil {
		errs = append(errs, e.Reply)
	}
	return append(errs, e.Err)
}

// Attempt is one candidate of a Dial, as far as it got. Trace hooks get it
// at each stage, and DialError lists one per candidate started.
type Attempt struct {
	// ID is the attempt's number, unique in the process, from 1: every
	// hook of one attempt carries the same ID, and the connection a
	// winning attempt opens keeps it (ConnInfo.ID).
	ID uint64
	// Host is the server of the attempt: the host dialled, an SRV target
	// or a server given to DialServers.
	Host      string
	Candidate tlsmode.Candidate
	// Addr is the "host:port" connected to.
	Addr string
	// Elapsed is the time since the attempt started.
	Elapsed time.Duration
	// Err is the attempt's *StepError; nil on success, and for a hook of
	// a stage that went well.
	Err error
	// TLS is the connection's TLS state, once there is one.
	TLS *tls.ConnectionState
	// Mechanisms are the AUTH mechanisms the server offers after TLS.
	Mechanisms []string
	// Mechanism is the SASL mechanism tried, once AUTH started.
	Mechanism string
}

// DialError is returned by a Dial that produced no client. Its first line
// names the outcome; then one line per attempt started, in the order of the
// plan.
type DialError struct {
	Host     string
	Attempts []Attempt
	// Err is set when the Dial ended for a reason of its own, before or
	// beside the attempts: the caller's context, a token that could not be
	// fetched, a configuration the Dial refused.
	Err error
	// Discovery is what went wrong finding servers (Dialer.Discover), when
	// that may be why nothing worked.
	Discovery error
}

// Error renders the outcome, one line per attempt, and the discovery
// problem if any.
func (e *DialError) Error() string { return e.view().Render(diag.Go, "submit: ") }

// view is the DialError as internal/diag renders it.
func (e *DialError) view() diag.Dial {
	v := diag.Dial{Host: e.Host, Err: e.Err, Discovery: e.Discovery, Attempts: make([]diag.Attempt, len(e.Attempts))}
	for i, a := range e.Attempts {
		v.Attempts[i] = diag.Attempt{Host: a.Host, Candidate: a.Candidate, Elapsed: a.Elapsed, Err: a.Err}
	}
	return v
}

// Unwrap returns the Dial's own error, the discovery error and every
// attempt's, so errors.Is and errors.As look through all of them.
func (e *DialError) Unwrap() []error {
	var errs []error
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	if e.Discovery != nil {
		errs = append(errs, e.Discovery)
	}
	for _, a := range e.Attempts {
		if a.Err != nil {
			errs = append(errs, a.Err)
		}
	}
	return errs
}

// Temporary reports whether the Dial may succeed later: the failure that
// decided it (the Dial's own, else the attempt that got furthest) is
// temporary.
func (e *DialError) Temporary() bool {
	se := e.decisive()
	return se != nil && se.Temporary()
}

// Advice is the decisive failure's advice, in Go terms.
func (e *DialError) Advice() string {
	if se := e.decisive(); se != nil {
		return se.Advice()
	}
	return ""
}

func (e *DialError) kind() diag.Kind {
	if se := e.decisive(); se != nil {
		return se.diagnosis().Kind
	}
	return diag.KindOther
}

// decisive is the failure that names the Dial's outcome: the Dial's own
// error, else the attempt that got furthest (see diag.Rank), the first of
// equals.
func (e *DialError) decisive() *StepError {
	var se *StepError
	if e.Err != nil {
		if errors.As(e.Err, &se) {
			return se
		}
		return newStepError("", e.Host, tlsmode.Candidate{}, 0, e.Err)
	}
	i := diag.MostTelling(len(e.Attempts), func(i int) (diag.Kind, bool) {
		var s *StepError
		if !errors.As(e.Attempts[i].Err, &s) {
			return 0, false
		}
		return s.diagnosis().Kind, true
	})
	if i >= 0 {
		errors.As(e.Attempts[i].Err, &se)
	}
	return se
}

// IsTemporary reports whether err is worth retrying later: a 4xx reply, a
// timeout, a reset or refused connection. A 5xx reply, a certificate
// failure, a security refusal, the caller's cancellation and
// ErrOutcomeUnknown (the caller must decide whether a duplicate is
// acceptable) are not. A SendError is temporary only when every refused
// recipient's refusal is. Where a provider's known reply contradicts its
// code (a 421 that never clears, a 550 rate limit), the knowledge decides.
// README.md has the table, exceptions included.
func IsTemporary(err error) bool {
	if err == nil || errors.Is(err, ErrOutcomeUnknown) {
		return false
	}
	var (
		send  *SendError
		dial  *DialError
		step  *StepError
		rcpt  RecipientError
		reply *Reply
	)
	switch {
	case errors.As(err, &send):
		return send.temporary()
	case errors.As(err, &dial):
		return dial.Temporary()
	case errors.As(err, &step):
		return step.Temporary()
	case errors.As(err, &rcpt):
		return rcpt.temporary()
	case errors.As(err, &reply):
		return reply.Temporary()
	}
	return diag.Classify("", tlsmode.Candidate{}, "", 0, err).Temporary()
}
