package submittest

import (
	"bytes"
	"net"
	"sync"
	"sync/atomic"

	"github.com/portwise/portwise/submit/submittest/internal/bdat"
)

// tapConn sits between an accepted TCP connection and go-smtp. While the
// connection is in clear it records every client line and applies the
// listener's clear-text faults; once TLS starts (go-smtp wraps this conn in
// tls.Server, so only ciphertext flows here) it passes bytes straight
// through.
type tapConn struct {
	net.Conn
	l   *listener
	rec *connRecord

	// Read side, touched only by the goroutine serving the connection.
	line []byte // the client line being assembled, CRLF included
	sent int    // how much of line already went to go-smtp
	out  []byte // filtered bytes waiting for go-smtp
	rbuf []byte
	rerr error

	clear atomic.Bool // still interpreting bytes

	mu          sync.Mutex
	sawSTARTTLS bool  // client asked; the next reply decides
	dataPending bool  // client sent DATA; a 354 starts the message
	inData      bool  // client lines are message content, not commands
	chunkLeft   int64 // bytes of a BDAT chunk still to pass (read side only)
	closeOnce   sync.Once
	counted     bool // a session of the listener's MaxSessions
}

func (t *tapConn) Read(p []byte) (int, error) {
	for {
		clear := t.clear.Load()
		if !clear {
			// go-smtp drops whatever the client pipelined after STARTTLS;
			// so do we, rather than feeding it to the TLS handshake.
			t.out = nil
		}
		if len(t.out) > 0 {
			n := copy(p, t.out)
			t.out = t.out[n:]
			return n, nil
		}
		if t.rerr != nil {
			return 0, t.rerr
		}
		if !clear {
			return t.Conn.Read(p)
		}
		if t.rbuf == nil {
			t.rbuf = make([]byte, 4096)
		}
		n, err := t.Conn.Read(t.rbuf)
		t.feed(t.rbuf[:n])
		t.rerr = err
	}
}

// feed splits clear client bytes into lines, records them and queues what
// go-smtp should see.
func (t *tapConn) feed(b []byte) {
	intercept := t.l.faults.interceptsSTARTTLS()
	for len(b) > 0 {
		if t.chunkLeft > 0 {
			// A BDAT chunk is bytes, not lines: it passes as it is.
			k := int(min(t.chunkLeft, int64(len(b))))
			t.out = append(t.out, b[:k]...)
			t.chunkLeft -= int64(k)
			b = b[k:]
			continue
		}
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			t.line = append(t.line, b...)
			break
		}
		t.line = append(t.line, b[:i+1]...)
		b = b[i+1:]
		t.lineDone(intercept)
		t.line, t.sent = t.line[:0], 0
	}
	if len(t.line) > t.sent && !(intercept && t.sent == 0 && mayBecomeSTARTTLS(t.line)) {
		t.out = append(t.out, t.line[t.sent:]...)
		t.sent = len(t.line)
	}
}

func (t *tapConn) lineDone(intercept bool) {
	text := string(bytes.TrimRight(t.line, "\r\n"))
	t.mu.Lock()
	isData := t.inData
	if isData && text == "." {
		t.inData = false
	}
	isCmd := !isData && text != "."
	if isCmd {
		t.dataPending = bytes.EqualFold(bytes.TrimSpace([]byte(text)), []byte("DATA"))
		t.chunkLeft = bdatSize(text)
	}
	starttls := isCmd && isSTARTTLSCmd(t.line)
	t.mu.Unlock()
	t.l.srv.recordClear(t.rec, text, isCmd)

	switch {
	case starttls && intercept && t.sent == 0 && t.l.faults.has(RejectSTARTTLS):
		reply := t.l.opts.STARTTLSReply
		t.Conn.Write([]byte(reply + "\r\n"))
		if len(reply) >= 3 && reply[:3] == "421" {
			t.Conn.Close()
		}
		return
	case starttls && intercept && t.sent == 0 && t.l.faults.has(MaskSTARTTLS):
		t.out = append(t.out, "XXXXXXXA\r\n"...)
		return
	case starttls:
		t.mu.Lock()
		t.sawSTARTTLS = true
		t.mu.Unlock()
	}
	t.out = append(t.out, t.line[t.sent:]...)
}

func (t *tapConn) Write(p []byte) (int, error) {
	if !t.clear.Load() {
		return t.Conn.Write(p)
	}
	// go-smtp flushes one reply line per Write; a trailing partial line
	// passes unchanged.
	var out []byte
	rest := p
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			out = append(out, rest...)
			break
		}
		raw := rest[:i+1]
		rest = rest[i+1:]
		line := bytes.TrimRight(raw, "\r\n")
		switch nl, changed, drop := rewriteReplyLine(t.l.faults, line); {
		case drop:
			continue
		case changed:
			raw = append(nl, "\r\n"...)
		}
		out = append(out, raw...)
		if t.replied(line) && t.l.faults.has(InjectAfterSTARTTLS) {
			out = append(out, t.l.opts.Injection...)
		}
	}
	if _, err := t.Conn.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// replied tracks the state a server line moves the connection to and
// reports whether it was the 220 that starts TLS.
func (t *tapConn) replied(line []byte) (startsTLS bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.dataPending && len(line) >= 4 && line[3] == ' ' {
		t.dataPending = false
		t.inData = bytes.HasPrefix(line, []byte("354"))
	}
	if t.sawSTARTTLS && len(line) >= 4 && line[3] == ' ' {
		t.sawSTARTTLS = false
		if bytes.HasPrefix(line, []byte("220")) {
			t.clear.Store(false)
			return true
		}
	}
	return false
}

func (t *tapConn) Close() error {
	var err error
	t.closeOnce.Do(func() {
		if t.counted {
			t.l.sessions.Add(-1)
		}
		err = t.Conn.Close()
		t.l.srv.forget(t)
		t.l.srv.markClosed(t.rec)
	})
	return err
}

// bdatSize is the chunk size of a "BDAT n [LAST]" command line, 0 for any
// other line.
func bdatSize(line string) int64 {
	n, _, _ := bdat.Parse(line)
	return n
}
