package submit

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/portwise/portwise/internal/session"
	"github.com/portwise/portwise/internal/wire"
	"github.com/portwise/portwise/tlsmode"
)

// attemptConfig is what one attempt was opened with.
type attemptConfig struct {
	tls      *tls.Config
	deadline time.Time
}

// open runs one attempt up to a secure session with its post-TLS EHLO read.
// The attempt's budget (Timeout) starts at start and also covers the AUTH
// that may follow: the connection's deadline stays set when open returns.
func (d *Dialer) open(ctx context.Context, host string, c tlsmode.Candidate, start time.Time) (*session.Session, *attemptConfig, error) {
	timeout := d.timeout()
	if c.Mode == tlsmode.Plaintext && d.Auth != nil {
		err := fmt.Errorf("%w: port %d is configured as plaintext, and credentials never travel in clear; use tlsmode.StartTLS or tlsmode.Implicit", ErrPlaintextAuth, c.Port)
		d.log(ctx, c, host, "auth", 0, err)
		return nil, nil, &StepError{Port: c.Port, Step: "auth", Err: err}
	}
	if c.Mode != tlsmode.StartTLS && c.Mode != tlsmode.Implicit && c.Mode != tlsmode.Plaintext {
		return nil, nil, &StepError{Port: c.Port, Step: "connect", Err: fmt.Errorf("invalid mode %v in candidate", c.Mode)}
	}
	cfg := &attemptConfig{tls: d.tlsConfig(host), deadline: start.Add(timeout)}
	actx, cancel := context.WithDeadline(ctx, cfg.deadline)
	defer cancel()

	var tr *wire.Transcript
	if d.Transcript != nil {
		tr = wire.NewTranscript(d.Transcript, strconv.Itoa(c.Port)+" ", &d.trMu)
	}
	trace := ContextTrace(ctx)
	s, err := session.Open(actx, session.Config{
		Host:       host,
		Candidate:  c,
		TLSConfig:  cfg.tls,
		LocalName:  d.localName(),
		NetDialer:  trace.dialer(d.netDialer(), c),
		Transcript: tr,
		Step: func(step string, dur time.Duration, err error) {
			d.log(ctx, c, host, step, dur, err)
			if err == nil && (step == "starttls" || step == "connect" && c.Mode == tlsmode.Implicit) {
				trace.tlsStart(c)
			}
		},
		TLSDone: func(st tls.ConnectionState, err error) { trace.tlsDone(c, st, err) },
	})
	if err != nil {
		return nil, nil, d.explain(ctx, c, cfg, err, time.Since(start))
	}
	if c.Mode != tlsmode.Plaintext {
		if st, ok := s.Conn.TLS(); !ok || !verified(st, cfg.tls) {
			s.Quit(100 * time.Millisecond)
			err := fmt.Errorf("%w: TLSConfig.InsecureSkipVerify is set without a VerifyConnection callback, so the server is unauthenticated; add its CA to TLSConfig.RootCAs instead", ErrCertificate)
			return nil, nil, &StepError{Port: c.Port, Step: "tls", Err: err, Elapsed: time.Since(start)}
		}
	}
	return s, cfg, nil
}

// explain turns a session error into a StepError that names the step, wraps
// the right sentinel, and says what to do.
func (d *Dialer) explain(ctx context.Context, c tlsmode.Candidate, cfg *attemptConfig, err error, elapsed time.Duration) error {
	step := "connect"
	var se *session.Error
	if errors.As(err, &se) {
		step, err = se.Step, se.Err
	}
	ctxErr := ctx.Err()
	if dl, ok := ctx.Deadline(); ok && ctxErr == nil && wire.IsTimeout(err) && !time.Now().Before(dl) {
		// The socket's deadline was the context's: the read can fail an
		// instant before the context's own timer marks it done.
		ctxErr = context.DeadlineExceeded
	}
	if ctxErr != nil && !errors.Is(err, ctxErr) {
		err = fmt.Errorf("%w: %w", ctxErr, err)
	}
	var stripped *session.StrippedError
	switch {
	case errors.As(err, &stripped):
		err = fmt.Errorf("%w: %s", ErrSTARTTLSStripped, stripped.Reason)
		ContextTrace(ctx).stripped(c, err)
	case errors.Is(err, session.ErrRejected):
		err = fmt.Errorf("%w: %v", ErrSTARTTLSStripped, err)
		ContextTrace(ctx).stripped(c, err)
	case errors.Is(err, wire.ErrInjection):
		err = fmt.Errorf("%w: %v — a man in the middle may be trying to inject SMTP replies; portwise dropped the connection", ErrResponseInjection, err)
	case step == "tls":
		err = tlsErr(c.Port, c.Mode, cfg.tls.ServerName, err)
	}
	return stepErr(c.Port, step, err, elapsed)
}

// authenticate runs AUTH on a ready session. end reports a failure that must
// end the whole Dial: the server rejected the credential, which must not be
// replayed on another port.
func (d *Dialer) authenticate(ctx context.Context, r attemptResult) (res authResult) {
	res.r = r
	s, c := r.s, r.s.Candidate
	t0 := time.Now()
	trace, tried := ContextTrace(ctx), ""
	defer func() {
		d.log(ctx, c, s.Host, "auth", time.Since(t0), res.err)
		if res.err != nil {
			var se *StepError
			if !errors.As(res.err, &se) {
				res.err = stepErr(c.Port, "auth", res.err, time.Since(t0))
			}
		}
		trace.authDone(c, tried, res.err)
	}()
	st, ok := s.Conn.TLS()
	if !ok || !verified(st, r.cfg.tls) {
		// Checked from the real connection, not from the mode: whatever the
		// server advertised, credentials need verified TLS.
		res.err = fmt.Errorf("%w: the connection on port %d has no verified TLS", ErrPlaintextAuth, c.Port)
		return res
	}
	info := &AuthInfo{Host: s.Host, Mechanisms: s.Caps.AuthMechs(), TLS: &st}
	trace.authStart(c, info.Mechanisms)
	mech, err := d.Auth.Start(ctx, info)
	if err != nil {
		res.err = err
		return res
	}
	stop := context.AfterFunc(ctx, func() { s.Conn.Close() })
	defer stop()
	ar, err := s.Conn.Auth(mech)
	tried = ar.Mechanism
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w: %w", ctx.Err(), err)
		}
		res.err = err
		// The credential may have reached the server, which then broke
		// the exchange (closed, timed out, broke the grammar, or sent a
		// challenge the mechanism cannot answer): its fate is unknown, so
		// it is not sent again on another port.
		res.end = ar.Sent
		return res
	}
	if ar.Final.Code == 235 {
		res.mech = ar.Mechanism
		return res
	}
	smtpErr := ar.Final.Err()
	if ex, ok := mech.(failureExplainer); ok {
		res.err = ex.explainFailure(smtpErr, ar.LastChallenge)
	} else {
		res.err = authReplyErr(ar.Mechanism, smtpErr)
	}
	// Only an explicit temporary failure (4xx) lets the next session try
	// the credential again; a 5xx, or a reply AUTH cannot end with (2xx
	// other than 235, 3xx), ends the Dial.
	res.end = smtpErr.Code/100 != 4
	return res
}

// failureExplainer is implemented by mechanisms whose failures carry
// details in the last challenge (XOAUTH2's JSON error).
type failureExplainer interface {
	explainFailure(e *smtp.SMTPError, lastChallenge []byte) error
}

// authReplyErr maps an AUTH failure reply to an error a person understands.
// 5xx wraps ErrAuthFailed; 4xx is temporary.
func authReplyErr(mech string, e *smtp.SMTPError) error {
	var hint string
	switch {
	case e.Code == 535:
		hint = "the server rejected the user name or password; check them — providers such as Gmail and Microsoft 365 need an app password or OAuth2 (XOAUTH2)"
	case e.Code == 534:
		hint = "the server considers " + mech + " too weak for this account; use OAuth2 (XOAUTH2) or the mechanism the provider documents (Gmail also says this when the account needs an app password)"
	case e.Code == 538:
		hint = "the server requires encryption for " + mech + "; portwise authenticates only over verified TLS, so the server wants more than this connection gives (another port or TLS mode), or a stronger mechanism"
	case e.Code == 454 || e.Code/100 == 4:
		return fmt.Errorf("AUTH %s got a temporary failure (%s); try again later: %w", mech, smtpText(e), e)
	case e.Code == 504:
		hint = "the server does not support " + mech
	default:
		hint = "the server refused authentication"
	}
	return fmt.Errorf("%w: AUTH %s: %s (%s): %w", ErrAuthFailed, mech, hint, smtpText(e), e)
}

func smtpText(e *smtp.SMTPError) string {
	s := strconv.Itoa(e.Code)
	if e.EnhancedCode != (smtp.EnhancedCode{}) && e.EnhancedCode != smtp.NoEnhancedCode {
		s += fmt.Sprintf(" %d.%d.%d", e.EnhancedCode[0], e.EnhancedCode[1], e.EnhancedCode[2])
	}
	if e.Message != "" {
		s += " " + wire.Clip(e.Message)
	}
	return s
}
