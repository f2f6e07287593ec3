package netem

import (
	"bufio"
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

// echo serves one line back per line, on loopback.
func echo(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					l, err := br.ReadString('\n')
					if err != nil {
						return
					}
					c.Write([]byte(l))
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func TestProxyDelaysEachWayAndCountsFlights(t *testing.T) {
	const oneWay = 25 * time.Millisecond
	p, err := NewProxy(echo(t), oneWay)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	d := &Dialer{OneWay: oneWay}
	t0 := time.Now()
	c, err := d.DialContext(context.Background(), "tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if e := time.Since(t0); e < 2*oneWay {
		t.Errorf("connect took %s; want at least one round trip (%s)", e, 2*oneWay)
	}
	br := bufio.NewReader(c)
	for i := range 3 {
		t0 = time.Now()
		c.Write([]byte("ping\n"))
		if l, err := br.ReadString('\n'); err != nil || l != "ping\n" {
			t.Fatalf("echo %d = %q, %v", i, l, err)
		}
		if e := time.Since(t0); e < 2*oneWay || e > 2*oneWay+200*time.Millisecond {
			t.Errorf("round trip %d took %s; want about %s", i, e, 2*oneWay)
		}
	}
	if n := p.ClientFlights(); n != 3 {
		t.Errorf("ClientFlights = %d; want 3", n)
	}
}

func TestDialerBlocksPortsUntilTheContextEnds(t *testing.T) {
	d := &Dialer{Block: map[int]bool{587: true}}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	dl, _ := ctx.Deadline()
	_, err := d.DialContext(ctx, "tcp", "127.0.0.1:587")
	// Measured against the deadline itself: a clock read after the
	// context was made would be late by the time it took.
	if early := time.Until(dl); !errors.Is(err, context.DeadlineExceeded) || early > 0 {
		t.Fatalf("err = %v, %s before the deadline; want the context's deadline", err, early)
	}
}
