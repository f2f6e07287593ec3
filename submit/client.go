package submit

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portwise/portwise/internal/wire"
	"github.com/portwise/portwise/tlsmode"
)

// Command timeouts used when the context has no deadline (RFC 5321 §4.5.3.2
// suggests 5 minutes per command and 10 after the final dot).
const (
	commandTimeout = 5 * time.Minute
	dataTimeout    = 10 * time.Minute
)

// Client is an open, secured and (when the Dialer had an Auth)
// authenticated submission session. A Client is not safe for concurrent
// use; Mailer pools clients for concurrent senders.
type Client struct {
	id        uint64 // ConnInfo.ID: the ID of the Attempt that opened it
	host      string
	cand      tlsmode.Candidate
	conn      *wire.Conn
	caps      wire.Caps
	banner    string
	mech      string
	tlsState  *tls.ConnectionState
	localName string
	logger    func(ctx context.Context, step string, d time.Duration, err error)
	inTx      bool // a MAIL FROM was accepted and its transaction has not ended
	txs       int  // mail transactions begun on the connection
	// pipelining: the server advertised PIPELINING after TLS, so Send
	// groups MAIL, RCPT and DATA in one flight (RFC 2920).
	pipelining bool
	// pipeConnect: the server advertised PIPECONNECT in the EHLO replies
	// early pipelining uses, so the next Dial may (Winner.PipeConnect).
	pipeConnect bool

	mu     sync.Mutex // guards broken against Close racing a Send
	broken error      // set once the connection cannot carry another command
}

func newClient(d *Dialer, rd *ready, mech string) *Client {
	s := rd.session
	s.Conn.SetDeadline(time.Time{})
	c := &Client{
		id:        rd.attempt.id,
		host:      rd.attempt.t.Host,
		cand:      s.Candidate,
		conn:      s.Conn,
		caps:      s.Caps,
		banner:    s.Banner,
		mech:      mech,
		localName: d.localName(),
	}
	c.pipelining = s.Caps.Has("PIPELINING")
	c.pipeConnect = s.Caps.Has("PIPECONNECT") && (s.Candidate.Mode != tlsmode.StartTLS || s.PreTLSCaps.Has("PIPECONNECT"))
	if st, ok := s.Conn.TLS(); ok {
		c.tlsState = &st
	}
	c.logger = func(ctx context.Context, step string, dur time.Duration, err error) {
		d.log(ctx, c.cand, c.host, step, dur, err)
	}
	return c
}

// connInfo identifies the connection for Trace hooks.
func (c *Client) connInfo() ConnInfo {
	return ConnInfo{ID: c.id, Host: c.host, Candidate: c.cand, Messages: c.txs}
}

// Host returns the host name the client is connected to.
func (c *Client) Host() string { return c.host }

// Port returns the port of the session.
func (c *Client) Port() int { return c.cand.Port }

// Mode returns the TLS mode of the session.
func (c *Client) Mode() tlsmode.Mode { return c.cand.Mode }

// Candidate returns the port and mode that won the Dial.
func (c *Client) Candidate() tlsmode.Candidate { return c.cand }

// ConnectionState returns the verified TLS state; ok is false only on a
// Plaintext session.
func (c *Client) ConnectionState() (tls.ConnectionState, bool) {
	if c.tlsState == nil {
		return tls.ConnectionState{}, false
	}
	return *c.tlsState, true
}

// Mechanism returns the SASL mechanism that authenticated the session, or ""
// without AUTH.
func (c *Client) Mechanism() string { return c.mech }

// Banner returns the server's 220 greeting.
func (c *Client) Banner() string { return c.banner }

// Extension reports whether the server advertised an EHLO keyword after TLS,
// and its parameters.
func (c *Client) Extension(name string) (bool, string) {
	p, ok := c.caps[upper(name)]
	return ok, p
}

// Extensions returns the server's post-TLS EHLO keywords with parameters.
func (c *Client) Extensions() []string { return c.caps.List() }

// MaxMessageSize returns the server's advertised SIZE limit; ok is false
// when the server declared none.
func (c *Client) MaxMessageSize() (size int64, ok bool) {
	p, has := c.caps["SIZE"]
	if !has {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(p), 10, 64)
	if err != nil || n <= 0 {
		return 0, false
	}
	return n, true
}

// begin prepares the connection for one exchange bounded by ctx: the
// deadline of ctx (or fallback) and closing the socket if ctx is cancelled.
func (c *Client) begin(ctx context.Context, fallback time.Duration) (end func(), err error) {
	c.mu.Lock()
	broken := c.broken
	c.mu.Unlock()
	if broken != nil {
		return nil, fmt.Errorf("submit: the connection to %s is no longer usable: %w", c.cand, broken)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.setDeadline(ctx, fallback)
	stop := context.AfterFunc(ctx, func() { c.conn.Close() })
	return func() { stop() }, nil
}

// setDeadline gives the connection d from now, within ctx's deadline.
func (c *Client) setDeadline(ctx context.Context, d time.Duration) {
	c.conn.SetDeadline(c.deadline(ctx, d))
}

// deadline is d from now, or ctx's deadline when that comes first.
func (c *Client) deadline(ctx context.Context, d time.Duration) time.Time {
	dl := time.Now().Add(d)
	if cd, ok := ctx.Deadline(); ok && cd.Before(dl) {
		dl = cd
	}
	return dl
}

// fail marks the connection unusable after err and closes it.
func (c *Client) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken == nil {
		c.broken = err
		c.conn.Close()
	}
}

// transportErr is the error of a step whose connection failed: the
// connection is marked broken. The caller's context, when it ended, is
// what the error says, deterministically.
func (c *Client) transportErr(ctx context.Context, t0 time.Time, step string, err error) error {
	if ctxErr := ctxErr(ctx); ctxErr != nil {
		if errors.Is(err, ErrOutcomeUnknown) {
			// Both: the message may have been accepted.
			err = fmt.Errorf("%w (%w)", err, ctxErr)
		} else {
			err = ctxErr
		}
	}
	se := newStepError(step, c.host, c.cand, time.Since(t0), err)
	c.fail(se)
	return se
}

// replyErr returns the server's refusal of command. Whether the
// connection can carry more is the caller's to decide: after a 421 it
// cannot, once every reply owed was read.
func (c *Client) replyErr(t0 time.Time, command string, r *wire.Reply) error {
	return newStepError(command, c.host, c.cand, time.Since(t0), r.Err(command))
}

// Noop sends NOOP, to check that an idle connection is still alive.
func (c *Client) Noop(ctx context.Context) error {
	return c.simple(ctx, "NOOP")
}

// Reset sends RSET, aborting any transaction in progress.
func (c *Client) Reset(ctx context.Context) error {
	return c.simple(ctx, "RSET")
}

func (c *Client) simple(ctx context.Context, cmd string) error {
	end, err := c.begin(ctx, commandTimeout)
	if err != nil {
		return err
	}
	defer end()
	t0 := time.Now()
	r, err := c.conn.Exchange(cmd, "")
	if err != nil {
		return c.transportErr(ctx, t0, cmd, err)
	}
	if r.Code != 250 {
		se := c.replyErr(t0, cmd, r)
		if r.Code == 421 {
			c.fail(se) // the server is closing the connection
		}
		return se
	}
	return nil
}

// quitWaitClient bounds Quit's wait for the server's reply.
const quitWaitClient = 10 * time.Second

// Quit sends QUIT, waits at most 10 s for the reply, and closes the
// connection. A Client that is no longer usable is closed without QUIT.
func (c *Client) Quit() error { return c.quit(quitWaitClient, nil) }

// quit is Quit with its wait for the reply bounded by wait; sent, when
// set, is called once the QUIT is written (or could not be), before the
// wait.
func (c *Client) quit(wait time.Duration, sent func()) error {
	if sent != nil {
		defer func() {
			if sent != nil {
				sent()
			}
		}()
	}
	c.mu.Lock()
	broken := c.broken
	c.mu.Unlock()
	if broken != nil {
		return c.Close()
	}
	c.conn.SetDeadline(time.Now().Add(wait))
	t0 := time.Now()
	err := c.conn.Cmd("QUIT", "")
	var r *wire.Reply
	if err == nil {
		if sent != nil {
			sent()
			sent = nil
		}
		r, err = c.conn.ReadReply()
	}
	cerr := c.Close()
	if err != nil {
		return newStepError("QUIT", c.host, c.cand, time.Since(t0), err)
	}
	if r.Code != 221 {
		return newStepError("QUIT", c.host, c.cand, time.Since(t0), r.Err("QUIT"))
	}
	return cerr
}

// Close closes the connection without QUIT.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken == nil {
		c.broken = net.ErrClosed
	}
	err := c.conn.Close()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
