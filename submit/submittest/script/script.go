package script

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/portwise/portwise/submit/submittest/internal/bdat"
)

// Step is one step of a script. Build steps with Expect, ExpectPrefix,
// ExpectMatch, ExpectData, ExpectBDAT, Send, SendRecords, SendSlowly,
// Repeat, StartTLS, Pause, Close and Reset.
type Step struct {
	kind  stepKind
	text  string
	parts []string
	re    *regexp.Regexp
	every time.Duration
	n     int
}

type stepKind int

const (
	stepExpect stepKind = iota
	stepExpectPrefix
	stepExpectMatch
	stepExpectData
	stepExpectBDAT
	stepSend
	stepSendRecords
	stepSendSlowly
	stepRepeat
	stepStartTLS
	stepPause
	stepClose
	stepReset
)

// Expect waits for the client line line (without CRLF), exactly.
func Expect(line string) Step { return Step{kind: stepExpect, text: line} }

// ExpectPrefix waits for a client line starting with prefix, compared
// case-insensitively as SMTP verbs are.
func ExpectPrefix(prefix string) Step { return Step{kind: stepExpectPrefix, text: prefix} }

// ExpectMatch waits for a client line matching the regular expression re.
// It panics if re does not compile.
func ExpectMatch(re string) Step { return Step{kind: stepExpectMatch, re: regexp.MustCompile(re)} }

// ExpectData reads message lines up to and including the lone "." that
// ends DATA. Each line is recorded, so a test can check what a client
// put on the wire; Record.Messages holds the content, dot-unstuffed.
func ExpectData() Step { return Step{kind: stepExpectData} }

// ExpectBDAT reads one "BDAT n" or "BDAT n LAST" command and the n bytes
// of its chunk (RFC 3030). After the LAST chunk, Record.Messages holds the
// chunks of the message joined; an expected RSET discards the chunks
// read so far.
func ExpectBDAT() Step { return Step{kind: stepExpectBDAT} }

// Send writes s exactly, in one write: several reply lines, a partial
// line, anything. Write "\r\n" yourself.
func Send(s string) Step { return Step{kind: stepSend, text: s} }

// Reply renders a well-formed reply of code with lines, for Send: one
// "250 ok\r\n" line, or "250-a\r\n250 b\r\n" for several. An EHLO reply
// is Reply(250, "name", "PIPELINING", "STARTTLS").
func Reply(code int, lines ...string) string {
	if len(lines) == 0 {
		lines = []string{""}
	}
	var b strings.Builder
	for i, l := range lines {
		sep := "-"
		if i == len(lines)-1 {
			sep = " "
		}
		fmt.Fprintf(&b, "%03d%s%s\r\n", code, sep, l)
	}
	return b.String()
}

// SendRecords writes each part in a write of its own, so that under TLS
// each is a record of its own, and all of them in one write on the socket,
// as a server whose TLS layer coalesces its output does: a client reads
// them all at once, and crypto/tls holds the later records while it
// returns the first.
func SendRecords(parts ...string) Step { return Step{kind: stepSendRecords, parts: parts} }

// SendSlowly writes s one byte at a time, waiting every between bytes, as
// a slowloris server does. It stops early when the client goes away.
func SendSlowly(s string, every time.Duration) Step {
	return Step{kind: stepSendSlowly, text: s, every: every}
}

// Repeat writes s n times; n <= 0 means until the client stops reading or
// closes the connection (an endless "250-" continuation, say).
func Repeat(s string, n int) Step { return Step{kind: stepRepeat, text: s, n: n} }

// StartTLS runs the server side of a TLS handshake with the listener's
// certificate. As the first step it makes an implicit TLS listener; after
// Send("220 ...") in reply to the client's STARTTLS it is a STARTTLS one.
// Bytes the client sent before its handshake are fed to the handshake.
func StartTLS() Step { return Step{kind: stepStartTLS} }

// Pause waits d.
func Pause(d time.Duration) Step { return Step{kind: stepPause, every: d} }

// Close closes the connection normally (a FIN).
func Close() Step { return Step{kind: stepClose} }

// Reset aborts the connection with a TCP RST.
func Reset() Step { return Step{kind: stepReset} }

// String renders the step as the call that built it, for Record.Err.
func (st Step) String() string {
	switch st.kind {
	case stepExpect:
		return fmt.Sprintf("Expect(%q)", st.text)
	case stepExpectPrefix:
		return fmt.Sprintf("ExpectPrefix(%q)", st.text)
	case stepExpectMatch:
		return fmt.Sprintf("ExpectMatch(%q)", st.re)
	case stepExpectData:
		return "ExpectData()"
	case stepExpectBDAT:
		return "ExpectBDAT()"
	case stepSend:
		return fmt.Sprintf("Send(%q)", clipText(st.text))
	case stepSendRecords:
		return fmt.Sprintf("SendRecords(%q)", clipText(strings.Join(st.parts, "")))
	case stepSendSlowly:
		return fmt.Sprintf("SendSlowly(%q, %s)", clipText(st.text), st.every)
	case stepRepeat:
		return fmt.Sprintf("Repeat(%q, %d)", clipText(st.text), st.n)
	case stepStartTLS:
		return "StartTLS()"
	case stepPause:
		return fmt.Sprintf("Pause(%s)", st.every)
	case stepClose:
		return "Close()"
	case stepReset:
		return "Reset()"
	}
	return "Step(?)"
}

// clipText shortens s for a message, without splitting a character; the
// caller quotes it with %q.
func clipText(s string) string {
	if len(s) <= 40 {
		return s
	}
	cut := 40
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// Line is one line a client sent.
type Line struct {
	Text string // without CRLF
	TLS  bool   // the line arrived over a completed TLS handshake
	Data bool   // the line is message content (inside ExpectData)
}

// Record is what a script saw on one connection.
type Record struct {
	// Lines holds every line the client sent, in order, message content
	// included.
	Lines []Line
	// Messages holds the content of each ExpectData, dot-unstuffed, with
	// CRLF line endings and without the terminator, and of each message
	// whose LAST chunk an ExpectBDAT read.
	Messages [][]byte
	// TLS reports that a TLS handshake completed: the client accepted the
	// certificate.
	TLS bool
	// Steps counts the steps that ran to completion.
	Steps int
	// Err says why the script stopped before its end: a line that did not
	// match, a handshake that failed, the client closing. nil when every
	// step ran.
	Err error
	// Done reports that the connection is over.
	Done bool
}

// ClearLines returns the text of the lines sent before TLS.
func (r Record) ClearLines() []string {
	var out []string
	for _, l := range r.Lines {
		if !l.TLS {
			out = append(out, l.Text)
		}
	}
	return out
}

// Implicit reports whether steps start with a TLS handshake: a script for
// an implicit TLS port.
func Implicit(steps []Step) bool { return len(steps) > 0 && steps[0].kind == stepStartTLS }

// NeedsTLS reports whether steps hold a StartTLS step.
func NeedsTLS(steps []Step) bool {
	for _, st := range steps {
		if st.kind == stepStartTLS {
			return true
		}
	}
	return false
}

// timeout bounds each Expect and handshake, so a client that stops talking
// cannot hold a test server forever.
const timeout = 10 * time.Second

// maxLine bounds one client line read by a script.
const maxLine = 1 << 20

// Config is how Play plays a script.
type Config struct {
	// TLS is the server configuration of StartTLS steps.
	TLS *tls.Config
	// Mu, when set, is held while Play changes the Record, so that others
	// may read it as it grows; nil means the Record is Play's alone until
	// it returns.
	Mu *sync.Mutex
	// OnLine, when set, is called (with Mu held) for each client line.
	OnLine func(Line)
	// OnTLS, when set, is called (with Mu held) when a handshake completes.
	OnTLS func()
}

// run is one connection playing a script.
type run struct {
	ctx    context.Context
	cfg    Config
	raw    net.Conn
	under  *prefixConn // what the *tls.Conn writes to, once there is TLS
	nc     net.Conn    // raw, or the *tls.Conn over it
	br     *bufio.Reader
	rec    *Record
	tls    bool
	data   bool   // inside ExpectData
	chunks []byte // the BDAT chunks of the message so far
}

// Play plays steps on c and records what the client did in rec, then keeps
// recording the client's lines until it closes the connection. It closes
// c before returning; ending ctx closes it at once.
func Play(ctx context.Context, c net.Conn, steps []Step, cfg Config, rec *Record) {
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	r := &run{ctx: ctx, cfg: cfg, raw: c, nc: c, br: bufio.NewReader(c), rec: rec}
	defer func() {
		c.Close()
		r.update(func() { rec.Done = true })
	}()
	for i, st := range steps {
		closed, err := r.step(st)
		if err != nil {
			r.update(func() { rec.Err = fmt.Errorf("step %d %v: %w", i+1, st, err) })
			break
		}
		r.update(func() { rec.Steps++ })
		if closed {
			return
		}
	}
	// Off script or past its end: record what else the client says until
	// it closes, without answering.
	for {
		r.nc.SetReadDeadline(time.Now().Add(timeout))
		if _, err := r.readLine(); err != nil {
			return
		}
	}
}

// update changes the record under Mu.
func (r *run) update(f func()) {
	if r.cfg.Mu != nil {
		r.cfg.Mu.Lock()
		defer r.cfg.Mu.Unlock()
	}
	f()
}

// step runs one step; closed reports that the connection is gone by design.
func (r *run) step(st Step) (closed bool, err error) {
	switch st.kind {
	case stepExpect, stepExpectPrefix, stepExpectMatch:
		return false, r.expect(st)
	case stepExpectData:
		return false, r.expectData()
	case stepExpectBDAT:
		return false, r.expectBDAT()
	case stepSend:
		r.nc.SetWriteDeadline(time.Now().Add(timeout))
		_, err := io.WriteString(r.nc, st.text)
		return false, err
	case stepSendRecords:
		r.nc.SetWriteDeadline(time.Now().Add(timeout))
		if r.under == nil {
			_, err := io.WriteString(r.nc, strings.Join(st.parts, ""))
			return false, err
		}
		r.under.cork()
		for _, p := range st.parts {
			if _, err := io.WriteString(r.nc, p); err != nil {
				return false, err
			}
		}
		return false, r.under.uncork()
	case stepSendSlowly:
		for i := 0; i < len(st.text); i++ {
			if i > 0 && !r.sleep(st.every) {
				return false, net.ErrClosed
			}
			r.nc.SetWriteDeadline(time.Now().Add(timeout))
			if _, err := r.nc.Write([]byte{st.text[i]}); err != nil {
				return false, err
			}
		}
	case stepRepeat:
		chunk := []byte(strings.Repeat(st.text, max(1, 4096/max(1, len(st.text)))))
		per := len(chunk) / max(1, len(st.text))
		for sent := 0; st.n <= 0 || sent < st.n; sent += per {
			b := chunk
			if st.n > 0 && st.n-sent < per {
				b = chunk[:(st.n-sent)*len(st.text)]
			}
			r.nc.SetWriteDeadline(time.Now().Add(timeout))
			if _, err := r.nc.Write(b); err != nil {
				return false, err
			}
		}
	case stepStartTLS:
		var pre []byte
		if n := r.br.Buffered(); n > 0 {
			pre, _ = r.br.Peek(n)
			pre = bytes.Clone(pre)
		}
		if r.cfg.TLS == nil {
			return false, errors.New("StartTLS step without Config.TLS")
		}
		r.under = &prefixConn{Conn: r.raw, pre: pre}
		tc := tls.Server(r.under, r.cfg.TLS)
		tc.SetDeadline(time.Now().Add(timeout))
		if err := tc.Handshake(); err != nil {
			return false, fmt.Errorf("TLS handshake: %w", err)
		}
		tc.SetDeadline(time.Time{})
		r.nc, r.br, r.tls = tc, bufio.NewReader(tc), true
		r.update(func() {
			r.rec.TLS = true
			if r.cfg.OnTLS != nil {
				r.cfg.OnTLS()
			}
		})
	case stepPause:
		if !r.sleep(st.every) {
			return false, net.ErrClosed
		}
	case stepClose:
		r.nc.Close()
		return true, nil
	case stepReset:
		if tc, ok := r.raw.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		r.raw.Close()
		return true, nil
	}
	return false, nil
}

// expect reads one client line and checks it against st.
func (r *run) expect(st Step) error {
	r.nc.SetReadDeadline(time.Now().Add(timeout))
	line, err := r.readLine()
	if err != nil {
		return err
	}
	var ok bool
	switch st.kind {
	case stepExpect:
		ok = line == st.text
	case stepExpectPrefix:
		ok = len(line) >= len(st.text) && strings.EqualFold(line[:len(st.text)], st.text)
	default:
		ok = st.re.MatchString(line)
	}
	if !ok {
		return fmt.Errorf("client sent %q", clipText(line))
	}
	if strings.EqualFold(line, "RSET") {
		r.chunks = nil // the message being chunked is discarded
	}
	return nil
}

// expectData reads a message up to its lone ".", dot-unstuffed.
func (r *run) expectData() error {
	r.data = true
	defer func() { r.data = false }()
	var msg []byte
	for {
		r.nc.SetReadDeadline(time.Now().Add(timeout))
		line, err := r.readLine()
		if err != nil {
			return err
		}
		if line == "." {
			break
		}
		msg = append(msg, strings.TrimPrefix(line, ".")...)
		msg = append(msg, "\r\n"...)
	}
	r.update(func() { r.rec.Messages = append(r.rec.Messages, msg) })
	return nil
}

// expectBDAT reads a BDAT command and its chunk; the chunk's lines are
// recorded as message content.
func (r *run) expectBDAT() error {
	r.nc.SetReadDeadline(time.Now().Add(timeout))
	line, err := r.readLine()
	if err != nil {
		return err
	}
	n, last, ok := bdat.Parse(line)
	switch {
	case !ok:
		return fmt.Errorf("client sent %q", clipText(line))
	case n > 64<<20:
		return fmt.Errorf("client sent %q: not a chunk size this script takes", clipText(line))
	}
	chunk := make([]byte, n)
	r.nc.SetReadDeadline(time.Now().Add(timeout))
	if _, err := io.ReadFull(r.br, chunk); err != nil {
		return fmt.Errorf("chunk of %d bytes: %w", n, err)
	}
	r.data = true
	for _, l := range bytes.SplitAfter(chunk, []byte("\n")) {
		if len(l) > 0 {
			r.record(strings.TrimSuffix(strings.TrimSuffix(string(l), "\n"), "\r"))
		}
	}
	r.data = false
	r.chunks = append(r.chunks, chunk...)
	if last {
		msg := r.chunks
		r.chunks = nil
		r.update(func() { r.rec.Messages = append(r.rec.Messages, msg) })
	}
	return nil
}

// sleep waits d; false means the server closed or the client went away
// meanwhile, so that a slowloris step ends with the client that gave up on
// it. What the client sends meanwhile stays buffered for the next step.
func (r *run) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	gone, watched := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watched)
		for {
			// Peek one byte more than is buffered: a client that sends
			// QUIT and closes is gone too.
			_, err := r.br.Peek(r.br.Buffered() + 1)
			switch {
			case err == nil:
				continue
			case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, bufio.ErrBufferFull):
			default:
				close(gone)
			}
			return
		}
	}()
	defer func() {
		r.nc.SetReadDeadline(time.Now()) // ends the Peek
		<-watched
		r.nc.SetReadDeadline(time.Time{})
	}()
	select {
	case <-t.C:
		return true
	case <-gone:
		return false
	case <-r.ctx.Done():
		return false
	}
}

// readLine reads and records one client line.
func (r *run) readLine() (string, error) {
	var buf []byte
	for {
		chunk, err := r.br.ReadSlice('\n')
		buf = append(buf, chunk...)
		if len(buf) > maxLine {
			return "", fmt.Errorf("client line longer than %d bytes", maxLine)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			if len(buf) > 0 {
				r.record(string(buf)) // a partial last line is evidence too
			}
			return "", err
		}
		line := strings.TrimSuffix(strings.TrimSuffix(string(buf), "\n"), "\r")
		r.record(line)
		return line, nil
	}
}

func (r *run) record(line string) {
	l := Line{Text: line, TLS: r.tls, Data: r.data}
	r.update(func() {
		r.rec.Lines = append(r.rec.Lines, l)
		if r.cfg.OnLine != nil {
			r.cfg.OnLine(l)
		}
	})
}

// prefixConn replays bytes already read from a connection before reading
// more, so a handshake sees what a bufio.Reader had buffered.
type prefixConn struct {
	net.Conn
	pre    []byte
	corked bool // writes are held in held until uncork
	held   []byte
}

func (p *prefixConn) Write(b []byte) (int, error) {
	if p.corked {
		p.held = append(p.held, b...)
		return len(b), nil
	}
	return p.Conn.Write(b)
}

func (p *prefixConn) cork() { p.corked = true }

// uncork writes what was held, in one write.
func (p *prefixConn) uncork() error {
	p.corked = false
	b := p.held
	p.held = nil
	_, err := p.Conn.Write(b)
	return err
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.pre) > 0 {
		n := copy(b, p.pre)
		p.pre = p.pre[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}
