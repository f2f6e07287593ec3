package submittest

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
	"slices"
	"strings"
	"sync"
	"time"
)

// A scripted listener plays exact bytes, for the hostile servers that
// go-smtp cannot be made to imitate: a reply with extra lines in the same
// segment, a malformed code, a reply line that never ends, a server that
// sends one byte every five seconds, a reset right after the banner. Each
// accepted connection runs the same steps from the first; whatever the
// client sends after the last step is still recorded until it closes.
//
// A script is strict about what it expects but never about what it sends:
// a Step that does not match stops the script (ScriptConn.Err says why) and
// the rest of the client's lines are recorded, so a test can see exactly
// what a client did when it went off script.

// Step is one step of a script. Build steps with Expect, ExpectPrefix,
// ExpectMatch, ExpectData, Send, SendSlowly, Repeat, StartTLS, Pause,
// Close and Reset.
type Step struct {
	kind  stepKind
	text  string
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
	stepSend
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
// put on the wire; ScriptConn.Messages holds the content, dot-unstuffed.
func ExpectData() Step { return Step{kind: stepExpectData} }

// Send writes s exactly, in one write: several reply lines, a partial
// line, anything. Write "\r\n" yourself.
func Send(s string) Step { return Step{kind: stepSend, text: s} }

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

// String renders the step as the call that built it, for ScriptConn.Err.
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
	case stepSend:
		return fmt.Sprintf("Send(%q)", clipText(st.text))
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

func clipText(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// ClientLine is one line a client sent to a scripted listener.
type ClientLine struct {
	Text string // without CRLF
	TLS  bool   // the line arrived over a completed TLS handshake
}

// ScriptConn is what a scripted listener saw on one connection.
type ScriptConn struct {
	// Addr is the listener address.
	Addr string
	// Lines holds every line the client sent, in order, message content
	// included.
	Lines []ClientLine
	// Messages holds the content of each ExpectData, dot-unstuffed, with
	// CRLF line endings and without the terminator.
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
func (c ScriptConn) ClearLines() []string {
	var out []string
	for _, l := range c.Lines {
		if !l.TLS {
			out = append(out, l.Text)
		}
	}
	return out
}

// scriptTimeout bounds each Expect and handshake, so a client that stops
// talking cannot hold a test server forever.
const scriptTimeout = 10 * time.Second

// maxScriptLine bounds one client line read by a script.
const maxScriptLine = 1 << 20

// scriptListener is a listener playing one script.
type scriptListener struct {
	srv   *Server
	addr  string
	steps []Step
	cfg   *tls.Config // nil until a StartTLS step needs it
	conns []*ScriptConn
	wg    sync.WaitGroup
}

// ListenScript adds a listener that plays steps on every connection it
// accepts and returns its "127.0.0.1:port". o sets the certificate of
// StartTLS steps (CertName, SelfSigned, CertExpired, MaxTLSVersion...); an
// empty Hostname is the server's, so ClientTLSConfig trusts it. Connections
// also appear in Conns, with Clear holding the lines sent before TLS.
// It panics if the listener cannot be set up.
func (s *Server) ListenScript(o Options, steps ...Step) string {
	if o.Hostname == "" {
		o.Hostname = s.opts.Hostname
	}
	o = o.withDefaults()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Errorf("submittest: listen: %w", err))
	}
	sl := &scriptListener{srv: s, addr: ln.Addr().String(), steps: slices.Clone(steps)}
	if slices.ContainsFunc(steps, func(st Step) bool { return st.kind == stepStartTLS }) {
		if sl.cfg, err = s.tlsConfig(o); err != nil {
			ln.Close()
			panic(err)
		}
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		panic("submittest: server closed")
	}
	s.listeners = append(s.listeners, &listener{srv: s, addr: sl.addr, opts: o, ln: ln})
	if s.scripts == nil {
		s.scripts = make(map[string]*scriptListener)
	}
	s.scripts[sl.addr] = sl
	s.mu.Unlock()

	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer sl.wg.Wait() // Close has closed done: each connection is ending
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			rec := s.track(c, c, sl.addr)
			if rec == nil {
				c.Close()
				return
			}
			sc := &ScriptConn{Addr: sl.addr}
			s.mu.Lock()
			sl.conns = append(sl.conns, sc)
			s.mu.Unlock()
			sl.wg.Add(1)
			go func() {
				defer sl.wg.Done()
				sl.serve(c, rec, sc)
			}()
		}
	}()
	return sl.addr
}

// ScriptConns returns what the scripted listener at addr saw, one entry per
// accepted connection, oldest first, including connections still running.
func (s *Server) ScriptConns(addr string) []ScriptConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	sl := s.scripts[addr]
	if sl == nil {
		return nil
	}
	out := make([]ScriptConn, len(sl.conns))
	for i, c := range sl.conns {
		out[i] = *c
		out[i].Lines = slices.Clone(c.Lines)
		out[i].Messages = slices.Clone(c.Messages)
	}
	return out
}

// WaitScripts waits until every connection the scripted listener at addr
// has accepted so far is over (the client closed it, or the script did),
// and returns ScriptConns. Call it after the client under test has closed
// its connections, so that its last lines are recorded.
func (s *Server) WaitScripts(ctx context.Context, addr string) ([]ScriptConn, error) {
	for {
		conns := s.ScriptConns(addr)
		if !slices.ContainsFunc(conns, func(c ScriptConn) bool { return !c.Done }) {
			return conns, nil
		}
		select {
		case <-ctx.Done():
			return conns, fmt.Errorf("submittest: scripted connections on %s still open: %w", addr, ctx.Err())
		case <-s.done:
			return s.ScriptConns(addr), nil
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// scriptRun is one connection playing a script.
type scriptRun struct {
	sl   *scriptListener
	raw  net.Conn
	nc   net.Conn // raw, or the *tls.Conn over it
	br   *bufio.Reader
	rec  *connRecord
	sc   *ScriptConn
	tls  bool
	data bool // inside ExpectData
}

func (sl *scriptListener) serve(c net.Conn, rec *connRecord, sc *ScriptConn) {
	s := sl.srv
	finished := make(chan struct{})
	go func() {
		select {
		case <-s.done:
			c.Close()
		case <-finished:
		}
	}()
	r := &scriptRun{sl: sl, raw: c, nc: c, br: bufio.NewReader(c), rec: rec, sc: sc}
	defer func() {
		close(finished)
		c.Close()
		s.forget(c)
		s.mu.Lock()
		sc.Done = true
		s.mu.Unlock()
	}()
	for i, st := range sl.steps {
		closed, err := r.step(st)
		if err != nil {
			s.mu.Lock()
			sc.Err = fmt.Errorf("step %d %v: %w", i+1, st, err)
			s.mu.Unlock()
			break
		}
		s.mu.Lock()
		sc.Steps++
		s.mu.Unlock()
		if closed {
			return
		}
	}
	// Off script or past its end: record what else the client says until
	// it closes, without answering.
	for {
		r.nc.SetReadDeadline(time.Now().Add(scriptTimeout))
		if _, err := r.readLine(); err != nil {
			return
		}
	}
}

// step runs one step; closed reports that the connection is gone by design.
func (r *scriptRun) step(st Step) (closed bool, err error) {
	s := r.sl.srv
	switch st.kind {
	case stepExpect, stepExpectPrefix, stepExpectMatch:
		r.nc.SetReadDeadline(time.Now().Add(scriptTimeout))
		line, err := r.readLine()
		if err != nil {
			return false, err
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
			return false, fmt.Errorf("client sent %q", clipText(line))
		}
	case stepExpectData:
		r.data = true
		defer func() { r.data = false }()
		var msg []byte
		for {
			r.nc.SetReadDeadline(time.Now().Add(scriptTimeout))
			line, err := r.readLine()
			if err != nil {
				return false, err
			}
			if line == "." {
				break
			}
			msg = append(msg, strings.TrimPrefix(line, ".")...)
			msg = append(msg, "\r\n"...)
		}
		s.mu.Lock()
		r.sc.Messages = append(r.sc.Messages, msg)
		s.mu.Unlock()
	case stepSend:
		r.nc.SetWriteDeadline(time.Now().Add(scriptTimeout))
		_, err := io.WriteString(r.nc, st.text)
		return false, err
	case stepSendSlowly:
		for i := 0; i < len(st.text); i++ {
			if i > 0 && !r.sleep(st.every) {
				return false, net.ErrClosed
			}
			r.nc.SetWriteDeadline(time.Now().Add(scriptTimeout))
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
			r.nc.SetWriteDeadline(time.Now().Add(scriptTimeout))
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
		tc := tls.Server(&prefixConn{Conn: r.raw, pre: pre}, r.sl.cfg)
		tc.SetDeadline(time.Now().Add(scriptTimeout))
		if err := tc.Handshake(); err != nil {
			return false, fmt.Errorf("TLS handshake: %w", err)
		}
		tc.SetDeadline(time.Time{})
		r.nc, r.br, r.tls = tc, bufio.NewReader(tc), true
		s.mu.Lock()
		r.sc.TLS, r.rec.TLS = true, true
		s.mu.Unlock()
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

// sleep waits d; false means the server closed or the client went away
// meanwhile, so that a slowloris step ends with the client that gave up on
// it. What the client sends meanwhile stays buffered for the next step.
func (r *scriptRun) sleep(d time.Duration) bool {
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
	case <-r.sl.srv.done:
		return false
	}
}

// readLine reads and records one client line.
func (r *scriptRun) readLine() (string, error) {
	var buf []byte
	for {
		chunk, err := r.br.ReadSlice('\n')
		buf = append(buf, chunk...)
		if len(buf) > maxScriptLine {
			return "", fmt.Errorf("client line longer than %d bytes", maxScriptLine)
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

func (r *scriptRun) record(line string) {
	s := r.sl.srv
	s.mu.Lock()
	r.sc.Lines = append(r.sc.Lines, ClientLine{Text: line, TLS: r.tls})
	if !r.tls {
		r.rec.Clear = append(r.rec.Clear, line)
	}
	if !r.data {
		r.rec.Commands = append(r.rec.Commands, line)
	}
	s.mu.Unlock()
}

// prefixConn replays bytes already read from a connection before reading
// more, so a handshake sees what a bufio.Reader had buffered.
type prefixConn struct {
	net.Conn
	pre []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.pre) > 0 {
		n := copy(b, p.pre)
		p.pre = p.pre[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}
