// Package session opens one secure SMTP submission session on one candidate:
// connect, banner, EHLO, the STARTTLS guard, TLS, EHLO again. submit races
// these for its Dialer; probe runs them to diagnose a host. Neither writes a
// second SMTP client.
package session

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/portwise/portwise/internal/untrusted"
	"github.com/portwise/portwise/internal/wire"
	"github.com/portwise/portwise/tlsmode"
)

// Config describes one attempt.
type Config struct {
	Host      string // host to connect to (name or IP literal, no port)
	Candidate tlsmode.Candidate
	TLSConfig *tls.Config // used as is: the caller sets ServerName and MinVersion
	LocalName string
	// Dial makes the TCP connection: a submit.ContextDialer's DialContext.
	Dial       func(ctx context.Context, network, addr string) (net.Conn, error)
	Transcript *wire.Transcript
	// Step, when set, is called after every step with its duration and error.
	Step func(step string, d time.Duration, err error)
	// TLSDone, when set, is called after the handshake, successful or not.
	TLSDone func(st tls.ConnectionState, err error)
	// DelayedACK leaves the kernel's delayed ACK after an implicit TLS
	// handshake, as other clients do, so that benchmarks can measure what
	// wire.QuickAck saves.
	DelayedACK bool
	// Silence, on a StartTLS candidate, is how long the port may stay
	// silent after the connect before Open checks, on a second
	// connection, whether it answers a TLS handshake instead; when it does
	// and this connection still heard nothing, Open fails at the banner
	// with a *SpeaksTLSError rather than wait out its context. 0 never
	// checks; SilenceWait is the wait to give.
	Silence time.Duration
	// Early, when set, is what the server's EHLO offered after TLS in an
	// earlier session in which it advertised PIPECONNECT
	// (draft-harris-early-pipe-01): Open pipelines without waiting for
	// the banner. With STARTTLS, EHLO and STARTTLS go right after the
	// connect, and nothing else in clear; with implicit TLS, EHLO goes
	// right after the handshake. Every reply is still read and checked in
	// order. Open then returns with the replies owed after TLS unread
	// (Session.Pending) and Caps set to Early, so that the caller can
	// pipeline one more command before Greet reads them.
	Early wire.Caps
}

// Session is an open connection and what was observed while opening it.
// After a failed Open it still holds the observations made so far, with
// Conn closed.
type Session struct {
	Conn        *wire.Conn
	Candidate   tlsmode.Candidate
	Host        string
	ConnectTime time.Duration
	Banner      string
	PreTLSCaps  wire.Caps // the EHLO capabilities in clear (StartTLS, Plaintext)
	Caps        wire.Caps // the capabilities that count: after TLS, or in clear on Plaintext
	TLS         *tls.ConnectionState
	HELO        bool // the server refused EHLO and the session fell back to HELO
	// Pending reports a session opened with early pipelining whose
	// replies after TLS (the banner on implicit TLS, the EHLO reply) are
	// still to be read: Greet reads them.
	Pending bool

	bannerOwed bool
	step       func(name string, t0 time.Time, err error) error
	localName  string
}

// Error is a failed step.
type Error struct {
	Step string // connect, banner, ehlo, starttls, tls, ehlo-tls
	Err  error
}

// Error is the step and its cause.
func (e *Error) Error() string { return e.Step + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Typed causes an Open can fail with; submit wraps them in its sentinels.
var (
	ErrStripped  = errors.New("STARTTLS stripped")
	ErrRejected  = errors.New("STARTTLS rejected")
	ErrInjection = wire.ErrInjection
)

// StrippedError explains a missing STARTTLS.
type StrippedError struct {
	Masked string // a keyword like XXXXXXXA seen in its place, if any
	EHLO   *wire.Reply
	Reason string
}

// Error is the reason: missing, masked or refused, and what was seen.
func (e *StrippedError) Error() string { return e.Reason }

// Unwrap returns ErrStripped.
func (e *StrippedError) Unwrap() error { return ErrStripped }

// Open runs the steps of cfg.Candidate's mode until the session is secure and
// the post-TLS EHLO has been read. ctx bounds every step; cancelling it
// closes the socket at once.
func Open(ctx context.Context, cfg Config) (*Session, error) {
	s := &Session{Candidate: cfg.Candidate, Host: cfg.Host, localName: cfg.LocalName}
	step := func(name string, t0 time.Time, err error) error {
		if cfg.Step != nil {
			cfg.Step(name, time.Since(t0), err)
		}
		if err != nil {
			// The caller tells its own cancellation from the others
			// (another port won): the cause stays as the socket saw it.
			return &Error{Step: name, Err: err}
		}
		return nil
	}

	t0 := time.Now()
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Candidate.Port))
	nc, err := cfg.Dial(ctx, "tcp", addr)
	s.ConnectTime = time.Since(t0)
	if err := step("connect", t0, err); err != nil {
		return s, err
	}
	cfg.Transcript.Note("connected to %s", addr)
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	conn := nc
	var watch *silence
	if cfg.Silence > 0 && cfg.Candidate.Mode == tlsmode.StartTLS {
		watch = new(silence)
		conn = watch.watch(ctx, cfg, addr, nc, cfg.Silence)
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	s.Conn = wire.NewConn(conn, cfg.Transcript)
	fail := func(err error) (*Session, error) {
		s.Conn.Close()
		return s, err
	}
	s.step = step

	if cfg.Candidate.Mode == tlsmode.Implicit {
		t0 = time.Now()
		if err := step("tls", t0, s.secure(cfg, s.Conn.Handshake)); err != nil {
			return fail(err)
		}
		if cfg.Early != nil {
			return s.early(cfg, true)
		}
		// The banner comes after the server's session ticket: ACK the
		// ticket at once, or the banner waits for it (see QuickAck).
		if !cfg.DelayedACK {
			wire.QuickAck(s.Conn.Raw())
		}
	}
	if watch != nil {
		// The banner step settles the greeting, or the lack of it.
		defer watch.done(nil)
		base := step
		step = func(name string, t0 time.Time, err error) error {
			if name == "banner" {
				err = watch.done(err)
			}
			return base(name, t0, err)
		}
		s.step = step
	}
	if cfg.Candidate.Mode == tlsmode.StartTLS && cfg.Early != nil {
		// EHLO and STARTTLS go at once, before the banner: nothing else in
		// clear. Their replies are judged exactly as below.
		cfg.Transcript.Note("PIPECONNECT: EHLO and STARTTLS sent before the banner")
		t0 = time.Now()
		err := s.Conn.Queue("EHLO "+cfg.LocalName, "")
		if err == nil {
			err = s.Conn.Queue("STARTTLS", "")
		}
		if err == nil {
			err = s.Conn.Flush()
		}
		if err := step("ehlo", t0, err); err != nil {
			return fail(err)
		}
		if err := step("banner", t0, s.readBanner()); err != nil {
			return fail(err)
		}
		t0 = time.Now()
		caps, err := s.readHello(false)
		if err := step("ehlo", t0, err); err != nil {
			return fail(err)
		}
		s.PreTLSCaps = caps
		t0 = time.Now()
		if err := step("starttls", t0, s.earlyStartTLS()); err != nil {
			return fail(err)
		}
		t0 = time.Now()
		if err := step("tls", t0, s.secure(cfg, s.Conn.StartTLS)); err != nil {
			return fail(err)
		}
		return s.early(cfg, false)
	}

	t0 = time.Now()
	if err := step("banner", t0, s.readBanner()); err != nil {
		return fail(err)
	}

	t0 = time.Now()
	caps, err := s.hello(cfg.LocalName, cfg.Candidate.Mode != tlsmode.StartTLS)
	if err := step("ehlo", t0, err); err != nil {
		return fail(err)
	}
	if cfg.Candidate.Mode != tlsmode.StartTLS {
		s.Caps = caps
		if cfg.Candidate.Mode == tlsmode.Plaintext {
			s.PreTLSCaps = caps
		}
		return s, nil
	}
	s.PreTLSCaps = caps

	t0 = time.Now()
	err = s.startTLS(cfg)
	if err := step("starttls", t0, err); err != nil {
		return fail(err)
	}

	t0 = time.Now()
	if err := step("tls", t0, s.secure(cfg, s.Conn.StartTLS)); err != nil {
		return fail(err)
	}

	t0 = time.Now()
	s.Caps, err = s.hello(cfg.LocalName, false)
	if err := step("ehlo", t0, err); err != nil {
		return fail(err)
	}
	return s, nil
}

// secure runs a TLS handshake (implicit, or the STARTTLS upgrade), reports
// it to cfg.TLSDone and records the state.
func (s *Session) secure(cfg Config, handshake func(*tls.Config) error) error {
	err := handshake(cfg.TLSConfig)
	st, _ := s.Conn.TLS()
	if cfg.TLSDone != nil {
		cfg.TLSDone(st, err)
	}
	if err == nil {
		s.TLS = &st
	}
	return err
}

// readBanner reads the server's greeting, which must be 220.
func (s *Session) readBanner() error {
	r, err := s.Conn.ReadReply()
	if err != nil {
		return err
	}
	s.Banner = r.Text()
	if r.Code != 220 {
		return r.Err("")
	}
	return nil
}

// early ends an Open with early pipelining: EHLO goes at once (after the
// TLS handshake), and the session returns with its replies unread and
// the remembered capabilities in Caps.
func (s *Session) early(cfg Config, bannerOwed bool) (*Session, error) {
	t0 := time.Now()
	if bannerOwed {
		cfg.Transcript.Note("PIPECONNECT: EHLO sent before the banner")
	} else {
		cfg.Transcript.Note("PIPECONNECT: EHLO sent; its reply is read after the next command went")
	}
	if err := s.step("ehlo", t0, s.Conn.Cmd("EHLO "+cfg.LocalName, "")); err != nil {
		s.Conn.Close()
		return s, err
	}
	s.Caps, s.Pending, s.bannerOwed = cfg.Early, true, bannerOwed
	return s, nil
}

// Greet reads what an Open with early pipelining left unread, the banner
// (implicit TLS) and the EHLO reply after TLS, checks them as Open does,
// and sets Caps to what the server offers now. It does nothing on a
// session with nothing pending; on failure the connection is closed.
func (s *Session) Greet() error {
	if !s.Pending {
		return nil
	}
	s.Pending = false
	if s.bannerOwed {
		if err := s.step("banner", time.Now(), s.readBanner()); err != nil {
			s.Conn.Close()
			return err
		}
	}
	t0 := time.Now()
	caps, err := s.readHello(false)
	if err := s.step("ehlo", t0, err); err != nil {
		s.Conn.Close()
		return err
	}
	s.Caps = caps
	return nil
}

// hello sends EHLO. With heloOK, a server that refuses EHLO gets HELO.
func (s *Session) hello(localName string, heloOK bool) (wire.Caps, error) {
	if err := s.Conn.Cmd("EHLO "+localName, ""); err != nil {
		return nil, err
	}
	return s.readHello(heloOK)
}

// readHello reads and judges the reply to an EHLO already sent: a server
// that refuses it gets HELO when heloOK allows.
func (s *Session) readHello(heloOK bool) (wire.Caps, error) {
	localName := s.localName
	r, err := s.Conn.ReadReply()
	if err != nil {
		return nil, err
	}
	if r.Code == 250 {
		return wire.ParseEHLO(r), nil
	}
	if r.Code/100 == 4 || !heloOK && s.TLS != nil {
		// A busy server, or one refusing EHLO inside TLS: not stripping.
		return nil, r.Err("EHLO")
	}
	if !heloOK {
		return nil, &StrippedError{EHLO: r, Reason: fmt.Sprintf(
			"the server refused EHLO (%s), so STARTTLS cannot be negotiated; a server that does not speak ESMTP, or a middlebox downgrading the session", r)}
	}
	r, err = s.Conn.Exchange("HELO "+localName, "")
	if err != nil {
		return nil, err
	}
	if r.Code != 250 {
		return nil, r.Err("HELO")
	}
	s.HELO = true
	return wire.Caps{}, nil
}

func (s *Session) startTLS(cfg Config) error {
	if err := s.checkSTARTTLS(); err != nil {
		return err
	}
	if n := s.Conn.Reader().Buffered(); n > 0 {
		// Nothing was asked: bytes after the EHLO reply are a pre-sent
		// reply to a STARTTLS not yet issued.
		peek, _ := s.Conn.Reader().Peek(min(n, 64))
		return injection(fmt.Sprintf("%d bytes arrived after the EHLO reply and before STARTTLS was sent (\"%s\")", n, untrusted.Text(string(peek), 80)))
	}
	r, err := s.Conn.Exchange("STARTTLS", "")
	if err != nil {
		return err
	}
	if r.Code != 220 {
		return fmt.Errorf("%w: the server answered STARTTLS with %w; portwise will not continue in clear", ErrRejected, r.Err("STARTTLS"))
	}
	return nil
}

// checkSTARTTLS fails when the EHLO reply in clear did not advertise
// STARTTLS, or masked it.
func (s *Session) checkSTARTTLS() error {
	if !s.PreTLSCaps.Has("STARTTLS") {
		se := &StrippedError{}
		if k, ok := s.PreTLSCaps.MaskedKeyword(); ok {
			se.Masked = k
			se.Reason = fmt.Sprintf("the EHLO reply has %q where STARTTLS belongs: STARTTLS appears to have been stripped by a middlebox (a firewall's SMTP inspection, or an attacker); portwise will not continue in clear", k)
		} else {
			se.Reason = fmt.Sprintf("port %d did not advertise STARTTLS (EHLO offered: %s); on a submission port this means a downgrade attack or a server without TLS; portwise will not continue in clear", s.Candidate.Port, capList(s.PreTLSCaps))
		}
		return se
	}
	return nil
}

// earlyStartTLS judges the reply to a STARTTLS sent before the EHLO
// reply was read: STARTTLS must have been advertised (else it was
// stripped, and the reply to it is not even read), the reply must be 220,
// and no byte may follow it before the handshake.
func (s *Session) earlyStartTLS() error {
	if err := s.checkSTARTTLS(); err != nil {
		return err
	}
	r, err := s.Conn.ReadReply()
	if err != nil {
		return err
	}
	if r.Code != 220 {
		return fmt.Errorf("%w: the server answered STARTTLS with %w; portwise will not continue in clear", ErrRejected, r.Err("STARTTLS"))
	}
	return nil
}

func capList(c wire.Caps) string {
	l := c.List()
	if len(l) == 0 {
		return "nothing"
	}
	return untrusted.Text(strings.Join(l, ", "), untrusted.MaxText)
}

// Quit ends the session politely: QUIT, a short wait for 221, close.
func (s *Session) Quit(wait time.Duration) {
	if s == nil || s.Conn == nil {
		return
	}
	s.Conn.SetDeadline(time.Now().Add(wait))
	if err := s.Conn.Cmd("QUIT", ""); err == nil {
		s.Conn.ReadReply()
	}
	s.Conn.Close()
}

// injection is an ErrInjection found before STARTTLS, whose message the
// sentinel's (about the bytes after the 220) would misdescribe.
type injection string

func (e injection) Error() string        { return string(e) }
func (e injection) Is(target error) bool { return target == ErrInjection }
