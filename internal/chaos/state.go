package chaos

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// registry is what the proxy, the fault server and the checker share in a
// run: every connection with its plans and what happened on it, the
// server's record of each message, and the credential's state.
type registry struct {
	seed     uint64
	scen     Scenario
	external bool // a real server: the proxy's faults are the only ones
	start    time.Time
	seq      atomic.Int64 // orders events across connections

	mu     sync.Mutex
	conns  []*conn
	faults map[string]int       // faults that struck, by kind
	msgs   map[int]*received    // the server's view of each message
	stores map[string][]storage // stored copies by Message-ID

	auth authGate

	forcePlan    func(*conn)
	internalErrs []string // the harness's own mistakes: they fail the run
}

// internal records a mistake of the harness itself.
func (r *registry) internal(what string) {
	r.mu.Lock()
	r.internalErrs = append(r.internalErrs, what)
	r.mu.Unlock()
}

func newRegistry(seed uint64, scen Scenario) *registry {
	return &registry{
		seed:   seed,
		scen:   scen,
		start:  time.Now(),
		faults: map[string]int{},
		msgs:   map[int]*received{},
		stores: map[string][]storage{},
		auth:   authGate{changed: make(chan struct{}), done: make(chan struct{})},
	}
}

// received is what the fault server saw of one message, across all the
// connections it came on.
type received struct {
	mailFrom  []int64 // event numbers of each MAIL FROM
	wholeBody []int64 // event numbers of each time the server had its whole body
	conns     []int
	bad       []string // bodies that were not the message sent
}

// storage is one stored copy.
type storage struct {
	conn int
	n    int // the message its envelope named
}

// conn is one connection through the proxy.
type conn struct {
	id     int
	reg    *registry
	proxy  proxyPlan
	server serverPlan

	mu         sync.Mutex
	rng        *rand.Rand // the server's draws on this connection
	clientAddr string
	events     []event
	marks      []mark
	disarmed   bool // no more faults: the connection that tells the client its credential was rejected
	kill       bool // revoked: the next command gets 421
	ended      bool
	// The credential, when the scenario revokes it.
	afterRevoke bool // the post-TLS EHLO was answered after the revocation
	late        bool // ... and after the client had learned of the rejection
}

type event struct {
	at   time.Duration
	seq  int64
	text string
}

// markKind says what a mark's bytes carry.
type markKind uint8

const (
	markFinal       markKind = iota // the final reply to a message
	markUnsolicited                 // a 421 no command asked for
)

// mark is where a reply the proxy may target lies in the server→client
// byte stream of a connection. The server records it before writing the
// reply, so the proxy knows it before the first of its bytes arrives.
type mark struct {
	kind            markKind
	n               int   // the message, for markFinal
	start, mid, end int64 // offsets; mid ends the first line of a two-line reply
}

// newConn registers the next connection the proxy accepted and draws its
// plans.
func (r *registry) newConn(clientAddr string) *conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	id := len(r.conns) + 1
	pp, sp, rng := planConn(r.seed, id, r.scen.Mode, r.external)
	c := &conn{id: id, reg: r, proxy: pp, server: sp, rng: rng, clientAddr: clientAddr}
	if id == 1 && r.scen.ColdStart {
		// Somewhere in the handshake, greeting, EHLO or AUTH.
		c.proxy = proxyPlan{act: actStall, dir: serverToClient, offset: stream(r.seed, streamRun).Int64N(2500)}
		c.server = serverPlan{}
	}
	if r.forcePlan != nil {
		r.forcePlan(c)
	}
	r.conns = append(r.conns, c)
	return c
}

func (r *registry) conn(id int) *conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	if id < 1 || id > len(r.conns) {
		return nil
	}
	return r.conns[id-1]
}

func (r *registry) allConns() []*conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*conn(nil), r.conns...)
}

// note records what happened on c and returns the event's number.
func (c *conn) note(format string, args ...any) int64 {
	seq := c.reg.seq.Add(1)
	c.mu.Lock()
	c.events = append(c.events, event{at: time.Since(c.reg.start), seq: seq, text: fmt.Sprintf(format, args...)})
	c.mu.Unlock()
	return seq
}

// fault records a fault of kind that struck on c.
func (c *conn) fault(kind, format string, args ...any) {
	c.note("FAULT "+format, args...)
	c.reg.mu.Lock()
	c.reg.faults[kind]++
	c.reg.mu.Unlock()
}

// armed reports whether faults may still strike on c.
func (c *conn) armed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.disarmed
}

// draw runs f with the connection's random stream.
func (c *conn) draw(f func(r *rand.Rand)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(c.rng)
}

func (c *conn) addMark(m mark) {
	c.mu.Lock()
	c.marks = append(c.marks, m)
	c.mu.Unlock()
}

// findMark returns the k-th mark of kind, from 1.
func (c *conn) findMark(kind markKind, k int) (mark, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.marks {
		if m.kind == kind {
			if k--; k == 0 {
				return m, true
			}
		}
	}
	return mark{}, false
}

func (c *conn) countMarks(kind markKind) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, m := range c.marks {
		if m.kind == kind {
			n++
		}
	}
	return n
}

// describe is the connection's plans and events, for a failure report.
func (c *conn) describe() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "  connection %d (client %s): %s; %s\n", c.id, c.clientAddr, c.proxy, c.server)
	for _, e := range c.events {
		fmt.Fprintf(&b, "    %8.3fs  %s\n", e.at.Seconds(), e.text)
	}
	return b.String()
}

func (r *registry) message(n int) *received {
	m := r.msgs[n]
	if m == nil {
		m = &received{}
		r.msgs[n] = m
	}
	return m
}

// sawMail records a MAIL FROM for message n on c.
func (r *registry) sawMail(c *conn, n int, line string) {
	seq := c.note("server: %s", line)
	r.mu.Lock()
	m := r.message(n)
	m.mailFrom = append(m.mailFrom, seq)
	if len(m.conns) == 0 || m.conns[len(m.conns)-1] != c.id {
		m.conns = append(m.conns, c.id)
	}
	r.mu.Unlock()
}

// sawBody records that the server had the whole body of message n.
func (r *registry) sawBody(c *conn, n int, how string) {
	seq := c.note("server: whole body of message %d (%s)", n, how)
	r.mu.Lock()
	m := r.message(n)
	m.wholeBody = append(m.wholeBody, seq)
	r.mu.Unlock()
}

func (r *registry) badBody(c *conn, n int, why string) {
	c.note("server: body of message %d is wrong: %s", n, why)
	r.mu.Lock()
	m := r.message(n)
	m.bad = append(m.bad, fmt.Sprintf("connection %d: %s", c.id, why))
	r.mu.Unlock()
}

// store records a stored copy of the message whose Message-ID is id.
func (r *registry) store(c *conn, n int, id string) {
	c.note("server: stored message %d", n)
	r.mu.Lock()
	r.stores[id] = append(r.stores[id], storage{conn: c.id, n: n})
	r.mu.Unlock()
}

func (r *registry) faultCounts() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.faults))
	for k, v := range r.faults {
		out[k] = v
	}
	return out
}

// formatCounts renders counts as "a=1 b=2", sorted by name.
func formatCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, " ")
}

// learnMargin is how long after a client learned that its credential was
// rejected the fault server holds back the EHLO replies of the other
// connections. A Mailer that heeds the rejection has then long recorded it,
// so an AUTH on those connections is one it chose to send.
const learnMargin = 500 * time.Millisecond

// authGate is the credential's state when the scenario revokes it.
//
// From the revocation on, the post-TLS EHLO of every new session is held
// back, except one at a time (the leader, whose connection gets no more
// faults, so that its AUTH and the 535 go through), until a client has
// learned of the rejection (Trace.AuthDone) and learnMargin has passed. A
// session whose EHLO was answered after that, and which still sends AUTH,
// ignores a rejection its Mailer knew of.
type authGate struct {
	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every change
	done     chan struct{} // closed when the server stops
	revoked  bool
	leader   *conn
	learned  time.Time
	rejected []rejection
}

// rejection is an AUTH that carried the revoked credential.
type rejection struct {
	conn int
	at   time.Duration
	late bool // the session's EHLO was answered after the client had learned
}

func (g *authGate) broadcast() {
	close(g.changed)
	g.changed = make(chan struct{})
}

// revoke starts rejecting the credential and ends every session open.
func (r *registry) revoke() {
	r.mu.Lock()
	conns := append([]*conn(nil), r.conns...)
	r.mu.Unlock()
	g := &r.auth
	g.mu.Lock()
	g.revoked = true
	g.broadcast()
	g.mu.Unlock()
	for _, c := range conns {
		c.mu.Lock()
		if !c.ended {
			c.kill = true
		}
		c.mu.Unlock()
	}
}

// ehlo is called before the post-TLS EHLO of c is answered; it holds it
// back as authGate says, or until the server stops.
func (r *registry) ehlo(c *conn) {
	g := &r.auth
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.revoked {
		return
	}
	c.mu.Lock()
	c.afterRevoke = true
	c.mu.Unlock()
	for {
		var wait <-chan time.Time
		if !g.learned.IsZero() {
			left := time.Until(g.learned.Add(learnMargin))
			if left <= 0 {
				c.mu.Lock()
				c.late = true
				c.mu.Unlock()
				c.note("server: EHLO answered %v after the client learned its credential was rejected", learnMargin)
				return
			}
			wait = time.After(left)
		}
		if g.leader == nil && g.learned.IsZero() {
			g.leader = c
			c.mu.Lock()
			c.disarmed = true
			c.mu.Unlock()
			c.note("server: this session carries the revoked credential's AUTH; no more faults on it")
			return
		}
		changed := g.changed
		g.mu.Unlock()
		select {
		case <-changed:
		case <-wait:
		case <-g.done:
			g.mu.Lock()
			return
		}
		g.mu.Lock()
	}
}

// checkAuth reports whether the credential is accepted on c, and records
// the AUTH when it is not.
func (r *registry) checkAuth(c *conn) bool {
	c.mu.Lock()
	after, late := c.afterRevoke, c.late
	c.mu.Unlock()
	if !after {
		return true
	}
	g := &r.auth
	g.mu.Lock()
	g.rejected = append(g.rejected, rejection{conn: c.id, at: time.Since(r.start), late: late})
	g.mu.Unlock()
	c.note("server: AUTH with the revoked credential: 535")
	return false
}

// learned records that a client was told its credential was rejected.
func (r *registry) learned() {
	g := &r.auth
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.learned.IsZero() {
		g.learned = time.Now()
		g.broadcast()
	}
}

// ended records that c closed.
func (r *registry) ended(c *conn) {
	c.mu.Lock()
	c.ended = true
	c.mu.Unlock()
	g := &r.auth
	g.mu.Lock()
	if g.leader == c {
		g.leader = nil
		g.broadcast()
	}
	g.mu.Unlock()
}

func (r *registry) stopAuth() {
	g := &r.auth
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.done:
	default:
		close(g.done)
	}
}
