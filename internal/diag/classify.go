package diag

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/portwise/portwise/internal/session"
	"github.com/portwise/portwise/internal/untrusted"
	"github.com/portwise/portwise/internal/wire"
	"github.com/portwise/portwise/tlsmode"
)

// Kind is what went wrong, in the terms a person acts on.
type Kind uint8

// The kinds of failure. Their order is not meaningful.
const (
	KindOther            Kind = iota // none of the below; the error's own words
	KindCanceled                     // the caller cancelled
	KindDeadline                     // the caller's deadline passed
	KindLostRace                     // stopped: another port won
	KindDialEnded                    // stopped: the dial ended without a winner
	KindConfig                       // the caller's configuration cannot work
	KindBadInput                     // an address or name would inject commands
	KindToken                        // no OAuth2 access token
	KindDNS                          // the host name does not resolve
	KindRefused                      // connection refused
	KindBlocked                      // no TCP connection within the budget
	KindSilent                       // connected, then nothing at all
	KindNetwork                      // another network error
	KindClosed                       // the server closed the connection
	KindReset                        // the connection was reset (RST) or broke while writing
	KindTimeout                      // the server stopped answering mid-session
	KindProtocol                     // the server broke SMTP's grammar or bounds
	KindWrongMode                    // the port speaks the other TLS mode
	KindStripped                     // STARTTLS missing or refused
	KindMasked                       // STARTTLS masked by a firewall (XXXXXXXA)
	KindInjection                    // replies injected around STARTTLS
	KindTLSVersion                   // only TLS below 1.2
	KindTLSAlert                     // the server refused the handshake
	KindTLSFailed                    // another handshake failure
	KindCertUntrusted                // unknown authority or self-signed
	KindCertName                     // the certificate is for another name
	KindCertExpired                  // outside its validity period
	KindCertUnverified               // TLS without verification (InsecureSkipVerify)
	KindPlaintextAuth                // AUTH would go over a connection without TLS
	KindAuthUnavailable              // no mechanism the Auth can use
	KindAuthRejected                 // 5xx to AUTH
	KindAuthTemporary                // 4xx to AUTH
	KindAuthBroken                   // the AUTH exchange broke off
	KindRefusedTemporary             // a 4xx reply (greeting, EHLO, a command)
	KindRefusedPermanent             // a 5xx reply
	KindOutcomeUnknown               // the connection broke after the final "."
	numKinds
)

var kindNames = [numKinds]string{
	"other", "canceled", "deadline", "lost-race", "dial-ended", "config", "bad-input", "token", "dns", "refused",
	"blocked", "silent", "network", "closed", "reset", "timeout", "protocol", "wrong-mode", "stripped", "masked", "injection",
	"tls-version", "tls-alert", "tls-failed", "cert-untrusted", "cert-name", "cert-expired", "cert-unverified",
	"plaintext-auth", "auth-unavailable", "auth-rejected", "auth-temporary", "auth-broken", "refused-temporary",
	"refused-permanent", "outcome-unknown",
}

// String names the kind, as the golden test lists them.
func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Kinds returns every kind, in order.
func Kinds() []Kind {
	ks := make([]Kind, numKinds)
	for i := range ks {
		ks[i] = Kind(i)
	}
	return ks
}

// Diagnosis is what Classify found out about one failed step.
type Diagnosis struct {
	Kind      Kind
	Step      string // "connect", "banner", "ehlo", "starttls", "tls", "auth", "MAIL FROM", ...
	Candidate tlsmode.Candidate
	Host      string
	Elapsed   time.Duration
	// Reply is the server's reply that caused the failure, if one did,
	// with Command, the command it answered ("" for the greeting).
	Reply   *wire.Reply
	Command string
	// Detail is what was seen, safe to print, one line, without the step.
	Detail string
	// Speaks is the mode the port answered in (KindWrongMode).
	Speaks tlsmode.Mode
	// Provider is what a known provider's reply means and how to fix it,
	// when the reply (or the host it came from) identifies one.
	Provider *ProviderAdvice
	// Reason is what a refusal means, from the provider's knowledge or
	// from what every server's codes and words share; ReasonNone when
	// neither says.
	Reason Reason
	// Names, Issuer, NotAfter and SelfSigned describe the certificate
	// (KindCert*), raw.
	Names      []string
	Issuer     string
	NotAfter   time.Time
	SelfSigned bool
	temporary  bool
}

// Classify finds what went wrong when step of an attempt on c (at host,
// after elapsed) failed with err. The caller's context errors are in err
// only when the caller's context ended: the dial path guarantees it.
func Classify(step string, c tlsmode.Candidate, host string, elapsed time.Duration, err error) Diagnosis {
	d := Diagnosis{Step: step, Candidate: c, Host: host, Elapsed: elapsed}
	d.classify(err)
	d.temporary = d.temporary || temporaryKind[d.Kind]
	return d
}

func (d *Diagnosis) classify(err error) {
	var (
		replyErr *wire.ReplyError
		wrong    *WrongModeError
		stripped *session.StrippedError
		dnsErr   *net.DNSError
	)
	if errors.As(err, &replyErr) {
		d.Reply, d.Command = replyErr.Reply, replyErr.Command
	}
	switch {
	case errors.Is(err, context.Canceled):
		d.Kind, d.Detail = KindCanceled, "cancelled by the caller"
	case errors.Is(err, context.DeadlineExceeded):
		d.Kind, d.Detail = KindDeadline, "the caller's deadline passed"
	case errors.Is(err, ErrLostRace):
		d.Kind, d.Detail = KindLostRace, ErrLostRace.Error()
	case errors.Is(err, ErrDialEnded):
		d.Kind, d.Detail = KindDialEnded, ErrDialEnded.Error()
	case errors.Is(err, ErrOutcomeUnknown):
		d.Kind, d.Detail = KindOutcomeUnknown, safe(err)
	case errors.Is(err, ErrPlaintextAuth):
		d.Kind, d.Detail = KindPlaintextAuth, safe(err)
	case errors.Is(err, ErrCertificate):
		d.Kind, d.Detail = KindCertUnverified, safe(err)
	case errors.Is(err, ErrBadAddress):
		d.Kind, d.Detail = KindBadInput, safe(err)
	case errors.Is(err, ErrTokenUnavailable):
		d.Kind, d.Detail = KindToken, safe(err)
	case errors.Is(err, ErrAuthFailed) && replyErr == nil:
		// A credential known to be rejected, not sent again.
		d.Kind, d.Detail = KindAuthRejected, safe(err)
	case errors.Is(err, ErrConfig):
		d.Kind, d.Detail = KindConfig, safe(err)
	case errors.Is(err, ErrMechanismUnavailable):
		d.Kind, d.Detail = KindAuthUnavailable, safe(err)
	case errors.As(err, &wrong):
		d.Kind, d.Speaks, d.Detail = KindWrongMode, wrong.Speaks, wrong.Error()
	case errors.As(err, &stripped):
		d.Kind, d.Detail = KindStripped, stripped.Reason
		if stripped.Masked != "" {
			d.Kind = KindMasked
		}
	case errors.Is(err, session.ErrRejected):
		d.Kind, d.Detail = KindStripped, safe(err)
	case errors.Is(err, wire.ErrInjection), errors.Is(err, ErrResponseInjection):
		d.Kind, d.Detail = KindInjection, safe(err)
	// A sentinel without the error that carries the details (a program's
	// own wrapping, a StepError built by hand) still names its kind.
	case errors.Is(err, ErrSTARTTLSStripped):
		d.Kind, d.Detail = KindStripped, safe(err)
	case errors.Is(err, ErrWrongMode):
		d.Kind, d.Detail = KindWrongMode, safe(err)
	case errors.Is(err, ErrTLSVersion):
		d.Kind, d.Detail = KindTLSVersion, safe(err)
	case errors.Is(err, ErrAuthFailed):
		d.Kind, d.Detail = KindAuthRejected, safe(err)
	case errors.As(err, &dnsErr):
		d.Kind, d.Detail = KindDNS, "the host name "+quote(dnsErr.Name)+" does not resolve ("+untrusted.Name(dnsErr.Err)+")"
		d.temporary = dnsErr.IsTemporary || dnsErr.IsTimeout
	case d.Step == "tls" && d.tls(err):
	case d.certificate(err):
		// A certificate's error outside a handshake this package saw: a
		// program's own wrapping of one.
	case Alert(err) != "":
		d.Kind, d.Detail = KindTLSAlert, "the server refused the TLS handshake with the alert "+quote(Alert(err))
	case d.Step == "connect":
		switch {
		case IsTimeout(err):
			d.Kind, d.Detail = KindBlocked, "no TCP connection within "+Round(d.Elapsed).String()
		case errors.Is(err, syscall.ECONNREFUSED):
			d.Kind, d.Detail = KindRefused, "connection refused"
		default:
			d.Kind, d.Detail = KindNetwork, safe(err)
		}
	case replyErr != nil:
		d.reply(replyErr)
	case errors.Is(err, syscall.ECONNREFUSED):
		// Outside a Dial's connect step: a bare error given to IsTemporary.
		d.Kind, d.Detail = KindRefused, "connection refused"
	case d.Step == "auth" && errors.Is(err, wire.ErrAuthAborted):
		d.Kind, d.Detail = KindAuthBroken, safe(err)
	case IsTimeout(err):
		if d.Step == "banner" {
			d.Kind, d.Detail = KindSilent, "connected, but no SMTP greeting within "+Round(d.Elapsed).String()
		} else {
			d.Kind, d.Detail = KindTimeout, "no reply within "+Round(d.Elapsed).String()
		}
	case errors.Is(err, wire.ErrProtocol):
		d.Kind, d.Detail = KindProtocol, safe(err)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		d.Kind, d.Detail = KindClosed, "the server closed the connection"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		d.Kind, d.Detail = KindReset, "the connection was reset"
	default:
		d.Kind, d.Detail = KindOther, safe(err)
	}
}

// reply classifies a reply that failed a command. What a known provider
// means by it comes first: where its knowledge contradicts the code (a 421
// that never clears, a 550 that is a rate limit, a 454 that rejects the
// password), the kind follows the knowledge, and so whether it is
// temporary.
func (d *Diagnosis) reply(e *wire.ReplyError) {
	r := e.Reply
	class := r.Code / 100
	if enh, text := r.Enhanced(); class == 4 || class == 5 {
		if a, ok := MatchProvider(d.Host, r.Code, enh, text); ok {
			d.Provider = &a
			d.Reason = a.Reason
		}
		if d.Reason == ReasonNone {
			d.Reason = reasonOf(e.Command, r.Code, enh, normaliseText(text))
		}
	}
	temporary := class == 4
	if p := d.Provider; p != nil && p.Retry == RetryLater {
		temporary = true
	} else if p != nil && p.Retry == RetryNever {
		temporary = false
	}
	said := r.String()
	if e.Note != "" {
		said += " (" + e.Note + ")"
	}
	switch {
	case d.Step == "auth" && (class == 5 || class == 4 && d.Reason == ReasonCredential):
		d.Kind, d.Detail = KindAuthRejected, e.Command+" rejected: "+said
	case d.Step == "auth" && class == 4 && temporary:
		d.Kind, d.Detail = KindAuthTemporary, "temporary reply to "+e.Command+": "+said
	case d.Step == "auth" && class == 4:
		d.Kind, d.Detail = KindRefusedPermanent, refusal(e.Command, said)
	case d.Step == "auth":
		d.Kind, d.Detail = KindAuthBroken, e.Command+" ended with "+said
	case (class == 4 || class == 5) && temporary:
		d.Kind, d.Detail = KindRefusedTemporary, refusal(e.Command, said)
	case class == 4 || class == 5:
		d.Kind, d.Detail = KindRefusedPermanent, refusal(e.Command, said)
	default:
		d.Kind, d.Detail = KindProtocol, "unexpected reply "+said+refusalTo(e.Command)
	}
}

// Refused is the diagnosis of a server's refusal of command ("RCPT TO")
// given as its parts, as a refusal that reaches a program as a value (a
// refused recipient) rather than as an error carries them: the reply's
// code, its enhanced code ("" for none) and its text without the codes.
// host, which may be "", lets a provider's own host identify it.
func Refused(command, host string, code int, enhanced, text string) Diagnosis {
	lines := strings.Split(text, "\n")
	if enhanced != "" {
		for i, l := range lines {
			lines[i] = enhanced + " " + l
		}
	}
	r := &wire.Reply{Code: code, Lines: lines}
	return Classify(command, tlsmode.Candidate{}, host, 0, r.Err(command))
}

func refusal(command, said string) string {
	if command == "" {
		return "the server greeted with " + said
	}
	return command + " refused: " + said
}

func refusalTo(command string) string {
	if command == "" {
		return ""
	}
	return " to " + command
}

// tls classifies a failed handshake; false leaves err to the general rules.
func (d *Diagnosis) tls(err error) bool {
	var (
		rh      tls.RecordHeaderError
		certErr *tls.CertificateVerificationError
		hostErr x509.HostnameError
		unk     x509.UnknownAuthorityError
		inv     x509.CertificateInvalidError
	)
	switch {
	case errors.As(err, &rh) && d.Candidate.Mode == tlsmode.Implicit && LooksLikeSMTP(rh.RecordHeader[:]):
		d.Kind, d.Speaks = KindWrongMode, tlsmode.StartTLS
		d.Detail = (&WrongModeError{Port: d.Candidate.Port, Stated: tlsmode.Implicit, Speaks: tlsmode.StartTLS,
			Seen: "it answered in clear: " + quote(strings.TrimSpace(string(rh.RecordHeader[:])))}).Error()
	case errors.As(err, &certErr) && len(certErr.UnverifiedCertificates) > 0:
		leaf := certErr.UnverifiedCertificates[0]
		d.Names, d.Issuer, d.NotAfter, d.SelfSigned = CertNames(leaf), leaf.Issuer.String(), leaf.NotAfter, SelfSigned(leaf)
		names := untrusted.Names(d.Names, "names")
		if names == "" {
			names = "no name"
		}
		switch {
		case errors.As(err, &hostErr):
			d.Kind, d.Detail = KindCertName, "the certificate is for "+names+", not "+quote(hostErr.Host)
		case errors.As(err, &inv) && inv.Reason == x509.Expired:
			d.Kind = KindCertExpired
			if time.Now().Before(leaf.NotBefore) {
				d.Detail = "the certificate for " + names + " is not valid before " + leaf.NotBefore.UTC().Format(time.DateTime)
			} else {
				d.Detail = "the certificate for " + names + " expired on " + leaf.NotAfter.UTC().Format(time.DateOnly)
			}
		case errors.As(err, &unk) && d.SelfSigned:
			d.Kind, d.Detail = KindCertUntrusted, "the certificate for "+names+" is self-signed"
		case errors.As(err, &unk):
			d.Kind, d.Detail = KindCertUntrusted, "the certificate for "+names+" is signed by an unknown authority (issuer "+quote(d.Issuer)+")"
		default:
			d.Kind, d.Detail = KindCertUntrusted, "the certificate for "+names+" does not verify: "+safe(certErr.Err)
		}
	case errors.Is(err, ErrCertificate):
		d.Kind, d.Detail = KindCertUnverified, safe(err)
	case VersionProblem(err):
		d.Kind, d.Detail = KindTLSVersion, "the server offers only TLS below 1.2 ("+safe(err)+")"
	case Alert(err) != "":
		d.Kind, d.Detail = KindTLSAlert, "the server refused the TLS handshake with the alert "+quote(Alert(err))
	case IsTimeout(err) && d.Candidate.Mode == tlsmode.Implicit:
		d.Kind, d.Detail = KindSilent, "connected, but no TLS handshake within "+Round(d.Elapsed).String()
	case IsTimeout(err):
		d.Kind, d.Detail = KindTimeout, "the server stopped answering during the TLS handshake"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		// A reset says nothing about the server's TLS, let alone its
		// certificate: a busy server, a restart or a middlebox does it.
		d.Kind, d.Detail = KindReset, "the connection was reset during the TLS handshake"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		d.Kind, d.Detail = KindClosed, "the server closed the connection during the TLS handshake"
	default:
		d.Kind, d.Detail = KindTLSFailed, "TLS handshake failed: "+safe(err)
	}
	return true
}

// certificate classifies an error of certificate verification that came
// without the handshake's details; false leaves err to the other rules.
func (d *Diagnosis) certificate(err error) bool {
	var (
		certErr *tls.CertificateVerificationError
		hostErr x509.HostnameError
		unk     x509.UnknownAuthorityError
		inv     x509.CertificateInvalidError
	)
	switch {
	case errors.As(err, &hostErr):
		d.Kind = KindCertName
	case errors.As(err, &inv) && inv.Reason == x509.Expired:
		d.Kind = KindCertExpired
	case errors.As(err, &unk), errors.As(err, &inv), errors.As(err, &certErr):
		d.Kind = KindCertUntrusted
	default:
		return false
	}
	d.Detail = safe(err)
	return true
}

// IsTimeout reports whether err is a timeout of any kind: a context's
// deadline, a socket deadline, or a net.Error that says so.
func IsTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Temporary reports whether the diagnosis is worth retrying later.
func (d Diagnosis) Temporary() bool { return d.temporary }

// temporaryKind are the kinds worth retrying later: every 4xx, and the
// connection-level failures a busy or restarting server causes.
var temporaryKind = [numKinds]bool{
	KindRefused:          true,
	KindBlocked:          true,
	KindSilent:           true,
	KindNetwork:          true,
	KindClosed:           true,
	KindReset:            true,
	KindTimeout:          true,
	KindAuthTemporary:    true,
	KindRefusedTemporary: true,
	KindDeadline:         true, // the server was too slow for the caller this time
}

func safe(err error) string { return untrusted.Text(err.Error(), 2*untrusted.MaxText) }

func quote(s string) string { return `"` + untrusted.Name(s) + `"` }
