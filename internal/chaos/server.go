package chaos

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"regexp"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/portwise/portwise/tlsmode"
)

// The account the fault server knows.
const (
	chaosUser = "chaos"
	chaosPass = "chaos-secret"
)

// server is the fault server: go-smtp v0.25.1's server behind a front
// (front.go) that terminates TLS and injects the faults the server decides
// itself, so that its own accounting stays true: what it refused it did not
// store, and a copy is stored only when a whole message arrived.
type server struct {
	reg    *registry
	mode   tlsmode.Mode
	tlsCfg *tls.Config
	msgs   map[int]*message // what each message should be, to check bodies
	ln     net.Listener
	smtp   *smtp.Server
	wg     sync.WaitGroup

	mu     sync.Mutex
	closed bool
	open   map[*front]struct{}
}

func startServer(reg *registry, mode tlsmode.Mode, ca *authority, msgs map[int]*message) (*server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &server{
		reg:  reg,
		mode: mode,
		// TLS 1.3 only: a record then costs exactly 22 bytes more than
		// its plaintext, so a reply's bytes on the wire are known before
		// it is written (see front.writeMarked).
		tlsCfg: &tls.Config{Certificates: []tls.Certificate{ca.leaf}, MinVersion: tls.VersionTLS13, CurvePreferences: fastCurves},
		msgs:   msgs,
		ln:     ln,
		open:   map[*front]struct{}{},
	}
	srv := smtp.NewServer(backend{s})
	srv.Domain = "localhost"
	// The front has done TLS already, where go-smtp cannot see it.
	srv.AllowInsecureAuth = true
	srv.MaxMessageBytes = 30 << 20
	srv.ErrorLog = log.New(io.Discard, "", 0)
	s.smtp = srv
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		srv.Serve(frontListener{ln, s})
	}()
	return s, nil
}

func (s *server) addr() string { return s.ln.Addr().String() }

// close ends every connection and waits until go-smtp has finished with
// them. Shutdown, not Close: Close races handleBdat under -race.
func (s *server) close() error {
	s.mu.Lock()
	s.closed = true
	open := make([]*front, 0, len(s.open))
	for f := range s.open {
		open = append(open, f)
	}
	s.mu.Unlock()
	s.reg.stopAuth()
	s.ln.Close()
	for _, f := range open {
		f.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.smtp.Shutdown(ctx)
	s.wg.Wait()
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("chaos: the server's connection handlers did not finish: %w", err)
	}
	return nil
}

// frontListener puts a front before every connection go-smtp serves.
type frontListener struct {
	net.Listener
	s *server
}

func (l frontListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	f := newFront(l.s, c.(*net.TCPConn))
	l.s.mu.Lock()
	if l.s.closed {
		l.s.mu.Unlock()
		c.Close()
		return nil, net.ErrClosed
	}
	l.s.open[f] = struct{}{}
	l.s.mu.Unlock()
	return f, nil
}

func (s *server) forget(f *front) {
	s.mu.Lock()
	delete(s.open, f)
	s.mu.Unlock()
}

type backend struct{ s *server }

func (b backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	f, ok := c.Conn().(*front)
	if !ok {
		return nil, errors.New("chaos: connection without a front")
	}
	return &session{f: f}, nil
}

// session is go-smtp's side of one connection: it checks the credential,
// and judges, stores or refuses each whole message.
type session struct{ f *front }

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	f := s.f
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if identity != "" && identity != user || user != chaosUser || pass != chaosPass {
			f.c.note("server: AUTH with a wrong credential")
			return smtp.ErrAuthFailed
		}
		if !f.s.reg.checkAuth(f.c) {
			return smtp.ErrAuthFailed
		}
		f.setAuthed()
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.f.setTx(messageNumber(from))
	return nil
}

func (s *session) Rcpt(string, *smtp.RcptOptions) error {
	s.f.addRecipient()
	return nil
}

func (s *session) Reset() { s.f.setTx(-1) }

func (s *session) Logout() error { return nil }

var messageIDRe = regexp.MustCompile(`(?m)^Message-ID: <([^>\r\n]*)>\r$`)

// Data reads a message to its end and decides, with the connection's
// random stream, what becomes of it.
func (s *session) Data(r io.Reader) error {
	f := s.f
	c := f.c
	n := f.tx()
	via := dataVerb(r)
	body, err := io.ReadAll(r)
	if err != nil {
		c.note("server: %s of message %d ended after %d bytes: %v", via, n, len(body), err)
		return err
	}
	if n < 0 || !bytes.HasSuffix(body, []byte(marker(n))) {
		// A chunk cut short by EOF: go-smtp passes it on as if whole.
		c.note("server: %s of message %d incomplete (%d bytes, no end marker)", via, n, len(body))
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "incomplete message"}
	}
	f.s.reg.sawBody(c, n, fmt.Sprintf("%s, %d bytes", via, len(body)))
	if want, ok := f.s.msgs[n]; ok && !bytes.Equal(body, want.body) {
		f.s.reg.badBody(c, n, fmt.Sprintf("%d bytes, not the %d sent (first difference at byte %d)", len(body), len(want.body), firstDiff(body, want.body)))
	}
	id := "?"
	if m := messageIDRe.FindSubmatch(body); m != nil {
		id = string(m[1])
	}
	what := storeOK
	if c.armed() && !c.server.calm {
		c.draw(func(r *rand.Rand) { what = drawAfterBody(r) })
	}
	if what != storeOK {
		c.fault("server after body: "+afterBodyNames[what], "server: after the body of message %d: %s", n, afterBodyNames[what])
	}
	switch what {
	case storeOK:
		f.s.reg.store(c, n, id)
		f.setFinal(n)
		return nil
	case refuse451:
		f.setFinal(n)
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Message not accepted for now (chaos)"}
	case refuse554:
		f.setFinal(n)
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Message refused (chaos)"}
	case refuse421:
		f.setFinal(n)
		return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "Shutting down (chaos)"}
	case storeReset:
		f.s.reg.store(c, n, id)
		f.reset()
		return errors.New("connection reset")
	default:
		f.reset()
		return errors.New("connection reset")
	}
}

// dataVerb names the command that carried the message r reads: go-smtp
// v0.25 feeds BDAT chunks to the session through an io.Pipe.
func dataVerb(r io.Reader) string {
	if _, ok := r.(*io.PipeReader); ok {
		return "BDAT"
	}
	return "DATA"
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
