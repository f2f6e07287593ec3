package diag

import (
	"strconv"
	"strings"
)

// Reason is what a server's refusal means, when its codes, its words or a
// provider's known reply say: the next move differs for each (sign in, fix
// the sender, drop a recipient, wait a few minutes, wait a day), while the
// reply code only says 4xx or 5xx.
type Reason uint8

// The reasons. Their order is not meaningful.
const (
	ReasonNone              Reason = iota // the reply says nothing more specific
	ReasonAuthRequired                    // relaying refused, or the server wants a signed-in client
	ReasonSender                          // the sender address is not one this login may use
	ReasonRecipientUnknown                // the recipient's mailbox does not exist
	ReasonMailboxFull                     // the recipient's mailbox is over its quota
	ReasonTooManyRecipients               // more recipients than the server takes per message
	ReasonGreylisted                      // a first contact deferred on purpose; a retry in minutes passes
	ReasonContent                         // the message itself: content, attachments, size, policy
	ReasonQuota                           // a sending quota, daily limit or credit balance is used up
	ReasonRateLimited                     // sending too fast or on too many connections
	ReasonAccount                         // the provider account may not send: paused, sandboxed, not permitted
	ReasonCredential                      // the credential is wrong, whatever the reply's code says
	numReasons
)

var reasonNames = [numReasons]string{
	"none", "auth-required", "sender", "recipient-unknown", "mailbox-full", "too-many-recipients",
	"greylisted", "content", "quota", "rate-limited", "account", "credential",
}

// String names the reason, as the golden tests list it.
func (r Reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return "Reason(" + strconv.Itoa(int(r)) + ")"
}

// Reasons returns every reason, in order.
func Reasons() []Reason {
	rs := make([]Reason, numReasons)
	for i := range rs {
		rs[i] = Reason(i)
	}
	return rs
}

// reasonOf reads what a refusal means from what every server has in
// common: the RFC 3463 enhanced code where its subject and detail are
// unambiguous, else wording that mail servers share (Postfix, Exim,
// Dovecot, postgrey, rspamd). command is the refused command ("RCPT TO",
// "MAIL FROM", "" for the greeting); text is lower case. A provider's own
// knowledge, when MatchProvider has it, comes before this.
func reasonOf(command string, code int, enhanced, text string) Reason {
	detail := ""
	if enhanced != "" {
		detail = enhanced[strings.IndexByte(enhanced, '.'):] // ".7.1"
	}
	has := func(phrases ...string) bool {
		for _, p := range phrases {
			if strings.Contains(text, p) {
				return true
			}
		}
		return false
	}
	switch {
	case has("greylist", "graylist"):
		return ReasonGreylisted
	case has("rate limit", "ratelimit", "rate-limit", "sending too fast", "too many emails too fast", "throttl"):
		return ReasonRateLimited
	case detail == ".5.3", has("too many recipients"):
		return ReasonTooManyRecipients
	case detail == ".2.2", has("mailbox full", "mailbox is full", "mailbox for user is full", "over quota"):
		return ReasonMailboxFull
	case has("sending quota", "sending limit", "relay limit", "relay quota") || has("daily") && has("limit", "quota"):
		return ReasonQuota
	case has("relay access denied", "relaying denied", "relay not permitted", "unable to relay", "relay denied",
		"not permitted to relay", "authentication required", "not logged in", "must authenticate"),
		code == 530 && !has("starttls"):
		return ReasonAuthRequired
	case has("sender address rejected", "not owned by", "sender not allowed", "sender is not allowed"),
		detail == ".1.7", detail == ".1.8":
		return ReasonSender
	case command == "RCPT TO" && (detail == ".1.1" || has("user unknown", "unknown user", "no such user", "recipient unknown", "does not exist")):
		return ReasonRecipientUnknown
	case has("content rejected", "message content", "spam", "virus", "malware"), strings.HasPrefix(detail, ".6."):
		return ReasonContent
	}
	return ReasonNone
}

// reasonAdvice words what to do about a refusal whose reason is known.
func reasonAdvice(r Reason, a Audience) string {
	pick := func(goWords, cliWords string) string {
		if a == CLI {
			return cliWords
		}
		return goWords
	}
	switch r {
	case ReasonAuthRequired:
		return pick("the server relays only for clients that signed in: set Dialer.Auth to the account's credential, or send through the submission server of the sender's own account",
			"the server relays only for clients that signed in: run with -user and -password-env (or -xoauth2-token-env), or send through the submission server of the sender's own account")
	case ReasonSender:
		return pick("this login may send only as its own address (or an alias the provider allows): make the envelope sender and the From header that address",
			"this login may send only as its own address (or an alias the provider allows): give -from the address you sign in with")
	case ReasonRecipientUnknown:
		return "the recipient's address does not exist: check it for typos, and stop sending to it if it is right"
	case ReasonMailboxFull:
		return "the recipient's mailbox is full: its owner must make room, so try again much later or reach them another way"
	case ReasonTooManyRecipients:
		return pick("the server takes fewer recipients per message: send to the others in further messages",
			"the server takes fewer recipients per message: split the -to list over several runs")
	case ReasonGreylisted:
		return "the server greylists first contacts: the same message sent again in a few minutes passes"
	case ReasonContent:
		return "the server refused the message itself (its content, attachments or size): change the message, not the recipients"
	case ReasonQuota:
		return "the account has used up a sending quota or limit: wait until it resets (usually within 24 hours), or have the provider raise it"
	case ReasonRateLimited:
		return pick("the server limits how fast this account or client sends: send more slowly (Mailer.RateLimit spaces messages) and retry later",
			"the server limits how fast this account or client sends: wait a few minutes before running again")
	case ReasonAccount:
		return "the provider account may not send at the moment: look in its dashboard or mailbox for why"
	case ReasonCredential:
		return pick("check the user name and password given to Dialer.Auth; sending the same credential again will not help",
			"check -user and the password in the -password-env variable; running again with the same credential will not help")
	}
	return ""
}
