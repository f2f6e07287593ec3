package wire

import (
	"errors"
	"io"
	"os"
	"time"
)

// Unsolicited reports what the server sent while no command was waiting
// for a reply: typically "421 timeout" before it closed an idle
// connection. It returns (nil, nil) when nothing arrived and the
// connection is open, the reply when one arrived, and the read error
// (io.EOF for a connection the server closed) otherwise. It does not wait
// for the network when nothing is pending, so it costs no round trip; it
// lets a client that is about to pipeline a whole message learn that the
// connection is dead before it sends anything. It leaves the connection
// without a deadline.
func (c *Conn) Unsolicited() (*Reply, error) {
	if c.br.Buffered() == 0 {
		pending, err := peekRaw(c.raw)
		if err != nil {
			return nil, err
		}
		if !pending {
			return nil, nil
		}
		// Bytes are waiting on the socket; under TLS they may be a
		// record with no data for us (a session ticket), so wait only
		// briefly for data to come out of them.
		c.nc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		_, err = c.br.Peek(1)
		c.nc.SetReadDeadline(time.Time{})
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			return nil, nil
		case err != nil:
			return nil, err
		}
	}
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer c.nc.SetReadDeadline(time.Time{})
	r, err := c.ReadReply()
	if err == nil {
		c.tr.note("the server spoke unasked")
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = io.EOF
	}
	return r, err
}
