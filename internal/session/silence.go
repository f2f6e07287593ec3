package session

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"time"
)

// SilenceWait is how long a port stated as STARTTLS may stay silent after
// the connect before Open checks whether it speaks implicit TLS instead,
// within an attempt's budget: a second, or a quarter of a short budget.
// submit's Dialer and the probe both wait this long.
func SilenceWait(budget time.Duration) time.Duration { return min(time.Second, budget/4) }

// SpeaksTLSError is a port stated as STARTTLS that sent no greeting in
// clear and answered a TLS handshake on a second connection: it speaks
// implicit TLS.
type SpeaksTLSError struct {
	Seen string // what proved it: the handshake's TLS version
}

// Error says what was seen.
func (e *SpeaksTLSError) Error() string { return e.Seen }

// silence watches a STARTTLS connection for its first byte. When none
// came after wait, it tries a TLS handshake on a second connection to
// the port, only to learn whether the port speaks implicit TLS (nothing is
// sent after it); if it does and the first connection is still silent, it
// closes that connection, so that Open stops waiting for a banner that
// will not come, and keeps what it saw.
type silence struct {
	heard    chan struct{} // closed at the first byte read
	heardO   sync.Once
	finished chan struct{} // closed when Open no longer waits
	doneO    sync.Once
	wg       sync.WaitGroup

	mu   sync.Mutex
	seen string
}

// watch starts watching nc, the connection Open made to addr, and returns
// the connection Open reads from instead.
func (s *silence) watch(ctx context.Context, cfg Config, addr string, nc net.Conn, wait time.Duration) net.Conn {
	s.heard, s.finished = make(chan struct{}), make(chan struct{})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		timer := time.NewTimer(wait)
		defer timer.Stop()
		select {
		case <-s.heard:
			return
		case <-s.finished:
			return
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		seen := answersTLS(ctx, cfg, addr)
		if seen == "" {
			return
		}
		select {
		case <-s.heard:
		case <-s.finished:
		default:
			s.mu.Lock()
			s.seen = seen
			s.mu.Unlock()
			nc.Close()
		}
	}()
	return &heardConn{Conn: nc, s: s}
}

// done ends the watch and waits for it; then err, what Open failed with,
// becomes a *SpeaksTLSError when the watch found implicit TLS.
func (s *silence) done(err error) error {
	if s == nil {
		return err
	}
	s.doneO.Do(func() { close(s.finished) })
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen != "" && err != nil {
		return &SpeaksTLSError{Seen: s.seen}
	}
	return err
}

// answersTLS tries a TLS handshake on addr and returns what proves the
// port speaks TLS, or "". Whether the certificate verifies does not
// matter here.
func answersTLS(ctx context.Context, cfg Config, addr string) string {
	nc, err := cfg.Dial(ctx, "tcp", addr)
	if err != nil {
		return ""
	}
	defer nc.Close()
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	tc := &tls.Config{ServerName: cfg.Host, MinVersion: tls.VersionTLS12, InsecureSkipVerify: true}
	if cfg.TLSConfig != nil {
		tc = cfg.TLSConfig.Clone()
		tc.InsecureSkipVerify, tc.VerifyConnection, tc.VerifyPeerCertificate = true, nil, nil
		tc.ClientSessionCache = nil
	}
	c := tls.Client(nc, tc)
	if c.HandshakeContext(ctx) != nil {
		return ""
	}
	return "it answered a TLS handshake, " + tls.VersionName(c.ConnectionState().Version) + ", and sent no greeting in clear"
}

// heardConn is a connection that tells its watch about its first byte.
type heardConn struct {
	net.Conn
	s *silence
}

func (c *heardConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.s.heardO.Do(func() { close(c.s.heard) })
	}
	return n, err
}

// NetConn returns the connection under the watch, so that a client can
// still inspect its socket (wire.Conn.Unsolicited).
func (c *heardConn) NetConn() net.Conn { return c.Conn }
