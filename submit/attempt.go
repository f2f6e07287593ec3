package submit

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portwise/portwise/internal/diag"
	"github.com/portwise/portwise/internal/plan"
	"github.com/portwise/portwise/internal/session"
	"github.com/portwise/portwise/internal/wire"
	"github.com/portwise/portwise/tlsmode"
)

// attemptIDs gives out Attempt.IDs: unique in the process, so that a
// tracer shared by several Dialers can tell their connections apart. It
// is a counter and nothing else.
var attemptIDs atomic.Uint64

// attempt is one target of a Dial: one connection through connect,
// banner, EHLO, the STARTTLS guard, TLS and EHLO again (session.Open), and
// then, on the session the race hands to the Dial, AUTH.
type attempt struct {
	id     uint64 // Attempt.ID
	d      *Dialer
	race   context.Context // cancelled with a cause when the race ends
	caller context.Context // the Dial's context
	t      plan.Target
	start  time.Time
	cfg    *tls.Config
	early  wire.Caps // a PIPECONNECT server's EHLO of an earlier session: pipeline early
	trace  *Trace
	tr     *wire.Transcript // nil without Dialer.Transcript

	mu  sync.Mutex
	ctx context.Context // the attempt's: the race's, with the attempt's deadline
}

func (d *Dialer) newAttempt(race, caller context.Context, t plan.Target, open openConfig, start time.Time, tr *Trace) *attempt {
	a := &attempt{id: attemptIDs.Add(1), d: d, race: race, caller: caller, t: t, cfg: open.tls, early: open.early, start: start, trace: tr}
	if d.Transcript != nil {
		a.tr = wire.NewTranscript(d.Transcript, strconv.Itoa(t.Candidate.Port)+" ", &d.trMu)
	}
	return a
}

// open runs the attempt up to a secure session with its post-TLS EHLO
// read. The attempt's budget (Timeout) starts at a.start and also covers
// the AUTH that may follow: the socket's deadline stays set.
func (a *attempt) open() (*session.Session, error) {
	c := a.t.Candidate
	switch {
	case c.Mode == tlsmode.Plaintext && a.d.Auth != nil:
		return nil, a.explain("auth", diag.Configf("port %d is configured as plaintext, and credentials never travel in clear: %w", c.Port, ErrPlaintextAuth))
	case c.Mode != tlsmode.StartTLS && c.Mode != tlsmode.Implicit && c.Mode != tlsmode.Plaintext:
		return nil, a.explain("connect", diag.Configf("invalid mode %v in candidate %v", c.Mode, c))
	}
	ctx, cancelDeadline := context.WithDeadlineCause(a.race, a.start.Add(a.d.timeout()), diag.ErrTimeout)
	a.mu.Lock()
	a.ctx = ctx
	a.mu.Unlock()
	defer func() {
		// From here on the session (if any) belongs to the Dial, and the
		// attempt's context says nothing about its failures.
		a.mu.Lock()
		a.ctx = nil
		a.mu.Unlock()
		cancelDeadline()
	}()

	// A port stated as STARTTLS that stays silent may speak implicit TLS:
	// the session says so instead of waiting out the whole Timeout. The
	// mode is never switched; the attempt fails, naming the mode the port
	// speaks.
	var silence time.Duration
	if c.Mode == tlsmode.StartTLS && !a.t.Detect {
		silence = session.SilenceWait(a.d.timeout())
	}
	step := ""
	s, err := session.Open(ctx, session.Config{
		Host:       a.t.Host,
		Candidate:  c,
		TLSConfig:  a.cfg,
		Early:      a.early,
		Silence:    silence,
		LocalName:  a.d.localName(),
		Dial:       a.trace.dialer(a.d.netDialer(), a.info(nil)).DialContext,
		Transcript: a.tr,
		Step: func(name string, dur time.Duration, err error) {
			step = name
			a.d.log(a.caller, c, a.t.Host, name, dur, err)
			if err == nil && (name == "starttls" || name == "connect" && c.Mode == tlsmode.Implicit) {
				a.trace.tlsStart(a.info(nil))
			}
		},
		TLSDone: func(st tls.ConnectionState, err error) {
			info := a.info(nil)
			info.TLS, info.Err = &st, err
			a.trace.tlsDone(info)
		},
	})
	if err != nil {
		return nil, a.sessionErr(step, err)
	}
	if c.Mode != tlsmode.Plaintext {
		if st, ok := s.Conn.TLS(); !ok || !verified(st, a.cfg) {
			s.Quit(quitWait)
			return nil, a.explain("tls", diag.Configf("%w: TLSConfig.InsecureSkipVerify is set without a VerifyConnection callback, so the server is unauthenticated", ErrCertificate))
		}
	}
	return s, nil
}

// sessionErr is the attempt's StepError for a failure of its session (in
// Open, or in Greet after early pipelining); step is the last step begun.
func (a *attempt) sessionErr(step string, err error) *StepError {
	var se *session.Error
	if errors.As(err, &se) {
		step, err = se.Step, se.Err
	}
	var speaks *session.SpeaksTLSError
	if errors.As(err, &speaks) && a.race.Err() == nil && ctxErr(a.caller) == nil {
		err = &diag.WrongModeError{Port: a.t.Candidate.Port, Stated: tlsmode.StartTLS, Speaks: tlsmode.Implicit, Seen: speaks.Seen}
	}
	serr := a.explain(step, err)
	if errors.Is(serr, ErrSTARTTLSStripped) {
		a.trace.stripped(a.info(serr))
	}
	return serr
}

// info is the attempt as Trace hooks see it.
func (a *attempt) info(err error) Attempt {
	return Attempt{ID: a.id, Host: a.t.Host, Candidate: a.t.Candidate, Addr: net.JoinHostPort(a.t.Host, strconv.Itoa(a.t.Candidate.Port)),
		Elapsed: time.Since(a.start), Err: err}
}

// explain turns the failure of step into the attempt's StepError. Whose
// failure it was is decided here, once: the caller's context, the race
// (another port won, the Dial ended), the attempt's own Timeout, or else
// the step's own error (a wrong mode the session found among them). err nil
// means the attempt was stopped with a secure session in hand.
func (a *attempt) explain(step string, err error) *StepError {
	a.mu.Lock()
	ctx := a.ctx
	a.mu.Unlock()
	switch {
	case ctxErr(a.caller) != nil:
		err = ctxErr(a.caller)
	case a.race.Err() != nil:
		err = context.Cause(a.race)
	case ctx != nil && ctx.Err() != nil:
		err = context.Cause(ctx)
	case err == nil:
		err = diag.ErrDialEnded
	case diag.IsTimeout(err) && !errors.Is(err, diag.ErrTimeout):
		// The socket's deadline is the attempt's budget: a timeout of
		// the attempt, never the caller's context.DeadlineExceeded.
		err = diag.ErrTimeout
	}
	se := newStepError(step, a.t.Host, a.t.Candidate, time.Since(a.start), err)
	if step != "" {
		a.d.log(a.caller, a.t.Candidate, a.t.Host, "failed", se.Elapsed, se)
	}
	return se
}

// ctxErr is ctx.Err(), and context.DeadlineExceeded from the instant ctx's
// deadline passes: a socket whose deadline is the context's can fail a
// moment before the context's own timer marks it done, and the error must
// not depend on which came first.
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

// verified reports whether st is TLS whose peer was verified: by the
// standard chain verification, or by a callback of the caller's own.
func verified(st tls.ConnectionState, cfg *tls.Config) bool {
	if !st.HandshakeComplete {
		return false
	}
	if len(st.VerifiedChains) > 0 {
		// Also true of a resumed session: crypto/tls resumes only sessions
		// whose chains it verified, and restores those chains.
		return true
	}
	return cfg.InsecureSkipVerify && (cfg.VerifyConnection != nil || cfg.VerifyPeerCertificate != nil)
}
