package submit

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/portwise/portwise/internal/session"
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
	// pipelining: the server advertised PIPELINING after TLS, so Send
	// groups MAIL, RCPT and DATA in one flight (RFC 2920).
	pipelining bool

	mu     sync.Mutex // guards broken and smtpc against Close racing a Send
	broken error      // set once the connection cannot carry another command
	smtpc  *smtp.Client
}

func newClient(d *Dialer, host string, s *session.Session, cfg *attemptConfig, mech string) *Client {
	s.Conn.SetDeadline(time.Time{})
	c := &Client{
		host:      host,
		cand:      s.Candidate,
		conn:      s.Conn,
		caps:      s.Caps,
		banner:    s.Banner,
		mech:      mech,
		localName: d.localName(),
	}
	c.pipelining = s.Caps.Has("PIPELINING")
	if st, ok := s.Conn.TLS(); ok {
		c.tlsState = &st
	}
	c.logger = func(ctx context.Context, step string, dur time.Duration, err error) {
		d.log(ctx, c.cand, host, step, dur, err)
	}
	return c
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
		return nil, fmt.Errorf("submit: the connection is no longer usable: %w", broken)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dl := time.Now().Add(fallback)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	c.conn.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { c.conn.Close() })
	return func() { stop() }, nil
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

// check turns a transport error into the error to return, cancelling
// nothing but marking the client broken.
func (c *Client) transportErr(ctx context.Context, step string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		// Both wrapped: a deadline after the final "." is still
		// ErrOutcomeUnknown.
		err = fmt.Errorf("%w (%w)", ctxErr, err)
	}
	err = fmt.Errorf("submit: %s on port %d: %w", step, c.cand.Port, err)
	c.fail(err)
	return err
}

// replyErr returns the server's error for a non-2xx/3xx reply; a 421 also
// marks the connection as closing.
func (c *Client) replyErr(command string, r *wire.Reply) error {
	e := r.Err()
	if e.Code == 421 {
		c.fail(e)
	}
	return &ReplyError{Port: c.cand.Port, Command: command, Err: e}
}

// ReplyError is the server refusing a command of a session: which port,
// which command, and the reply. errors.As finds the *smtp.SMTPError in it.
type ReplyError struct {
	Port    int
	Command string // "MAIL FROM", "RCPT TO", "DATA", "the message", "RSET", "NOOP"
	Err     *smtp.SMTPError
}

// Error names the port and the refused command and quotes the reply; for a
// 4xx it adds that the refusal is temporary, so a person knows to retry.
func (e *ReplyError) Error() string {
	s := fmt.Sprintf("submit: port %d refused %s: %s", e.Port, e.Command, smtpText(e.Err))
	switch {
	case e.Err.Code == 421:
		s += " — the server is closing the session; try again later"
	case e.Err.Code/100 == 4:
		s += " — a temporary refusal; try again later"
	}
	return s
}

// Unwrap returns the server's reply.
func (e *ReplyError) Unwrap() error { return e.Err }

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
	r, err := c.conn.Exchange(cmd, "")
	if err != nil {
		return c.transportErr(ctx, cmd, err)
	}
	if r.Code != 250 {
		return c.replyErr(cmd, r)
	}
	return nil
}

// Quit sends QUIT, waits briefly for the reply and closes the connection.
func (c *Client) Quit() error {
	c.mu.Lock()
	broken := c.broken
	c.mu.Unlock()
	if broken != nil {
		return c.Close()
	}
	c.conn.SetDeadline(time.Now().Add(10 * time.Second))
	r, err := c.conn.Exchange("QUIT", "")
	cerr := c.Close()
	if err != nil {
		return err
	}
	if r.Code != 221 {
		return r.Err()
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

// SMTP returns a go-smtp client on the same connection, for what this API
// lacks. It is created on first use; it re-sends EHLO to learn the
// capabilities. Do not interleave its use with Send. Its
// TLSConnectionState reports false: use ConnectionState.
func (c *Client) SMTP() *smtp.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.smtpc != nil {
		return c.smtpc
	}
	c.conn.SetDeadline(time.Time{})
	greeting := []byte("220 " + c.host + " portwise session\r\n")
	c.smtpc = smtp.NewClient(&greetedConn{Conn: c.conn.NetConn(), r: io.MultiReader(bytes.NewReader(greeting), c.conn.Reader())})
	c.smtpc.Hello(c.localName)
	return c.smtpc
}

// greetedConn replays a greeting to go-smtp's client, which expects to read
// one, then reads what the wire layer may already have buffered.
type greetedConn struct {
	net.Conn
	r io.Reader
}

func (g *greetedConn) Read(p []byte) (int, error) { return g.r.Read(p) }
