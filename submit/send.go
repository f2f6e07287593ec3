package submit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/portwise/portwise/internal/wire"
)

// RecipientError is one recipient the server refused.
type RecipientError struct {
	Addr  string
	Reply *Reply
}

// Error is the address and the server's reply to it.
func (e RecipientError) Error() string {
	return e.Addr + ": " + e.Reply.Error()
}

// Unwrap returns the reply.
func (e RecipientError) Unwrap() error { return e.Reply }

// SendError reports recipients the server refused. When some were accepted
// the message went to them; when none were, nothing was sent.
type SendError struct {
	Rejected []RecipientError
	Accepted int // how many recipients accepted the message
}

// Error says whether the message went anywhere, then lists each refusal.
func (e *SendError) Error() string {
	var b strings.Builder
	if e.Accepted == 0 {
		b.WriteString("submit: every recipient was refused; nothing was sent")
	} else {
		fmt.Fprintf(&b, "submit: sent to %d recipient(s), refused by the server for %d", e.Accepted, len(e.Rejected))
	}
	for _, r := range e.Rejected {
		b.WriteString("\n  ")
		b.WriteString(r.Error())
	}
	return b.String()
}

// Unwrap returns each refusal's *Reply.
func (e *SendError) Unwrap() []error {
	errs := make([]error, len(e.Rejected))
	for i, r := range e.Rejected {
		errs[i] = r.Reply
	}
	return errs
}

// Temporary reports whether every refusal was temporary (4xx), so that
// sending again to Retry's recipients may succeed; one permanent refusal
// makes it false, whatever the order of the recipients.
func (e *SendError) Temporary() bool {
	for _, r := range e.Rejected {
		if !r.Reply.Temporary() {
			return false
		}
	}
	return len(e.Rejected) > 0
}

// Retry returns the refused recipients worth trying again later: those
// refused with a 4xx.
func (e *SendError) Retry() []string {
	var out []string
	for _, r := range e.Rejected {
		if r.Reply.Temporary() {
			out = append(out, r.Addr)
		}
	}
	return out
}

// checkAddr refuses addresses that could inject commands or parameters.
func checkAddr(kind, addr string) error {
	if strings.ContainsAny(addr, "\r\n\x00<>") {
		return fmt.Errorf("submit: %s address %q holds CR, LF, NUL or an angle bracket, which would inject a command: %w", kind, addr, ErrBadAddress)
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
// chunk's length ends it. With PIPELINING the envelope and the message
// go in one flight: one round trip for a message held in memory. Addresses holding CR, LF or NUL are refused before
// anything is sent. A refused recipient does not stop the others; see
// SendError. A refusal of a command or of the message is a *StepError
// holding the server's *Reply; a connection that breaks after the message
// was sent and before the reply gives ErrOutcomeUnknown. SendWith takes
// options and returns what happened.
func (c *Client) Send(ctx context.Context, from string, to []string, msg io.Reader) error {
	_, err := c.SendWith(ctx, from, to, msg, nil)
	return err
}

// mailTransaction runs one mail transaction on c: MAIL FROM, RCPT TO for
// each recipient, DATA (or BDAT, see bdatTransaction) with msg streamed
// through the normalising writer, and the final reply; it fills res as it
// goes. consumed reports that msg began to be read, so that sending it
// again needs it rewound.
//
// When the server advertises PIPELINING (RFC 2920) the envelope goes as one
// group; otherwise one command and one reply at a time. Either way every
// reply is read and checked in order, so per-recipient refusals are exact.
func (c *Client) mailTransaction(ctx context.Context, env *envelope, msg io.Reader, res *SendResult) (consumed bool, err error) {
	if env.chunking {
		return c.bdatTransaction(ctx, env, msg, res)
	}
	end, err := c.begin(ctx, commandTimeout)
	if err != nil {
		return false, err
	}
	defer end()
	c.txs++
	t0 := time.Now()
	if c.pipelining {
		err = c.envelopePipelined(ctx, t0, env, res)
	} else {
		err = c.envelopeSerial(ctx, t0, env, res, true)
	}
	if err != nil {
		return false, err
	}
	return true, c.sendBody(ctx, msg, res, t0)
}

// envelopeSerial sends RSET (when a transaction was left open), MAIL, each
// RCPT and, when data is set, DATA, waiting for each reply. It returns nil
// once the server answered DATA with 354, or, without data, once at least
// one recipient was accepted.
func (c *Client) envelopeSerial(ctx context.Context, t0 time.Time, env *envelope, res *SendResult, data bool) error {
	if c.inTx {
		// A previous transaction ended without a final reply (DATA was
		// refused): clear it, or MAIL would be a nested transaction.
		r, err := c.conn.Exchange("RSET", "")
		if err != nil {
			return c.transportErr(ctx, t0, "RSET", err)
		}
		if err := c.checkRSET(t0, r); err != nil {
			return err
		}
	}
	r, err := c.conn.Exchange(env.mail, "")
	if err != nil {
		return c.transportErr(ctx, t0, "MAIL FROM", err)
	}
	if err := c.checkMAIL(t0, r); err != nil {
		return err
	}
	for i := range env.rcpts {
		r, err := c.conn.Exchange(env.rcptCmds[i], "")
		if err != nil {
			return c.transportErr(ctx, t0, "RCPT TO", err)
		}
		if err := c.checkRCPT(t0, r, env.rcpts[i], res); err != nil {
			return err
		}
	}
	if len(res.Accepted) == 0 {
		return c.abandon(ctx, t0, res)
	}
	if !data {
		return nil
	}
	r, err = c.conn.Exchange("DATA", "")
	if err != nil {
		return c.transportErr(ctx, t0, "DATA", err)
	}
	if r.Code != 354 {
		return c.replyErr(t0, "DATA", r)
	}
	return nil
}

// envelopePipelined sends RSET (when needed), MAIL, every RCPT and DATA in
// one flight and then reads their replies in order (RFC 2920 §3.1: DATA is
// the last command of a group). A server that accepts DATA although no
// recipient was accepted gets an empty message, which it must refuse.
func (c *Client) envelopePipelined(ctx context.Context, t0 time.Time, env *envelope, res *SendResult) error {
	rset := c.inTx
	if rset {
		if err := c.conn.Queue("RSET", ""); err != nil {
			return c.transportErr(ctx, t0, "RSET", err)
		}
	}
	cmds := append(append([]string{env.mail}, env.rcptCmds...), "DATA")
	for _, cmd := range cmds {
		if err := c.conn.Queue(cmd, ""); err != nil {
			return c.transportErr(ctx, t0, "MAIL FROM", err)
		}
	}
	if err := c.conn.Flush(); err != nil {
		return c.transportErr(ctx, t0, "MAIL FROM", err)
	}
	// Every reply is read even after a refusal, to keep the stream in step;
	// the first refusal that matters is returned.
	var first error
	read := func(step string) (*wire.Reply, error) {
		r, err := c.conn.ReadReply()
		if err != nil {
			return nil, c.transportErr(ctx, t0, step, err)
		}
		if r.Code == 421 {
			return nil, c.replyErr(t0, step, r)
		}
		return r, nil
	}
	if rset {
		r, err := read("RSET")
		if err != nil {
			return err
		}
		first = c.checkRSET(t0, r)
	}
	r, err := read("MAIL FROM")
	if err != nil {
		return err
	}
	if err := c.checkMAIL(t0, r); err != nil && first == nil {
		first = err
	}
	for _, rcpt := range env.rcpts {
		r, err := read("RCPT TO")
		if err != nil {
			return err
		}
		if first == nil {
			c.checkRCPT(t0, r, rcpt, res)
		}
	}
	r, err = read("DATA")
	if err != nil {
		return err
	}
	if r.Code == 354 && (first != nil || len(res.Accepted) == 0) {
		// The server should have refused DATA. Ending the message with
		// "." could deliver it, empty, to the recipients of a transaction
		// the server still holds (Postfix does, after a refused nested
		// MAIL); closing the connection before the end of DATA makes the
		// server discard it.
		c.fail(errors.New("the server accepted DATA for a transaction the client had given up"))
		if first == nil {
			first = &SendError{Rejected: res.Rejected}
		}
		return first
	}
	switch {
	case first != nil:
		return first
	case len(res.Accepted) == 0:
		// DATA was refused for want of recipients. The server may still
		// hold the transaction MAIL FROM opened (Postfix does): inTx
		// stays set, so the next message starts with RSET.
		return &SendError{Rejected: res.Rejected}
	case r.Code != 354:
		return c.replyErr(t0, "DATA", r)
	}
	return nil
}

func (c *Client) checkRSET(t0 time.Time, r *wire.Reply) error {
	if r.Code != 250 {
		return c.replyErr(t0, "RSET", r)
	}
	c.inTx = false
	return nil
}

func (c *Client) checkMAIL(t0 time.Time, r *wire.Reply) error {
	if r.Code != 250 {
		return c.replyErr(t0, "MAIL FROM", r)
	}
	c.inTx = true
	return nil
}

// checkRCPT records one recipient's verdict; only a 421 is an error.
func (c *Client) checkRCPT(t0 time.Time, r *wire.Reply, rcpt string, res *SendResult) error {
	switch {
	case r.Code == 250 || r.Code == 251:
		res.Accepted = append(res.Accepted, rcpt)
	case r.Code == 421:
		return c.replyErr(t0, "RCPT TO", r)
	default:
		res.Rejected = append(res.Rejected, RecipientError{Addr: rcpt, Reply: newReply(r)})
	}
	return nil
}

// abandon ends a transaction in which every recipient was refused: RSET,
// and nothing is sent.
func (c *Client) abandon(ctx context.Context, t0 time.Time, res *SendResult) error {
	if r, err := c.conn.Exchange("RSET", ""); err != nil {
		c.transportErr(ctx, t0, "RSET", err)
	} else if r.Code == 421 {
		c.replyErr(t0, "RSET", r)
	} else if r.Code == 250 {
		c.inTx = false
	}
	return &SendError{Rejected: res.Rejected}
}

// sendBody streams msg after a 354, ends it and reads the final reply.
func (c *Client) sendBody(ctx context.Context, msg io.Reader, res *SendResult, t0 time.Time) error {
	dw := newDataWriter(c.conn.Writer())
	if _, err := io.Copy(dw, msg); err != nil {
		// DATA cannot be aborted in band: closing the connection before
		// the final "." makes the server discard the partial message.
		if errors.Is(err, ErrLineTooLong) || dw.err == nil {
			// The message itself failed (a long line, the reader's own
			// error): nothing is wrong with the server.
			c.fail(err)
			return fmt.Errorf("submit: message not sent, connection closed: %w", err)
		}
		return c.transportErr(ctx, t0, "message", err)
	}
	if err := dw.Close(); err != nil {
		return c.transportErr(ctx, t0, "DATA", err)
	}
	res.Size = dw.size()
	c.conn.Transcript().Note("[%d bytes of message]", dw.n)
	if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > dataTimeout {
		c.conn.SetDeadline(time.Now().Add(dataTimeout))
	}
	if err := c.conn.Flush(); err != nil {
		return c.transportErr(ctx, t0, "DATA", fmt.Errorf("%w: %v", ErrOutcomeUnknown, err))
	}
	r, err := c.conn.ReadReply()
	if err != nil {
		return c.transportErr(ctx, t0, "message", fmt.Errorf("%w: the connection broke after the message was sent and before the server answered (%v); it may or may not have been accepted", ErrOutcomeUnknown, err))
	}
	c.inTx = false
	c.logger(ctx, "send", time.Since(t0), nil)
	res.Reply = r.String()
	if r.Code != 250 {
		return c.replyErr(t0, "message", r)
	}
	res.QueueID = QueueID(r.Text())
	if len(res.Rejected) > 0 {
		return &SendError{Rejected: res.Rejected, Accepted: len(res.Accepted)}
	}
	return nil
}
