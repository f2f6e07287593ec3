package submit

import (
	"context"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/portwise/portwise/internal/diag"
	"github.com/portwise/portwise/internal/untrusted"
)

// RecipientError is one recipient the server refused.
type RecipientError struct {
	Addr  string
	Reply *Reply
}

// Error is the address and the server's reply to it.
func (e RecipientError) Error() string {
	return untrusted.Name(e.Addr) + ": " + e.Reply.Error()
}

// Unwrap returns the reply.
func (e RecipientError) Unwrap() error { return e.Reply }

// SendError reports recipients the server refused. When some were accepted
// the message went to them; when none were, nothing was sent.
type SendError struct {
	Rejected []RecipientError
	Accepted int // how many recipients accepted the message
}

// Error says whether the message went anywhere, then lists each refusal,
// and what to do about them.
func (e *SendError) Error() string { return e.refusals().Render(diag.Go, "submit: ") }

// Unwrap returns each refusal's *Reply.
func (e *SendError) Unwrap() []error {
	errs := make([]error, len(e.Rejected))
	for i, r := range e.Rejected {
		errs[i] = r.Reply
	}
	return errs
}

// Temporary reports whether every refusal may clear later, so that sending
// again to Retry's recipients may succeed: each a 4xx, unless a provider's
// known reply says otherwise (README.md lists the exceptions). One
// permanent refusal makes it false, whatever the order of the recipients.
func (e *SendError) Temporary() bool { return e.temporary() }

// Retry returns the refused recipients worth trying again later: those
// refused for now (a 4xx, or a reply a provider's knowledge says clears).
func (e *SendError) Retry() []string {
	var out []string
	for _, r := range e.Rejected {
		if r.temporary() {
			out = append(out, r.Addr)
		}
	}
	return out
}

// checkAddr refuses an address that could inject a command or a
// parameter (CR, LF, NUL, an angle bracket), or that holds what no address
// has and what would deceive a person reading it in an error (another
// control character, a bidirectional override, bytes that are not UTF-8).
func checkAddr(kind, addr string) error {
	if strings.ContainsAny(addr, "\r\n\x00<>") {
		return fmt.Errorf("submit: %s address \"%s\" holds CR, LF, NUL or an angle bracket, which would inject a command: %w", kind, untrusted.Name(addr), ErrBadAddress)
	}
	if !utf8.ValidString(addr) || strings.IndexFunc(addr, untrusted.Escaped) >= 0 {
		return fmt.Errorf("submit: %s address \"%s\" holds a control character, a bidirectional override or bytes that are not UTF-8, which no address has: %w", kind, untrusted.Name(addr), ErrBadAddress)
	}
	return nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func upper(s string) string { return strings.ToUpper(s) }

// Send submits one message: MAIL FROM, RCPT TO for each recipient, then
// the message with BDAT when the server offers CHUNKING (RFC 3030), or
// DATA. It streams msg, normalising every bare CR and bare LF to CRLF and
// adding a final CRLF when missing; with DATA it also dot-stuffs, so no
// input can end the message early (SMTP smuggling), and with BDAT the
// chunk's length ends it. With PIPELINING the envelope and the message go
// in one flight: one round trip for a message held in memory. Addresses
// holding CR, LF, NUL, angle brackets or other control characters are
// refused before anything is sent.
//
// Every reply is read and checked in order, and the server's reply to the
// end of the message decides the outcome (SendResult.Outcome): nil when
// it accepted the message; a *SendError when it accepted it for some
// recipients and refused others (or refused them all, and nothing was
// sent); a *StepError holding the server's *Reply when it refused the
// transaction or the message; ErrOutcomeUnknown when the connection broke
// after the end of the message went out and before its reply, so the
// server may have it. ctx bounds every wait; when it ends, the socket is
// closed at once. SendWith takes options and returns what happened.
func (c *Client) Send(ctx context.Context, from string, to []string, msg io.Reader) error {
	_, err := c.SendWith(ctx, from, to, msg, nil)
	return err
}
