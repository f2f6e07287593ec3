package chaos

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portwise/portwise/tlsmode"
)

// tlsOverhead is what a TLS 1.3 record adds to its plaintext: a 5-byte
// header, the inner content type and a 16-byte AEAD tag. Go adds no
// padding, so a reply written in one call occupies exactly this much more.
const tlsOverhead = 22

// front stands between one accepted connection and go-smtp. It reads the
// proxy's tag (which connection, hence which plan), terminates TLS itself
// (so it sees every command in plaintext, which go-smtp's Session API does
// not show: RSET, NOOP, EHLO, DATA and BDAT themselves), plays the clear
// part of STARTTLS, and injects the server's faults: a 421 greeting,
// refusals of any command, chunks cut short, unsolicited 421s. It hands
// go-smtp one command line per Read, so go-smtp has answered every earlier
// command before the front decides on the next one, and the replies stay
// in order.
type front struct {
	s   *server
	raw *net.TCPConn
	cnt *countingConn

	setupOnce sync.Once
	setupErr  error

	// Read side: go-smtp's connection goroutine only.
	in        []byte // plaintext read and not yet judged
	out       []byte // judged, to hand to go-smtp
	rbuf      []byte
	chunkLeft int64 // bytes of a BDAT chunk still to hand on
	cutLeft   int64 // the chunk is cut, and the connection reset, when this many bytes are left
	dropLeft  int64 // bytes of a refused chunk to swallow
	dropBody  int   // the message whose refused LAST chunk is being swallowed, or -1
	dataCut   int   // the message whose DATA is cut before its end marker, or -1

	mu          sync.Mutex
	c           *conn    // from the tag
	nc          net.Conn // cnt in clear, the *tls.Conn once TLS is up
	secure      bool
	greeted     bool
	inData      bool // the client's lines are a message (DATA)
	dataPending bool // DATA went to go-smtp; its reply says whether a message follows
	ehloPending bool
	curTx       int // the message of the transaction go-smtp holds, or -1
	rcpts       int // recipients go-smtp accepted in that transaction
	final       int // the message whose final reply go-smtp writes next, or -1
	authed      bool

	wmu       sync.Mutex // one write at a time, so that a mark's offsets are exact
	closeOnce sync.Once
}

// countingConn counts the bytes written to the socket: the offsets of the
// server→client stream the proxy sees.
type countingConn struct {
	*net.TCPConn
	written atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.TCPConn.Write(p)
	c.written.Add(int64(n))
	return n, err
}

func newFront(s *server, raw *net.TCPConn) *front {
	cnt := &countingConn{TCPConn: raw}
	return &front{s: s, raw: raw, cnt: cnt, nc: cnt, dropBody: -1, dataCut: -1, curTx: -1, final: -1}
}

func (f *front) setup() error {
	f.setupOnce.Do(func() { f.setupErr = f.doSetup() })
	return f.setupErr
}

func (f *front) doSetup() error {
	f.raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	var tag []byte
	b := make([]byte, 1)
	for len(tag) < 40 && !bytes.HasSuffix(tag, []byte("\n")) {
		if _, err := f.raw.Read(b); err != nil {
			return err
		}
		tag = append(tag, b[0])
	}
	f.raw.SetReadDeadline(time.Time{})
	idText, ok := strings.CutPrefix(strings.TrimSpace(string(tag)), "CHAOS ")
	id, err := strconv.Atoi(idText)
	c := f.s.reg.conn(id)
	if !ok || err != nil || c == nil {
		return fmt.Errorf("chaos: bad tag %q", tag)
	}
	f.mu.Lock()
	f.c = c
	f.mu.Unlock()
	c.note("server: connection accepted; %s", c.server)
	if f.s.mode == tlsmode.Implicit {
		return f.startTLS()
	}
	return nil
}

func (f *front) startTLS() error {
	tc := tls.Server(f.cnt, f.s.tlsCfg)
	tc.SetDeadline(time.Now().Add(5 * time.Second))
	if err := tc.Handshake(); err != nil {
		f.c.note("server: TLS handshake failed: %v", err)
		return err
	}
	tc.SetDeadline(time.Time{})
	f.mu.Lock()
	f.nc, f.secure = tc, true
	f.mu.Unlock()
	f.in = nil // what a client pipelined after STARTTLS is dropped, as go-smtp does
	return nil
}

func (f *front) conn() net.Conn {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.nc
}

// Write takes go-smtp's replies, one line per call (textproto flushes each).
func (f *front) Write(p []byte) (int, error) {
	if err := f.setup(); err != nil {
		return 0, err
	}
	f.mu.Lock()
	greeting := !f.greeted
	f.greeted = true
	f.mu.Unlock()
	if greeting {
		if g := f.c.server.greeting; g != "" && f.c.armed() {
			f.c.fault("server greeting 421", "server: greeting %s", g)
			f.write(g + "\r\n")
			f.Close()
			return len(p), nil
		}
		if _, err := f.write(string(p)); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	for rest := p; len(rest) > 0; {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			i = len(rest) - 1
		}
		if err := f.reply(string(rest[:i+1])); err != nil {
			return 0, err
		}
		rest = rest[i+1:]
	}
	return len(p), nil
}

// reply passes one line of go-smtp's on, as the connection's state says.
func (f *front) reply(line string) error {
	last := len(line) >= 4 && line[3] == ' '
	code := line[:min(3, len(line))]
	f.mu.Lock()
	if f.ehloPending {
		f.ehloPending = !last
		if f.c.server.noChunking && strings.Contains(line, "CHUNKING") {
			// Never the last line: go-smtp ends with SIZE.
			f.mu.Unlock()
			return nil
		}
	}
	if f.dataPending && last {
		f.dataPending = false
		f.inData = code == "354"
		if !f.inData {
			f.dataCut = -1
		}
	}
	n := -1
	if last && f.final >= 0 && code != "354" {
		n, f.final = f.final, -1
	}
	f.mu.Unlock()
	var err error
	if n >= 0 {
		f.c.note("server: final reply to message %d: %s", n, strings.TrimSpace(line))
		err = f.writeMarked(markFinal, n, line)
	} else {
		_, err = f.write(line)
	}
	if err == nil && last && code == "421" {
		f.Close()
	}
	return err
}

func (f *front) write(s string) (int, error) {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	return f.conn().Write([]byte(s))
}

// writeMarked writes a reply of one or two lines, each in a record of its
// own, after recording where its bytes lie for the proxy.
func (f *front) writeMarked(kind markKind, n int, lines ...string) error {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	nc := f.conn()
	m := mark{kind: kind, n: n, start: f.cnt.written.Load()}
	m.mid = m.start + int64(len(lines[0])+tlsOverhead)
	m.end = m.mid
	if len(lines) > 1 {
		m.end += int64(len(lines[1]) + tlsOverhead)
	}
	f.c.addMark(m)
	for _, l := range lines {
		if _, err := nc.Write([]byte(l)); err != nil {
			return err
		}
	}
	if got := f.cnt.written.Load(); got != m.end {
		f.c.note("server: INTERNAL: reply bytes end at %d, not at the %d marked", got, m.end)
		f.s.reg.internal(fmt.Sprintf("connection %d: a marked reply ended at byte %d, not %d", f.c.id, got, m.end))
	}
	return nil
}

// Read hands go-smtp the client's bytes: one command line at a time,
// a message line by line, a chunk as it comes.
func (f *front) Read(p []byte) (int, error) {
	if err := f.setup(); err != nil {
		return 0, io.EOF
	}
	for {
		if len(f.out) > 0 {
			k := copy(p, f.out)
			f.out = f.out[k:]
			return k, nil
		}
		if f.chunkLeft > 0 {
			if len(f.in) == 0 {
				if err := f.fill(0); err != nil {
					return 0, err
				}
				continue
			}
			k := min(int64(len(p)), f.chunkLeft, int64(len(f.in)))
			if f.cutLeft > 0 && f.chunkLeft-k < f.cutLeft {
				if k = f.chunkLeft - f.cutLeft; k <= 0 {
					f.c.fault("server cut before end of body", "server: connection reset %d bytes before the end of the chunk", f.cutLeft)
					f.reset()
					return 0, io.EOF // go-smtp takes a short chunk for a whole one; the marker says otherwise
				}
			}
			copy(p, f.in[:k])
			f.in = f.in[k:]
			f.chunkLeft -= k
			return int(k), nil
		}
		if f.dropLeft > 0 {
			if len(f.in) == 0 {
				if err := f.fill(0); err != nil {
					return 0, err
				}
				continue
			}
			k := min(f.dropLeft, int64(len(f.in)))
			f.in = f.in[k:]
			if f.dropLeft -= k; f.dropLeft == 0 && f.dropBody >= 0 {
				if f.recipients() == 0 {
					// Every RCPT TO was refused: the transaction has nobody
					// to deliver to, so no server could have kept this body,
					// and the client may send the message again
					// (OutcomeNotSent).
					f.c.note("server: whole body of message %d in a transaction without recipients (its LAST chunk refused and discarded)", f.dropBody)
				} else {
					f.s.reg.sawBody(f.c, f.dropBody, "its LAST chunk refused and discarded")
				}
				f.dropBody = -1
			}
			continue
		}
		i := bytes.IndexByte(f.in, '\n')
		if i < 0 {
			idle := f.idle()
			err := f.fill(idle)
			if err == nil {
				continue
			}
			if idle > 0 && errors.Is(err, os.ErrDeadlineExceeded) {
				f.unsolicited(idle)
				return 0, io.EOF
			}
			return 0, err
		}
		line := f.in[:i+1]
		f.in = f.in[i+1:]
		f.mu.Lock()
		inData := f.inData
		if inData && string(line) == ".\r\n" {
			f.inData = false
		}
		f.mu.Unlock()
		if inData {
			if f.dataCut >= 0 && string(line) == marker(f.dataCut) {
				f.c.fault("server cut before end of body", "server: connection reset before the last line of message %d", f.dataCut)
				f.dataCut = -1
				f.reset()
				return 0, io.EOF
			}
			f.out = append(f.out, line...)
			continue
		}
		pass, err := f.command(string(line))
		if err != nil {
			return 0, err
		}
		if pass {
			f.out = append(f.out, line...)
		}
	}
}

// idle is how long the front waits for the next command before it sends
// an unsolicited 421, or 0: only between transactions of a session that
// authenticated, as a server drops an idle client.
func (f *front) idle() time.Duration {
	f.mu.Lock()
	quiet := f.authed && !f.inData && !f.dataPending
	f.mu.Unlock()
	if !quiet || !f.c.armed() {
		return 0
	}
	return f.c.server.idle
}

func (f *front) fill(idle time.Duration) error {
	nc := f.conn()
	if f.rbuf == nil {
		f.rbuf = make([]byte, 32<<10)
	}
	if idle > 0 {
		nc.SetReadDeadline(time.Now().Add(idle))
		defer nc.SetReadDeadline(time.Time{})
	}
	n, err := nc.Read(f.rbuf)
	f.in = append(f.in, f.rbuf[:n]...)
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// command judges one command line: answered here (a fault, or the clear
// part of STARTTLS) or handed to go-smtp.
func (f *front) command(line string) (pass bool, err error) {
	text := strings.TrimRight(line, "\r\n")
	verb, arg, _ := strings.Cut(text, " ")
	verb = strings.ToUpper(verb)
	c := f.c
	f.mu.Lock()
	secure := f.secure
	f.mu.Unlock()
	if !secure {
		return false, f.clearCommand(verb)
	}
	c.mu.Lock()
	kill, afterRevoke := c.kill, c.afterRevoke
	c.mu.Unlock()
	if kill {
		c.fault("server 421 after revocation", "server: %s answered 421: the credential was revoked", verb)
		f.write("421 4.7.0 Session ended: the credential changed\r\n")
		f.Close()
		return false, io.EOF
	}
	shown := text
	if verb == "AUTH" {
		shown = "AUTH " + strings.Fields(arg + " x")[0] + " [credential]"
	}
	if verb == "MAIL" {
		n := -1
		if i, j := strings.IndexByte(arg, '<'), strings.IndexByte(arg, '>'); 0 <= i && i < j {
			n = messageNumber(arg[i+1 : j])
		}
		f.s.reg.sawMail(c, n, shown)
	}
	var size int64
	var last bool
	if verb == "BDAT" {
		fields := strings.Fields(arg)
		if len(fields) > 0 {
			size, _ = strconv.ParseInt(fields[0], 10, 64)
		}
		last = len(fields) > 1 && strings.EqualFold(fields[1], "LAST")
	}
	var refuse string
	var cut int64
	if c.armed() && !(verb == "AUTH" && afterRevoke) {
		c.draw(func(r *rand.Rand) {
			switch verb {
			case "EHLO", "HELO", "AUTH", "MAIL", "RCPT", "DATA", "BDAT", "RSET", "NOOP":
				refuse = refusal(r, c.server.refuse, verb)
			}
			if refuse == "" && !c.server.calm && (verb == "DATA" || verb == "BDAT" && last && size > 0) && r.IntN(100) < 4 {
				cut = 1 + r.Int64N(min(size, 16)+1)
			}
		})
	}
	if r, ok := c.server.refuseWith[verb]; ok {
		refuse = r
	}
	if verb == "AUTH" && refuse != "" {
		refuse = "454 4.7.0 Temporary authentication failure (chaos)"
	}
	if refuse != "" {
		c.fault("server refuses "+verb+" "+refuse[:3], "server: %s answered %s", shown, refuse)
		if verb == "BDAT" {
			f.dropLeft = size
			if last {
				f.dropBody = f.tx()
			}
		}
		if _, err := f.write(refuse + "\r\n"); err != nil {
			return false, err
		}
		if strings.HasPrefix(refuse, "421") {
			f.Close()
			return false, io.EOF
		}
		return false, nil
	}
	if verb != "MAIL" {
		c.note("server: %s", shown)
	}
	switch verb {
	case "EHLO", "HELO":
		f.s.reg.ehlo(c)
		f.mu.Lock()
		f.ehloPending = true
		f.mu.Unlock()
	case "DATA":
		f.mu.Lock()
		f.dataPending = true
		f.mu.Unlock()
		if cut > 0 {
			f.dataCut = f.tx()
		}
	case "BDAT":
		f.chunkLeft = size
		f.cutLeft = cut
	}
	return true, nil
}

// clearCommand plays the part of a STARTTLS session before TLS.
func (f *front) clearCommand(verb string) error {
	c := f.c
	reply := func(s string) error {
		_, err := f.write(s)
		return err
	}
	switch verb {
	case "EHLO", "HELO":
		if r := c.server.clearEHLO; r != "" && c.armed() {
			c.fault("server refuses EHLO in clear "+r[:3], "server: EHLO in clear answered %s", r)
			if err := reply(r + "\r\n"); err != nil || strings.HasPrefix(r, "421") {
				f.Close()
				return io.EOF
			}
			return nil
		}
		c.note("server: EHLO in clear")
		return reply("250-localhost\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-STARTTLS\r\n250 SIZE 31457280\r\n")
	case "STARTTLS":
		if r := c.server.startTLS; r != "" && c.armed() {
			c.fault("server refuses STARTTLS", "server: STARTTLS answered %s", r)
			return reply(r + "\r\n")
		}
		c.note("server: STARTTLS")
		if err := reply("220 2.0.0 Ready to start TLS\r\n"); err != nil {
			return err
		}
		if err := f.startTLS(); err != nil {
			f.Close()
			return io.EOF
		}
		return nil
	case "QUIT":
		reply("221 2.0.0 Bye\r\n")
		f.Close()
		return io.EOF
	case "NOOP":
		return reply("250 2.0.0 OK\r\n")
	}
	return reply("530 5.7.0 Must issue a STARTTLS command first\r\n")
}

// unsolicited ends an idle session with a 421 nobody asked for, as
// go-smtp's ReadTimeout does, sometimes on two lines written apart.
func (f *front) unsolicited(idle time.Duration) {
	c := f.c
	lines := []string{"421 4.4.2 Idle timeout, closing the connection\r\n"}
	if c.server.multiline {
		lines = []string{"421-4.4.2 localhost: idle for too long\r\n", "421 4.4.2 Closing the connection\r\n"}
	}
	c.fault("server unsolicited 421", "server: idle for %v: unsolicited %d-line 421", idle, len(lines))
	f.writeMarked(markUnsolicited, -1, lines...)
	f.Close()
}

// reset closes the connection with an RST.
func (f *front) reset() {
	f.raw.SetLinger(0)
	f.Close()
}

func (f *front) setAuthed() {
	f.mu.Lock()
	f.authed = true
	f.mu.Unlock()
}

func (f *front) setTx(n int) {
	f.mu.Lock()
	f.curTx, f.rcpts = n, 0
	f.mu.Unlock()
}

func (f *front) addRecipient() {
	f.mu.Lock()
	f.rcpts++
	f.mu.Unlock()
}

func (f *front) recipients() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rcpts
}

func (f *front) tx() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.curTx
}

func (f *front) setFinal(n int) {
	f.mu.Lock()
	f.final = n
	f.mu.Unlock()
}

// Close closes the socket (without close_notify: the front never blocks on
// a client that stopped reading).
func (f *front) Close() error {
	var err error
	f.closeOnce.Do(func() {
		err = f.raw.Close()
		f.mu.Lock()
		c := f.c
		f.mu.Unlock()
		if c != nil {
			c.note("server: connection closed")
			f.s.reg.ended(c)
		}
		f.s.forget(f)
	})
	return err
}

func (f *front) LocalAddr() net.Addr                { return f.raw.LocalAddr() }
func (f *front) RemoteAddr() net.Addr               { return f.raw.RemoteAddr() }
func (f *front) SetDeadline(t time.Time) error      { return f.conn().SetDeadline(t) }
func (f *front) SetReadDeadline(t time.Time) error  { return f.conn().SetReadDeadline(t) }
func (f *front) SetWriteDeadline(t time.Time) error { return f.conn().SetWriteDeadline(t) }
