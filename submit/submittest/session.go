package submittest

import (
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"io"
	"slices"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// backend gives each SMTP session its listener and connection record.
type backend struct{ l *listener }

func (b backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	nc := c.Conn()
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	t, ok := nc.(*tapConn)
	if !ok {
		return nil, errors.New("submittest: connection not tracked")
	}
	_, isTLS := c.TLSConnectionState()
	s := &session{l: b.l, c: c, t: t, tls: isTLS}
	s.command("EHLO " + c.Hostname())
	return s, nil
}

// session is one SMTP session; go-smtp starts a new one after STARTTLS.
type session struct {
	l   *listener
	c   *smtp.Conn
	t   *tapConn
	tls bool

	user     string
	from     string
	opts     *smtp.MailOptions
	to       []string
	rcptOpts []*smtp.RcptOptions
}

var _ smtp.AuthSession = (*session)(nil)

// command records a command rebuilt from the session, but only once the
// wire is ciphertext: in clear the tap has the verbatim line already.
func (s *session) command(line string) {
	if !s.t.clear.Load() {
		s.l.srv.recordCommand(s.t.rec, line)
	}
}

func (s *session) AuthMechanisms() []string {
	if s.tls && s.l.opts.NoAuthAfterTLS {
		return nil
	}
	return s.l.opts.authMechanisms()
}

func (s *session) Auth(mech string) (sasl.Server, error) {
	s.command("AUTH " + mech)
	srv := s.l.srv
	srv.mu.Lock()
	s.t.rec.AuthAttempts++
	s.t.rec.AuthMechanism = mech
	srv.mu.Unlock()

	if !slices.Contains(s.AuthMechanisms(), mech) {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	accept := func(username string) {
		if s.l.opts.AuthReply != "" {
			return // the forced reply decides
		}
		s.user = username
		srv.mu.Lock()
		s.t.rec.AuthOK = true
		srv.mu.Unlock()
	}
	check := func(username, password string) error {
		want, ok := s.l.opts.Accounts[username]
		if !ok || want != password {
			// Returned as is, so go-smtp answers 535 5.7.8.
			return smtp.ErrAuthFailed
		}
		accept(username)
		return nil
	}
	var server sasl.Server
	switch mech {
	case sasl.Plain:
		server = sasl.NewPlainServer(func(identity, username, password string) error {
			if identity != "" && identity != username {
				return smtp.ErrAuthFailed
			}
			return check(username, password)
		})
	case sasl.Login:
		if s.l.opts.LoginPromptsClear {
			server = &clearLoginServer{c: s.c, prompts: s.l.opts.LoginPrompts, check: check}
		} else {
			server = &loginServer{prompts: s.l.opts.LoginPrompts, check: check}
		}
	default:
		server = s.l.opts.extraAuth(mech, s.l.opts.Hostname, accept)
	}
	if server == nil {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	if s.l.opts.AuthReply != "" {
		server = &forcedReply{Server: server, reply: parseReply(s.l.opts.AuthReply, 454, smtp.NoEnhancedCode)}
	}
	return server, nil
}

func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	s.command("MAIL FROM:<" + from + ">")
	if s.l.faults.has(Reply421MidSession) {
		// Written here rather than returned so the connection can close
		// right after it, as a server going down does.
		io.WriteString(s.c.Conn(), "421 4.3.2 Service shutting down\r\n")
		s.t.Close()
		return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "Service shutting down"}
	}
	if err := s.perConnLimit(); err != nil {
		return err
	}
	if every := s.l.opts.FailEvery; every > 0 && s.l.srv.mails.Add(1)%int64(every) == 0 {
		return parseReply(s.l.opts.FailReply, 451, smtp.EnhancedCode{4, 3, 0})
	}
	s.from = from
	o := *opts
	s.opts = &o
	return nil
}

func (s *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	s.command("RCPT TO:<" + to + ">")
	if err := s.l.opts.rejection(to); err != nil {
		return err
	}
	s.to = append(s.to, to)
	s.rcptOpts = append(s.rcptOpts, opts)
	return nil
}

func (s *session) Data(r io.Reader) error {
	s.command(dataVerb(r))
	h := sha256.New()
	var b []byte
	var n int64
	var err error
	if s.l.opts.DiscardData {
		n, err = io.Copy(h, r)
	} else {
		b, err = io.ReadAll(io.TeeReader(r, h))
		n = int64(len(b))
	}
	if err != nil {
		return err // ErrDataTooLarge is an *smtp.SMTPError: 552
	}
	var sum [32]byte
	h.Sum(sum[:0])
	id := s.l.srv.addMessage(Message{
		Addr:        s.l.addr,
		From:        s.from,
		To:          s.to,
		Data:        b,
		Size:        n,
		SHA256:      sum,
		AuthUser:    s.user,
		TLS:         s.tls,
		MailOptions: s.opts,
		RcptOptions: s.rcptOpts,
	}, s.t.rec)
	if s.l.faults.has(DropAfterDot) {
		s.t.Close()
	}
	return queuedReply(id)
}

func (s *session) Reset() {
	s.from, s.opts, s.to, s.rcptOpts = "", nil, nil, nil
}

func (s *session) Logout() error { return nil }

// loginServer is the server side of the LOGIN mechanism, which go-sasl
// lacks: two prompts, then the password is checked.
type loginServer struct {
	prompts  [2]string
	check    func(username, password string) error
	step     int
	username string
}

func (l *loginServer) Next(response []byte) (challenge []byte, done bool, err error) {
	switch l.step {
	case 0:
		if len(response) > 0 { // AUTH LOGIN with the username as initial response
			l.username, l.step = string(response), 2
			return []byte(l.prompts[1]), false, nil
		}
		l.step = 1
		return []byte(l.prompts[0]), false, nil
	case 1:
		l.username, l.step = string(response), 2
		return []byte(l.prompts[1]), false, nil
	case 2:
		l.step = 3
		return nil, true, l.check(l.username, string(response))
	}
	return nil, true, errors.New("submittest: unexpected LOGIN response")
}

// dataVerb names the command that carried the message r reads. go-smtp
// (v0.25) hands a session the same Data call for both, but feeds BDAT's
// chunks through an io.Pipe; TestCommandsNameBDATAndDATA notices if a
// go-smtp upgrade changes that.
func dataVerb(r io.Reader) string {
	if _, ok := r.(*io.PipeReader); ok {
		return "BDAT"
	}
	return "DATA"
}
