package submit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portwise/portwise/internal/queueid"
)

// ErrExtensionMissing means the message needs an SMTP extension the server
// did not advertise after TLS (SMTPUTF8, DSN, REQUIRETLS); nothing was sent.
var ErrExtensionMissing = errors.New("server lacks a required SMTP extension")

// ErrMessageTooLarge means the message is larger than the server's
// advertised SIZE limit; nothing was sent.
var ErrMessageTooLarge = errors.New("message larger than the server accepts")

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
	// Attempts is how many times a Mailer began the message: 1, plus one
	// for each retry after a temporary refusal and each new connection
	// that replaced one the server had closed (see Mailer). A Client's
	// send makes one attempt.
	Attempts int
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

// send is SendWith that also reports what the Mailer needs; attempt is the
// Mailer's attempt at the message, for Trace hooks.
func (c *Client) send(ctx context.Context, attempt int, from string, to []string, msg io.Reader, o *SendOptions) (*SendResult, sendReport, error) {
	res := &SendResult{}
	if err := validate(from, to, o); err != nil {
		return res, sendReport{}, err
	}
	env, err := c.envelope(from, to, msg, o)
	if err != nil {
		return res, sendReport{}, err
	}
	res.Attempts = 1
	trace := ContextTrace(ctx)
	var info MessageInfo
	t0 := time.Now()
	if trace != nil && (trace.MessageStart != nil || trace.MessageDone != nil) {
		info = MessageInfo{Conn: c.connInfo(), Attempt: attempt, Recipients: len(to), Size: env.size, Chunking: env.chunking}
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

// envelope is one message's MAIL FROM and RCPT TO commands, with the
// parameters the server's extensions allow.
type envelope struct {
	mail     string   // "MAIL FROM:<a> BODY=8BITMIME SIZE=n ..."
	rcpts    []string // the recipient addresses, in order
	rcptCmds []string // "RCPT TO:<b> NOTIFY=... ORCPT=...", one per recipient
	// size is the message's exact normalised size when it is held in
	// memory, -1 otherwise (SendOptions.Size is a declaration, not a count:
	// BDAT needs the count).
	size int64
	// chunking: the message goes with BDAT (RFC 3030), not DATA.
	chunking bool
}

// validate checks what needs no server: addresses and option values.
func validate(from string, to []string, o *SendOptions) error {
	if err := checkAddr("sender", from); err != nil {
		return err
	}
	if len(to) == 0 {
		return errors.New("submit: no recipients")
	}
	for _, rcpt := range to {
		if rcpt == "" {
			return errors.New("submit: empty recipient address")
		}
		if err := checkAddr("recipient", rcpt); err != nil {
			return err
		}
	}
	if o == nil || o.DSN == nil {
		return nil
	}
	dsn := o.DSN
	switch dsn.Return {
	case "", "FULL", "HDRS":
	default:
		return fmt.Errorf("submit: DSN Return %q: want \"FULL\" or \"HDRS\"", dsn.Return)
	}
	if id := dsn.EnvelopeID; len(id) > 100 || !printableASCII(id) {
		return fmt.Errorf("submit: DSN EnvelopeID %q: want at most 100 printable ASCII characters", id)
	}
	if len(dsn.Notify) > 0 {
		for _, n := range dsn.Notify {
			switch n {
			case "SUCCESS", "FAILURE", "DELAY":
			case "NEVER":
				if len(dsn.Notify) > 1 {
					return errors.New("submit: DSN Notify: NEVER cannot be combined with other conditions")
				}
			default:
				return fmt.Errorf("submit: DSN Notify %q: want NEVER, SUCCESS, FAILURE or DELAY", n)
			}
		}
	}
	for rcpt, orig := range dsn.OriginalRecipients {
		if !slices.Contains(to, rcpt) {
			return fmt.Errorf("submit: DSN OriginalRecipients has %q, which is not a recipient", rcpt)
		}
		if orig == "" || strings.ContainsAny(orig, "\r\n\x00") {
			return fmt.Errorf("submit: DSN original recipient %q for %q: %w", orig, rcpt, ErrBadAddress)
		}
	}
	return nil
}

// envelope builds the commands for one message, refusing what the server
// cannot take. validate has run.
func (c *Client) envelope(from string, to []string, msg io.Reader, o *SendOptions) (*envelope, error) {
	if o == nil {
		o = &SendOptions{}
	}
	var params []string
	if ok, _ := c.Extension("8BITMIME"); ok {
		params = append(params, "BODY=8BITMIME")
	}
	utf8 := !isASCII(from)
	for _, rcpt := range to {
		utf8 = utf8 || !isASCII(rcpt)
	}
	if utf8 {
		if ok, _ := c.Extension("SMTPUTF8"); !ok {
			return nil, fmt.Errorf("submit: %w: an address is not ASCII and the server on port %d does not advertise SMTPUTF8; nothing was sent — use ASCII addresses (punycode for the domain)", ErrExtensionMissing, c.cand.Port)
		}
		params = append(params, "SMTPUTF8")
	}
	size, known := knownSize(msg)
	exact := int64(-1)
	if known {
		exact = size
	}
	if o.Size > 0 {
		size, known = o.Size, true
	}
	if known {
		if limit, has := c.MaxMessageSize(); has && size > limit {
			return nil, fmt.Errorf("submit: %w: the message is %d bytes and the server on port %d accepts at most %d (SIZE); nothing was sent", ErrMessageTooLarge, size, c.cand.Port, limit)
		}
		if ok, _ := c.Extension("SIZE"); ok {
			params = append(params, "SIZE="+strconv.FormatInt(size, 10))
		}
	}
	if o.RequireTLS {
		ok, _ := c.Extension("REQUIRETLS")
		if !ok || c.tlsState == nil {
			return nil, fmt.Errorf("submit: %w: the message requires TLS all the way (REQUIRETLS) and the server on port %d does not advertise REQUIRETLS after TLS, so it could relay it in clear; nothing was sent", ErrExtensionMissing, c.cand.Port)
		}
		params = append(params, "REQUIRETLS")
	}
	dsn := o.DSN
	if dsn != nil {
		if ok, _ := c.Extension("DSN"); !ok {
			return nil, fmt.Errorf("submit: %w: delivery status notifications were requested and the server on port %d does not advertise DSN; nothing was sent — send without SendOptions.DSN, or through a server that supports it", ErrExtensionMissing, c.cand.Port)
		}
		if dsn.Return != "" {
			params = append(params, "RET="+dsn.Return)
		}
		if dsn.EnvelopeID != "" {
			params = append(params, "ENVID="+xtext(dsn.EnvelopeID))
		}
	}
	env := &envelope{mail: "MAIL FROM:<" + from + ">", rcpts: to, size: exact}
	if ok, _ := c.Extension("CHUNKING"); ok && !o.NoChunking {
		env.chunking = true
	}
	for _, p := range params {
		env.mail += " " + p
	}
	for _, rcpt := range to {
		cmd := "RCPT TO:<" + rcpt + ">"
		if dsn != nil {
			if len(dsn.Notify) > 0 {
				cmd += " NOTIFY=" + strings.Join(dsn.Notify, ",")
			}
			if orig, ok := dsn.OriginalRecipients[rcpt]; ok {
				cmd += " ORCPT=" + orcpt(orig)
			}
		}
		env.rcptCmds = append(env.rcptCmds, cmd)
	}
	return env, nil
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// xtext encodes s as RFC 3461 §4 xtext: "+", "=", and bytes outside
// printable ASCII as "+HH".
func xtext(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '!' || c > '~' || c == '+' || c == '=' {
			fmt.Fprintf(&b, "+%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// orcpt renders an ORCPT value: "rfc822;" with xtext for an ASCII address,
// "utf-8;" with RFC 6533 utf-8-addr-xtext (every non-ASCII character and
// "\", "+", "=", controls and space as \x{HEX}) for the others, which stays
// ASCII so it needs no SMTPUTF8.
func orcpt(addr string) string {
	if isASCII(addr) {
		return "rfc822;" + xtext(addr)
	}
	var b strings.Builder
	b.WriteString("utf-8;")
	for _, r := range addr {
		if r <= ' ' || r >= 0x7f || r == '\\' || r == '+' || r == '=' {
			fmt.Fprintf(&b, `\x{%X}`, r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
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
