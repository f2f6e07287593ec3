package submit

import (
	"context"
	"crypto/tls"
	"iter"
	"time"

	"github.com/portwise/portwise/internal/diag"
	"github.com/portwise/portwise/internal/plan"
	"github.com/portwise/portwise/internal/session"
	"github.com/portwise/portwise/internal/wire"
)

// quitWait bounds the polite QUIT that closes a session nobody needs.
const quitWait = 200 * time.Millisecond

// race runs the targets of one Dial, in the shape of net's dialParallel:
// each target's attempt runs in its own goroutine and sends its outcome on
// a results channel; a timer starts the next target after FallbackDelay,
// or at once (Reset(0)) when one fails; an attempt whose result is no
// longer wanted cleans up after itself. The race is about ports only: it
// yields secure sessions (sessions), and the Dial decides what to do with
// each.
type race struct {
	d       *Dialer
	ctx     context.Context // the race's: cancelled with a cause when it ends
	caller  context.Context // the Dial's
	host    string
	targets []plan.Target
	opens   []openConfig // how to open each target
	trace   *Trace

	attempts  []Attempt // one per target; written by the Dial's goroutine only
	started   []time.Time
	runs      []*attempt // the started targets' attempts
	reported  []bool     // the target's goroutine sent its result
	won       int        // index of the winner, -1 if none
	callerErr error      // the caller's context ended the race
}

// ready is a secure session of target idx, post-TLS EHLO read.
type ready struct {
	idx     int
	attempt *attempt
	session *session.Session
}

// result is what an attempt's goroutine sends.
type result struct {
	idx int
	r   *ready
	err error
}

// openConfig is how a target's session is opened: its TLS configuration,
// and, for a remembered winner that advertised PIPECONNECT, what its EHLO
// offered (see Dialer.DisablePipeConnect).
type openConfig struct {
	tls   *tls.Config
	early wire.Caps
}

func newRace(d *Dialer, ctx context.Context, host string, targets []plan.Target, opens []openConfig) *race {
	r := &race{d: d, caller: ctx, host: host, targets: targets, opens: opens, trace: ContextTrace(ctx), won: -1,
		attempts: make([]Attempt, len(targets)), started: make([]time.Time, len(targets)),
		runs: make([]*attempt, len(targets)), reported: make([]bool, len(targets))}
	for i, t := range targets {
		r.attempts[i] = Attempt{Host: t.Host, Candidate: t.Candidate}
	}
	return r
}

// sessions races the targets and yields each secure session as it
// becomes ready. While the loop over it runs its body, no target starts.
// The race ends when the loop stops (after win: the others lost the race;
// otherwise the Dial ended), when the caller's context ends, or when every
// target failed; then the attempts still running are stopped with that
// cause, and every started attempt's record says how it ended.
func (r *race) sessions() iter.Seq[*ready] {
	return func(yield func(*ready) bool) {
		ctx, stop := context.WithCancelCause(r.caller)
		defer stop(diag.ErrDialEnded) // when every target failed; an earlier stop's cause stands
		r.ctx = ctx
		results := make(chan result)
		returned := make(chan struct{})
		defer close(returned)

		n, next, pending := len(r.targets), 0, 0
		start := func() {
			r.started[next] = time.Now()
			r.runs[next] = r.d.newAttempt(ctx, r.caller, r.targets[next], r.opens[next], r.started[next], r.trace)
			r.attempts[next].ID = r.runs[next].id
			go r.attempt(next, results, returned)
			next++
			pending++
		}
		delay := r.d.fallbackDelay()
		timer := time.NewTimer(max(delay, 0))
		defer timer.Stop()
		if delay < 0 || n < 2 {
			timer.Stop()
		}
		start()
		for pending > 0 || next < n {
			select {
			case <-timer.C:
				if next < n {
					start()
					if next < n && delay >= 0 {
						timer.Reset(delay)
					}
				}
			case res := <-results:
				pending--
				r.reported[res.idx] = true
				if res.err != nil {
					r.fail(res.idx, res.err)
					timer.Reset(0) // no need to wait for a port that failed
					continue
				}
				if !yield(res.r) {
					if r.won >= 0 {
						stop(diag.ErrLostRace)
						r.quietLosers()
					} else {
						r.drain(stop, diag.ErrDialEnded, results, pending)
					}
					return
				}
				timer.Reset(0)
			case <-r.caller.Done():
				r.callerErr = r.caller.Err()
				r.drain(stop, r.callerErr, results, pending)
				return
			}
		}
	}
}

// drain stops the attempts still running and records how each ended, so
// that a failed Dial lists every attempt it started.
func (r *race) drain(stop context.CancelCauseFunc, cause error, results <-chan result, pending int) {
	stop(cause)
	for ; pending > 0; pending-- {
		res := <-results
		if res.r != nil {
			res.r.session.Quit(within(r.caller, quitWait))
			res.err = res.r.attempt.explain("", nil)
		}
		r.fail(res.idx, res.err)
	}
}

// quietLosers ends the transcripts of the attempts still running when the
// Dial is won: they wind down after Dial returns, and must not write into
// the caller's Transcript then. Each says how it ended first.
func (r *race) quietLosers() {
	for i, a := range r.runs {
		if a != nil && !r.reported[i] {
			a.tr.End("stopped: another port won")
		}
	}
}

// attempt runs target i and sends its outcome, unless the race has
// returned: then it closes what it opened and reports itself to the trace.
func (r *race) attempt(i int, results chan<- result, returned <-chan struct{}) {
	a := r.runs[i]
	s, err := a.open()
	var res result
	if err != nil {
		res = result{idx: i, err: err}
	} else {
		res = result{idx: i, r: &ready{idx: i, attempt: a, session: s}}
	}
	select {
	case results <- res:
	case <-returned:
		if s != nil {
			s.Quit(quitWait)
		}
		err := a.explain("", nil)
		r.trace.attemptDone(Attempt{ID: a.id, Host: a.t.Host, Candidate: a.t.Candidate, Elapsed: time.Since(a.start), Err: err})
	}
}

// fail records target i's failure.
func (r *race) fail(i int, err error) {
	a := &r.attempts[i]
	if a.Err != nil {
		return
	}
	a.Err, a.Elapsed = err, time.Since(r.started[i])
	r.trace.attemptDone(*a)
}

// win makes target s's session the Dial's client; the loop over sessions
// must stop after it.
func (r *race) win(s *ready, mech string) *Client {
	a := &r.attempts[s.idx]
	a.Elapsed, a.Mechanism = time.Since(r.started[s.idx]), mech
	r.won = s.idx
	t := r.targets[s.idx]
	r.d.log(r.caller, t.Candidate, t.Host, "result", a.Elapsed, nil)
	r.trace.attemptDone(*a)
	r.trace.winner(*a)
	return newClient(r.d, s, mech)
}

// dialError is the Dial's error once the loop over sessions ended without
// a winner: every attempt started, and the caller's context if it ended.
func (r *race) dialError() *DialError {
	var started []Attempt
	for i, a := range r.attempts {
		if !r.started[i].IsZero() {
			started = append(started, a)
		}
	}
	return &DialError{Host: r.host, Attempts: started, Err: r.callerErr}
}

// within is wait, or less when ctx's deadline comes sooner: the caller's
// context bounds even a polite QUIT.
func within(ctx context.Context, wait time.Duration) time.Duration {
	if ctx.Err() != nil {
		return 0
	}
	if dl, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(dl))
	}
	return max(wait, 0)
}
