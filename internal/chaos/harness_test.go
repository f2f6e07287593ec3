package chaos

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/portwise/portwise/tlsmode"
)

// The harness's own tests: each drives the fault server through the proxy
// with a bare client, not portwise, so that what they check (where faults
// strike, what the server stores, what the checker flags) does not depend
// on the library under test.

// bench is a fault server behind the proxy, every connection with the
// plans force gives it.
type bench struct {
	reg  *registry
	srv  *server
	px   *proxy
	ca   *authority
	msgs map[int]*message
}

func newBench(t *testing.T, scen Scenario, force func(*conn)) *bench {
	t.Helper()
	reg := newRegistry(1, scen)
	reg.forcePlan = force
	ca, err := newAuthority()
	if err != nil {
		t.Fatal(err)
	}
	msgs := map[int]*message{0: newMessage(1, 0, "test", "rcpt@example.test")}
	srv, err := startServer(reg, tlsmode.Implicit, ca, msgs)
	if err != nil {
		t.Fatal(err)
	}
	px, err := startProxy(reg, srv.addr(), true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		px.close()
		if err := srv.close(); err != nil {
			t.Error(err)
		}
	})
	return &bench{reg: reg, srv: srv, px: px, ca: ca, msgs: msgs}
}

// calm gives every connection no fault at all.
func calm(c *conn) {
	c.proxy = proxyPlan{}
	c.server = serverPlan{calm: true}
}

// rawClient speaks SMTP by hand over implicit TLS.
type rawClient struct {
	t *testing.T
	c *tls.Conn
	r *bufio.Reader
}

func (b *bench) dial(t *testing.T) *rawClient {
	t.Helper()
	c, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", b.px.port()), &tls.Config{RootCAs: b.ca.pool})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	rc := &rawClient{t: t, c: c, r: bufio.NewReader(c)}
	rc.expect("220")
	return rc
}

// line reads one reply line, failing after d.
func (rc *rawClient) line(d time.Duration) (string, error) {
	rc.c.SetReadDeadline(time.Now().Add(d))
	s, err := rc.r.ReadString('\n')
	return strings.TrimRight(s, "\r\n"), err
}

// reply reads a whole reply.
func (rc *rawClient) reply() (string, error) {
	var lines []string
	for {
		l, err := rc.line(5 * time.Second)
		if err != nil {
			return strings.Join(lines, "\n"), err
		}
		lines = append(lines, l)
		if len(l) < 4 || l[3] != '-' {
			return strings.Join(lines, "\n"), nil
		}
	}
}

func (rc *rawClient) send(s string) {
	rc.t.Helper()
	if _, err := rc.c.Write([]byte(s)); err != nil {
		rc.t.Fatal(err)
	}
}

// expect reads a reply and fails unless it starts with code.
func (rc *rawClient) expect(code string) string {
	rc.t.Helper()
	r, err := rc.reply()
	if err != nil || !strings.HasPrefix(r, code) {
		rc.t.Fatalf("reply %q, %v; want %s", r, err, code)
	}
	return r
}

func (rc *rawClient) cmd(line, code string) string {
	rc.t.Helper()
	rc.send(line + "\r\n")
	return rc.expect(code)
}

func (rc *rawClient) login() {
	rc.t.Helper()
	rc.cmd("EHLO test", "250")
	rc.cmd("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00"+chaosUser+"\x00"+chaosPass)), "235")
}

// dataBody is m's body dot-stuffed and terminated, as DATA carries it.
func dataBody(m *message) string {
	lines := strings.SplitAfter(string(m.body), "\r\n")
	for i, l := range lines {
		if strings.HasPrefix(l, ".") {
			lines[i] = "." + l
		}
	}
	return strings.Join(lines, "") + ".\r\n"
}

func TestProxyStrikesAtTheFinalReply(t *testing.T) {
	for _, tt := range []struct {
		pos       replyPos
		seesReply bool
	}{
		{posStart, false},
		{posMid, false},
		{posEnd, true},
		{posAfter, true},
	} {
		t.Run(posNames[tt.pos], func(t *testing.T) {
			b := newBench(t, Scenario{Mode: tlsmode.Implicit}, func(c *conn) {
				calm(c)
				c.proxy = proxyPlan{act: actReset, dir: serverToClient, reply: 1, pos: tt.pos}
			})
			m := b.msgs[0]
			rc := b.dial(t)
			rc.login()
			rc.cmd("MAIL FROM:<"+m.from+">", "250")
			rc.cmd("RCPT TO:<rcpt@example.test>", "250")
			rc.cmd("DATA", "354")
			rc.send(dataBody(m))
			r, err := rc.reply()
			if got := err == nil && strings.HasPrefix(r, "250"); got != tt.seesReply {
				t.Fatalf("final reply %q, %v; the client should see it: %v", r, err, tt.seesReply)
			}
			if tt.seesReply {
				// Struck right after the reply (or one byte into the
				// next): no other reply gets through.
				rc.c.Write([]byte("NOOP\r\n")) // may fail already: the reset struck
				if r, err := rc.reply(); err == nil {
					t.Fatalf("NOOP answered %q after the strike", r)
				}
			}
			b.px.close()
			if err := b.srv.close(); err != nil {
				t.Fatal(err)
			}
			if n := b.reg.copies()[m.id]; n != 1 {
				t.Errorf("%d copies stored; the server stored the message before replying", n)
			}
		})
	}
}

func TestServerStoresOnlyAWholeMessage(t *testing.T) {
	for _, tt := range []struct {
		name   string
		send   func(rc *rawClient, body string)
		stored int
	}{
		{"whole BDAT chunk", func(rc *rawClient, body string) {
			rc.send(fmt.Sprintf("BDAT %d LAST\r\n%s", len(body), body))
			rc.expect("250")
		}, 1},
		{"BDAT chunk cut short by EOF", func(rc *rawClient, body string) {
			// go-smtp passes the short chunk on as complete.
			rc.send(fmt.Sprintf("BDAT %d LAST\r\n%s", len(body), body[:len(body)-5]))
			rc.c.CloseWrite()
			rc.reply()
		}, 0},
		{"a whole chunk without the end marker", func(rc *rawClient, body string) {
			short := body[:len(body)-3]
			rc.send(fmt.Sprintf("BDAT %d LAST\r\n%s", len(short), short))
			rc.expect("451")
		}, 0},
		{"DATA cut short", func(rc *rawClient, body string) {
			rc.cmd("DATA", "354")
			rc.send(body[:len(body)-5])
			rc.c.CloseWrite()
			rc.reply()
		}, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := newBench(t, Scenario{Mode: tlsmode.Implicit}, calm)
			m := b.msgs[0]
			rc := b.dial(t)
			rc.login()
			rc.cmd("MAIL FROM:<"+m.from+">", "250")
			rc.cmd("RCPT TO:<rcpt@example.test>", "250")
			tt.send(rc, string(m.body))
			rc.c.Close()
			b.px.close()
			if err := b.srv.close(); err != nil {
				t.Fatal(err)
			}
			if n := b.reg.copies()[m.id]; n != tt.stored {
				t.Errorf("%d copies stored; want %d", n, tt.stored)
			}
		})
	}
}

// A LAST chunk refused in a transaction that has a recipient is a body
// the server had: sending the message again is the mail-after-body
// violation. When every RCPT TO was refused, nobody could receive it,
// and the client may send the message again (OutcomeNotSent).
func TestRefusedChunkCountsAsABodyOnlyWithARecipient(t *testing.T) {
	for _, tt := range []struct {
		name      string
		refuse    map[string]string
		rcptReply string
		violation bool
	}{
		{"recipient accepted", map[string]string{"BDAT": "451 4.3.0 BDAT refused for now (test)"}, "250", true},
		{"every recipient refused", map[string]string{"RCPT": "451 4.3.0 RCPT refused for now (test)", "BDAT": "554 5.5.1 No valid recipients (test)"}, "451", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := newBench(t, Scenario{Mode: tlsmode.Implicit}, func(c *conn) {
				calm(c)
				c.server.refuseWith = tt.refuse
			})
			m := b.msgs[0]
			rc := b.dial(t)
			rc.login()
			body := string(m.body)
			rc.cmd("MAIL FROM:<"+m.from+">", "250")
			rc.cmd("RCPT TO:<rcpt@example.test>", tt.rcptReply)
			rc.send(fmt.Sprintf("BDAT %d LAST\r\n%s", len(body), body))
			rc.expect(tt.refuse["BDAT"][:3])
			rc.cmd("RSET", "250")
			rc.cmd("MAIL FROM:<"+m.from+">", "250")
			rc.c.Close()
			b.px.close()
			if err := b.srv.close(); err != nil {
				t.Fatal(err)
			}
			b.reg.mu.Lock()
			had := len(b.reg.msgs[0].wholeBody)
			b.reg.mu.Unlock()
			if got := had > 0; got != tt.violation {
				t.Errorf("the server had the whole body %d time(s); want a body that counts: %v", had, tt.violation)
			}
		})
	}
}

func TestProxyHoldsTheSecondLineOfAnUnsolicited421(t *testing.T) {
	b := newBench(t, Scenario{Mode: tlsmode.Implicit}, func(c *conn) {
		calm(c)
		c.server.idle, c.server.multiline = 20*time.Millisecond, true
		c.proxy = proxyPlan{act: actStall, dir: serverToClient, unsolicited: true}
	})
	rc := b.dial(t)
	rc.login()
	first, err := rc.line(5 * time.Second)
	if err != nil || !strings.HasPrefix(first, "421-") {
		t.Fatalf("first line %q, %v; want the unsolicited 421's first line", first, err)
	}
	var ne net.Error
	if second, err := rc.line(300 * time.Millisecond); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("second line %q, %v; want nothing, not even the server's close", second, err)
	}
}

func TestAuthGateLetsOneSessionLearnTheRejectionFirst(t *testing.T) {
	b := newBench(t, Scenario{Mode: tlsmode.Implicit, Revoke: true}, calm)
	auth := "AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00"+chaosUser+"\x00"+chaosPass))

	before := b.dial(t)
	before.login()
	b.reg.revoke()
	before.cmd("NOOP", "421") // every session open at the revocation ends

	leader := b.dial(t)
	leader.cmd("EHLO test", "250")
	held := b.dial(t)
	held.send("EHLO test\r\n")
	if r, err := held.line(200 * time.Millisecond); err == nil {
		t.Fatalf("a second session's EHLO answered (%q) before the first AUTH was rejected", r)
	}
	leader.cmd(auth, "535")
	learned := time.Now()
	b.reg.learned()
	held.expect("250")
	if waited := time.Since(learned); waited < learnMargin-10*time.Millisecond {
		t.Errorf("EHLO answered %v after the client learned; want at least %v", waited, learnMargin)
	}
	held.cmd(auth, "535")

	b.reg.auth.mu.Lock()
	rejected := append([]rejection(nil), b.reg.auth.rejected...)
	b.reg.auth.mu.Unlock()
	if len(rejected) != 2 || rejected[0].late || !rejected[1].late {
		t.Errorf("rejections %+v; want the leader's on time and the held session's late", rejected)
	}
}
