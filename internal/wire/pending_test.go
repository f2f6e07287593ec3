package wire

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

func TestUnsolicited(t *testing.T) {
	tests := []struct {
		name      string
		server    func(net.Conn)
		wantCode  int
		wantErrIs error
	}{
		{"nothing pending", func(net.Conn) {}, 0, nil},
		{"a 421 before closing", func(s net.Conn) { io.WriteString(s, "421 4.4.2 Idle timeout\r\n"); s.Close() }, 421, nil},
		{"closed without a word", func(s net.Conn) { s.Close() }, 0, io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl, srv := tcpPair(t)
			tt.server(srv)
			c := NewConn(cl, nil)
			// Give the server's bytes time to arrive: the check itself
			// never waits for them.
			time.Sleep(20 * time.Millisecond)
			r, err := c.Unsolicited(time.Time{})
			switch {
			case tt.wantErrIs != nil:
				if !errors.Is(err, tt.wantErrIs) {
					t.Fatalf("err = %v, want %v", err, tt.wantErrIs)
				}
			case err != nil:
				t.Fatal(err)
			case tt.wantCode == 0 && r != nil:
				t.Fatalf("reply %v, want none", r)
			case tt.wantCode != 0 && (r == nil || r.Code != tt.wantCode):
				t.Fatalf("reply %v, want %d", r, tt.wantCode)
			}
		})
	}
}

func TestUnsolicitedDoesNotWaitOrConsume(t *testing.T) {
	cl, srv := tcpPair(t)
	c := NewConn(cl, nil)
	const n = 1000
	t0 := time.Now()
	for range n {
		if r, err := c.Unsolicited(time.Time{}); r != nil || err != nil {
			t.Fatalf("Unsolicited = %v, %v on an idle connection", r, err)
		}
	}
	if per := time.Since(t0) / n; per > 200*time.Microsecond {
		t.Errorf("%s per check: it waits for the network", per)
	}
	// A reply that arrives later is still there for the command it
	// answers.
	io.WriteString(srv, "250 ok\r\n")
	r, err := c.ReadReply()
	if err != nil || r.Code != 250 {
		t.Fatalf("ReadReply = %v, %v", r, err)
	}
}
