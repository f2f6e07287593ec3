package submit

import "strconv"

// Outcome is what the server may hold of a message once its send has
// ended. It is decided once, by the code that read the server's replies,
// from two facts: whether the end of the message went out, and the
// server's reply to it. Everything else reads it: the error a send
// returns, SendError, the Mailer's redials and retries, and Stats.
type Outcome uint8

const (
	// OutcomeNotSent means the server does not have the message: nothing
	// of it went out, the server refused the transaction before the
	// message could join it (MAIL FROM, every RCPT TO, DATA, a 421), or
	// the connection failed before the end of the message went out.
	// Sending it again cannot deliver it twice.
	OutcomeNotSent Outcome = iota
	// OutcomeAccepted means the server answered the end of the message
	// with 250: it has the message, for SendResult.Accepted.
	OutcomeAccepted
	// OutcomeRefused means the whole message went out and the server
	// refused it (SendResult.Reply). The server says it does not have it;
	// portwise never sends it again on its own, since a server that
	// refuses after reading a message may still have kept it.
	OutcomeRefused
	// OutcomeUnknown means the end of the message went out and no reply
	// to it came back (the connection broke, the caller's context ended):
	// the server may have it. The error wraps ErrOutcomeUnknown.
	OutcomeUnknown
)

// String is the outcome in words: "not sent", "accepted", "refused" or
// "unknown".
func (o Outcome) String() string {
	switch o {
	case OutcomeNotSent:
		return "not sent"
	case OutcomeAccepted:
		return "accepted"
	case OutcomeRefused:
		return "refused"
	case OutcomeUnknown:
		return "unknown"
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}
