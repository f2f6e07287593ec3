package submittest_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/submit/submittest/script"
	"github.com/portwise/portwise/tlsmode"
)

// rawClient is a line-oriented client on a real socket, for driving a
// script byte by byte.
type rawClient struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawClient {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { nc.Close() })
	return &rawClient{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func (c *rawClient) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.nc, s); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawClient) line() string {
	c.t.Helper()
	l, err := c.br.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v (got %q)", err, l)
	}
	return l
}

func waitScripts(t *testing.T, srv *submittest.Server, addr tlsmode.Candidate) []script.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conns, err := srv.WaitScripts(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	return conns
}

func TestScriptPlaysStepsAndRecordsLinesWithTLS(t *testing.T) {
	srv := submittest.NewServer(t)
	addr := srv.ListenScript(submittest.Options{},
		script.Send("220 hi\r\n"),
		script.ExpectPrefix("ehlo "),
		script.Send("250-x\r\n250 STARTTLS\r\n"),
		script.Expect("STARTTLS"),
		script.Send("220 go\r\n"),
		script.StartTLS(),
		script.ExpectMatch(`^EHLO \w+$`),
		script.Send("250 ok\r\n"),
		script.Expect("DATA"),
		script.Send("354 go\r\n"),
		script.ExpectData(),
		script.Send("250 queued\r\n"),
	)
	c := dialRaw(t, srv.Addr(addr))
	if l := c.line(); l != "220 hi\r\n" {
		t.Fatalf("banner %q", l)
	}
	c.send("EHLO me\r\n")
	if l := c.line() + c.line(); l != "250-x\r\n250 STARTTLS\r\n" {
		t.Fatalf("EHLO reply %q", l)
	}
	c.send("STARTTLS\r\n")
	c.line()
	tc := tls.Client(c.nc, srv.ClientTLSConfig())
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	c.nc, c.br = tc, bufio.NewReader(tc)
	c.send("EHLO me\r\n")
	c.line()
	c.send("DATA\r\n")
	c.line()
	c.send("Subject: x\r\n\r\n..stuffed\r\n.\r\n")
	if l := c.line(); l != "250 queued\r\n" {
		t.Fatalf("reply to the dot: %q", l)
	}
	c.send("QUIT\r\n")
	tc.Close()

	conns := waitScripts(t, srv, addr)
	if len(conns) != 1 {
		t.Fatalf("%d connections", len(conns))
	}
	sc := conns[0]
	if sc.Err != nil || !sc.TLS || sc.Steps != 12 {
		t.Errorf("Err %v, TLS %v, Steps %d", sc.Err, sc.TLS, sc.Steps)
	}
	var got []string
	for _, l := range sc.Lines {
		got = append(got, fmt.Sprintf("%v %s", l.TLS, l.Text))
	}
	want := []string{"false EHLO me", "false STARTTLS", "true EHLO me", "true DATA", "true Subject: x", "true ", "true ..stuffed", "true .", "true QUIT"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("lines %q; want %q", got, want)
	}
	if len(sc.Messages) != 1 || string(sc.Messages[0]) != "Subject: x\r\n\r\n.stuffed\r\n" {
		t.Errorf("messages %q", sc.Messages)
	}
	if strings.Join(sc.ClearLines(), "|") != "EHLO me|STARTTLS" {
		t.Errorf("ClearLines %q", sc.ClearLines())
	}
	// The connection is in Conns too, for checks shared with go-smtp listeners.
	for _, rec := range srv.Conns() {
		if rec.Addr == srv.Addr(addr) && (strings.Join(rec.Clear, "|") != "EHLO me|STARTTLS" || !rec.TLS) {
			t.Errorf("ConnRecord %+v", rec)
		}
	}
}

func TestScriptStopsAtAMismatchAndKeepsRecording(t *testing.T) {
	srv := submittest.NewServer(t)
	addr := srv.ListenScript(submittest.Options{},
		script.Send("220 hi\r\n"),
		script.Expect("QUIT"),
		script.Send("221 never sent\r\n"),
	)
	c := dialRaw(t, srv.Addr(addr))
	c.line()
	c.send("AUTH PLAIN c2VjcmV0\r\nMAIL FROM:<a@b>\r\npartial")
	c.nc.Close()
	sc := waitScripts(t, srv, addr)[0]
	if sc.Err == nil || !strings.Contains(sc.Err.Error(), `step 2 Expect("QUIT")`) || !strings.Contains(sc.Err.Error(), "AUTH PLAIN") {
		t.Errorf("Err = %v", sc.Err)
	}
	if sc.Steps != 1 || len(sc.Lines) != 3 || sc.Lines[1].Text != "MAIL FROM:<a@b>" || sc.Lines[2].Text != "partial" {
		t.Errorf("steps %d, lines %+v", sc.Steps, sc.Lines)
	}
}

func TestScriptSendsSlowlyAndRepeats(t *testing.T) {
	srv := submittest.NewServer(t)
	addr := srv.ListenScript(submittest.Options{},
		script.Repeat("250-x\r\n", 3),
		script.SendSlowly("250 end\r\n", 20*time.Millisecond),
	)
	c := dialRaw(t, srv.Addr(addr))
	start := time.Now()
	var got strings.Builder
	for range 4 {
		got.WriteString(c.line())
	}
	if got.String() != "250-x\r\n250-x\r\n250-x\r\n250 end\r\n" {
		t.Errorf("got %q", got.String())
	}
	if e := time.Since(start); e < 7*20*time.Millisecond {
		t.Errorf("9 bytes 20ms apart arrived in %s", e)
	}

	// A slowloris step ends when the client gives up, not after its last byte.
	slow := srv.ListenScript(submittest.Options{}, script.SendSlowly("220 "+strings.Repeat("z", 100)+"\r\n", time.Minute))
	c = dialRaw(t, srv.Addr(slow))
	c.br.ReadByte()
	c.send("QUIT\r\n")
	c.nc.Close()
	start = time.Now()
	sc := waitScripts(t, srv, slow)[0]
	if time.Since(start) > 5*time.Second || sc.Err == nil {
		t.Errorf("slowloris step still running after the client left: %+v", sc)
	}
}

func TestScriptResetSendsRST(t *testing.T) {
	srv := submittest.NewServer(t)
	addr := srv.ListenScript(submittest.Options{}, script.Send("220 hi\r\n"), script.Expect("NOOP"), script.Reset())
	c := dialRaw(t, srv.Addr(addr))
	c.line()
	c.send("NOOP\r\n")
	_, err := c.br.ReadByte()
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("read after Reset: %v; want ECONNRESET", err)
	}
}

func TestScriptHandshakeFailureIsRecorded(t *testing.T) {
	srv := submittest.NewServer(t)
	addr := srv.ListenScript(submittest.Options{SelfSigned: true}, script.StartTLS(), script.Send("220 never\r\n"))
	c := dialRaw(t, srv.Addr(addr))
	if err := tls.Client(c.nc, srv.ClientTLSConfig()).Handshake(); err == nil {
		t.Fatal("a self-signed certificate verified")
	}
	c.nc.Close()
	sc := waitScripts(t, srv, addr)[0]
	if sc.TLS || sc.Err == nil || !strings.Contains(sc.Err.Error(), "TLS handshake") {
		t.Errorf("%+v", sc)
	}
}

func TestScriptCloseEndsBlockedScripts(t *testing.T) {
	srv := submittest.NewServer(nil)
	addr := srv.ListenScript(submittest.Options{}, script.Expect("never"))
	slow := srv.ListenScript(submittest.Options{}, script.SendSlowly("220 zzz\r\n", time.Minute))
	dialRaw(t, srv.Addr(addr))
	dialRaw(t, srv.Addr(slow))
	for deadline := time.Now().Add(10 * time.Second); len(srv.ScriptConns(addr)) == 0 || len(srv.ScriptConns(slow)) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("connections not accepted")
		}
		time.Sleep(5 * time.Millisecond)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close blocked on running scripts")
	}
	for _, a := range []tlsmode.Candidate{addr, slow} {
		if conns := srv.ScriptConns(a); len(conns) != 1 || !conns[0].Done {
			t.Errorf("%s: %+v", a, conns)
		}
	}
}

func ExampleServer_ListenScript() {
	srv := submittest.NewServer(nil)
	defer srv.Close()
	// A server whose reply to STARTTLS carries an injected line.
	addr := srv.ListenScript(submittest.Options{},
		script.Send("220 mx ESMTP\r\n"),
		script.ExpectPrefix("EHLO "),
		script.Send("250-mx\r\n250 STARTTLS\r\n"),
		script.Expect("STARTTLS"),
		script.Send("220 go ahead\r\n250 AUTH PLAIN\r\n"),
		script.StartTLS(),
	)

	nc, err := net.Dial("tcp", srv.Addr(addr))
	if err != nil {
		fmt.Println(err)
		return
	}
	br := bufio.NewReader(nc)
	br.ReadString('\n')
	fmt.Fprint(nc, "EHLO client\r\n")
	br.ReadString('\n')
	br.ReadString('\n')
	fmt.Fprint(nc, "STARTTLS\r\n")
	reply, _ := br.ReadString('\n')
	injected, _ := br.ReadString('\n')
	fmt.Printf("%q, then %q, which a careful client refuses\n", reply, injected)
	nc.Close()

	conns, _ := srv.WaitScripts(context.Background(), addr)
	for _, l := range conns[0].Lines {
		fmt.Printf("TLS=%v %s\n", l.TLS, l.Text)
	}
	// Output:
	// "220 go ahead\r\n", then "250 AUTH PLAIN\r\n", which a careful client refuses
	// TLS=false EHLO client
	// TLS=false STARTTLS
}
