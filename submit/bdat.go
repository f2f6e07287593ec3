package submit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/portwise/portwise/internal/wire"
)

// chunkSize is how much of a message of unknown size one BDAT chunk
// carries: the message streams through one buffer of this size, whatever
// its length.
const chunkSize = 1 << 20

// readSize is how much of the caller's reader is read at a time.
const readSize = 32 << 10

// Steps whose replies a bdat exchange waits for, besides "RSET", "MAIL
// FROM" and "RCPT TO".
const (
	stepChunk = "BDAT"
	stepLast  = "BDAT LAST"
)

// errMessageChanged is a message held in memory that did not have, when
// sent, the size it had when counted: changed by another goroutine.
var errMessageChanged = errors.New("the message changed while it was being sent")

// bdat is one mail transaction sent with BDAT (RFC 3030). With PIPELINING
// (RFC 2920) the envelope and the first chunk go in one flight and the
// replies are read in order afterwards, at most one chunk behind the one
// being sent; without it every command waits for its reply.
type bdat struct {
	c   *Client
	ctx context.Context
	t0  time.Time
	env *envelope
	res *SendResult

	owed     []string // steps whose replies are still to be read, oldest first
	rcpt     int      // the recipient whose RCPT reply is next
	first    error    // the first refusal that decides the outcome
	doomed   bool     // nothing can be delivered: MAIL, every RCPT or a chunk was refused
	lastSent bool     // the LAST chunk went out in full
}

// bdatTransaction sends one message with BDAT; see mailTransaction.
func (c *Client) bdatTransaction(ctx context.Context, env *envelope, msg io.Reader, res *SendResult) (consumed bool, err error) {
	t0 := time.Now()
	if c.txs > 0 && c.pipelining {
		// The message is about to go out whole, before any reply is read:
		// first make sure the server did not close the connection
		// meanwhile, so that a stale connection costs nothing.
		if err := c.checkUnsolicited(ctx, t0); err != nil {
			return false, err
		}
	}
	end, err := c.begin(ctx, commandTimeout)
	if err != nil {
		return false, err
	}
	defer end()
	c.txs++
	b := &bdat{c: c, ctx: ctx, t0: t0, env: env, res: res}
	if c.pipelining {
		if err := b.queueEnvelope(); err != nil {
			return false, err
		}
	} else if err := c.envelopeSerial(ctx, t0, env, res, false); err != nil {
		return false, err
	}
	if env.size >= 0 {
		err = b.sendWhole(msg)
	} else {
		err = b.sendChunks(msg)
	}
	if err != nil {
		return true, err
	}
	if err := b.drain(0); err != nil {
		return true, err
	}
	if b.first != nil {
		return true, b.first
	}
	c.logger(ctx, "send", time.Since(t0), nil)
	if len(res.Rejected) > 0 {
		return true, &SendError{Rejected: res.Rejected, Accepted: len(res.Accepted)}
	}
	return true, nil
}

// checkUnsolicited fails when the server already closed the connection or
// said something unasked (a 421 before closing an idle connection).
func (c *Client) checkUnsolicited(ctx context.Context, t0 time.Time) error {
	r, err := c.conn.Unsolicited()
	switch {
	case err != nil:
		return c.transportErr(ctx, t0, "MAIL FROM", fmt.Errorf("the server closed the connection while it was idle: %w", err))
	case r != nil:
		se := c.replyErr(t0, "MAIL FROM", r)
		c.fail(se) // the replies are out of step with the commands
		return se
	}
	return nil
}

// queueEnvelope buffers RSET (when a transaction was left open), MAIL and
// every RCPT, for the flight that carries the first chunk.
func (b *bdat) queueEnvelope() error {
	cmds := []string{b.env.mail}
	steps := []string{"MAIL FROM"}
	if b.c.inTx {
		cmds = append([]string{"RSET"}, cmds...)
		steps = append([]string{"RSET"}, steps...)
	}
	cmds = append(cmds, b.env.rcptCmds...)
	for range b.env.rcptCmds {
		steps = append(steps, "RCPT TO")
	}
	for _, cmd := range cmds {
		if err := b.c.conn.Queue(cmd, ""); err != nil {
			return b.c.transportErr(b.ctx, b.t0, "MAIL FROM", err)
		}
	}
	b.owed = append(b.owed, steps...)
	return nil
}

// sendWhole sends a message of known size as one "BDAT n LAST", streamed
// from msg through the normalising writer: no copy of it is made.
func (b *bdat) sendWhole(msg io.Reader) error {
	c, n := b.c, b.env.size
	if err := c.conn.Queue("BDAT "+strconv.FormatInt(n, 10)+" LAST", ""); err != nil {
		return c.transportErr(b.ctx, b.t0, "message", err)
	}
	b.owed = append(b.owed, stepLast)
	cw := &cappedWriter{w: c.conn.Writer(), left: n}
	dw := newBDATWriter(cw)
	_, err := io.Copy(dw, msg)
	if err == nil {
		err = dw.Close()
	}
	if err == nil && cw.left != 0 {
		err = errMessageChanged
	}
	if err != nil {
		if dw.err != nil && !errors.Is(err, ErrLineTooLong) && !errors.Is(err, errMessageChanged) {
			return c.transportErr(b.ctx, b.t0, "message", err)
		}
		// The chunk cannot be completed: closing the connection before
		// its last byte makes the server discard it.
		c.fail(err)
		return fmt.Errorf("submit: message not sent, connection closed: %w", err)
	}
	b.res.Size = dw.size()
	return b.flushLast(n)
}

// flushLast sends the LAST chunk; from here on a broken connection leaves
// the outcome unknown.
func (b *bdat) flushLast(n int64) error {
	c := b.c
	c.conn.Transcript().Note("[%d bytes of message]", n)
	b.c.setDeadline(b.ctx, dataTimeout)
	if err := c.conn.Flush(); err != nil {
		// The chunk did not go out whole: the server cannot have taken it.
		return c.transportErr(b.ctx, b.t0, "message", err)
	}
	b.lastSent = true
	return nil
}

// sendChunks sends a message of unknown size in chunks of chunkSize,
// keeping at most one chunk's reply outstanding with PIPELINING (none
// without), so that a refusal stops the upload within a chunk.
func (b *bdat) sendChunks(msg io.Reader) error {
	var buf bytes.Buffer
	buf.Grow(chunkSize + 2*readSize) // normalising can double a read
	dw := newBDATWriter(&buf)
	rb := make([]byte, readSize)
	for {
		n, rerr := msg.Read(rb)
		if n > 0 {
			if _, err := dw.Write(rb[:n]); err != nil {
				return b.abort(err)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return b.abort(rerr)
		}
		if buf.Len() < chunkSize {
			continue
		}
		// Next leaves the rest of the read at the front of buf for the
		// next chunk; the chunk is sent before buf is written again.
		if err := b.sendChunk(buf.Next(chunkSize)); err != nil {
			return err
		}
		if b.doomed {
			return nil // drain reads the rest; first says why
		}
	}
	dw.Close() // cannot fail: buf takes everything
	b.res.Size = dw.size()
	c := b.c
	if err := c.conn.Queue("BDAT "+strconv.Itoa(buf.Len())+" LAST", ""); err != nil {
		return c.transportErr(b.ctx, b.t0, "message", err)
	}
	b.owed = append(b.owed, stepLast)
	if _, err := c.conn.Writer().Write(buf.Bytes()); err != nil {
		return c.transportErr(b.ctx, b.t0, "message", err)
	}
	return b.flushLast(int64(buf.Len()))
}

// sendChunk sends one chunk that is not the last, then reads the replies
// owed for what went before it.
func (b *bdat) sendChunk(p []byte) error {
	c := b.c
	b.c.setDeadline(b.ctx, commandTimeout)
	if err := c.conn.Queue("BDAT "+strconv.Itoa(len(p)), ""); err != nil {
		return c.transportErr(b.ctx, b.t0, "message", err)
	}
	c.conn.Transcript().Note("[%d bytes of message]", len(p))
	if _, err := c.conn.Writer().Write(p); err != nil {
		return c.transportErr(b.ctx, b.t0, "message", err)
	}
	if err := c.conn.Flush(); err != nil {
		return c.transportErr(b.ctx, b.t0, "message", err)
	}
	b.owed = append(b.owed, stepChunk)
	window := 0
	if c.pipelining {
		window = 1
	}
	return b.drain(window)
}

// abort ends a transaction whose message failed on our side (a line too
// long, the reader's error): what was queued goes out, every owed reply
// is read, and RSET makes the server discard the chunks it has (RFC 3030
// §3), so the connection stays usable.
func (b *bdat) abort(cause error) error {
	c := b.c
	if err := c.conn.Flush(); err != nil {
		return c.transportErr(b.ctx, b.t0, "message", err)
	}
	if err := b.drain(0); err != nil {
		return err
	}
	if c.inTx {
		r, err := c.conn.Exchange("RSET", "")
		switch {
		case err != nil:
			return c.transportErr(b.ctx, b.t0, "RSET", err)
		case r.Code != 250:
			return c.replyErr(b.t0, "RSET", r)
		}
		c.inTx = false
	}
	return fmt.Errorf("submit: message not sent; the server was told to discard what it had: %w", cause)
}

// drain reads owed replies until at most keep remain.
func (b *bdat) drain(keep int) error {
	for len(b.owed) > keep {
		step := b.owed[0]
		b.owed = b.owed[1:]
		if err := b.read(step); err != nil {
			return err
		}
	}
	return nil
}

// read reads and judges the reply to one step. It returns an error only
// when the connection can carry nothing more; refusals go to first.
func (b *bdat) read(step string) error {
	c := b.c
	shown := step
	if step == stepChunk || step == stepLast {
		shown = "message"
	}
	if step == stepLast {
		b.c.setDeadline(b.ctx, dataTimeout)
	}
	r, err := c.conn.ReadReply()
	if err != nil {
		if b.lastSent && !b.doomed {
			return c.transportErr(b.ctx, b.t0, "message", fmt.Errorf("%w: the connection broke after the message was sent and before the server answered (%v); it may or may not have been accepted", ErrOutcomeUnknown, err))
		}
		return c.transportErr(b.ctx, b.t0, shown, err)
	}
	if r.Code == 421 {
		b.doomed = true
		return c.replyErr(b.t0, shown, r)
	}
	switch step {
	case "RSET":
		if err := c.checkRSET(b.t0, r); err != nil && b.first == nil {
			b.first = err
		}
	case "MAIL FROM":
		if err := c.checkMAIL(b.t0, r); err != nil {
			b.doomed = true
			if b.first == nil {
				b.first = err
			}
		}
	case "RCPT TO":
		rcpt := b.env.rcpts[b.rcpt]
		b.rcpt++
		if !b.doomed {
			c.checkRCPT(b.t0, r, rcpt, b.res)
		}
		if b.rcpt == len(b.env.rcpts) && len(b.res.Accepted) == 0 && !b.doomed {
			// The server discards the chunks of a transaction without
			// recipients.
			b.doomed = true
			b.first = &SendError{Rejected: b.res.Rejected}
		}
	default:
		b.chunkReply(step, r)
	}
	return nil
}

// chunkReply judges the reply to a chunk.
func (b *bdat) chunkReply(step string, r *wire.Reply) {
	c := b.c
	if b.doomed {
		return // the refusal that doomed the transaction says it all
	}
	if step == stepLast {
		b.res.Reply = r.String()
	}
	if r.Code != 250 {
		// The transaction failed; whether the server still holds it is
		// not said, so the next one starts with RSET.
		b.doomed = true
		b.first = c.replyErr(b.t0, "message", r)
		return
	}
	if step == stepLast {
		c.inTx = false
		b.res.QueueID = QueueID(r.Text())
	}
}

// cappedWriter passes at most left bytes to w: a message held in memory
// that grew after it was counted must not spill past its chunk, where the
// server would read it as commands.
type cappedWriter struct {
	w    byteWriter
	left int64
}

func (w *cappedWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > w.left {
		return 0, errMessageChanged
	}
	n, err := w.w.Write(p)
	w.left -= int64(n)
	return n, err
}

func (w *cappedWriter) WriteString(s string) (int, error) {
	if int64(len(s)) > w.left {
		return 0, errMessageChanged
	}
	n, err := w.w.WriteString(s)
	w.left -= int64(n)
	return n, err
}

func (w *cappedWriter) WriteByte(c byte) error {
	if w.left < 1 {
		return errMessageChanged
	}
	w.left--
	return w.w.WriteByte(c)
}
