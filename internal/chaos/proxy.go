package chaos

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// proxy sits on loopback between the Mailer and the server and does to
// each connection what its proxyPlan says. It works on TCP only: TLS is end
// to end, so it can cut, half-close or stall the byte streams but never
// forge a reply.
type proxy struct {
	reg    *registry
	target string
	// tag, for the fault server, sends "CHAOS <id>\r\n" ahead of the
	// client's bytes, so that the server knows the connection's plan.
	tag bool
	ln  net.Listener
	wg  sync.WaitGroup

	mu         sync.Mutex
	closed     bool
	live       map[*pconn]struct{}
	closeStall bool // see stallAfterFinal
}

func startProxy(reg *registry, target string, tag bool) (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &proxy{reg: reg, target: target, tag: tag, ln: ln, live: map[*pconn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

func (p *proxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		client := c.(*net.TCPConn)
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			client.Close()
			return
		}
		pc := &pconn{p: p, c: p.reg.newConn(client.RemoteAddr().String()), client: client, done: make(chan struct{})}
		if p.closeStall {
			pc.closeStallAt.Store(1)
		}
		p.live[pc] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go pc.run()
	}
}

// close stops accepting, ends every connection and waits for their
// goroutines.
func (p *proxy) close() {
	p.mu.Lock()
	p.closed = true
	live := make([]*pconn, 0, len(p.live))
	for pc := range p.live {
		live = append(live, pc)
	}
	p.mu.Unlock()
	p.ln.Close()
	for _, pc := range live {
		pc.teardown(false, "the run ended")
	}
	p.wg.Wait()
}

// heal resets every connection the proxy is stalling, as a path that
// dropped a flow ends it at last: once no Send runs, a stall can hurt no
// deadline, and the Mailer's Close should not wait on one.
func (p *proxy) heal() {
	p.mu.Lock()
	var stuck []*pconn
	for pc := range p.live {
		for d := range pc.state {
			if st := pc.state[d].Load(); st == stalled || st == frozen {
				stuck = append(stuck, pc)
				break
			}
		}
	}
	p.mu.Unlock()
	for _, pc := range stuck {
		pc.teardown(true, "stall ended by a reset: no Send runs any more")
	}
}

// stallAfterFinal makes every connection, open now or later, stall
// server→client right after the next final reply it carries: the Mailer
// is closing, so a Send that gets its reply then hands its connection
// back to be closed, and a QUIT there gets no answer.
func (p *proxy) stallAfterFinal() {
	p.mu.Lock()
	p.closeStall = true
	live := make([]*pconn, 0, len(p.live))
	for pc := range p.live {
		live = append(live, pc)
	}
	p.mu.Unlock()
	for _, pc := range live {
		pc.closeStallAt.Store(int64(pc.c.countMarks(markFinal)) + 1)
	}
}

// The state of one direction of a connection.
const (
	flowing   int32 = iota
	discarded       // half-closed: what the source still sends is read and dropped
	stalled         // nothing more is forwarded; the source is read and dropped
	frozen          // nothing more is forwarded nor read, so the sender's buffers fill
)

// pconn is one proxied connection.
type pconn struct {
	p      *proxy
	c      *conn
	client *net.TCPConn
	server *net.TCPConn

	state    [2]atomic.Int32 // by direction
	finished [2]atomic.Bool  // the source of that direction ended
	fired    atomic.Bool
	// closeStallAt, when positive, is the final reply after which the
	// connection stalls server→client (stallAfterFinal).
	closeStallAt atomic.Int64
	closeFired   atomic.Bool
	once         sync.Once
	done         chan struct{}

	// For a server that records no marks (a real one), the TLS records
	// of each direction, to find final replies by their shape.
	rec   [2]recordParser
	burst atomic.Int64 // client application data since the server last sent a record
}

func (pc *pconn) run() {
	defer pc.p.wg.Done()
	defer func() {
		pc.p.mu.Lock()
		delete(pc.p.live, pc)
		pc.p.mu.Unlock()
	}()
	pc.c.note("proxy: accepted; %s", pc.c.proxy)
	if plan := pc.c.proxy; plan.act == actStall && plan.hard && plan.dir == clientToServer {
		// A small window, so that the client's writes block soon once
		// the proxy stops reading.
		pc.client.SetReadBuffer(4 << 10)
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	sc, err := d.Dial("tcp", pc.p.target)
	if err != nil {
		pc.c.note("proxy: cannot reach the server: %v", err)
		pc.client.SetLinger(0)
		pc.client.Close()
		pc.p.reg.ended(pc.c)
		return
	}
	pc.server = sc.(*net.TCPConn)
	if pc.p.tag {
		if _, err := io.WriteString(pc.server, "CHAOS "+strconv.Itoa(pc.c.id)+"\r\n"); err != nil {
			pc.teardown(true, "tag: "+err.Error())
		}
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); pc.pump(clientToServer, pc.client, pc.server) }()
	go func() { defer wg.Done(); pc.pump(serverToClient, pc.server, pc.client) }()
	wg.Wait()
	pc.teardown(false, "")
	if pc.p.tag {
		return // the fault server records the end itself
	}
	pc.p.reg.ended(pc.c)
}

// teardown closes both sides, with RST when reset is set.
func (pc *pconn) teardown(reset bool, why string) {
	pc.once.Do(func() {
		if why != "" {
			pc.c.note("proxy: closing both sides: %s", why)
		}
		for _, s := range []*net.TCPConn{pc.client, pc.server} {
			if s == nil {
				continue
			}
			if reset {
				s.SetLinger(0)
			}
			s.Close()
		}
		close(pc.done)
	})
}

// pump forwards one direction, striking the plan's fault when the stream
// reaches it.
func (pc *pconn) pump(dir direction, src, dst *net.TCPConn) {
	buf := make([]byte, 32<<10)
	var off int64
	for {
		if pc.state[dir].Load() == frozen {
			<-pc.done
			return
		}
		n, err := src.Read(buf)
		chunk := buf[:n]
		if !pc.p.tag && n > 0 {
			pc.observe(dir, off, chunk)
		}
		for len(chunk) > 0 {
			if pc.state[dir].Load() != flowing {
				off += int64(len(chunk))
				break
			}
			k, strike := pc.trigger(dir, off, int64(len(chunk)))
			ck, closeStrike := pc.closeTrigger(dir, off, int64(len(chunk)))
			if closeStrike && ck <= k {
				k, strike = ck, false
			} else {
				closeStrike = false
			}
			if k > 0 {
				if _, werr := dst.Write(chunk[:k]); werr != nil {
					if dir == clientToServer && pc.silenced() {
						// The server is gone, but the client is
						// not to hear of it: keep reading its
						// bytes until it leaves.
						pc.state[dir].Store(discarded)
						off += int64(len(chunk))
						break
					}
					pc.teardown(true, fmt.Sprintf("writing %s: %v", dir, werr))
					return
				}
			}
			off += k
			chunk = chunk[k:]
			if strike {
				pc.strike(off)
			}
			if closeStrike && !pc.closeFired.Swap(true) && pc.c.armed() {
				pc.c.fault("proxy stall s→c after the final reply that follows Close", "proxy: stall of server→client right after final reply #%d, which came after Mailer.Close began (server→client byte %d)", pc.closeStallAt.Load(), off)
				pc.state[serverToClient].Store(stalled)
			}
		}
		if err == nil {
			continue
		}
		pc.finished[dir].Store(true)
		if dir == clientToServer {
			pc.c.note("proxy: the client closed or reset its side: %v", err)
		}
		if dir == serverToClient && pc.silenced() {
			// Whatever the server did, a stalled path does not tell
			// the client; the client's leaving ends the connection.
			if pc.finished[clientToServer].Load() {
				pc.teardown(false, "")
			}
			return
		}
		if !errors.Is(err, io.EOF) {
			select {
			case <-pc.done:
			default:
				pc.teardown(true, fmt.Sprintf("%s: %v", dir, err))
			}
			return
		}
		st := pc.state[dir].Load()
		if st == flowing {
			dst.CloseWrite()
		}
		// A stalled client→server direction whose client left ends the
		// connection; a stalled server→client one keeps the client's side
		// open, silent, until the client leaves.
		if pc.finished[1-dir].Load() || pc.state[1-dir].Load() == frozen || (st == stalled && dir == clientToServer) {
			pc.teardown(false, "")
		}
		return
	}
}

// silenced reports whether the server→client direction is stalled: the
// client hears nothing more from the server, not even a FIN or an RST.
func (pc *pconn) silenced() bool {
	st := pc.state[serverToClient].Load()
	return st == stalled || st == frozen
}

// trigger says how many of the next n bytes of dir, at offset off, to
// forward, and whether the plan's fault strikes right after them.
func (pc *pconn) trigger(dir direction, off, n int64) (int64, bool) {
	plan := pc.c.proxy
	if plan.act == actNone || pc.fired.Load() {
		return n, false
	}
	var at int64
	switch {
	case plan.unsolicited:
		if dir != serverToClient {
			return n, false
		}
		m, ok := pc.c.findMark(markUnsolicited, 1)
		if !ok {
			return n, false
		}
		at = m.mid
	case plan.reply > 0:
		if dir != serverToClient {
			return n, false
		}
		m, ok := pc.c.findMark(markFinal, plan.reply)
		if !ok {
			return n, false
		}
		switch plan.pos {
		case posStart:
			at = m.start
		case posMid:
			at = m.start + (m.end-m.start)/2
		case posEnd:
			at = m.end
		case posAfter:
			at = m.end + 1
		}
	default:
		if dir != plan.dir {
			return n, false
		}
		at = plan.offset
	}
	if at < off || at > off+n {
		if at < off {
			// Passed while the mark was not known yet: strike now.
			return 0, true
		}
		return n, false
	}
	return at - off, true
}

// closeTrigger is trigger for stallAfterFinal.
func (pc *pconn) closeTrigger(dir direction, off, n int64) (int64, bool) {
	k := pc.closeStallAt.Load()
	if dir != serverToClient || k == 0 || pc.closeFired.Load() {
		return n, false
	}
	m, ok := pc.c.findMark(markFinal, int(k))
	if !ok || m.end > off+n {
		return n, false
	}
	return max(m.end-off, 0), true
}

// strike applies the plan's fault, once.
func (pc *pconn) strike(off int64) {
	if pc.fired.Swap(true) {
		return
	}
	plan := pc.c.proxy
	if !pc.c.armed() {
		pc.c.note("proxy: %s not applied: connection disarmed", plan)
		return
	}
	where := fmt.Sprintf("at %s byte %d", plan.dir, off)
	if plan.unsolicited {
		where = fmt.Sprintf("between the lines of an unsolicited 421 (server→client byte %d)", off)
	}
	if plan.reply > 0 {
		where = fmt.Sprintf("%s final reply #%d (server→client byte %d)", posNames[plan.pos], plan.reply, off)
	}
	switch plan.act {
	case actReset:
		pc.c.fault(kindOf("proxy reset", plan), "proxy: reset %s", where)
		pc.teardown(true, "")
	case actHalfClose:
		pc.c.fault(kindOf("proxy half-close "+arrow(plan.dir), plan), "proxy: half-close of %s %s", plan.dir, where)
		pc.state[plan.dir].Store(discarded)
		if plan.dir == clientToServer {
			pc.server.CloseWrite()
		} else {
			pc.client.CloseWrite()
		}
		if pc.finished[plan.dir].Load() && pc.finished[1-plan.dir].Load() {
			pc.teardown(false, "")
		}
	case actStall:
		st, what := stalled, "stall"
		if plan.hard {
			st, what = frozen, "freeze"
		}
		pc.c.fault(kindOf("proxy "+what+" "+arrow(plan.dir), plan), "proxy: %s of %s %s", what, plan.dir, where)
		pc.state[plan.dir].Store(st)
		if st == frozen && pc.finished[1-plan.dir].Load() {
			pc.teardown(false, "")
		}
	}
}

func arrow(d direction) string {
	if d == clientToServer {
		return "c→s"
	}
	return "s→c"
}

// kindOf names a proxy fault for the summary: its action, and whether it
// was aimed at a final reply.
func kindOf(what string, plan proxyPlan) string {
	if plan.unsolicited {
		return what + " @unsolicited-421"
	}
	if plan.reply > 0 {
		return what + " @final-" + [...]string{"start", "mid", "end", "after"}[plan.pos]
	}
	return what + " @offset"
}

// observe follows the TLS records of a connection to a server that records
// no marks, and marks as final replies the first record the server sends
// after the client sent at least bodyBurst bytes of application data: on a
// submission server that is the reply to a message just uploaded (with
// PIPELINING, together with the replies to its envelope).
func (pc *pconn) observe(dir direction, off int64, chunk []byte) {
	pc.rec[dir].feed(off, chunk, func(start int64, typ byte, length int) {
		if typ != 23 {
			return
		}
		if dir == clientToServer {
			pc.burst.Add(int64(length))
			return
		}
		if pc.burst.Swap(0) >= bodyBurst {
			pc.c.addMark(mark{kind: markFinal, n: -1, start: start, end: start + 5 + int64(length)})
		}
	})
}

// bodyBurst is how much application data a client upload must carry to be
// taken for a message: more than EHLO, AUTH or an envelope, less than the
// smallest test message.
const bodyBurst = 300

// recordParser finds TLS records in one direction of a connection: clear
// SMTP lines first (STARTTLS), then records from the first line that
// starts with a handshake byte.
type recordParser struct {
	tls     bool
	lineBeg bool // the next byte starts a line (in clear)
	hdr     []byte
	hdrAt   int64
	left    int64 // bytes of the current record's body still to come
	started bool
}

func (r *recordParser) feed(off int64, b []byte, onRecord func(start int64, typ byte, length int)) {
	if !r.started {
		r.started, r.lineBeg = true, true
	}
	for i := 0; i < len(b); {
		if !r.tls {
			if r.lineBeg && b[i] == 0x16 {
				r.tls = true
				continue
			}
			r.lineBeg = b[i] == '\n'
			i++
			continue
		}
		if r.left > 0 {
			k := min(r.left, int64(len(b)-i))
			r.left -= k
			i += int(k)
			continue
		}
		if len(r.hdr) == 0 {
			r.hdrAt = off + int64(i)
		}
		r.hdr = append(r.hdr, b[i])
		i++
		if len(r.hdr) == 5 {
			length := int(r.hdr[3])<<8 | int(r.hdr[4])
			onRecord(r.hdrAt, r.hdr[0], length)
			r.left = int64(length)
			r.hdr = r.hdr[:0]
		}
	}
}
