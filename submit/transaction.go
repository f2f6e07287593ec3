package submit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/portwise/portwise/internal/wire"
)

// tx is one mail transaction on a Client: MAIL FROM, RCPT TO for each
// recipient, and the message with DATA or BDAT (RFC 3030), the commands
// going in one flight when the server offers PIPELINING (RFC 2920).
//
// It is the one reader of the server's replies to them, for DATA and BDAT
// alike, and it records the facts that decide what the server may have as
// they happen: whether the end of the message went out (ended), and the
// reply to it (final). outcome turns them into the send's Outcome, and
// finish into its error; nothing else judges a send.
type tx struct {
	c   *Client
	ctx context.Context
	t0  time.Time
	env *envelope
	res *SendResult

	owed []owed // commands whose replies are still to be read, oldest first
	rcpt int    // the recipient whose RCPT TO reply is next

	mailOK   bool        // MAIL FROM was accepted: a transaction is open
	void     bool        // no transaction can take the message: MAIL FROM or every recipient refused, or a 421 before its end
	refusal  error       // the first refusal of the transaction (one recipient's is in res.Rejected)
	closing  bool        // the server said 421 or refused RSET: the connection ends with the send
	data354  bool        // DATA was answered 354
	consumed bool        // the message began to be read
	content  time.Time   // when it began to be read (MessageInfo.Envelope)
	ended    bool        // the end of the message went out whole: from here on the server may have it
	final    *wire.Reply // the server's reply to the end of the message
	lost     error       // the connection failed: no reply comes any more
	lostStep string
	local    error // the message failed on our side (a line too long, the reader's error)
}

// owed is a command whose reply is due.
type owed uint8

const (
	owedMAIL  owed = iota
	owedRCPT       // one recipient
	owedDATA       // DATA, which a 354 answers
	owedChunk      // a BDAT chunk that is not the last
	owedEnd        // the end of the message: the LAST chunk, or DATA's final "."
)

// step names the command in errors, as StepError.Step does.
func (o owed) step() string {
	switch o {
	case owedMAIL:
		return "MAIL FROM"
	case owedRCPT:
		return "RCPT TO"
	case owedDATA:
		return "DATA"
	}
	return "message"
}

// transaction sends one message on c and decides its outcome, which it
// records in res; its report says whether and when msg began to be read,
// and whether the connection failed or the server ended it during the
// send.
func (c *Client) transaction(ctx context.Context, env *envelope, msg io.Reader, res *SendResult) (sendReport, error) {
	end, err := c.begin(ctx, commandTimeout)
	if err != nil {
		return sendReport{}, err
	}
	defer end()
	t := &tx{c: c, ctx: ctx, t0: time.Now(), env: env, res: res}
	switch {
	case c.inTx && !t.reset():
	case env.chunking && c.pipelining && c.txs > 0 && !t.checkIdle():
	default:
		c.txs++
		if env.chunking {
			t.sendBDAT(msg)
		} else {
			t.sendDATA(msg)
		}
	}
	err = t.finish()
	return sendReport{consumed: t.consumed, content: t.content, dropped: t.lost != nil || t.closing}, err
}

// consume marks the message's content as beginning to be read, now.
func (t *tx) consume() {
	t.consumed, t.content = true, time.Now()
}

// reset ends, with RSET alone, a transaction an earlier send left open (its
// DATA or a chunk was refused): a MAIL FROM now would be a nested
// transaction, and a message pipelined behind it could join the old one. A
// server that refuses RSET leaves the connection in a state no message
// should meet: it is closed, and nothing of the message goes out.
func (t *tx) reset() bool {
	c := t.c
	r, err := c.conn.Exchange("RSET", "")
	switch {
	case err != nil:
		t.fail("RSET", err)
		return false
	case r.Code != 250:
		t.refuse(c.replyErr(t.t0, "RSET", r))
		t.closing = true
		return false
	}
	c.inTx = false
	return true
}

// checkIdle makes sure, before a message goes out whole ahead of any
// reply, that the server did not close the connection while it sat idle
// (often with an unasked "421 timeout"), so that a stale connection costs
// nothing and the message is not lost in it. It costs no round trip.
func (t *tx) checkIdle() bool {
	c := t.c
	r, err := c.conn.Unsolicited(c.deadline(t.ctx, commandTimeout))
	switch {
	case err != nil:
		t.fail("MAIL FROM", fmt.Errorf("the server closed the connection while it was idle: %w", err))
		return false
	case r != nil:
		t.refuse(c.replyErr(t.t0, "MAIL FROM", r))
		t.closing = true // its replies are out of step with the commands
		return false
	}
	return true
}

// sendDATA sends the message with DATA: the envelope and DATA in one
// flight with PIPELINING (DATA ends a group, RFC 2920 §3.1), else one
// command at a time; the message only after the 354.
func (t *tx) sendDATA(msg io.Reader) {
	if t.c.pipelining {
		if !t.queueEnvelope() || !t.queue("DATA", owedDATA) || !t.flush("MAIL FROM") {
			return
		}
		t.drain(0)
	} else if !t.envelopeSerial() || !t.exchange("DATA", owedDATA) {
		return
	}
	if t.lost != nil {
		return
	}
	if t.stopped() {
		if t.data354 {
			// The server should have refused DATA. Ending the message
			// could deliver it, empty, to a transaction the server still
			// holds (Postfix does, after a refused nested MAIL); closing
			// the connection before the end of DATA makes it discard it.
			t.c.fail(errors.New("the server accepted DATA for a transaction the client had given up"))
			t.closing = true
		}
		return
	}
	t.dataBody(msg)
}

// dataBody streams the message after the 354 through the normalising,
// dot-stuffing writer, ends it and reads the final reply.
func (t *tx) dataBody(msg io.Reader) {
	c := t.c
	t.consume()
	dw := newDataWriter(c.conn.Writer())
	if _, err := io.Copy(dw, msg); err != nil {
		if errors.Is(err, ErrLineTooLong) || dw.err == nil {
			// The message itself failed (a long line, the reader's own
			// error): DATA cannot be aborted in band, and closing the
			// connection before the final "." makes the server discard
			// the partial message.
			c.fail(err)
			t.local = fmt.Errorf("submit: message not sent, connection closed: %w", err)
			return
		}
		t.fail("message", err)
		return
	}
	if err := dw.Close(); err != nil {
		t.fail("message", err)
		return
	}
	t.res.Size = dw.size()
	t.owed = append(t.owed, owedEnd)
	t.endMessage(dw.n)
	t.drain(0)
}

// queueEnvelope buffers MAIL FROM and every RCPT TO, for a flight.
func (t *tx) queueEnvelope() bool {
	if !t.queue(t.env.mail, owedMAIL) {
		return false
	}
	for _, cmd := range t.env.rcptCmds {
		if !t.queue(cmd, owedRCPT) {
			return false
		}
	}
	return true
}

// envelopeSerial sends MAIL FROM and each RCPT TO, waiting for each reply.
// It reports whether the message may follow: MAIL FROM and at least one
// recipient accepted. When every recipient was refused, RSET ends the
// transaction.
func (t *tx) envelopeSerial() bool {
	ok := t.exchange(t.env.mail, owedMAIL)
	for i := 0; ok && i < len(t.env.rcptCmds); i++ {
		ok = t.exchange(t.env.rcptCmds[i], owedRCPT)
	}
	if !ok && t.mailOK && t.lost == nil && !t.closing {
		t.abandon()
	}
	return ok
}

// abandon ends with RSET a transaction in which every recipient was
// refused; nothing of the message was sent.
func (t *tx) abandon() {
	c := t.c
	r, err := c.conn.Exchange("RSET", "")
	switch {
	case err != nil:
		t.fail("RSET", err)
	case r.Code == 250:
		c.inTx = false
	case r.Code == 421:
		t.closing = true
	}
	// Another refusal leaves inTx set: the next message resets first.
}

// endMessage sends what is buffered, the end of the message last; once it
// went out whole the server may have the message.
func (t *tx) endMessage(n int64) {
	c := t.c
	c.conn.Transcript().Note("[%d bytes of message]", n)
	c.setDeadline(t.ctx, dataTimeout)
	if err := c.conn.Flush(); err != nil {
		// Not everything went out: the end of the message did not.
		t.fail("message", err)
		return
	}
	t.ended = true
}

// queue buffers one command whose reply is owed; false when the
// connection failed.
func (t *tx) queue(line string, o owed) bool {
	if err := t.c.conn.Queue(line, ""); err != nil {
		t.fail(o.step(), err)
		return false
	}
	t.owed = append(t.owed, o)
	return true
}

// flush sends what was queued; false when the connection failed.
func (t *tx) flush(step string) bool {
	if err := t.c.conn.Flush(); err != nil {
		t.fail(step, err)
		return false
	}
	return true
}

// exchange sends one command and reads every owed reply; it reports
// whether the transaction may go on.
func (t *tx) exchange(line string, o owed) bool {
	if !t.queue(line, o) || !t.flush(o.step()) {
		return false
	}
	t.drain(0)
	return !t.stopped()
}

// stopped reports that nothing more of the message may go out: the
// transaction was refused or cannot take it, or the connection is gone.
func (t *tx) stopped() bool { return t.refusal != nil || t.void || t.lost != nil }

// drain reads owed replies until at most keep remain. Every reply is
// read, even after a refusal, so that the final reply, when there is one,
// decides the outcome; only a lost connection stops it.
func (t *tx) drain(keep int) {
	for len(t.owed) > keep && t.lost == nil {
		o := t.owed[0]
		t.owed = t.owed[1:]
		t.read(o)
	}
}

// read reads and judges the reply to one command.
func (t *tx) read(o owed) {
	c := t.c
	if o == owedEnd {
		c.setDeadline(t.ctx, dataTimeout)
	}
	r, err := c.conn.ReadReply()
	if err != nil {
		t.fail(o.step(), err)
		return
	}
	if r.Code == 421 {
		// The server is closing the connection (RFC 5321 §3.8): it takes
		// nothing more, and drops a transaction it has not ended. The
		// replies still owed are read all the same: a server that went on
		// and answered the end of the message decides with that reply.
		t.closing = true
		if o != owedEnd {
			t.void = true
			t.refuse(c.replyErr(t.t0, o.step(), r))
			return
		}
	}
	switch o {
	case owedMAIL:
		if r.Code == 250 {
			t.mailOK = true
			c.inTx = true
			return
		}
		t.void = true
		t.refuse(c.replyErr(t.t0, "MAIL FROM", r))
	case owedRCPT:
		rcpt := t.env.rcpts[t.rcpt]
		t.rcpt++
		switch {
		case !t.mailOK:
			// Answers to a transaction that does not exist.
		case r.Code == 250 || r.Code == 251:
			t.res.Accepted = append(t.res.Accepted, rcpt)
		default:
			t.res.Rejected = append(t.res.Rejected, RecipientError{Addr: rcpt, Reply: newReply(r)})
		}
		if t.rcpt == len(t.env.rcpts) && t.mailOK && len(t.res.Accepted) == 0 {
			// The server discards a message without recipients; DATA
			// and BDAT get refused.
			t.void = true
			t.refuse(&SendError{Rejected: t.res.Rejected})
		}
	case owedDATA:
		if r.Code == 354 {
			t.data354 = true
			return
		}
		t.refuse(c.replyErr(t.t0, "DATA", r))
	case owedChunk:
		if r.Code != 250 {
			t.refuse(c.replyErr(t.t0, "message", r))
		}
	case owedEnd:
		t.final = r
		t.res.Reply = r.String()
		if r.Code == 250 || !t.env.chunking {
			// The reply to DATA's end ends the transaction, whatever it
			// says; after a refused LAST chunk the server may still hold
			// it (RFC 3030 does not say), so the next message resets.
			c.inTx = false
		}
		if r.Code == 250 {
			t.res.QueueID = QueueID(r.Text())
			return
		}
		t.refuse(c.replyErr(t.t0, "message", r))
	}
}

// refuse records a refusal; the first one is what the caller gets.
func (t *tx) refuse(err error) {
	if t.refusal == nil {
		t.refusal = err
	}
}

// fail records that the connection failed at step and closes it: no more
// replies come.
func (t *tx) fail(step string, err error) {
	if t.lost == nil {
		t.lost, t.lostStep = err, step
		t.c.fail(err)
	}
}

// outcome decides what the server may have of the message, from the facts
// recorded: the final reply decides when there is one; without it, the
// server cannot have a message whose end never went out or that no
// transaction could take, and may have any other.
func (t *tx) outcome() Outcome {
	switch {
	case t.final != nil && t.final.Code == 250:
		return OutcomeAccepted
	case !t.ended || t.void:
		return OutcomeNotSent
	case t.final != nil:
		return OutcomeRefused
	}
	return OutcomeUnknown
}

// finish records the outcome in res and returns the send's error, which
// says the same thing: nil or a *SendError when the server accepted the
// message, ErrOutcomeUnknown when it may have it, and otherwise what
// stopped it.
func (t *tx) finish() error {
	c := t.c
	o := t.outcome()
	t.res.Outcome = o
	if t.closing {
		c.fail(errors.New("the server closed the session"))
	}
	switch {
	case o == OutcomeAccepted:
		c.logger(t.ctx, "send", time.Since(t.t0), nil)
		if len(t.res.Rejected) > 0 {
			return &SendError{Rejected: t.res.Rejected, Accepted: len(t.res.Accepted)}
		}
		return nil
	case o == OutcomeUnknown:
		return c.transportErr(t.ctx, t.t0, "message", fmt.Errorf("%w: the connection broke after the message was sent and before the server answered (%v); it may or may not have been accepted", ErrOutcomeUnknown, t.lost))
	case t.local != nil:
		return t.local
	case t.refusal != nil:
		return t.refusal
	case t.lost != nil:
		return c.transportErr(t.ctx, t.t0, t.lostStep, t.lost)
	}
	return nil
}
