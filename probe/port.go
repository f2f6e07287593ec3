package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/portwise/portwise/internal/session"
	"github.com/portwise/portwise/internal/wire"
	"github.com/portwise/portwise/tlsmode"
)

// quitWait bounds the polite QUIT at the end of each probe connection.
const quitWait = 500 * time.Millisecond

// port checks one candidate and returns its report.
func (p *prober) port(ctx context.Context, c tlsmode.Candidate) PortReport {
	start := time.Now()
	r := PortReport{Port: c.Port, Mode: c.Mode, ConfiguredMode: c.Mode, Reachability: ReachOpen}
	p.check(ctx, &r, start)
	r.Elapsed = time.Since(start)
	return r
}

// check runs the probe connection, falls back to the other TLS mode when
// the port shows the symptoms of speaking it, and describes what it saw.
func (p *prober) check(ctx context.Context, r *PortReport, start time.Time) {
	c := tlsmode.Candidate{Port: r.Port, Mode: r.Mode}
	// A STARTTLS port greets at once; one that stays silent may be waiting
	// for a TLS ClientHello, which is worth trying within the same budget.
	var greet time.Duration
	if c.Mode == tlsmode.StartTLS {
		greet = p.timeout / 2
	}
	s, err := p.open(ctx, r, "probe", c, p.tlsConfig(), start.Add(p.timeout), greet)
	r.ConnectTime = s.ConnectTime
	if err != nil {
		step, cause := splitErr(err)
		switch {
		case step == "connect":
			p.unreachable(r, cause)
			return
		case c.Mode == tlsmode.StartTLS && step == "banner" && (wire.IsTimeout(cause) || errors.Is(cause, wire.ErrProtocol)):
			alt := tlsmode.Candidate{Port: c.Port, Mode: tlsmode.Implicit}
			s2, err2 := p.open(ctx, r, "other-mode", alt, p.tlsConfig(), start.Add(p.timeout), 0)
			if s2.TLS != nil {
				r.Mode = alt.Mode
				p.addf(r, SeverityWarning, CodeWrongTLSMode, "port %d expects implicit TLS (it answered a TLS handshake and sent no greeting in clear), but it is configured for STARTTLS; configure %v", c.Port, alt)
				s, err = s2, err2
			} else if wire.IsTimeout(cause) {
				p.silent(r)
				return
			}
		case c.Mode == tlsmode.Implicit && step == "tls" && clearGreeting(cause) != "":
			p.addf(r, SeverityWarning, CodeWrongTLSMode, "port %d answered in clear (%q) instead of starting TLS: it speaks STARTTLS, but it is configured for implicit TLS; configure %d/starttls", c.Port, clearGreeting(cause), c.Port)
			alt := tlsmode.Candidate{Port: c.Port, Mode: tlsmode.StartTLS}
			s2, err2 := p.open(ctx, r, "other-mode", alt, p.tlsConfig(), time.Now().Add(p.timeout), 0)
			if s2.Banner != "" {
				r.Mode = alt.Mode
				s, err = s2, err2
			}
		case c.Mode == tlsmode.Implicit && step == "tls" && wire.IsTimeout(cause):
			p.silent(r)
			return
		}
	}

	p.observe(r, s)
	if mechs := s.PreTLSCaps.AuthMechs(); len(mechs) > 0 {
		p.addf(r, SeverityCritical, CodeAuthBeforeTLS, "port %d advertises AUTH %s before TLS: a client that authenticates now sends its password in clear (portwise never does); offer AUTH only after STARTTLS (Postfix: smtpd_tls_auth_only = yes)", r.Port, strings.Join(mechs, " "))
	}
	if err != nil {
		p.failed(ctx, r, err)
		return
	}
	s.Quit(quitWait)
	if s.TLS == nil {
		r.Error = fmt.Sprintf("port %d was probed as plaintext: no TLS, so it cannot carry credentials", r.Port)
		return
	}
	p.checkTLS(r, *s.TLS)
	r.Usable = r.CertVerified
	if !r.Usable {
		r.Error = r.CertError
	}
	p.legacy(ctx, r)
}

// open runs the session steps for c until deadline, recording each step
// in r. greet, when positive, bounds the wait for the first byte.
func (p *prober) open(ctx context.Context, r *PortReport, attempt string, c tlsmode.Candidate, cfg *tls.Config, deadline time.Time, greet time.Duration) (*session.Session, error) {
	actx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	var d session.ContextDialer = p.dialer
	if greet > 0 {
		d = greetDialer{d: p.dialer, wait: greet}
	}
	return session.Open(actx, session.Config{
		Host:      p.host,
		Candidate: c,
		TLSConfig: cfg,
		LocalName: p.localName,
		NetDialer: d,
		Step: func(step string, dur time.Duration, err error) {
			st := Step{Attempt: attempt, Name: step, Elapsed: dur}
			if err != nil {
				st.Error = err.Error()
			}
			r.Steps = append(r.Steps, st)
		},
	})
}

// tlsConfig is the configuration of every probe handshake: the caller's,
// without verification (checkTLS verifies and says why a certificate
// fails), without resumption (each handshake shows the certificate), and
// never below TLS 1.2 (the legacy check is separate).
func (p *prober) tlsConfig() *tls.Config {
	cfg := &tls.Config{}
	if p.o.TLSConfig != nil {
		cfg = p.o.TLSConfig.Clone()
	}
	cfg.ServerName = p.serverName
	cfg.InsecureSkipVerify = true
	cfg.VerifyConnection, cfg.VerifyPeerCertificate = nil, nil
	cfg.ClientSessionCache = nil
	if cfg.MinVersion < tls.VersionTLS12 {
		cfg.MinVersion = tls.VersionTLS12
	}
	if cfg.MaxVersion != 0 && cfg.MaxVersion < tls.VersionTLS12 {
		cfg.MaxVersion = 0
	}
	return cfg
}

// observe copies what the session saw into r.
func (p *prober) observe(r *PortReport, s *session.Session) {
	r.Banner = s.Banner
	r.EHLO = s.PreTLSCaps.List()
	r.AuthMechsBeforeTLS = s.PreTLSCaps.AuthMechs()
	caps := s.PreTLSCaps
	if s.TLS != nil {
		caps = s.Caps
		r.EHLOAfterTLS = s.Caps.List()
		r.AuthMechs = s.Caps.AuthMechs()
	} else if r.Mode == tlsmode.Plaintext {
		caps = s.Caps
	}
	if len(r.EHLO) == 0 {
		r.EHLO = nil
	}
	if len(r.EHLOAfterTLS) == 0 {
		r.EHLOAfterTLS = nil
	}
	r.SizeLimit = 0
	if v, ok := caps["SIZE"]; ok {
		r.SizeLimit, _ = strconv.ParseInt(v, 10, 64)
	}
	r.Pipelining = caps.Has("PIPELINING")
	r.SMTPUTF8 = caps.Has("SMTPUTF8")
	r.Chunking = caps.Has("CHUNKING")
	r.RequireTLS = caps.Has("REQUIRETLS")
	r.DSN = caps.Has("DSN")
}

// unreachable describes a failed TCP connection.
func (p *prober) unreachable(r *PortReport, err error) {
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr):
		r.Reachability = ReachDNSError
		p.addf(r, SeverityCritical, CodeDNSError, "the host name %q does not resolve (%v); check its spelling and your DNS", p.host, dnsErr.Err)
	case wire.IsTimeout(err):
		r.Reachability = ReachTimeout
		p.addf(r, SeverityWarning, CodePortBlocked, "port %d: no TCP connection within %s: a firewall drops the packets; cloud providers (AWS, Google Cloud, Azure, ...) block outgoing port 25 by default, and some networks block 587 or 465", r.Port, p.timeout)
	case errors.Is(err, syscall.ECONNREFUSED):
		r.Reachability = ReachRefused
		p.addf(r, SeverityInfo, CodePortRefused, "port %d: connection refused: nothing listens there", r.Port)
	default:
		r.Reachability = ReachUnreachable
		p.addf(r, SeverityWarning, CodePortBlocked, "port %d: %v: the network or a firewall rejects the connection", r.Port, err)
	}
	r.Error = r.Findings[len(r.Findings)-1].Message
}

// silent describes a port that accepted the connection and then said
// nothing, neither an SMTP greeting nor a TLS handshake.
func (p *prober) silent(r *PortReport) {
	r.Reachability = ReachTimeout
	p.addf(r, SeverityWarning, CodePortBlocked, "port %d accepted the connection but sent nothing within %s, neither an SMTP greeting in clear nor a TLS handshake: something on the path (a firewall, a transparent proxy) swallows the port", r.Port, p.timeout)
	r.Error = r.Findings[len(r.Findings)-1].Message
}

// failed describes a session that did not become secure.
func (p *prober) failed(ctx context.Context, r *PortReport, err error) {
	step, cause := splitErr(err)
	var stripped *session.StrippedError
	switch {
	case errors.As(cause, &stripped) && stripped.Masked != "":
		p.addf(r, SeverityCritical, CodeSTARTTLSMasked, "port %d: the EHLO reply has %q where STARTTLS belongs: a firewall's SMTP inspection (such as Cisco \"inspect esmtp\") is masking it, so TLS cannot start; disable that inspection, or use port 465 (implicit TLS cannot be rewritten)", r.Port, stripped.Masked)
	case errors.As(cause, &stripped) && stripped.EHLO != nil:
		p.addf(r, SeverityCritical, CodeSTARTTLSMissing, "port %d: %s", r.Port, stripped.Reason)
	case errors.As(cause, &stripped):
		offered := strings.Join(r.EHLO, ", ")
		if offered == "" {
			offered = "nothing"
		}
		p.addf(r, SeverityCritical, CodeSTARTTLSMissing, "port %d does not offer STARTTLS (EHLO offered: %s): mail and passwords would travel in clear; either a middlebox strips it or the server has no TLS on this port — do not use it", r.Port, offered)
	case errors.Is(cause, session.ErrRejected):
		p.addf(r, SeverityCritical, CodeSTARTTLSMissing, "port %d advertises STARTTLS but refused it: %v", r.Port, cause)
	case errors.Is(cause, wire.ErrInjection):
		p.addf(r, SeverityCritical, CodeSTARTTLSInjection, "port %d: %v: something on the path injects SMTP replies (CVE-2011-0411 style); do not use this port", r.Port, cause)
	case step == "tls" && versionProblem(cause):
		if v := p.legacy(ctx, r); v != "" {
			// legacy reported the finding, as critical: nothing newer works
		} else {
			p.addf(r, SeverityCritical, CodeTLSFailed, "port %d: the TLS handshake failed: %v; the server offers no TLS version portwise accepts", r.Port, cause)
		}
	case step == "tls":
		p.addf(r, SeverityCritical, CodeTLSFailed, "port %d: the TLS handshake failed: %v", r.Port, cause)
	case wire.IsTimeout(cause):
		p.addf(r, SeverityCritical, CodeProtocol, "port %d: no reply to %s within %s: the server stopped answering", r.Port, step, p.timeout)
	case errors.Is(cause, io.EOF) || errors.Is(cause, syscall.ECONNRESET):
		p.addf(r, SeverityCritical, CodeProtocol, "port %d: the connection was closed during %s (%v): the server or something on the path hung up", r.Port, step, cause)
	default:
		p.addf(r, SeverityCritical, CodeProtocol, "port %d: %s failed: %v", r.Port, step, cause)
	}
	r.Error = r.Findings[len(r.Findings)-1].Message
}

// legacy tries a handshake limited to TLS 1.0 and 1.1. It returns the
// version accepted, or "". When TLS 1.2 worked the finding is a warning;
// when it did not, the legacy version is all the port speaks.
func (p *prober) legacy(ctx context.Context, r *PortReport) string {
	cfg := p.tlsConfig()
	cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	cfg.CipherSuites = nil
	for _, cs := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		cfg.CipherSuites = append(cfg.CipherSuites, cs.ID)
	}
	c := tlsmode.Candidate{Port: r.Port, Mode: r.Mode}
	var version string
	actx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	t0 := time.Now()
	s, err := session.Open(actx, session.Config{
		Host: p.host, Candidate: c, TLSConfig: cfg, LocalName: p.localName, NetDialer: p.dialer,
		TLSDone: func(st tls.ConnectionState, err error) {
			if err == nil && st.HandshakeComplete {
				version = tls.VersionName(st.Version)
			}
		},
	})
	if err == nil {
		s.Quit(quitWait)
	}
	st := Step{Attempt: "tls-legacy", Name: "tls", Elapsed: time.Since(t0)}
	if version == "" {
		st.Error = "no TLS 1.0/1.1 handshake"
		if err != nil {
			st.Error += ": " + err.Error()
		}
	}
	r.Steps = append(r.Steps, st)
	if version == "" {
		return ""
	}
	r.TLSLegacy = version
	if r.TLSVersion != "" {
		p.addf(r, SeverityWarning, CodeTLSLegacy, "port %d also accepts %s, which is deprecated (RFC 8996); disable TLS 1.0 and 1.1 on the server", r.Port, version)
	} else {
		r.TLSVersion = version
		p.addf(r, SeverityCritical, CodeTLSLegacy, "port %d speaks only %s: portwise and current mail clients require TLS 1.2 or later (RFC 8996); the server's TLS configuration must be updated", r.Port, version)
	}
	return version
}

func (p *prober) addf(r *PortReport, severity, code, format string, args ...any) {
	r.Findings = append(r.Findings, Finding{Severity: severity, Code: code, Message: fmt.Sprintf(format, args...)})
}

// splitErr returns the failed step and its cause.
func splitErr(err error) (string, error) {
	var se *session.Error
	if errors.As(err, &se) {
		return se.Step, se.Err
	}
	return "", err
}

// clearGreeting returns the start of an SMTP reply that arrived where a TLS
// record was expected, or "".
func clearGreeting(err error) string {
	var rh tls.RecordHeaderError
	if !errors.As(err, &rh) {
		return ""
	}
	h := rh.RecordHeader[:]
	if h[0] < '1' || h[0] > '5' || h[1] < '0' || h[1] > '9' || h[2] < '0' || h[2] > '9' {
		return ""
	}
	return strings.TrimSpace(string(h))
}

// versionProblem reports a handshake that failed on the protocol version.
func versionProblem(err error) bool {
	var alert tls.AlertError
	if errors.As(err, &alert) && alert == 70 { // protocol_version
		return true
	}
	return strings.Contains(err.Error(), "protocol version")
}

// greetDialer bounds the wait for the first byte a server sends, so a port
// that stays silent in clear can still be tried with implicit TLS.
type greetDialer struct {
	d    session.ContextDialer
	wait time.Duration
}

func (g greetDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := g.d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &greetConn{Conn: c, wait: g.wait}, nil
}

// greetConn shortens the read deadline of the first Read only. It is used
// by one goroutine, as session.Open uses its connection.
type greetConn struct {
	net.Conn
	wait     time.Duration
	deadline time.Time // the read deadline the session set
	read     bool
}

func (c *greetConn) SetDeadline(t time.Time) error {
	c.deadline = t
	return c.Conn.SetDeadline(t)
}

func (c *greetConn) SetReadDeadline(t time.Time) error {
	c.deadline = t
	return c.Conn.SetReadDeadline(t)
}

func (c *greetConn) Read(b []byte) (int, error) {
	if c.read {
		return c.Conn.Read(b)
	}
	c.read = true
	short := time.Now().Add(c.wait)
	if !c.deadline.IsZero() && c.deadline.Before(short) {
		return c.Conn.Read(b)
	}
	c.Conn.SetReadDeadline(short)
	n, err := c.Conn.Read(b)
	c.Conn.SetReadDeadline(c.deadline)
	return n, err
}
