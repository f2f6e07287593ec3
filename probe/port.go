package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portwise/portwise/internal/diag"
	"github.com/portwise/portwise/internal/session"
	"github.com/portwise/portwise/internal/untrusted"
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
	// for a TLS ClientHello: the session checks, as submit's Dialer does,
	// after the same wait (session.SilenceWait).
	var silence time.Duration
	if c.Mode == tlsmode.StartTLS {
		silence = session.SilenceWait(p.timeout)
	}
	s, err := p.open(ctx, r, "probe", c, p.tlsConfig(), start.Add(p.timeout), silence)
	r.ConnectTime = s.ConnectTime
	if err != nil {
		step, cause := splitErr(err)
		switch {
		case step == "connect":
			p.unreachable(r, cause, time.Since(start))
			return
		case c.Mode == tlsmode.StartTLS && step == "banner" && (speaksTLS(cause) || diag.IsTimeout(cause) || errors.Is(cause, wire.ErrProtocol)):
			alt := tlsmode.Candidate{Port: c.Port, Mode: tlsmode.Implicit}
			s2, err2 := p.open(ctx, r, "other-mode", alt, p.tlsConfig(), start.Add(p.timeout), 0)
			if s2.TLS != nil {
				r.Mode = alt.Mode
				p.addf(r, SeverityWarning, CodeWrongTLSMode, "port %d expects implicit TLS (it answered a TLS handshake and sent no greeting in clear), but it is configured for STARTTLS; use -port %v", c.Port, alt)
				s, err = s2, err2
			} else if diag.IsTimeout(cause) {
				p.silent(r)
				return
			}
		case c.Mode == tlsmode.Implicit && step == "tls" && diag.ClearGreeting(cause) != "":
			p.addf(r, SeverityWarning, CodeWrongTLSMode, "port %d answered in clear (\"%s\") instead of starting TLS: it speaks STARTTLS, but it is configured for implicit TLS; use -port %d/starttls", c.Port, untrusted.Name(diag.ClearGreeting(cause)), c.Port)
			alt := tlsmode.Candidate{Port: c.Port, Mode: tlsmode.StartTLS}
			s2, err2 := p.open(ctx, r, "other-mode", alt, p.tlsConfig(), time.Now().Add(p.timeout), 0)
			if s2.Banner != "" {
				r.Mode = alt.Mode
				s, err = s2, err2
			}
		case c.Mode == tlsmode.Implicit && step == "tls" && diag.IsTimeout(cause):
			p.silent(r)
			return
		}
	}

	p.observe(r, s)
	if mechs := s.PreTLSCaps.AuthMechs(); len(mechs) > 0 {
		p.addf(r, SeverityCritical, CodeAuthBeforeTLS, "port %d advertises AUTH %s before TLS: a client that authenticates now sends its password in clear (portwise never does); offer AUTH only after STARTTLS (Postfix: smtpd_tls_auth_only = yes)", r.Port, untrusted.Text(strings.Join(mechs, " "), untrusted.MaxText))
	}
	if err != nil {
		p.failed(ctx, r, err, time.Since(start))
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
	p.checkAuthOffered(r)
	p.legacy(ctx, r)
}

// usableMechs are the SASL mechanisms portwise can authenticate with.
var usableMechs = []string{"PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER", "CRAM-MD5"}

// checkAuthOffered notes a submission port whose post-TLS EHLO offers no
// AUTH, or only mechanisms portwise cannot use (Exchange's NTLM, say).
// Port 25 relays mail between servers and needs no AUTH.
func (p *prober) checkAuthOffered(r *PortReport) {
	if r.Port == 25 {
		return
	}
	if len(r.AuthMechs) == 0 {
		p.addf(r, SeverityWarning, CodeAuthMissing, "port %d offers no AUTH after TLS: the server accepts mail here only from addresses it trusts (an IP-authorised relay) or is not configured for submission; a client with credentials cannot log in", r.Port)
		return
	}
	for _, m := range r.AuthMechs {
		if slices.Contains(usableMechs, m) {
			return
		}
	}
	p.addf(r, SeverityWarning, CodeAuthUnusable, "port %d offers only AUTH %s after TLS, which portwise does not speak (it speaks %s); enable PLAIN or LOGIN on the server (Exchange: Basic authentication on the receive connector), or XOAUTH2", r.Port, untrusted.Text(strings.Join(r.AuthMechs, " "), untrusted.MaxText), strings.Join(usableMechs, ", "))
}

// open runs the session steps for c until deadline, recording each step
// in r. greet, when positive, bounds the wait for the first byte.
func (p *prober) open(ctx context.Context, r *PortReport, attempt string, c tlsmode.Candidate, cfg *tls.Config, deadline time.Time, silence time.Duration) (*session.Session, error) {
	actx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	s, err := session.Open(actx, session.Config{
		Host:      p.host,
		Candidate: c,
		TLSConfig: cfg,
		LocalName: p.localName,
		Dial:      p.dialer.DialContext,
		Silence:   silence,
		Step: func(step string, dur time.Duration, err error) {
			st := Step{Attempt: attempt, Name: step, Start: time.Since(p.start) - dur, Elapsed: dur}
			if err != nil {
				st.Error = untrusted.Reply(err.Error())
			}
			r.Steps = append(r.Steps, st)
		},
	})
	var se *session.Error
	if errors.As(err, &se) && actx.Err() != nil && ctx.Err() == nil && !speaksTLS(se.Err) {
		// The connection's budget ran out (its socket closed by the
		// deadline): a timeout, whatever the read saw.
		se.Err = diag.ErrTimeout
	}
	return s, err
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

// observe copies what the session saw into r. The values are the
// server's, raw: WriteText makes them safe to print.
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
func (p *prober) unreachable(r *PortReport, err error, elapsed time.Duration) {
	d := diag.Classify("connect", tlsmode.Candidate{Port: r.Port, Mode: r.Mode}, p.host, elapsed, err)
	switch d.Kind {
	case diag.KindDNS:
		r.Reachability = ReachDNSError
		p.finding(r, SeverityCritical, CodeDNSError, d)
	case diag.KindBlocked:
		r.Reachability = ReachTimeout
		p.addf(r, SeverityWarning, CodePortBlocked, "port %d: no TCP connection within %s: a firewall drops the packets; cloud providers (AWS, Google Cloud, Azure, ...) block outgoing port 25 by default, and some networks block 587 or 465", r.Port, p.timeout)
	case diag.KindRefused:
		r.Reachability = ReachRefused
		p.addf(r, SeverityInfo, CodePortRefused, "port %d: connection refused: nothing listens there", r.Port)
	default:
		r.Reachability = ReachUnreachable
		p.addf(r, SeverityWarning, CodePortBlocked, "port %d: %s: the network or a firewall rejects the connection", r.Port, d.Detail)
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

// failed describes a session that did not become secure, in the words of
// the shared diagnosis (internal/diag), worded for a person at the command
// line.
func (p *prober) failed(ctx context.Context, r *PortReport, err error, elapsed time.Duration) {
	step, cause := splitErr(err)
	d := diag.Classify(step, tlsmode.Candidate{Port: r.Port, Mode: r.Mode}, p.host, elapsed, cause)
	finding := d.Kind
	if (finding == diag.KindReset || finding == diag.KindClosed) && d.Step == "tls" {
		// The handshake did not complete, if for the network's reason:
		// still the finding of a failed handshake.
		finding = diag.KindTLSFailed
	}
	switch finding {
	case diag.KindMasked:
		p.addf(r, SeverityCritical, CodeSTARTTLSMasked, "port %d: %s; a firewall's SMTP inspection (such as Cisco \"inspect esmtp\") is masking it, so TLS cannot start; disable that inspection, or use port 465 (implicit TLS cannot be rewritten)", r.Port, d.Detail)
	case diag.KindStripped:
		var stripped *session.StrippedError
		if errors.As(cause, &stripped) && stripped.EHLO == nil {
			offered := untrusted.Text(strings.Join(r.EHLO, ", "), untrusted.MaxText)
			if offered == "" {
				offered = "nothing"
			}
			p.addf(r, SeverityCritical, CodeSTARTTLSMissing, "port %d does not offer STARTTLS (EHLO offered: %s): mail and passwords would travel in clear; either a middlebox strips it or the server has no TLS on this port — do not use it", r.Port, offered)
		} else {
			p.finding(r, SeverityCritical, CodeSTARTTLSMissing, d)
		}
	case diag.KindInjection:
		p.finding(r, SeverityCritical, CodeSTARTTLSInjection, d)
	case diag.KindTLSVersion:
		if v := p.legacy(ctx, r); v == "" {
			p.finding(r, SeverityCritical, CodeTLSFailed, d)
		} // else legacy reported it, as critical: nothing newer works
	case diag.KindTLSAlert, diag.KindTLSFailed, diag.KindCertUnverified:
		p.finding(r, SeverityCritical, CodeTLSFailed, d)
	case diag.KindRefusedTemporary:
		p.finding(r, SeverityWarning, CodeProtocol, d)
	default:
		p.finding(r, SeverityCritical, CodeProtocol, d)
	}
	r.Error = r.Findings[len(r.Findings)-1].Message
}

// finding adds the diagnosis as one finding: "port N: step: what was seen
// — what to do", on one line.
func (p *prober) finding(r *PortReport, severity, code string, d diag.Diagnosis) {
	msg := d.Sentence(diag.CLI, portWhere(r.Port))
	r.Findings = append(r.Findings, Finding{Severity: severity, Code: code, Message: msg})
}

// portWhere names a port in a finding: "port 587".
func portWhere(port int) string { return "port " + strconv.Itoa(port) }

// legacy finds the lowest legacy TLS version the port accepts: a
// handshake limited to TLS 1.0, then one limited to TLS 1.1. It returns
// that version, or "". When TLS 1.2 worked the finding is a warning; when
// it did not, legacy TLS is all the port speaks.
func (p *prober) legacy(ctx context.Context, r *PortReport) string {
	var version string
	for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11} {
		if version = p.legacyHandshake(ctx, r, v); version != "" {
			break
		}
	}
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

// legacyHandshake tries a handshake limited to version v and returns the
// version negotiated, or "".
func (p *prober) legacyHandshake(ctx context.Context, r *PortReport, v uint16) string {
	cfg := p.tlsConfig()
	cfg.MinVersion, cfg.MaxVersion = v, v
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
		Host: p.host, Candidate: c, TLSConfig: cfg, LocalName: p.localName, Dial: p.dialer.DialContext,
		TLSDone: func(st tls.ConnectionState, err error) {
			if err == nil && st.HandshakeComplete {
				version = tls.VersionName(st.Version)
			}
		},
	})
	if err == nil {
		s.Quit(quitWait)
	}
	st := Step{Attempt: "tls-legacy", Name: "tls", Start: t0.Sub(p.start), Elapsed: time.Since(t0)}
	if version == "" {
		st.Error = "no " + tls.VersionName(v) + " handshake"
		if err != nil {
			st.Error += ": " + untrusted.Reply(err.Error())
		}
	}
	r.Steps = append(r.Steps, st)
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

// speaksTLS reports a STARTTLS port the session found speaking implicit
// TLS.
func speaksTLS(err error) bool {
	var st *session.SpeaksTLSError
	return errors.As(err, &st)
}
