package submittest

import (
	"context"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/portwise/portwise/submit/submittest/script"
	"github.com/portwise/portwise/tlsmode"
)

// scriptListener is a listener playing scripts: the i-th on the i-th
// connection, the last on every later one.
type scriptListener struct {
	scripts [][]script.Step
	recs    []*script.Record
}

// ListenScript adds a listener that plays steps (package script) on every
// connection it accepts, each from the first step, and returns it as a
// candidate: implicit TLS when the script starts with script.StartTLS(),
// STARTTLS otherwise. o sets the certificate of StartTLS steps (CertName,
// SelfSigned, CertExpired, MaxTLSVersion...); an empty Hostname is the
// server's, so ClientTLSConfig trusts it. Connections also appear in
// Conns, with Clear holding the lines sent before TLS. It panics if the
// listener cannot be set up.
func (s *Server) ListenScript(o Options, steps ...script.Step) tlsmode.Candidate {
	return s.ListenScripts(o, steps)
}

// ListenScripts is ListenScript for a server that behaves differently on
// later connections: it plays scripts[i] on the i-th connection it
// accepts, and the last script on every connection after that. All the
// scripts start alike: with script.StartTLS() (implicit TLS) or without.
func (s *Server) ListenScripts(o Options, scripts ...[]script.Step) tlsmode.Candidate {
	if len(scripts) == 0 {
		panic("submittest: ListenScripts needs at least one script")
	}
	steps := scripts[0]
	if o.Hostname == "" {
		o.Hostname = s.opts.Hostname
	}
	o = o.withDefaults()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Errorf("submittest: listen: %w", err))
	}
	addr := ln.Addr().String()
	c := tlsmode.Candidate{Port: ln.Addr().(*net.TCPAddr).Port, Mode: tlsmode.StartTLS}
	if script.Implicit(steps) {
		c.Mode = tlsmode.Implicit
	}
	sl := &scriptListener{}
	needsTLS := false
	for _, sc := range scripts {
		if script.Implicit(sc) != script.Implicit(steps) {
			panic("submittest: ListenScripts: some scripts start with StartTLS() and others do not")
		}
		sl.scripts = append(sl.scripts, slices.Clone(sc))
		needsTLS = needsTLS || script.NeedsTLS(sc)
	}
	var cfg script.Config
	if needsTLS {
		if cfg.TLS, err = s.tlsConfig(o); err != nil {
			ln.Close()
			panic(err)
		}
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		panic("submittest: server closed")
	}
	s.listeners = append(s.listeners, &listener{srv: s, addr: addr, opts: o, ln: ln})
	if s.scripts == nil {
		s.scripts = make(map[int]*scriptListener)
	}
	s.scripts[c.Port] = sl
	s.mu.Unlock()

	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-s.done
		cancel()
	}()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		var running []chan struct{}
		defer func() {
			// Close has cancelled ctx: each connection is ending.
			for _, done := range running {
				<-done
			}
		}()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			rec := s.track(nc, nc, addr)
			if rec == nil {
				nc.Close()
				return
			}
			sr := &script.Record{}
			s.mu.Lock()
			steps := sl.scripts[min(len(sl.recs), len(sl.scripts)-1)]
			sl.recs = append(sl.recs, sr)
			s.mu.Unlock()
			cfg := cfg
			cfg.Mu = &s.mu
			cfg.OnLine = func(l script.Line) {
				if !l.TLS {
					rec.Clear = append(rec.Clear, l.Text)
				}
				if !l.Data {
					rec.Commands = append(rec.Commands, l.Text)
				}
			}
			cfg.OnTLS = func() { rec.TLS = true }
			done := make(chan struct{})
			running = append(running, done)
			go func() {
				defer close(done)
				defer s.forget(nc)
				script.Play(ctx, nc, steps, cfg, sr)
			}()
		}
	}()
	return c
}

// ScriptConns returns what the scripted listener c saw, one record per
// accepted connection, oldest first, including connections still running.
func (s *Server) ScriptConns(c tlsmode.Candidate) []script.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	sl := s.scripts[c.Port]
	if sl == nil {
		return nil
	}
	out := make([]script.Record, len(sl.recs))
	for i, r := range sl.recs {
		out[i] = *r
		out[i].Lines = slices.Clone(r.Lines)
		out[i].Messages = slices.Clone(r.Messages)
	}
	return out
}

// WaitScripts waits until every connection the scripted listener c has
// accepted so far is over (the client closed it, or the script did), and
// returns ScriptConns. Call it after the client under test has closed its
// connections, so that its last lines are recorded.
func (s *Server) WaitScripts(ctx context.Context, c tlsmode.Candidate) ([]script.Record, error) {
	for {
		recs := s.ScriptConns(c)
		if !slices.ContainsFunc(recs, func(r script.Record) bool { return !r.Done }) {
			return recs, nil
		}
		select {
		case <-ctx.Done():
			return recs, fmt.Errorf("submittest: scripted connections on port %d still open: %w", c.Port, ctx.Err())
		case <-s.done:
			return s.ScriptConns(c), nil
		case <-time.After(5 * time.Millisecond):
		}
	}
}
