package submit

import (
	"errors"
	"strconv"

	"github.com/portwise/portwise/internal/diag"
	"github.com/portwise/portwise/tlsmode"
)

// Kind is what kind of failure an error is, in the terms a program acts
// on: fix the configuration, drop a recipient, slow down, wait for a quota
// to reset. Where the sentinels say what went wrong on the way to a
// session, Kind also says what a server's refusal means, from its codes,
// its words and what portwise knows of providers' replies. Get it with
// KindOf; its String is a short stable name ("rate_limited") fit for a
// log field, a metric label or OpenTelemetry's error.type. Whether to
// retry is IsTemporary's to say: a Kind does not decide it (a 421 and a
// 550 may both be KindRateLimited).
type Kind uint8

// The kinds of failure. New kinds may be added; a program's switch should
// have a default.
const (
	KindNone              Kind = iota // no failure: KindOf(nil)
	KindOther                         // none of the kinds below
	KindCanceled                      // the caller cancelled (its context, Mailer.Close), or another port won
	KindDeadline                      // the caller's deadline passed
	KindUnreachable                   // no session: the name does not resolve, the port is refused, blocked or silent
	KindConnection                    // the connection broke or stopped answering mid-session
	KindInsecure                      // no secure session: STARTTLS stripped or masked, injected replies, TLS below 1.2 or a failed handshake
	KindCertificate                   // the certificate did not verify (ErrCertificate)
	KindConfig                        // the configuration cannot work: a wrong mode, AUTH without TLS, no usable mechanism, a bad address, URL or option
	KindCredential                    // the credential was rejected, or no access token could be had (ErrAuthFailed, ErrTokenUnavailable)
	KindProtocol                      // the server broke SMTP's rules or bounds, or broke off the AUTH exchange
	KindOutcomeUnknown                // the message may have been delivered (ErrOutcomeUnknown)
	KindRefused                       // the server refused, for a reason its reply does not make known
	KindAuthRequired                  // the server relays only for a signed-in client, or another client identity
	KindSender                        // the sender address is not one this login or account may use
	KindRecipientUnknown              // the recipient's mailbox does not exist
	KindMailboxFull                   // the recipient's mailbox is full
	KindTooManyRecipients             // more recipients than the server takes in one message
	KindGreylisted                    // greylisting: the same message sent again in minutes passes
	KindContent                       // the message itself: its content, attachments, size or lines
	KindQuota                         // a sending quota, daily limit or credit balance is used up until it resets
	KindRateLimited                   // sending too fast or on too many connections
	KindAccount                       // the provider account may not send: paused, sandboxed, not permitted
	numKinds
)

var kindNames = [numKinds]string{
	"none", "other", "canceled", "deadline", "unreachable", "connection", "insecure", "certificate", "config",
	"credential", "protocol", "outcome_unknown", "refused", "auth_required", "sender", "recipient_unknown",
	"mailbox_full", "too_many_recipients", "greylisted", "content", "quota", "rate_limited", "account",
}

// String is the kind's stable name: "rate_limited", "recipient_unknown".
func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// KindOf returns the kind of failure err is: a *DialError's is that of the
// failure that decided it, a *SendError's that of its first permanent
// refusal (else its first), a *StepError's or a RecipientError's that of
// its own; any other error is classified as a Dial's would be.
func KindOf(err error) Kind {
	if err == nil {
		return KindNone
	}
	var (
		send  *SendError
		dial  *DialError
		step  *StepError
		rcpt  RecipientError
		reply *Reply
	)
	switch {
	case errors.Is(err, ErrOutcomeUnknown):
		return KindOutcomeUnknown
	case errors.As(err, &send):
		if len(send.Rejected) == 0 {
			return KindRefused
		}
		for _, r := range send.Rejected {
			if !r.temporary() {
				return kindOf(r.diagnosis())
			}
		}
		return kindOf(send.Rejected[0].diagnosis())
	case errors.As(err, &dial):
		if se := dial.decisive(); se != nil {
			return kindOf(se.diagnosis())
		}
		return KindOther
	case errors.As(err, &step):
		return kindOf(step.diagnosis())
	case errors.As(err, &rcpt):
		return kindOf(rcpt.diagnosis())
	case errors.As(err, &reply):
		return kindOf(diag.Refused("", "", reply.Code, reply.Enhanced, reply.Text))
	case errors.Is(err, ErrLineTooLong), errors.Is(err, ErrMessageTooLarge):
		return KindContent
	case errors.Is(err, ErrExtensionMissing), errors.Is(err, ErrBadURL):
		return KindConfig
	case errors.Is(err, ErrMailerClosed):
		return KindCanceled
	}
	return kindOf(diag.Classify("", tlsmode.Candidate{}, "", 0, err))
}

// kindOf names a diagnosis for programs: what a refusal means first, then
// what failed.
func kindOf(d diag.Diagnosis) Kind {
	switch d.Reason {
	case diag.ReasonAuthRequired:
		return KindAuthRequired
	case diag.ReasonSender:
		return KindSender
	case diag.ReasonRecipientUnknown:
		return KindRecipientUnknown
	case diag.ReasonMailboxFull:
		return KindMailboxFull
	case diag.ReasonTooManyRecipients:
		return KindTooManyRecipients
	case diag.ReasonGreylisted:
		return KindGreylisted
	case diag.ReasonContent:
		return KindContent
	case diag.ReasonQuota:
		return KindQuota
	case diag.ReasonRateLimited:
		return KindRateLimited
	case diag.ReasonAccount:
		return KindAccount
	case diag.ReasonCredential:
		return KindCredential
	}
	switch d.Kind {
	case diag.KindCanceled, diag.KindLostRace, diag.KindDialEnded:
		return KindCanceled
	case diag.KindDeadline:
		return KindDeadline
	case diag.KindDNS, diag.KindRefused, diag.KindBlocked, diag.KindSilent, diag.KindNetwork:
		return KindUnreachable
	case diag.KindClosed, diag.KindReset, diag.KindTimeout:
		return KindConnection
	case diag.KindStripped, diag.KindMasked, diag.KindInjection, diag.KindTLSVersion, diag.KindTLSAlert, diag.KindTLSFailed:
		return KindInsecure
	case diag.KindCertUntrusted, diag.KindCertName, diag.KindCertExpired, diag.KindCertUnverified:
		return KindCertificate
	case diag.KindConfig, diag.KindBadInput, diag.KindWrongMode, diag.KindPlaintextAuth, diag.KindAuthUnavailable:
		return KindConfig
	case diag.KindToken, diag.KindAuthRejected:
		return KindCredential
	case diag.KindProtocol, diag.KindAuthBroken:
		return KindProtocol
	case diag.KindOutcomeUnknown:
		return KindOutcomeUnknown
	case diag.KindAuthTemporary, diag.KindRefusedTemporary, diag.KindRefusedPermanent:
		return KindRefused
	}
	return KindOther
}
