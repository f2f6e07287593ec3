package submit

import (
	"context"
	"sync"
	"time"

	"github.com/portwise/portwise/internal/session"
	"github.com/portwise/portwise/tlsmode"
)

// race runs one Dial: candidates start staggered and race for a secure
// session; AUTH runs on one ready session at a time. It follows the shape
// of net's dialParallel: a plan, a results channel, a timer.
type race struct {
	d     *Dialer
	host  string
	cands []tlsmode.Candidate
	hosts []string // per candidate (discovery, DialServers); nil: host for all
	trace *Trace

	key       string // the Winners key
	preferred bool   // cands[0] is the remembered winner
	won       int    // index of the winner; -1: none
	note      error  // a discovery problem, reported if the Dial fails

	attempts []Attempt
	started  []time.Time
	next     int
	pending  int
	wg       sync.WaitGroup
	results  chan attemptResult
}

type attemptResult struct {
	idx int
	s   *session.Session
	cfg *attemptConfig
	err error
}

type authResult struct {
	r    attemptResult
	mech string
	err  error
	end  bool // the error ends the whole Dial (a rejected credential)
}

func (r *race) run(parent context.Context) (*Client, error) {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	r.trace = ContextTrace(parent)
	n := len(r.cands)
	r.attempts = make([]Attempt, n)
	r.started = make([]time.Time, n)
	r.results = make(chan attemptResult, n)
	r.won = -1
	for i, c := range r.cands {
		r.attempts[i].Candidate = c
		if h := r.hostAt(i); h != r.host {
			r.attempts[i].Host = h
		}
	}

	delay := r.d.fallbackDelay()
	var timer *time.Timer
	var timerC <-chan time.Time
	armTimer := func() {
		if delay < 0 || r.next >= n {
			timerC = nil
			return
		}
		if timer == nil {
			timer = time.NewTimer(delay)
		} else {
			timer.Reset(delay)
		}
		timerC = timer.C
	}
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()

	var (
		ready    []attemptResult
		authing  bool
		authDone = make(chan authResult, 1)
		winner   *Client
		endErr   error
	)
	startNext := func() {
		r.start(ctx, r.next)
		r.next++
		armTimer()
	}
	startNext()

	for winner == nil && endErr == nil {
		if !authing && len(ready) > 0 {
			s := ready[0]
			ready = ready[1:]
			if r.d.Auth == nil {
				winner = r.finish(s, "")
				break
			}
			authing = true
			go func() { authDone <- r.d.authenticate(ctx, s) }()
		}
		if r.pending == 0 && !authing && len(ready) == 0 {
			if r.next >= n {
				break // every candidate failed
			}
			startNext() // every earlier one failed: no need to wait
		}
		select {
		case <-timerC:
			timerC = nil
			if r.next < n && !authing && len(ready) == 0 {
				startNext()
			} else if r.next < n {
				armTimer() // a secure session is being used; keep the rest back
			}
		case res := <-r.results:
			r.pending--
			if res.err != nil {
				r.fail(res.idx, res.err)
				continue
			}
			ready = append(ready, res)
		case a := <-authDone:
			authing = false
			if a.err == nil {
				winner = r.finish(a.r, a.mech)
				continue
			}
			r.fail(a.r.idx, a.err)
			a.r.s.Quit(200 * time.Millisecond)
			if a.end {
				endErr = a.err
			}
		case <-ctx.Done():
			endErr = ctx.Err()
		}
	}

	// Stop the others: cancelling closes sockets still in progress; ready
	// sessions are closed politely.
	cancel()
	if authing {
		a := <-authDone
		if a.err == nil {
			a.err = ctx.Err()
		}
		r.fail(a.r.idx, a.err)
		a.r.s.Quit(0)
	}
	unused := error(errLostRace)
	if winner == nil {
		unused = errDialEnded // a rejected credential or the context, not a winner
	}
	for _, s := range ready {
		s.s.Quit(200 * time.Millisecond)
		r.fail(s.idx, unused)
	}
	r.wg.Wait()
	close(r.results)
	for res := range r.results {
		if res.err == nil {
			res.s.Quit(200 * time.Millisecond)
			res.err = unused
		}
		r.fail(res.idx, res.err)
	}
	r.d.remember(parent, r)
	if winner != nil {
		return winner, nil
	}
	if endErr == nil {
		endErr = parent.Err() // the caller's deadline ended the attempts
		if dl, ok := parent.Deadline(); endErr == nil && ok && !time.Now().Before(dl) {
			// The sockets' deadlines fired a moment before the
			// context's timer did.
			endErr = context.DeadlineExceeded
		}
	}
	return nil, &DialError{Host: r.host, Attempts: r.startedAttempts(), Err: endErr}
}

// errLostRace marks a candidate that reached a secure session after another
// had already won.
var errLostRace = lostRace{}

type lostRace struct{}

func (lostRace) Error() string { return "not needed: another port won" }

// errDialEnded marks a secure session left unused because the Dial ended
// without a winner.
var errDialEnded = dialEnded{}

type dialEnded struct{}

func (dialEnded) Error() string { return "not used: the dial ended before this port's turn" }

func (r *race) start(ctx context.Context, i int) {
	r.started[i] = time.Now()
	r.pending++
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		s, cfg, err := r.d.open(ctx, r.hostAt(i), r.cands[i], r.started[i])
		r.results <- attemptResult{idx: i, s: s, cfg: cfg, err: err}
	}()
}

func (r *race) fail(i int, err error) {
	if r.attempts[i].Err == nil {
		r.attempts[i].Err = err
		r.attempts[i].Elapsed = time.Since(r.started[i])
		r.trace.attemptDone(r.attempts[i])
	}
}

func (r *race) finish(res attemptResult, mech string) *Client {
	a := &r.attempts[res.idx]
	a.Elapsed = time.Since(r.started[res.idx])
	r.won = res.idx
	r.d.log(context.Background(), a.Candidate, r.hostAt(res.idx), "result", a.Elapsed, nil)
	r.trace.attemptDone(*a)
	r.trace.winner(a.Candidate)
	return newClient(r.d, r.hostAt(res.idx), res.s, res.cfg, mech)
}

// hostAt is the host candidate i connects to.
func (r *race) hostAt(i int) string {
	if r.hosts != nil {
		return r.hosts[i]
	}
	return r.host
}

func (r *race) startedAttempts() []Attempt {
	var out []Attempt
	for i, a := range r.attempts {
		if !r.started[i].IsZero() {
			out = append(out, a)
		}
	}
	return out
}
