package submit

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/portwise/portwise/internal/diag"
	"github.com/portwise/portwise/internal/queueid"
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

// SendOptions are the per-message options of SendWith. A nil *SendOptions
// sends as Send does.
type SendOptions struct {
	// DSN requests delivery status notifications (RFC 3461). nil requests
	// none, leaving notifications to the server's defaults. The server must
	// advertise DSN, or nothing is sent (ErrExtensionMissing).
	DSN *DSNOptions
	// RequireTLS asks every server on the way to relay the message only
	// over verified TLS, and to bounce it rather than fall back to clear
	// text (RFC 8689). The server must advertise REQUIRETLS after TLS, or
	// nothing is sent (ErrExtensionMissing).
	RequireTLS bool
	// Size is the message size in bytes, declared in MAIL FROM and checked
	// against the server's SIZE limit before MAIL FROM. 0 means unknown;
	// the size of a *bytes.Reader, *bytes.Buffer or *strings.Reader is
	// known without it, exactly (after line-ending normalisation).
	Size int64
	// NoChunking sends the message with DATA even when the server offers
	// CHUNKING, where it would otherwise go with BDAT (RFC 3030), in one
	// flight with the envelope when the server also offers PIPELINING.
	NoChunking bool
}

// DSNOptions are the delivery status notification parameters of one
// message (RFC 3461).
type DSNOptions struct {
	// Return is RET: what a failure notice returns of the message, "FULL"
	// (all of it) or "HDRS" (its header); "" leaves it to the server.
	Return string
	// EnvelopeID is ENVID, returned in every notification so it can be
	// matched to this message: printable ASCII, at most 100 characters.
	EnvelopeID string
	// Notify is NOTIFY for every recipient: any of "SUCCESS", "FAILURE"
	// and "DELAY", or "NEVER" alone (RFC 3461 §4.1); nil leaves it to the
	// server (usually failures and delays).
	Notify []string
	// OriginalRecipients maps a recipient, as passed to SendWith, to ORCPT:
	// the address it was originally given as, before forwarding or
	// aliasing by the application.
	OriginalRecipients map[string]string
}

// SendResult is what happened to one message.
type SendResult struct {
	// Outcome is what the server may have of the message: not sent,
	// accepted, refused after it had it all, or unknown. The error says
	// the same; Outcome lets a program branch without reading it.
	Outcome Outcome
	// Size is the size of the message as sent, after line-ending
	// normalisation: what SIZE= declares and the server counts (RFC 1870),
	// without DATA's dot-stuffing and terminator.
	Size int64
	// Accepted lists the recipients the server accepted, in order.
	Accepted []string
	// Rejected lists the recipients the server refused, with its reply.
	Rejected []RecipientError
	// QueueID is the server's id for the message, parsed from its final
	// reply (Postfix "queued as 4F2A1", Exim "id=1abc-…", sendmail, Gmail);
	// "" when the reply carries none that portwise recognises.
	QueueID string
	// Reply is the server's final reply to the message, e.g.
	// "250 2.0.0 Ok: queued as 4F2A1"; "" when none was received.
	Reply string
	// Tries is how many times a Mailer began the message: 1, plus one for
	// each retry after a temporary refusal and each new connection that
	// replaced one the server had closed (see Mailer). A Client's send is
	// one try. (An Attempt is something else: a port's run in a Dial.)
	Tries int
}

// SendWith submits one message as Send does, with options, and reports
// what happened. The result is never nil: on failure it holds what was
// learnt before it (recipients accepted and refused, the outcome). When
// some recipients were refused and others accepted, the message went to
// the accepted ones and err is a *SendError; when none were accepted,
// nothing was sent. Every check that needs no server reply (addresses,
// DSN parameters, SMTPUTF8, REQUIRETLS, SIZE) happens before MAIL FROM.
func (c *Client) SendWith(ctx context.Context, from string, to []string, msg io.Reader, o *SendOptions) (*SendResult, error) {
	res, _, err := c.send(ctx, 1, from, to, msg, o)
	return res, err
}

// sendReport is what a Mailer learns from a send beyond its result.
type sendReport struct {
	consumed bool      // msg began to be read: sending it again needs it rewound
	content  time.Time // when it began to be read; zero if it never was
	dropped  bool      // the connection failed, or the server ended it, during the send
}

// send is SendWith that also reports what the Mailer needs; try is the
// Mailer's try at the message, for Trace hooks.
func (c *Client) send(ctx context.Context, try int, from string, to []string, msg io.Reader, o *SendOptions) (*SendResult, sendReport, error) {
	res := &SendResult{}
	if err := validate(from, to, o); err != nil {
		return res, sendReport{}, err
	}
	env, err := c.envelope(from, to, msg, o)
	if err != nil {
		return res, sendReport{}, err
	}
	res.Tries = 1
	trace := ContextTrace(ctx)
	var info MessageInfo
	t0 := time.Now()
	if trace != nil && (trace.MessageStart != nil || trace.MessageDone != nil) {
		info = MessageInfo{Conn: c.connInfo(), Try: try, Recipients: len(to), Size: env.size, Chunking: env.chunking}
		hook(trace, func(t *Trace) func(MessageInfo) { return t.MessageStart }, info)
	}
	rep, err := c.transaction(ctx, env, msg, res)
	if trace != nil && trace.MessageDone != nil {
		info.Size, info.Outcome, info.Err, info.Elapsed = res.Size, res.Outcome, err, time.Since(t0)
		info.Envelope = info.Elapsed
		if !rep.content.IsZero() {
			info.Envelope = rep.content.Sub(t0)
		}
		info.Accepted, info.Rejected, info.QueueID = len(res.Accepted), len(res.Rejected), res.QueueID
		var se *StepError
		switch {
		case errors.As(err, &se):
			info.Step = se.Step
		case err != nil && len(res.Rejected) > 0:
			info.Step = "RCPT TO"
		case err != nil:
			info.Step = "message"
		}
		trace.MessageDone(info)
	}
	return res, rep, err
}

// QueueID returns the queue id in the text of a server's final reply to a
// message, e.g. "4F2A1" from "2.0.0 Ok: queued as 4F2A1", or "" when it
// finds none. It recognises the formats of Postfix and the servers that
// imitate it (SendGrid, Mailpit), Yandex, Exim and GMX ("id=..."),
// sendmail ("ID Message accepted for delivery"), Gmail ("OK 1700000000 ID -
// gsmtp"), Haraka ("Message Queued (ID)"), Amazon SES ("Ok ID") and
// Microsoft Exchange relays ("[InternalId=N, ...]"). Microsoft 365's
// client submission reply echoes the message's own Message-ID and has no
// queue id; nor do go-smtp, maddy, Mailgun, chasquid, aiosmtpd and
// Nodemailer's smtp-server. An id is at most 128 bytes of printable ASCII.
func QueueID(reply string) string { return queueid.Parse(reply) }
