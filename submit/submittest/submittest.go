package submittest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/portwise/portwise/internal/testca"
	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/tlsmode"
)

// Options configure a Server or, through ListenWith, one listener. The zero
// value works.
type Options struct {
	// Hostname is the name in the banner and in the certificate; default
	// "localhost". Unless CertName is set, the certificate also covers
	// 127.0.0.1 and ::1.
	Hostname string
	// Accounts maps usernames to passwords for AUTH PLAIN and LOGIN; nil
	// means {"user": "pass"}.
	Accounts map[string]string
	// STARTTLSReply is the whole reply line RejectSTARTTLS sends; default
	// "454 4.7.0 TLS not available". A reply starting with 421 also closes
	// the connection.
	STARTTLSReply string
	// Injection is what InjectAfterSTARTTLS writes after the 220; default
	// "250-PIPELINING\r\n250 AUTH PLAIN\r\n".
	Injection string
	// LoginPrompts are the two AUTH LOGIN challenges before base64; default
	// {"Username:", "Password:"}.
	LoginPrompts [2]string
	// LoginPromptsClear sends LoginPrompts as they are instead of in base64,
	// as some old servers do ("334 Username:").
	LoginPromptsClear bool
	// Tokens maps usernames to the one OAuth2 access token XOAUTH2 and
	// OAUTHBEARER accept for them. When set, those two mechanisms are
	// advertised too. A wrong token gets Google's error challenge (a 334
	// with base64 JSON naming status 401 and the scope) and then 535.
	Tokens map[string]string
	// AuthMechanisms, if set, is exactly the list of AUTH mechanisms
	// advertised and accepted, in that order; others get 504. Besides PLAIN,
	// LOGIN, XOAUTH2 and OAUTHBEARER it may name CRAM-MD5 (RFC 2195,
	// checked against Accounts) or anything else, which is advertised but
	// answered with 504. nil means PLAIN and LOGIN, plus XOAUTH2 and
	// OAUTHBEARER when Tokens is set.
	AuthMechanisms []string
	// NoAuthAfterTLS stops advertising and accepting AUTH once TLS is up;
	// with the AuthBeforeTLS fault, AUTH is offered only in clear, as on a
	// misconfigured server.
	NoAuthAfterTLS bool
	// AuthReply, if set, is the whole reply line that ends every AUTH
	// exchange instead of the outcome of the credential check, e.g.
	// "454 4.7.0 Temporary authentication failure" or
	// "534 5.7.9 Please log in with your web browser".
	AuthReply string
	// MaxTLSVersion caps the TLS version, e.g. tls.VersionTLS11 for a legacy
	// server; the minimum is lowered to match so the handshake can happen.
	// Zero: Go's defaults.
	MaxTLSVersion uint16
	// MinTLSVersion lowers the oldest TLS version accepted, e.g.
	// tls.VersionTLS10 for a server that still takes TLS 1.0 beside 1.3.
	// Zero: Go's default (TLS 1.2).
	MinTLSVersion uint16
	// CertName, if set, is the only name in the certificate (no IP
	// addresses), for wrong-name tests.
	CertName string
	// CertExpired makes the certificate's validity end yesterday.
	CertExpired bool
	// CertNotAfter, if non-zero, is when the certificate expires; default one
	// year from now.
	CertNotAfter time.Time
	// SelfSigned makes the certificate sign itself instead of being issued by
	// the CA in CertPool, so verification against that pool fails.
	SelfSigned bool
	// Certificate, if set, is served instead of a certificate from the
	// server's CA; CertName, CertExpired, CertNotAfter and SelfSigned are
	// then ignored. Tests of hostile certificates build their own.
	Certificate *tls.Certificate
	// MaxMessageBytes is advertised as SIZE and enforced with 552; 0 means
	// 30 MiB.
	MaxMessageBytes int64
	// DiscardData keeps only the size and SHA-256 of each message instead
	// of its bytes, for large-message and memory tests.
	DiscardData bool
	// EnableDSN advertises DSN and accepts RET, ENVID, NOTIFY and ORCPT.
	EnableDSN bool
	// EnableREQUIRETLS advertises REQUIRETLS (after TLS only).
	EnableREQUIRETLS bool
	// EnableSMTPUTF8 advertises SMTPUTF8.
	EnableSMTPUTF8 bool
	// RejectRecipients maps a recipient address (exactly as in RCPT TO) to
	// the reply that refuses it, e.g. "550 5.1.1 no such user"; every
	// other recipient is accepted.
	RejectRecipients map[string]string
	// MaxMessagesPerConn, when positive, answers MAIL FROM with "421 4.7.0"
	// and closes the connection once that many messages were accepted on
	// it, as providers that cap messages per session do.
	MaxMessagesPerConn int
	// MaxSessions, when positive, is how many sessions the listener
	// serves at once: a connection beyond it is greeted with
	// "421 4.7.0 Too many concurrent sessions, try again later" and
	// closed, as providers capping sessions per account do.
	MaxSessions int
	// FailEvery, when positive, answers every FailEvery-th MAIL FROM the
	// server receives (counted across its listeners) with FailReply, so
	// that some sends fail temporarily.
	FailEvery int
	// FailReply is the reply FailEvery sends; default
	// "451 4.3.0 Temporary failure, try again later".
	FailReply string
	// IdleTimeout, when positive, ends a connection on which the client
	// sent nothing for that long with "421 4.4.2 Idle timeout" (go-smtp's
	// ReadTimeout), as servers drop idle sessions.
	IdleTimeout time.Duration
}

func (o Options) withDefaults() Options {
	if o.Hostname == "" {
		o.Hostname = "localhost"
	}
	if o.Accounts == nil {
		o.Accounts = map[string]string{"user": "pass"}
	}
	if o.STARTTLSReply == "" {
		o.STARTTLSReply = "454 4.7.0 TLS not available"
	}
	if o.Injection == "" {
		o.Injection = "250-PIPELINING\r\n250 AUTH PLAIN\r\n"
	}
	if o.LoginPrompts[0] == "" {
		o.LoginPrompts[0] = "Username:"
	}
	if o.LoginPrompts[1] == "" {
		o.LoginPrompts[1] = "Password:"
	}
	if o.MaxMessageBytes == 0 {
		o.MaxMessageBytes = 30 << 20
	}
	if o.FailReply == "" {
		o.FailReply = "451 4.3.0 Temporary failure, try again later"
	}
	return o
}

// Message is one message the server accepted (or, with DropAfterDot,
// received without answering).
type Message struct {
	Addr        string   // listener address it arrived on
	From        string   // MAIL FROM address
	To          []string // RCPT TO addresses
	Data        []byte   // bytes after DATA, dot-unstuffed, terminator removed (nil with DiscardData)
	Size        int64    // len(Data), also with DiscardData
	SHA256      [32]byte // of Data, also with DiscardData
	AuthUser    string   // "" if unauthenticated
	TLS         bool     // the session ran over TLS
	MailOptions *smtp.MailOptions
	// RcptOptions holds the parameters of each accepted RCPT TO, in the
	// order of To.
	RcptOptions []*smtp.RcptOptions
	// QueueID is the id the server announced in its final reply
	// ("250 2.0.0 OK: queued as QueueID").
	QueueID string
}

// ConnRecord is what the server saw on one accepted connection.
type ConnRecord struct {
	// Addr is the listener address.
	Addr string
	// Clear holds every line the client sent before TLS, verbatim without
	// CRLF, message content and AUTH responses included.
	Clear []string
	// Commands holds the command lines: those before TLS verbatim (AUTH
	// continuation lines as sent), those after TLS rebuilt from the session
	// as "EHLO name", "AUTH MECH", "MAIL FROM:<a>", "RCPT TO:<a>", and "DATA"
	// or "BDAT" (once per message, however many chunks carried it), since
	// under TLS the wire is ciphertext.
	Commands []string
	// TLS reports that a TLS handshake completed on the connection.
	TLS bool
	// AuthMechanism is the mechanism of the last AUTH attempt.
	AuthMechanism string
	// AuthOK reports that an AUTH attempt succeeded.
	AuthOK bool
	// AuthAttempts counts AUTH commands that reached a mechanism.
	AuthAttempts int
	// Messages counts the messages accepted on the connection.
	Messages int
	// Closed reports that the connection has been closed, by either side.
	Closed bool
}

type connRecord = ConnRecord

// Server is a running set of submission listeners on 127.0.0.1. Its methods
// are safe for concurrent use.
type Server struct {
	// StartTLS is the STARTTLS listener, as a candidate to dial.
	StartTLS tlsmode.Candidate
	// Implicit is the implicit TLS listener.
	Implicit tlsmode.Candidate
	// Plain is the plaintext listener, which offers neither STARTTLS nor
	// AUTH.
	Plain tlsmode.Candidate

	opts Options
	ca   *testca.Authority
	wg   sync.WaitGroup // accept loops

	mu        sync.Mutex
	closed    bool
	done      chan struct{}
	leaves    map[testca.Leaf]tls.Certificate
	listeners []*listener
	open      map[net.Conn]struct{} // accepted and not yet closed
	records   []*connRecord
	messages  []Message
	queued    int                     // messages given a queue id
	changed   chan struct{}           // closed and replaced when a message arrives
	scripts   map[int]*scriptListener // ListenScript listeners by port
	mails     atomic.Int64            // MAIL FROM commands, for FailEvery
}

// listener is one port with its mode, faults and options.
type listener struct {
	srv      *Server
	sessions atomic.Int64 // open sessions, for MaxSessions
	addr     string
	faults   faultSet
	opts     Options
	ln       net.Listener
	smtp     *smtp.Server
}

// TB is the part of testing.TB that NewServer uses; *testing.T and
// *testing.B satisfy it. Programs pass nil, and so never link package
// testing.
type TB interface {
	Helper()
	Cleanup(func())
	Fatalf(format string, args ...any)
}

// NewServer starts the STARTTLS, implicit TLS and plaintext listeners, none
// with faults. At most one Options may be given. With a non-nil tb, Close
// runs at cleanup and a setup failure fails the test; with nil tb (examples,
// programs) the caller must Close and a setup failure panics.
func NewServer(tb TB, opts ...Options) *Server {
	if tb != nil {
		tb.Helper()
	}
	if len(opts) > 1 {
		panic("submittest: NewServer takes at most one Options")
	}
	var o Options
	if len(opts) == 1 {
		o = opts[0]
	}
	s := &Server{
		opts:    o.withDefaults(),
		done:    make(chan struct{}),
		leaves:  make(map[testca.Leaf]tls.Certificate),
		open:    make(map[net.Conn]struct{}),
		changed: make(chan struct{}),
	}
	ca, err := testca.New("portwise submittest CA")
	if err != nil {
		fail(tb, err)
	}
	s.ca = ca
	if tb != nil {
		tb.Cleanup(func() { s.Close() })
	}
	if s.StartTLS, err = s.listen(tlsmode.StartTLS, s.opts, nil); err == nil {
		if s.Implicit, err = s.listen(tlsmode.Implicit, s.opts, nil); err == nil {
			s.Plain, err = s.listen(tlsmode.Plaintext, s.opts, nil)
		}
	}
	if err != nil {
		s.Close()
		fail(tb, err)
	}
	return s
}

func fail(tb TB, err error) {
	if tb == nil {
		panic(err)
	}
	tb.Helper()
	tb.Fatalf("submittest: %v", err)
}

// Listen adds a listener speaking mode with the given faults and the
// server's Options and returns it as a candidate to dial on 127.0.0.1.
// Mode Plaintext, like PlainOnly, offers neither STARTTLS nor AUTH. With
// Refuse, the port was reserved and closed again, so nothing listens
// there. It panics if the listener cannot be set up.
func (s *Server) Listen(mode tlsmode.Mode, faults ...Fault) tlsmode.Candidate {
	return s.ListenWith(mode, s.opts, faults...)
}

// ListenWith is Listen with per-listener Options (another certificate, TLS
// version, prompts...). An empty Hostname, nil Accounts or nil Tokens is
// the server's, so ClientTLSConfig and the default account keep working;
// every other unset field takes the package default.
func (s *Server) ListenWith(mode tlsmode.Mode, o Options, faults ...Fault) tlsmode.Candidate {
	if o.Hostname == "" {
		o.Hostname = s.opts.Hostname
	}
	if o.Accounts == nil {
		o.Accounts = s.opts.Accounts
	}
	if o.Tokens == nil {
		o.Tokens = s.opts.Tokens
	}
	c, err := s.listen(mode, o.withDefaults(), faults)
	if err != nil {
		panic(err)
	}
	return c
}

func (s *Server) listen(mode tlsmode.Mode, o Options, faults []Fault) (tlsmode.Candidate, error) {
	fs := makeFaultSet(faults)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return tlsmode.Candidate{}, fmt.Errorf("submittest: listen: %w", err)
	}
	l := &listener{srv: s, addr: ln.Addr().String(), faults: fs, opts: o, ln: ln}
	cand := tlsmode.Candidate{Port: ln.Addr().(*net.TCPAddr).Port, Mode: mode}
	if fs.has(Refuse) {
		ln.Close()
		return cand, nil
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return tlsmode.Candidate{}, fmt.Errorf("submittest: server closed")
	}
	s.listeners = append(s.listeners, l)
	s.mu.Unlock()

	if fs.has(Blackhole) {
		s.wg.Add(1)
		go l.blackhole()
		return cand, nil
	}

	secure := mode.Secure() && !fs.has(PlainOnly)
	implicit := mode == tlsmode.Implicit && secure && !fs.has(ClearOnImplicit)
	var cfg *tls.Config
	if secure {
		if cfg, err = s.tlsConfig(o); err != nil {
			ln.Close()
			return tlsmode.Candidate{}, err
		}
	}
	srv := smtp.NewServer(backend{l})
	srv.Domain = o.Hostname
	srv.TLSConfig = cfg
	srv.MaxMessageBytes = o.MaxMessageBytes
	srv.AllowInsecureAuth = fs.has(AuthBeforeTLS)
	srv.EnableDSN = o.EnableDSN
	srv.EnableREQUIRETLS = o.EnableREQUIRETLS
	srv.EnableSMTPUTF8 = o.EnableSMTPUTF8
	srv.ReadTimeout = o.IdleTimeout
	srv.ErrorLog = log.New(io.Discard, "", 0)
	l.smtp = srv

	var served net.Listener = &tapListener{Listener: ln, l: l, clear: !implicit}
	if implicit {
		served = tls.NewListener(served, cfg)
	}
	if o.MaxSessions > 0 {
		served = &sessionGate{Listener: served, l: l}
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		srv.Serve(served)
	}()
	return cand, nil
}

// tlsConfig builds a listener's server config. Each handshake gets a clone
// that marks its connection's record as TLS once verified.
func (s *Server) tlsConfig(o Options) (*tls.Config, error) {
	spec := specOf(o)
	s.mu.Lock()
	cert, ok := s.leaves[spec]
	s.mu.Unlock()
	if o.Certificate != nil {
		cert, ok = *o.Certificate, true
	}
	if !ok {
		var err error
		if cert, err = s.ca.Issue(spec); err != nil {
			return nil, err
		}
		s.mu.Lock()
		s.leaves[spec] = cert
		s.mu.Unlock()
	}
	base := &tls.Config{Certificates: []tls.Certificate{cert}}
	if v := o.MinTLSVersion; v != 0 {
		base.MinVersion = v
	}
	if v := o.MaxTLSVersion; v != 0 {
		base.MaxVersion = v
		if v < tls.VersionTLS12 {
			base.MinVersion = v
		}
	}
	cfg := base.Clone()
	cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		t, ok := hello.Conn.(*tapConn)
		if !ok {
			return nil, nil
		}
		c := base.Clone()
		c.VerifyConnection = func(tls.ConnectionState) error {
			s.mu.Lock()
			t.rec.TLS = true
			s.mu.Unlock()
			return nil
		}
		return c, nil
	}
	return cfg, nil
}

// tapListener wraps each accepted connection in a tapConn and tracks it so
// Close can end it.
type tapListener struct {
	net.Listener
	l     *listener
	clear bool
}

func (tl *tapListener) Accept() (net.Conn, error) {
	c, err := tl.Listener.Accept()
	if err != nil {
		return nil, err
	}
	t := &tapConn{Conn: c, l: tl.l}
	t.clear.Store(tl.clear)
	if t.rec = tl.l.srv.track(c, t, tl.l.addr); t.rec == nil {
		c.Close()
		return nil, net.ErrClosed
	}
	return t, nil
}

// sessionGate greets the connections beyond Options.MaxSessions with a
// 421 (after the handshake on an implicit TLS port) and closes them.
type sessionGate struct {
	net.Listener
	l *listener
}

func (g *sessionGate) Accept() (net.Conn, error) {
	for {
		c, err := g.Listener.Accept()
		if err != nil {
			return nil, err
		}
		t, _ := c.(*tapConn)
		if tc, ok := c.(*tls.Conn); ok {
			t, _ = tc.NetConn().(*tapConn)
		}
		if t == nil || g.l.sessions.Add(1) <= int64(g.l.opts.MaxSessions) {
			if t != nil {
				t.counted = true
			}
			return c, nil
		}
		g.l.sessions.Add(-1)
		go func() {
			if tc, ok := c.(*tls.Conn); ok {
				tc.SetDeadline(time.Now().Add(5 * time.Second))
				if tc.Handshake() != nil {
					c.Close()
					return
				}
			}
			io.WriteString(c, "421 4.7.0 Too many concurrent sessions, try again later\r\n")
			c.Close()
		}()
	}
}

// blackhole accepts connections and holds them silently until Close.
func (l *listener) blackhole() {
	defer l.srv.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		if l.srv.track(c, c, l.addr) == nil {
			c.Close()
			return
		}
	}
}

// track registers an accepted connection under key (what Close closes); it
// returns nil once the server is closed.
func (s *Server) track(raw, key net.Conn, addr string) *connRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	rec := &connRecord{Addr: addr}
	s.records = append(s.records, rec)
	s.open[key] = struct{}{}
	return rec
}

func (s *Server) forget(key net.Conn) {
	s.mu.Lock()
	delete(s.open, key)
	s.mu.Unlock()
}

func (s *Server) recordClear(rec *connRecord, line string, isCmd bool) {
	s.mu.Lock()
	rec.Clear = append(rec.Clear, line)
	if isCmd {
		rec.Commands = append(rec.Commands, line)
	}
	s.mu.Unlock()
}

func (s *Server) recordCommand(rec *connRecord, line string) {
	s.mu.Lock()
	rec.Commands = append(rec.Commands, line)
	s.mu.Unlock()
}

// addMessage records m as accepted on the connection of rec and returns
// the queue id it was given.
func (s *Server) addMessage(m Message, rec *connRecord) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queued++
	m.QueueID = queueID(s.queued)
	rec.Messages++
	s.messages = append(s.messages, m)
	close(s.changed)
	s.changed = make(chan struct{})
	return m.QueueID
}

// Addr returns the "127.0.0.1:port" address of a listener.
func (s *Server) Addr(c tlsmode.Candidate) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port))
}

// Candidates returns the STARTTLS and implicit TLS listeners as candidates,
// in that order.
func (s *Server) Candidates() []tlsmode.Candidate {
	return []tlsmode.Candidate{s.StartTLS, s.Implicit}
}

// Dialer returns a submit.Dialer for the server, as httptest's Client
// does for its server: it trusts the server's CA, tries cands (nil: the
// STARTTLS and implicit TLS listeners) and authenticates with auth (nil:
// none). Dial it with "127.0.0.1". Change its fields before the first Dial.
func (s *Server) Dialer(auth submit.Auth, cands ...tlsmode.Candidate) *submit.Dialer {
	if cands == nil {
		cands = s.Candidates()
	}
	return &submit.Dialer{Candidates: cands, TLSConfig: s.ClientTLSConfig(), Auth: auth}
}

// CertPool returns a pool holding only the throwaway CA that issues the
// listeners' certificates (except SelfSigned ones).
func (s *Server) CertPool() *x509.CertPool {
	return s.ca.Pool.Clone()
}

// ClientTLSConfig returns a fresh config trusting CertPool with ServerName
// set to the server's Hostname.
func (s *Server) ClientTLSConfig() *tls.Config {
	return &tls.Config{RootCAs: s.CertPool(), ServerName: s.opts.Hostname}
}

// Messages returns the messages received so far, oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.messages)
}

// WaitMessages waits until at least n messages have arrived and returns
// them all. It fails when ctx ends or the server is closed first.
func (s *Server) WaitMessages(ctx context.Context, n int) ([]Message, error) {
	for {
		s.mu.Lock()
		if len(s.messages) >= n {
			m := slices.Clone(s.messages)
			s.mu.Unlock()
			return m, nil
		}
		changed, have := s.changed, len(s.messages)
		s.mu.Unlock()
		select {
		case <-changed:
		case <-s.done:
			return nil, fmt.Errorf("submittest: server closed with %d of %d messages", have, n)
		case <-ctx.Done():
			return nil, fmt.Errorf("submittest: %d of %d messages: %w", have, n, ctx.Err())
		}
	}
}

// Conns returns one record per accepted connection, oldest first.
func (s *Server) Conns() []ConnRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ConnRecord, len(s.records))
	for i, r := range s.records {
		out[i] = *r
		out[i].Clear = slices.Clone(r.Clear)
		out[i].Commands = slices.Clone(r.Commands)
	}
	return out
}

// Close stops every listener, closes every open connection (blackholed
// ones included) and waits for the server's goroutines to finish. Calling it
// again does nothing.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	listeners := slices.Clone(s.listeners)
	s.mu.Unlock()

	for _, l := range listeners {
		l.ln.Close()
	}
	s.wg.Wait() // no Accept is running now, so no connection can appear

	s.mu.Lock()
	open := make([]net.Conn, 0, len(s.open))
	for c := range s.open {
		open = append(open, c)
	}
	s.mu.Unlock()
	for _, c := range open {
		c.Close()
	}

	// Shutdown only waits here: its listeners are closed, and with the
	// sockets gone every connection handler is on its way out.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, l := range listeners {
		if l.smtp != nil {
			if err := l.smtp.Shutdown(ctx); errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("submittest: connection handlers still running: %w", err)
			}
		}
	}
	return nil
}
