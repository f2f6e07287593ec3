package chaos

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/portwise/portwise/tlsmode"
)

// Scenario is what a seed decides for a run as a whole, from the seed's
// three low bits, so that any eight consecutive seeds cover every mode,
// revocation and Close combination; everything else (messages, connection
// plans) comes from random streams derived from the whole seed.
type Scenario struct {
	// Mode is the TLS mode of the server and of the Dialer's one
	// candidate: StartTLS when bit 0 is clear, Implicit when it is set.
	Mode tlsmode.Mode
	// Revoke (bit 1) makes the server start rejecting the credential when
	// the message at RevokeAt starts, and end every session open then.
	Revoke bool
	// CloseEarly (bit 2) runs Mailer.Close while the Sends of the last
	// tenth of the messages are still starting and in flight.
	CloseEarly bool
	// ColdStart (bits 0 and 1 equal) stalls the Mailer's first
	// connection server→client before it is ready, so that the Dial that
	// proves the credential fails with its Send's deadline while the
	// other goroutines wait for it.
	ColdStart bool
}

// ScenarioOf returns the scenario of seed.
func ScenarioOf(seed uint64) Scenario {
	s := Scenario{Mode: tlsmode.StartTLS, Revoke: seed&2 != 0, CloseEarly: seed&4 != 0, ColdStart: seed&1 == seed>>1&1}
	if seed&1 != 0 {
		s.Mode = tlsmode.Implicit
	}
	return s
}

// String is the scenario in words, e.g. "implicit, credential revoked".
func (s Scenario) String() string {
	out := s.Mode.String()
	if s.ColdStart {
		out += ", first connection stalled"
	}
	if s.Revoke {
		out += ", credential revoked"
	}
	if s.CloseEarly {
		out += ", Close during sends"
	}
	return out
}

// The random streams of a run, each derived from the seed and a number, so
// that a message or a connection gets the same plan whatever happened
// before it (connections are numbered in the order the proxy accepts them).
const (
	streamMessage = 1 << 40
	streamConn    = 2 << 40
	streamRun     = 3 << 40
)

func stream(seed, which uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, which)) }

// between returns a duration drawn uniformly in [lo, hi].
func between(r *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(r.Int64N(int64(hi-lo)+1))
}

// message is one message of a run, as the Mailer sends it.
type message struct {
	n          int
	id         string // Message-ID, without angle brackets
	from       string // m<n>@example.test: the server knows the message by its envelope
	body       []byte // CRLF lines, ending with marker(n)
	reader     readerKind
	noChunking bool // SendOptions.NoChunking
	timeout    time.Duration
	cancel     time.Duration // when positive, the context is cancelled this long after the start
	pause      time.Duration // the goroutine waits this long before it sends, so connections sit idle
}

// readerKind is how a message is handed to the Mailer: half of them can
// be rewound, half cannot.
type readerKind uint8

const (
	// seekable is a *bytes.Reader: the Mailer may rewind it and send it
	// again when it proves the server does not have it.
	seekable readerKind = iota
	// buffer is a *bytes.Buffer: its size is known (one BDAT n LAST) but
	// reading consumes it.
	buffer
	// opaque hides everything but Read: size unknown, so BDAT streams it
	// in chunks through a 1 MiB buffer (costly under the race detector:
	// 55 ms per allocation, hence a third of the non-seekable half).
	opaque
)

var readerNames = [...]string{"*bytes.Reader", "*bytes.Buffer", "an io.Reader only"}

func (k readerKind) String() string { return readerNames[k] }

// marker is the last line of message n. go-smtp v0.25.1 hands a BDAT chunk
// cut short by EOF to the session as if it were complete: only a body
// ending with its marker counts as received whole.
func marker(n int) string { return "CHAOS-END " + strconv.Itoa(n) + "\r\n" }

// newMessage draws message n of a run. nonce makes Message-IDs unique
// across runs (a real server's mailbox keeps the earlier ones); it has a
// fixed length, so replaying a seed sends bodies of the same sizes.
func newMessage(seed uint64, n int, nonce string, to string) *message {
	r := stream(seed, streamMessage|uint64(n))
	m := &message{
		n:          n,
		id:         fmt.Sprintf("%d.%d.%s@chaos.test", n, seed, nonce),
		from:       fmt.Sprintf("m%d@example.test", n),
		reader:     [...]readerKind{seekable, seekable, seekable, buffer, buffer, opaque}[r.IntN(6)],
		noChunking: r.IntN(10) < 3,
		timeout:    between(r, 500*time.Millisecond, 1200*time.Millisecond),
	}
	if r.IntN(100) < 3 {
		m.cancel = between(r, 0, m.timeout)
	}
	if r.IntN(100) < 25 {
		m.pause = between(r, 0, 250*time.Millisecond)
	}
	var size int
	switch p := r.IntN(100); {
	case p < 70:
		size = 200 + r.IntN(1800)
	case p < 90:
		size = 2000 + r.IntN(14000)
	default:
		size = 24000 + r.IntN(40000)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: <%s>\r\nTo: <%s>\r\nSubject: chaos %d\r\nMessage-ID: <%s>\r\n\r\n", m.from, to, n, m.id)
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789 .-"
	for b.Len() < size {
		line := make([]byte, 1+r.IntN(120))
		for i := range line {
			line[i] = letters[r.IntN(len(letters))]
		}
		if r.IntN(8) == 0 {
			line[0] = '.' // DATA must dot-stuff it
		}
		b.Write(bytes.TrimRight(line, " "))
		b.WriteString("\r\n")
	}
	b.WriteString(marker(m.n))
	m.body = b.Bytes()
	return m
}

// messageNumber returns n from "m<n>@example.test", or -1.
func messageNumber(from string) int {
	local, _, ok := strings.Cut(from, "@")
	if !ok || !strings.HasPrefix(local, "m") {
		return -1
	}
	n, err := strconv.Atoi(local[1:])
	if err != nil || n < 0 {
		return -1
	}
	return n
}

// The proxy's faults.
type action uint8

const (
	actNone action = iota
	actReset
	actHalfClose
	actStall
)

type direction uint8

const (
	clientToServer direction = iota
	serverToClient
)

func (d direction) String() string {
	if d == clientToServer {
		return "client→server"
	}
	return "server→client"
}

// replyPos is where in a final reply's bytes a targeted fault strikes.
type replyPos uint8

const (
	posStart replyPos = iota // before its first byte
	posMid                   // in the middle of its TLS record: the client can read none of it
	posEnd                   // right after its last byte
	posAfter                 // one byte into whatever the server sends next
)

var posNames = [...]string{"just before", "in the middle of", "just after", "one byte past"}

// proxyPlan is what the proxy does to one connection: at most one fault,
// at a byte offset of one direction, or at the k-th final reply to a
// message on the connection (server→client).
type proxyPlan struct {
	act    action
	dir    direction
	offset int64 // when reply is 0
	reply  int   // k-th final reply, from 1; 0 means at offset
	pos    replyPos
	hard   bool // a stall that stops reading too, so the sender's buffers fill
	// unsolicited stalls server→client between the two lines of the
	// first unsolicited 421 (instead of offset or reply).
	unsolicited bool
}

func (p proxyPlan) String() string {
	if p.act == actNone {
		return "proxy: no fault"
	}
	var what string
	switch p.act {
	case actReset:
		what = "reset (RST both ways)"
	case actHalfClose:
		what = "half-close (FIN) of " + p.dir.String()
	case actStall:
		what = "stall of " + p.dir.String()
		if p.hard {
			what += " (not reading)"
		}
	}
	if p.unsolicited {
		return fmt.Sprintf("proxy: %s between the two lines of the first unsolicited 421", what)
	}
	if p.reply > 0 {
		return fmt.Sprintf("proxy: %s %s final reply #%d", what, posNames[p.pos], p.reply)
	}
	return fmt.Sprintf("proxy: %s at %s byte %d", what, p.dir, p.offset)
}

// serverPlan is what the fault server does to one connection, besides the
// refusals it draws command by command (refuse) and after each body.
type serverPlan struct {
	greeting   string // a reply instead of the 220 greeting
	clearEHLO  string // a reply instead of the EHLO reply in clear (STARTTLS)
	startTLS   string // a reply instead of 220 to STARTTLS
	noChunking bool   // CHUNKING is not advertised
	idle       time.Duration
	multiline  bool    // the unsolicited 421 has two lines, written apart
	refuse     float64 // the chance that a command is refused
	calm       bool    // no fault after a message's body, no body cut short

	// refuseWith, set by the harness's own tests only, refuses each
	// command whose verb it holds with that reply, whatever refuse says.
	refuseWith map[string]string
}

func (p serverPlan) String() string {
	var parts []string
	if p.greeting != "" {
		parts = append(parts, "greeting "+p.greeting)
	}
	if p.clearEHLO != "" {
		parts = append(parts, "EHLO in clear "+p.clearEHLO)
	}
	if p.startTLS != "" {
		parts = append(parts, "STARTTLS "+p.startTLS)
	}
	if p.noChunking {
		parts = append(parts, "no CHUNKING")
	}
	if p.idle > 0 {
		kind := "421"
		if p.multiline {
			kind = "two-line 421"
		}
		parts = append(parts, fmt.Sprintf("unsolicited %s after %v idle", kind, p.idle))
	}
	if p.refuse > 0 {
		parts = append(parts, fmt.Sprintf("refuses %.0f%% of commands", 100*p.refuse))
	}
	if len(parts) == 0 {
		return "server: no fault"
	}
	return "server: " + strings.Join(parts, ", ")
}

func pickAction(r *rand.Rand) (action, bool) {
	switch p := r.IntN(100); {
	case p < 45:
		return actReset, false
	case p < 75:
		return actHalfClose, false
	default:
		return actStall, r.IntN(3) == 0
	}
}

// planConn draws the plans of connection id. Against a real server
// (external), where the proxy's faults are the only ones and connections
// live long, nine in ten connections get one, most at a final reply.
func planConn(seed uint64, id int, mode tlsmode.Mode, external bool) (proxyPlan, serverPlan, *rand.Rand) {
	r := stream(seed, streamConn|uint64(id))
	none, final := 65, 85
	if external {
		none, final = 10, 70
	}
	var pp proxyPlan
	switch p := r.IntN(100); {
	case p < none:
	case p < final:
		pp.act, pp.hard = pickAction(r)
		pp.dir = serverToClient
		pp.reply = []int{1, 1, 1, 2, 2, 3}[r.IntN(6)]
		pp.pos = replyPos(r.IntN(4))
		if pp.act != actReset && r.IntN(4) == 0 {
			// Struck when the server→client stream reaches the reply,
			// but on the client's next words instead.
			pp.dir = clientToServer
		}
	default:
		pp.act, pp.hard = pickAction(r)
		pp.dir = direction(r.IntN(2))
		hi := int64(3000)
		if pp.dir == serverToClient {
			hi = 5000
		}
		if r.IntN(10) < 3 {
			hi = 60000
		}
		pp.offset = r.Int64N(hi)
	}
	var sp serverPlan
	if r.IntN(100) < 3 {
		sp.greeting = "421 4.7.0 Too many sessions, try again later"
	}
	if mode == tlsmode.StartTLS && r.IntN(100) < 1 {
		sp.clearEHLO = []string{"421 4.3.2 Service shutting down", "451 4.3.0 Try again", "554 5.7.1 Go away"}[r.IntN(3)]
	}
	if mode == tlsmode.StartTLS && r.IntN(100) < 1 {
		sp.startTLS = "454 4.7.0 TLS not available"
	}
	sp.noChunking = r.IntN(10) < 3
	if r.IntN(10) < 4 {
		sp.refuse = 0.02 + 0.13*r.Float64()
	}
	if !external && r.IntN(100) < 25 {
		// A connection that lives long enough to go idle in the pool:
		// no other fault after its greeting.
		sp.idle = between(r, time.Millisecond, 40*time.Millisecond)
		sp.multiline = r.IntN(2) == 0
		sp.calm, sp.refuse, pp = true, 0, proxyPlan{}
		if sp.multiline && r.IntN(2) == 0 {
			// The client reads the first line and waits for the rest.
			pp = proxyPlan{act: actStall, dir: serverToClient, unsolicited: true}
		}
	}
	return pp, sp, r
}

// refusal draws, for a command, the reply that refuses it, or "".
func refusal(r *rand.Rand, p float64, verb string) string {
	if p == 0 || r.Float64() >= p {
		return ""
	}
	switch x := r.IntN(20); {
	case x < 14:
		return "451 4.3.0 " + verb + " refused for now (chaos)"
	case x < 17:
		return "421 4.3.2 " + verb + ": closing (chaos)"
	default:
		return "554 5.7.1 " + verb + " refused (chaos)"
	}
}

// afterBody is what the server does once it has a whole body.
type afterBody uint8

const (
	storeOK        afterBody = iota // store, 250
	refuse451                       // do not store, 451
	refuse554                       // do not store, 554
	refuse421                       // do not store, 421 and close
	storeReset                      // store, then reset without a reply
	noStoreReset                    // do not store, reset without a reply
	numAfterBodies                  // count
)

var afterBodyNames = [...]string{"stored, 250", "not stored, 451", "not stored, 554", "not stored, 421 and close", "stored, then reset before the reply", "not stored, reset before the reply"}

func drawAfterBody(r *rand.Rand) afterBody {
	switch x := r.IntN(100); {
	case x < 76:
		return storeOK
	case x < 81:
		return refuse451
	case x < 85:
		return refuse554
	case x < 88:
		return refuse421
	case x < 94:
		return storeReset
	default:
		return noStoreReset
	}
}
