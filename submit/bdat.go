package submit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// chunkSize is how much of a message of unknown size one BDAT chunk
// carries: the message streams through one buffer of this size, whatever
// its length.
const chunkSize = 1 << 20

// readSize is how much of the caller's reader is read at a time.
const readSize = 32 << 10

// errMessageChanged is a message held in memory that did not have, when
// sent, the size it had when counted: changed by another goroutine.
var errMessageChanged = errors.New("the message changed while it was being sent")

// sendBDAT sends the message with BDAT (RFC 3030). With PIPELINING the
// envelope goes in one flight with the first chunk and the replies are
// read afterwards, at most one chunk behind the one being sent; without
// it every command waits for its reply.
func (t *tx) sendBDAT(msg io.Reader) {
	if t.c.pipelining {
		if !t.queueEnvelope() {
			return
		}
	} else if !t.envelopeSerial() {
		return
	}
	if t.env.size >= 0 {
		t.bdatWhole(msg)
	} else {
		t.bdatChunks(msg)
	}
	t.drain(0)
}

// bdatWhole sends a message of known size as one "BDAT n LAST", streamed
// from msg through the normalising writer: no copy of it is made.
func (t *tx) bdatWhole(msg io.Reader) {
	c, n := t.c, t.env.size
	if !t.queue("BDAT "+strconv.FormatInt(n, 10)+" LAST", owedEnd) {
		return
	}
	t.consume()
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
			t.fail("message", err)
			return
		}
		// The chunk cannot be completed: closing the connection before
		// its last byte makes the server discard it.
		c.fail(err)
		t.local = fmt.Errorf("submit: message not sent, connection closed: %w", err)
		return
	}
	t.res.Size = dw.size()
	t.endMessage(n)
}

// bdatChunks sends a message of unknown size in chunks of chunkSize,
// keeping at most one chunk's reply outstanding with PIPELINING (none
// without), so that a refusal stops the upload within a chunk.
func (t *tx) bdatChunks(msg io.Reader) {
	var buf bytes.Buffer
	buf.Grow(chunkSize + 2*readSize) // normalising can double a read
	dw := newBDATWriter(&buf)
	rb := make([]byte, readSize)
	t.consume()
	for {
		n, rerr := msg.Read(rb)
		if n > 0 {
			if _, err := dw.Write(rb[:n]); err != nil {
				t.abort(err)
				return
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			t.abort(rerr)
			return
		}
		if buf.Len() < chunkSize {
			continue
		}
		// Next leaves the rest of the read at the front of buf for the
		// next chunk; the chunk is sent before buf is written again.
		if !t.sendChunk(buf.Next(chunkSize)) {
			return // drain reads the rest; the refusal says why
		}
	}
	dw.Close() // cannot fail: buf takes everything
	t.res.Size = dw.size()
	if !t.queue("BDAT "+strconv.Itoa(buf.Len())+" LAST", owedEnd) {
		return
	}
	if _, err := t.c.conn.Writer().Write(buf.Bytes()); err != nil {
		t.fail("message", err)
		return
	}
	t.endMessage(int64(buf.Len()))
}

// sendChunk sends one chunk that is not the last, then reads the replies
// owed for what went before it. It reports whether the message may go on.
func (t *tx) sendChunk(p []byte) bool {
	c := t.c
	c.setDeadline(t.ctx, commandTimeout)
	if !t.queue("BDAT "+strconv.Itoa(len(p)), owedChunk) {
		return false
	}
	c.conn.Transcript().Note("[%d bytes of message]", len(p))
	if _, err := c.conn.Writer().Write(p); err != nil {
		t.fail("message", err)
		return false
	}
	if !t.flush("message") {
		return false
	}
	window := 0
	if c.pipelining {
		window = 1
	}
	t.drain(window)
	return !t.stopped()
}

// abort ends a transaction whose message failed on our side (a line too
// long, the reader's error) before its last chunk: what was queued goes
// out, every owed reply is read, and RSET makes the server discard the
// chunks it has (RFC 3030 §3), so the connection stays usable. A server
// that refuses that RSET may still hold them: the connection is closed.
func (t *tx) abort(cause error) {
	c := t.c
	t.local = fmt.Errorf("submit: message not sent; the server was told to discard what it had: %w", cause)
	if !t.flush("message") {
		return
	}
	t.drain(0)
	if t.lost != nil || t.closing || !c.inTx {
		return
	}
	r, err := c.conn.Exchange("RSET", "")
	switch {
	case err != nil:
		t.fail("RSET", err)
	case r.Code != 250:
		t.closing = true
	default:
		c.inTx = false
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
