package wire

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/portwise/portwise/internal/untrusted"
)

// Conn is one SMTP client connection: the socket, a bounded reader, and an
// optional redacting transcript. It is not safe for concurrent use.
type Conn struct {
	raw net.Conn // the TCP connection, under TLS when there is TLS
	nc  net.Conn // what we read and write: raw, or a *tls.Conn over it
	br  *bufio.Reader
	bw  *bufio.Writer
	tr  *Transcript
}

// NewConn wraps an established connection. tr may be nil.
func NewConn(c net.Conn, tr *Transcript) *Conn {
	w := &Conn{raw: c, tr: tr}
	w.setConn(c)
	return w
}

func (c *Conn) setConn(nc net.Conn) {
	c.nc = nc
	c.br = bufio.NewReaderSize(nc, 4096)
	c.bw = bufio.NewWriterSize(nc, 4096)
}

// NetConn returns the connection commands travel on (a *tls.Conn after TLS).
func (c *Conn) NetConn() net.Conn { return c.nc }

// Raw returns the underlying TCP connection.
func (c *Conn) Raw() net.Conn { return c.raw }

// Reader returns the buffered reader over NetConn, for code that must read
// what this Conn has already buffered.
func (c *Conn) Reader() *bufio.Reader { return c.br }

// Transcript returns the transcript, possibly nil.
func (c *Conn) Transcript() *Transcript { return c.tr }

// TLS returns the TLS connection state when the connection is under TLS and
// its handshake is complete.
func (c *Conn) TLS() (tls.ConnectionState, bool) {
	tc, ok := c.nc.(*tls.Conn)
	if !ok {
		return tls.ConnectionState{}, false
	}
	st := tc.ConnectionState()
	return st, st.HandshakeComplete
}

// SetDeadline sets the deadline of the underlying connection.
func (c *Conn) SetDeadline(t time.Time) error { return c.nc.SetDeadline(t) }

// Close closes the connection without a QUIT. It closes the socket itself,
// under TLS too: a TLS close_notify would wait for the peer (crypto/tls
// gives it 5 s of its own), and Close is what ends a wait the caller's
// context no longer allows.
func (c *Conn) Close() error { return c.raw.Close() }

// ReadReply reads one bounded reply and records it in the transcript.
func (c *Conn) ReadReply() (*Reply, error) {
	r, err := ReadReply(c.br)
	if err != nil {
		if errors.Is(err, net.ErrClosed) {
			c.tr.note("connection closed")
		} else {
			c.tr.note("read failed: %v", err)
		}
		return nil, err
	}
	if c.tr != nil {
		for i, l := range r.Lines {
			sep := "-"
			if i == len(r.Lines)-1 {
				sep = " "
			}
			c.tr.line("S", fmt.Sprintf("%03d%s%s", r.Code, sep, l))
		}
	}
	return r, nil
}

// ErrBadLine is returned for a command argument holding CR, LF or NUL: such
// an argument would let a caller inject a second command.
var ErrBadLine = errors.New("command contains CR, LF or NUL")

// CheckLine reports ErrBadLine when s holds CR, LF or NUL.
func CheckLine(s string) error {
	if strings.ContainsAny(s, "\r\n\x00") {
		return ErrBadLine
	}
	return nil
}

// Cmd writes one command line and flushes it. shown is what the transcript
// records instead of the line; "" records the line itself.
func (c *Conn) Cmd(line, shown string) error {
	if err := CheckLine(line); err != nil {
		return err
	}
	if err := c.Queue(line, shown); err != nil {
		return err
	}
	return c.Flush()
}

// Queue buffers one command line without flushing, for pipelining.
func (c *Conn) Queue(line, shown string) error {
	if err := CheckLine(line); err != nil {
		return err
	}
	if shown == "" {
		shown = line
	}
	c.tr.line("C", shown)
	if _, err := c.bw.WriteString(line); err != nil {
		return err
	}
	_, err := c.bw.WriteString("\r\n")
	return err
}

// Flush sends what Queue buffered.
func (c *Conn) Flush() error { return c.bw.Flush() }

// Writer returns the buffered writer, for streaming DATA; the caller flushes.
func (c *Conn) Writer() *bufio.Writer { return c.bw }

// Exchange sends a command and reads its reply.
func (c *Conn) Exchange(line, shown string) (*Reply, error) {
	if err := c.Cmd(line, shown); err != nil {
		return nil, err
	}
	return c.ReadReply()
}

// ErrInjection is returned when bytes follow the 220 reply to STARTTLS
// before the TLS handshake: a man in the middle (or a broken server) is
// trying to get plaintext responses read as if they came over TLS.
var ErrInjection = errors.New("bytes arrived after the 220 reply to STARTTLS and before the TLS handshake")

// StartTLS upgrades the connection after a 220 reply to STARTTLS. It fails
// with ErrInjection when any byte is already waiting after that reply, and
// also when the first bytes the server sends during the handshake are not a
// TLS record, since injected text can arrive in a later segment.
func (c *Conn) StartTLS(cfg *tls.Config) error {
	if n := c.br.Buffered(); n > 0 {
		peek, _ := c.br.Peek(min(n, 64))
		return fmt.Errorf("%w (%d bytes: %s)", ErrInjection, n, quote(string(peek)))
	}
	sniff := &sniffConn{Conn: c.nc}
	tc := tls.Client(sniff, cfg)
	if err := tc.Handshake(); err != nil {
		if sniff.plaintext() {
			return fmt.Errorf("%w (%s)", ErrInjection, quote(string(sniff.first())))
		}
		return err
	}
	c.setConn(tc)
	c.tr.note("TLS established: %s", describeTLS(tc.ConnectionState()))
	return nil
}

// Handshake starts implicit TLS on a fresh connection.
func (c *Conn) Handshake(cfg *tls.Config) error {
	tc := tls.Client(c.nc, cfg)
	if err := tc.Handshake(); err != nil {
		return err
	}
	c.setConn(tc)
	c.tr.note("TLS established: %s", describeTLS(tc.ConnectionState()))
	return nil
}

func describeTLS(st tls.ConnectionState) string {
	return tls.VersionName(st.Version) + ", " + tls.CipherSuiteName(st.CipherSuite)
}

// sniffConn remembers the first bytes the server sends during a STARTTLS
// handshake so a failure can be told apart: a TLS record starts with a
// content type of 20-23 (alert 21, handshake 22); SMTP text starts with a
// digit.
type sniffConn struct {
	net.Conn
	mu   sync.Mutex
	head []byte
}

func (s *sniffConn) Read(p []byte) (int, error) {
	n, err := s.Conn.Read(p)
	s.mu.Lock()
	if len(s.head) < 16 && n > 0 {
		s.head = append(s.head, p[:min(n, 16-len(s.head))]...)
	}
	s.mu.Unlock()
	return n, err
}

func (s *sniffConn) first() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.head...)
}

func (s *sniffConn) plaintext() bool {
	h := s.first()
	return len(h) > 0 && (h[0] < 20 || h[0] > 23)
}

// Transcript records a session the way swaks prints one: "C:" for what the
// client sent, "S:" for what the server answered, with secrets redacted by
// the callers of Cmd. It is safe for concurrent use, so racing attempts may
// share one writer.
type Transcript struct {
	W      io.Writer
	Prefix string // e.g. "587 " to tell racing attempts apart
	Now    func() time.Time
	mu     *sync.Mutex
	ended  bool // guarded by mu: End was called, nothing more is written
}

// NewTranscript returns a transcript writing to w, or nil when w is nil.
// Transcripts made with the same mu serialise their writes.
func NewTranscript(w io.Writer, prefix string, mu *sync.Mutex) *Transcript {
	if w == nil {
		return nil
	}
	if mu == nil {
		mu = new(sync.Mutex)
	}
	return &Transcript{W: w, Prefix: prefix, Now: time.Now, mu: mu}
}

func (t *Transcript) line(dir, s string) {
	if t == nil {
		return
	}
	// Replies and notes quote the server: every line is made safe, so a
	// transcript printed to a terminal cannot drive it.
	s = untrusted.Text(s, 2*MaxLineBytes)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.write(dir, s)
}

// write writes one line; t.mu is held.
func (t *Transcript) write(dir, s string) {
	if !t.ended {
		fmt.Fprintf(t.W, "%s %s%s: %s\n", t.Now().Format("15:04:05.000"), t.Prefix, dir, s)
	}
}

// End writes a last note and stops the transcript: what its session does
// afterwards is not written. Once End returns, no write of t is under way,
// so the writer's owner may use it again (a race's losing attempt, still
// winding down when the Dial returns, must not write into the caller's
// buffer behind its back).
func (t *Transcript) End(note string) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.write("*", note)
	t.ended = true
}

func (t *Transcript) note(format string, args ...any) {
	if t == nil {
		return
	}
	t.line("*", fmt.Sprintf(format, args...))
}

// Note records an event that is neither a command nor a reply.
func (t *Transcript) Note(format string, args ...any) { t.note(format, args...) }
