// Package conncount is a TCP proxy for tests that counts the connections
// open at once and timestamps them, as the kernel sees them, so that a
// test can check a cap on sessions from the server's side of the wire.
package conncount

import (
	"io"
	"net"
	"sync"
	"time"
)

// Proxy accepts connections on a loopback port and passes each to a
// backend, or holds it until the client closes when there is none.
type Proxy struct {
	// Addr is the "127.0.0.1:port" to connect to.
	Addr string

	ln      net.Listener
	backend string
	wg      sync.WaitGroup

	mu    sync.Mutex
	conns []*tracked
	max   int
	maxAt time.Time
}

type tracked struct {
	c        *net.TCPConn
	accepted time.Time
	done     bool // closed, by either side, as this proxy last looked
}

// Listen starts a proxy to backend ("host:port"; "" for none).
func Listen(backend string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{Addr: ln.Addr().String(), ln: ln, backend: backend}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// accept counts, at each new connection, those still open: the count can
// only grow at an accept, so its maximum is seen there. Whether an earlier
// connection is still open is asked of the kernel (established: neither
// the client's FIN arrived nor the proxy closed it), not of a goroutine
// that may not have run yet: a client that closed a connection and at once
// let another process connect must not look like two sessions.
func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		t := &tracked{c: c.(*net.TCPConn), accepted: time.Now()}
		p.mu.Lock()
		open := 1
		for _, o := range p.conns {
			if !o.done && established(o.c) {
				open++
			} else {
				o.done = true
			}
		}
		p.conns = append(p.conns, t)
		if open > p.max {
			p.max, p.maxAt = open, t.accepted
		}
		p.mu.Unlock()
		p.wg.Add(1)
		go p.serve(t)
	}
}

func (p *Proxy) serve(t *tracked) {
	defer p.wg.Done()
	defer func() {
		t.c.Close()
		p.mu.Lock()
		t.done = true
		p.mu.Unlock()
	}()
	if p.backend == "" {
		io.Copy(io.Discard, t.c)
		return
	}
	b, err := net.Dial("tcp", p.backend)
	if err != nil {
		return
	}
	defer b.Close()
	done := make(chan struct{}, 2)
	go func() { io.Copy(b, t.c); done <- struct{}{} }()
	go func() { io.Copy(t.c, b); done <- struct{}{} }()
	<-done // either side closed: end both
}

// Max returns the most connections open at once, and when that was first
// reached.
func (p *Proxy) Max() (int, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.max, p.maxAt
}

// Total returns how many connections were accepted.
func (p *Proxy) Total() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// Open returns how many connections are open now, by the kernel.
func (p *Proxy) Open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, o := range p.conns {
		if !o.done && established(o.c) {
			n++
		}
	}
	return n
}

// Close stops the proxy and closes its connections.
func (p *Proxy) Close() {
	p.ln.Close()
	p.mu.Lock()
	for _, o := range p.conns {
		o.c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
