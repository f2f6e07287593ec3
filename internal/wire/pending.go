package wire

import (
	"crypto/tls"
	"errors"
	"io"
	"os"
	"time"
)

// errNoPeek is peekRaw's answer for a socket it cannot inspect.
var errNoPeek = errors.New("the socket cannot be inspected")

// blindWait is how long Unsolicited reads, at most, from a connection
// whose socket it cannot inspect (a NetDialer's connection that hides it):
// long enough to take what already arrived, which a read returns at once.
const blindWait = time.Millisecond

// Unsolicited reports what the server sent while no command was waiting
// for a reply: typically "421 timeout" before it closed an idle
// connection. It returns (nil, nil) when nothing arrived and the
// connection is open, the reply when one arrived, and the read error
// (io.EOF for a connection the server closed) otherwise. It lets a client
// that is about to pipeline a whole message learn that the connection is
// dead before it sends anything, and costs no round trip: it looks at what
// crypto/tls already holds (a reply read together with the previous one),
// then at the socket without reading it; only a connection whose socket it
// cannot see is read for at most a millisecond. Every wait ends by
// deadline, which is also the read deadline Unsolicited leaves set.
func (c *Conn) Unsolicited(deadline time.Time) (*Reply, error) {
	defer c.nc.SetReadDeadline(deadline)
	if c.br.Buffered() == 0 {
		arrived, err := c.arrived(deadline)
		if err != nil || !arrived {
			return nil, err
		}
	}
	c.nc.SetReadDeadline(deadline)
	r, err := c.ReadReply()
	if err == nil {
		c.tr.note("the server spoke unasked")
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = io.EOF
	}
	return r, err
}

// arrived reports whether data for the reader arrived (now in c.br), or
// the read error that says the connection ended.
func (c *Conn) arrived(deadline time.Time) (bool, error) {
	if _, ok := c.nc.(*tls.Conn); ok {
		// A read whose deadline has passed never touches the socket: it
		// returns only the records crypto/tls has already read.
		ok, err := c.peek(time.Unix(1, 0))
		c.nc.SetReadDeadline(deadline) // the socket's own checks heed it too
		if ok || err != nil {
			return ok, err
		}
	}
	pending, err := peekRaw(c.raw)
	switch {
	case errors.Is(err, errNoPeek):
		return c.peek(earliest(time.Now().Add(blindWait), deadline))
	case err != nil:
		return false, err
	case !pending:
		return false, nil
	}
	// Bytes are waiting on the socket; under TLS they may be a record
	// with no data for us (a session ticket), so wait only briefly for
	// data to come out of them.
	return c.peek(earliest(time.Now().Add(50*time.Millisecond), deadline))
}

// peek waits until until for a byte to read: true when one came, false
// when the wait ended first, and the read error when the connection ended.
func (c *Conn) peek(until time.Time) (bool, error) {
	c.nc.SetReadDeadline(until)
	_, err := c.br.Peek(1)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		return false, nil
	case errors.Is(err, io.ErrUnexpectedEOF):
		return false, io.EOF
	}
	return false, err
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
