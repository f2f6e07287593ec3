package diag

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/portwise/portwise/tlsmode"
)

// Audience is who reads the advice: a Go programmer configuring package
// submit, or a person running the portwise command.
type Audience uint8

// The audiences.
const (
	Go  Audience = iota // names Go identifiers: Dialer.TLSConfig, tlsmode.Implicit
	CLI                 // names flags: -ca FILE, -port N/implicit
)

// Headline names the outcome of a kind in a few words, for the first line
// of an error: "not reachable", "credential rejected".
func Headline(k Kind) string {
	switch k {
	case KindDNS, KindRefused, KindBlocked, KindSilent, KindNetwork:
		return "not reachable"
	case KindStripped, KindMasked, KindInjection, KindTLSVersion:
		return "no secure connection"
	case KindCertUntrusted, KindCertName, KindCertExpired, KindCertUnverified, KindTLSAlert, KindTLSFailed:
		return "TLS could not be verified"
	case KindWrongMode:
		return "wrong TLS mode"
	case KindAuthRejected:
		return "credential rejected"
	case KindAuthTemporary, KindRefusedTemporary:
		return "temporary refusal"
	case KindRefusedPermanent:
		return "refused"
	case KindPlaintextAuth, KindAuthUnavailable, KindAuthBroken:
		return "authentication failed"
	case KindToken:
		return "no access token"
	case KindConfig, KindBadInput:
		return "invalid configuration"
	case KindCanceled:
		return "cancelled"
	case KindDeadline:
		return "deadline exceeded"
	case KindTimeout:
		return "timed out"
	case KindClosed:
		return "connection lost"
	case KindReset:
		return "connection reset"
	case KindProtocol:
		return "protocol error"
	case KindOutcomeUnknown:
		return "outcome unknown"
	case KindLostRace, KindDialEnded:
		return "not used"
	}
	return "failed"
}

// Rank orders kinds by how much they tell about why nothing worked: the
// attempt that got furthest names a Dial's outcome.
func Rank(k Kind) int {
	switch k {
	case KindLostRace, KindDialEnded:
		return 0
	case KindDNS, KindRefused, KindBlocked, KindNetwork:
		return 1
	case KindSilent, KindClosed, KindReset, KindTimeout, KindOther:
		return 2
	case KindProtocol, KindRefusedTemporary, KindRefusedPermanent:
		return 3
	case KindWrongMode, KindStripped, KindMasked, KindInjection, KindTLSVersion, KindTLSAlert, KindTLSFailed:
		return 4
	case KindCertUntrusted, KindCertName, KindCertExpired, KindCertUnverified:
		return 5
	}
	// Authentication, configuration and the caller's context end a Dial.
	return 6
}

// Line is the diagnosis as one line: the step and what was seen.
func (d Diagnosis) Line() string {
	if d.Step == "" || d.Kind == KindLostRace || d.Kind == KindDialEnded {
		// Where a stopped attempt was does not matter, only why.
		return d.Detail
	}
	return d.Step + ": " + d.Detail
}

// Advice says what to do about the diagnosis, worded for a; "" when the
// line says it all. A known provider's advice comes first, then what the
// refusal's reason calls for, then what the kind of failure does.
func (d Diagnosis) Advice(a Audience) string {
	if p := d.Provider; p != nil && !(d.Kind == KindAuthRejected && oauthCommand(d.Command)) {
		// A rejected OAuth2 token is a token problem, whatever the
		// provider says about passwords.
		return p.advice(a)
	}
	if d.Kind == KindRefusedTemporary || d.Kind == KindRefusedPermanent {
		if adv := reasonAdvice(d.Reason, a); adv != "" {
			return adv
		}
	}
	port := strconv.Itoa(d.Candidate.Port)
	pick := func(goWords, cliWords string) string {
		if a == CLI {
			return cliWords
		}
		return goWords
	}
	switch d.Kind {
	case KindDNS:
		return "check the host name's spelling and your DNS"
	case KindRefused:
		return "nothing listens on port " + port + " of that host; " + pick("check Dialer.Candidates", "check -port")
	case KindBlocked:
		return "port " + port + " is probably blocked by your network or cloud provider (cloud hosts block 25, some networks block 587); " +
			pick("try another port in Dialer.Candidates (465 or 2525)", "try another port with -port (465/implicit or 2525)")
	case KindNetwork:
		return "check this machine's network connection, its routes and its firewall"
	case KindSilent:
		return "something on the path (a firewall, a transparent proxy) swallows port " + port + "; try another port"
	case KindWrongMode:
		want := tlsmode.Candidate{Port: d.Candidate.Port, Mode: d.Speaks}
		return pick(fmt.Sprintf("configure %s (tlsmode.Candidate{Port: %d, Mode: tlsmode.%s}), or leave the mode out so portwise detects it", want, want.Port, goModeName(d.Speaks)),
			"use -port "+want.String())
	case KindStripped:
		return "do not use this port: a middlebox strips STARTTLS or the server has no TLS here; use port 465 (implicit TLS cannot be stripped)"
	case KindMasked:
		return "a firewall's SMTP inspection (such as Cisco \"inspect esmtp\") masks STARTTLS; disable that inspection, or use port 465 (implicit TLS)"
	case KindInjection:
		return "do not use this port: something on the path injects SMTP replies (CVE-2011-0411 style)"
	case KindTLSVersion:
		return "the server must enable TLS 1.2 or 1.3; portwise does not downgrade"
	case KindTLSAlert:
		return "the server's TLS setup rejects this connection (often: no certificate for the name asked, or no common cipher); check the host name, or ask the server's administrator"
	case KindTLSFailed:
		return "check that port " + port + " speaks " + ModeWords(d.Candidate.Mode) + " as configured"
	case KindCertUntrusted:
		return pick("add the server's CA to Dialer.TLSConfig.RootCAs (or the system roots)", "pass the server's CA with -ca FILE")
	case KindCertName:
		return pick("dial a name the certificate covers, or set Dialer.TLSConfig.ServerName", "connect with a host name the certificate covers")
	case KindCertExpired:
		return "the server's certificate must be renewed (or this machine's clock is wrong)"
	case KindCertUnverified:
		return pick("set Dialer.TLSConfig.RootCAs instead of Dialer.TLSConfig.InsecureSkipVerify, or verify the peer in Dialer.TLSConfig.VerifyConnection", "pass the server's CA with -ca FILE")
	case KindPlaintextAuth:
		return pick("use tlsmode.StartTLS or tlsmode.Implicit: credentials never travel in clear", "use -port "+port+"/starttls or "+port+"/implicit: credentials never travel in clear")
	case KindAuthUnavailable:
		return pick("use a submit.Auth for a mechanism the server offers after TLS (submit.PasswordAuth picks PLAIN or LOGIN)", "the server offers no mechanism these flags can use")
	case KindAuthRejected:
		return d.authAdvice(a)
	case KindAuthTemporary:
		return "the server refused for now; try again later (the credential went to this port only, and was not retried elsewhere)"
	case KindAuthBroken:
		return "the exchange broke after the credential may have reached the server, so it was not sent again; check the server's log"
	case KindRefusedTemporary:
		if d.Reply != nil && d.Reply.Code == 421 {
			return "the server is busy or limiting this client; try again later"
		}
		return "a temporary refusal; try again later"
	case KindRefusedPermanent:
		switch d.Command {
		case "":
			return "the server refuses connections from this client"
		case "MAIL FROM":
			return "the server will not take mail from this sender: send from an address the account may use, and authenticate"
		case "RCPT TO":
			return "the server will not deliver to this recipient: an unknown address, or relaying refused to a client that did not authenticate"
		case "DATA":
			return "the server will not take a message in this transaction; its reply says why"
		case "message":
			return "the server refused the message itself (its content, size or policy); its reply says why"
		}
		return ""
	case KindTimeout:
		return "the server stopped answering; try again later"
	case KindClosed:
		return "the server or something on the path closed the connection; try again later"
	case KindReset:
		return "the server or something on the path reset the connection; try again later"
	case KindProtocol:
		return "the server broke SMTP's rules; report it to its administrator"
	case KindToken:
		return "check that the token endpoint is reachable; if the refresh token was revoked or has expired, authorise the application again"
	case KindDeadline:
		return pick("give the context more time; Dialer.Timeout bounds each attempt", "raise -timeout")
	case KindOutcomeUnknown:
		return "the message may have been delivered: resending it may deliver it twice"
	}
	return ""
}

// authAdvice words a rejected credential by the reply code.
func (d Diagnosis) authAdvice(a Audience) string {
	code := 0
	if d.Reply != nil {
		code = d.Reply.Code
	}
	xoauth2 := "OAuth2 (submit.XOAuth2)"
	if a == CLI {
		xoauth2 = "OAuth2 (-xoauth2-token-env)"
	}
	if oauthCommand(d.Command) {
		if a == CLI {
			return "the access token has expired or been revoked, or was issued without the scope the server needs; pass a fresh one in -xoauth2-token-env"
		}
		return "the access token has expired or been revoked, or was issued without the scope the server needs; give the Auth a source that can refresh (submit.RefreshingTokenSource)"
	}
	switch code {
	case 534:
		return "the server wants a stronger mechanism or a browser login for this account; use " + xoauth2 + " or an app password"
	case 538:
		return "the server requires more encryption for this mechanism than the connection gives"
	case 530:
		return "the server wants authentication first; check that credentials are configured"
	case 504:
		return "the server does not support this mechanism after all"
	}
	return "check the user name and password; providers such as Gmail and Microsoft 365 need an app password or " + xoauth2
}

func goModeName(m tlsmode.Mode) string {
	switch m {
	case tlsmode.Implicit:
		return "Implicit"
	case tlsmode.StartTLS:
		return "StartTLS"
	}
	return "Plaintext"
}

// errAuthBroken marks nothing: an AUTH exchange that broke off has no
// sentinel of its own (ErrProtocol is added when a malformed reply broke
// it); Sentinel returns nil for it.
var errAuthBroken error

// Sentinel returns the exported sentinel for a kind, or nil.
func Sentinel(k Kind) error {
	switch k {
	case KindStripped, KindMasked:
		return ErrSTARTTLSStripped
	case KindInjection:
		return ErrResponseInjection
	case KindWrongMode:
		return ErrWrongMode
	case KindTLSVersion:
		return ErrTLSVersion
	case KindCertUntrusted, KindCertName, KindCertExpired, KindCertUnverified:
		return ErrCertificate
	case KindPlaintextAuth:
		return ErrPlaintextAuth
	case KindAuthRejected:
		return ErrAuthFailed
	case KindAuthUnavailable:
		return ErrMechanismUnavailable
	case KindToken:
		return ErrTokenUnavailable
	case KindProtocol:
		return ErrProtocol
	case KindAuthBroken:
		return errAuthBroken
	case KindBadInput:
		return ErrBadAddress
	case KindOutcomeUnknown:
		return ErrOutcomeUnknown
	}
	return nil
}

// advice words a provider's explanation for a: its cause, its fix, and
// the page that documents it.
func (p *ProviderAdvice) advice(a Audience) string {
	fix := p.Fix
	switch {
	case a == Go && p.FixGo != "":
		fix = p.FixGo
	case a == CLI && p.FixCLI != "":
		fix = p.FixCLI
	}
	s := p.Provider + ": " + strings.TrimSuffix(p.Cause, ".") + "; " + lowerFirst(strings.TrimSuffix(fix, "."))
	if p.Docs != "" {
		s += " (" + p.Docs + ")"
	}
	return s
}

func oauthCommand(command string) bool {
	return command == "AUTH XOAUTH2" || command == "AUTH OAUTHBEARER"
}

// lowerFirst lowers the first letter of a sentence that follows a
// semicolon, unless it starts an acronym or a name ("SMTP", "Gmail's").
func lowerFirst(s string) string {
	if len(s) > 1 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'a' && s[1] <= 'z' && !strings.HasPrefix(s, "Gmail") && !strings.HasPrefix(s, "Google") {
		return string(s[0]+'a'-'A') + s[1:]
	}
	return s
}
