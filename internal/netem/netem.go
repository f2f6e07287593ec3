// Package netem emulates network latency on loopback for portwise's tests
// and benchmarks: a TCP proxy that delays every byte by a one-way latency
// and counts round trips, and a dialer whose connect costs one round trip.
package netem

import (
	"context"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Proxy.
type Options struct {
	// OneWay delays every chunk of data, in each direction.
	OneWay time.Duration
	// Rewrite, when set, transforms each chunk the server sends before it
	// reaches the client, as a middlebox rewriting SMTP would.
	Rewrite func([]byte) []byte
	// Record keeps every byte the client sent, for ClientSent.
	Record bool
}

// Proxy forwards TCP connections to a target, delivering every chunk of
// data OneWay after it was read, in order, in both directions.
type Proxy struct {
	OneWay time.Duration
	opts   Options
	target string
	ln     net.Listener
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns []net.Conn

	turns atomic.Int64 // client flights: client data sent after server data
	sent  []byte       // with Options.Record; guarded by mu
}

// NewProxy listens on a free loopback port and forwards to target with a
// one-way latency.
func NewProxy(target string, oneWay time.Duration) (*Proxy, error) {
	return Start(target, Options{OneWay: oneWay})
}

// Start listens on a free loopback port and forwards to target as o says.
func Start(target string, o Options) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{OneWay: o.OneWay, opts: o, target: target, ln: ln}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Addr is the proxy's "127.0.0.1:port".
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Port is the proxy's port.
func (p *Proxy) Port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// ClientFlights returns how many times a client sent data after the server
// had last spoken (plus its first send) over every connection: the round
// trips the protocol made, not counting TCP's own handshake.
func (p *Proxy) ClientFlights() int64 { return p.turns.Load() }

// ClientSent returns every byte clients sent through the proxy
// (Options.Record).
func (p *Proxy) ClientSent() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]byte(nil), p.sent...)
}

// Reset zeroes the counters.
func (p *Proxy) Reset() { p.turns.Store(0) }

// Close stops the proxy and every connection through it.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		var lastFromServer atomic.Bool
		lastFromServer.Store(true) // the client's first send is a flight
		p.wg.Add(2)
		go func() { // client -> server
			defer p.wg.Done()
			p.pump(s, c, func(b []byte) []byte {
				if lastFromServer.Swap(false) {
					p.turns.Add(1)
				}
				if p.opts.Record {
					p.mu.Lock()
					p.sent = append(p.sent, b...)
					p.mu.Unlock()
				}
				return b
			})
		}()
		go func() { // server -> client
			defer p.wg.Done()
			p.pump(c, s, func(b []byte) []byte {
				lastFromServer.Store(true)
				if p.opts.Rewrite != nil {
					return p.opts.Rewrite(b)
				}
				return b
			})
		}()
	}
}

type chunk struct {
	data []byte
	at   time.Time
}

// pump copies src to dst, passing each chunk through onRead and delaying
// it by OneWay.
func (p *Proxy) pump(dst, src net.Conn, onRead func([]byte) []byte) {
	q := make(chan chunk, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ch := range q {
			if d := time.Until(ch.at); d > 0 {
				time.Sleep(d)
			}
			if _, err := dst.Write(ch.data); err != nil {
				break
			}
		}
		for range q {
		}
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			data := onRead(append([]byte(nil), buf[:n]...))
			q <- chunk{data, time.Now().Add(p.OneWay)}
		}
		if err != nil {
			break
		}
	}
	close(q)
	<-done
	src.Close()
}

// Dialer connects like net.Dialer but first waits one round trip
// (2 × OneWay), as a TCP handshake over that latency would.
type Dialer struct {
	OneWay time.Duration
	// Block, when set, makes connections to these ports never complete,
	// like a firewall that drops SYNs.
	Block map[int]bool
}

// DialContext implements submit.ContextDialer.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if _, port, err := net.SplitHostPort(addr); err == nil && d.Block != nil {
		if n, _ := strconv.Atoi(port); d.Block[n] {
			<-ctx.Done()
			return nil, &net.OpError{Op: "dial", Net: network, Err: ctx.Err()}
		}
	}
	t := time.NewTimer(2 * d.OneWay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return nil, &net.OpError{Op: "dial", Net: network, Err: ctx.Err()}
	}
	var nd net.Dialer
	return nd.DialContext(ctx, network, addr)
}
