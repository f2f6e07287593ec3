package main

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portwise/portwise/internal/diag"
	"github.com/portwise/portwise/internal/plan"
	"github.com/portwise/portwise/internal/untrusted"
	"github.com/portwise/portwise/probe"
	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/tlsmode"
)

// timeline is what -timing shows: the ports of a send's race, or of a
// probe, side by side on one clock that starts with the Dial (or with
// probe.Run), each with its steps. The waterfall (waterfall.go) and the
// JSON document are two renderings of it.
type timeline struct {
	command string // "send" or "probe"
	host    string
	total   time.Duration
	lanes   []lane
	winner  int // index of the lane that won (send) or is recommended (probe); -1 if none
	// sent and queueID are the message's fate (send only); queueID is the
	// server's text, escaped when shown.
	sent    bool
	queueID string
}

// lane is one port's row.
type lane struct {
	host    string // an SRV target's name; "" for the host itself
	cand    tlsmode.Candidate
	started bool
	start   time.Duration // when it began, on the timeline's clock
	end     time.Duration // when it ended
	steps   []span
	outcome string // one of the outcome constants
	// reason says why a port that did not win stopped, on one line: the
	// command's words for its failure, made safe again where it is shown.
	reason string
}

// span is one step of a lane.
type span struct {
	name    string // connect, banner, ehlo, starttls, tls, auth, envelope, message
	attempt string // probe's other connections ("other-mode", "tls-legacy", "auth"); "" for the lane's own
	start   time.Duration
	elapsed time.Duration
	failed  bool // the step the lane failed at
}

// The outcomes of a lane.
const (
	outcomeWon         = "won"         // send: its session carried the message
	outcomeLost        = "lost"        // send: another port won first
	outcomeFailed      = "failed"      // send: it failed, the reason says how
	outcomeStopped     = "stopped"     // send: the Dial ended without needing it
	outcomeNotStarted  = "not-started" // send: the Dial ended before its turn
	outcomeRecommended = "recommended" // probe: the port to configure
	outcomeUsable      = "usable"      // probe: usable, but not the first choice
	outcomeUnusable    = "unusable"    // probe: not usable, the reason says why
)

// label names a lane: "587/starttls", or "mail.example.com 587/starttls"
// for an SRV target.
func (l lane) label() string { return l.labelIn(untrusted.MaxName) }

// labelIn is label in at most n columns: an SRV target's name is clipped,
// never the port.
func (l lane) labelIn(n int) string {
	c := l.cand.String()
	if l.host == "" {
		return c
	}
	return clip(untrusted.Name(l.host), max(1, n-len(c)-1)) + " " + c
}

// stepNames are the Dialer's Logger steps a lane draws; its other records
// (failed, result, send) say what the hooks say.
var stepNames = map[string]bool{"connect": true, "banner": true, "ehlo": true, "starttls": true, "tls": true, "auth": true}

// sendTimer collects a send's timeline from the public hooks: submit.Trace
// for each attempt's identity, start and outcome and for the message, and
// the Dialer's Logger records for the steps (connect, banner, EHLO,
// STARTTLS, TLS, AUTH), which carry port, mode and duration.
type sendTimer struct {
	mu      sync.Mutex
	t0      time.Time
	host    string
	targets []plan.Target // the Dial's plan: the CLI's Dialer discovers nothing and remembers no winner
	order   []*liveLane   // in the order they started
	byID    map[uint64]*liveLane
	byKey   map[string]*liveLane // host|candidate: the attempt a Logger record belongs to
	msgT0   time.Time
	sent    bool
	queueID string
}

// liveLane is a lane being recorded.
type liveLane struct {
	lane
	t0     time.Time
	done   bool
	err    error
	logged []loggedStep
}

// loggedStep is a Logger record of a step.
type loggedStep struct {
	span
	err bool
}

func newSendTimer(host string, port int, policy []tlsmode.Candidate) *sendTimer {
	return &sendTimer{
		t0:      time.Now(),
		host:    host,
		targets: plan.Targets(plan.Input{Host: host, Port: port, Policy: policy}),
		byID:    map[uint64]*liveLane{},
		byKey:   map[string]*liveLane{},
	}
}

func laneKey(host string, c tlsmode.Candidate) string {
	return strings.ToLower(host) + "|" + c.String()
}

// attempt returns the lane of a, creating it as started Elapsed ago.
func (st *sendTimer) attempt(a submit.Attempt, now time.Time) *liveLane {
	l := st.byID[a.ID]
	if l == nil {
		l = &liveLane{lane: lane{cand: a.Candidate, started: true}, t0: now.Add(-a.Elapsed)}
		if !strings.EqualFold(a.Host, st.host) {
			l.host = a.Host
		}
		l.start = l.t0.Sub(st.t0)
		st.byID[a.ID] = l
		st.byKey[laneKey(a.Host, a.Candidate)] = l
		st.order = append(st.order, l)
	}
	return l
}

// trace returns the hooks that record the send.
func (st *sendTimer) trace() *submit.Trace {
	locked := func(f func(now time.Time)) {
		now := time.Now()
		st.mu.Lock()
		defer st.mu.Unlock()
		f(now)
	}
	return &submit.Trace{
		DialStart: func(submit.DialInfo) {
			locked(func(now time.Time) {
				if len(st.order) == 0 {
					st.t0 = now
				}
			})
		},
		ConnectStart: func(a submit.Attempt) { locked(func(now time.Time) { st.attempt(a, now) }) },
		AttemptDone: func(a submit.Attempt) {
			locked(func(now time.Time) {
				l := st.attempt(a, now)
				l.done, l.err, l.end = true, a.Err, now.Sub(st.t0)
			})
		},
		WinnerChosen: func(a submit.Attempt) { locked(func(now time.Time) { st.attempt(a, now).outcome = outcomeWon }) },
		MessageStart: func(submit.MessageInfo) { locked(func(now time.Time) { st.msgT0 = now }) },
		MessageDone: func(m submit.MessageInfo) {
			locked(func(now time.Time) {
				st.sent = m.Outcome == submit.OutcomeAccepted
				st.queueID = m.QueueID
				l := st.byID[m.Conn.ID]
				if l == nil || st.msgT0.IsZero() {
					return
				}
				t0 := st.msgT0.Sub(st.t0)
				env := span{name: "envelope", start: t0, elapsed: m.Envelope}
				content := m.Envelope < m.Elapsed
				env.failed = !content && !st.sent
				l.steps = append(l.steps, env)
				if content {
					l.steps = append(l.steps, span{name: "message", start: t0 + m.Envelope, elapsed: m.Elapsed - m.Envelope,
						failed: m.Outcome != submit.OutcomeAccepted})
				}
				l.end = max(l.end, t0+m.Elapsed)
			})
		},
	}
}

// logger returns the Logger that records the Dialer's steps.
func (st *sendTimer) logger() *slog.Logger { return slog.New(stepHandler{st}) }

// stepHandler is the slog.Handler of sendTimer.logger.
type stepHandler struct{ st *sendTimer }

func (stepHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h stepHandler) WithAttrs([]slog.Attr) slog.Handler     { return h }
func (h stepHandler) WithGroup(string) slog.Handler          { return h }

func (h stepHandler) Handle(_ context.Context, r slog.Record) error {
	var (
		host, step, mode string
		port             int
		dur              time.Duration
		failed           bool
	)
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "host":
			host = a.Value.String()
		case "step":
			step = a.Value.String()
		case "mode":
			mode = a.Value.String()
		case "port":
			port = int(a.Value.Int64())
		case "duration":
			dur = a.Value.Duration()
		case "error":
			failed = true
		}
		return true
	})
	if !stepNames[step] {
		return nil
	}
	m, err := tlsmode.Parse(mode)
	if err != nil {
		return nil
	}
	st := h.st
	st.mu.Lock()
	defer st.mu.Unlock()
	l := st.byKey[laneKey(host, tlsmode.Candidate{Port: port, Mode: m})]
	if l == nil {
		return nil
	}
	l.logged = append(l.logged, loggedStep{span: span{name: step, start: r.Time.Add(-dur).Sub(st.t0), elapsed: dur}, err: failed})
	return nil
}

// settle waits, up to max, for every attempt started to report its
// outcome: a port still connecting when another won reports after Dial
// returns.
func (st *sendTimer) settle(max time.Duration) {
	deadline := time.Now().Add(max)
	for {
		st.mu.Lock()
		pending := false
		for _, l := range st.order {
			pending = pending || !l.done
		}
		st.mu.Unlock()
		if !pending || time.Now().After(deadline) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// timeline returns what was recorded, the lanes in the order they started,
// then the targets of the plan that never started.
func (st *sendTimer) timeline() timeline {
	st.mu.Lock()
	defer st.mu.Unlock()
	tl := timeline{command: "send", host: st.host, winner: -1, sent: st.sent, queueID: st.queueID}
	now := time.Since(st.t0)
	seen := map[string]bool{}
	for _, l := range st.order {
		seen[laneKey(st.hostOf(l), l.cand)] = true
		out := l.lane
		out.steps = nil
		if out.outcome != outcomeWon {
			out.outcome, out.reason = attemptOutcome(l.err, l.done)
		}
		for _, s := range l.logged {
			s.failed = s.err && out.outcome == outcomeFailed
			out.steps = append(out.steps, s.span)
		}
		out.steps = append(out.steps, l.steps...) // the message's, after the steps of the Dial
		if !l.done {
			out.end = max(out.end, now)
		}
		for _, s := range out.steps {
			// The hooks and the records read the clock a moment apart.
			out.start = min(out.start, s.start)
			out.end = max(out.end, s.start+s.elapsed)
		}
		if out.outcome == outcomeWon {
			tl.winner = len(tl.lanes)
		}
		tl.lanes = append(tl.lanes, out)
	}
	for _, t := range st.targets {
		if seen[laneKey(t.Host, t.Candidate)] {
			continue
		}
		l := lane{cand: t.Candidate, outcome: outcomeNotStarted, reason: "not started: the dial ended before its turn"}
		if !strings.EqualFold(t.Host, st.host) {
			l.host = t.Host
		}
		tl.lanes = append(tl.lanes, l)
	}
	if tl.winner >= 0 {
		w := tl.lanes[tl.winner].label()
		for i, l := range tl.lanes {
			switch l.outcome {
			case outcomeLost:
				tl.lanes[i].reason = "lost the race: " + w + " won first"
			case outcomeNotStarted:
				tl.lanes[i].reason = "not started: " + w + " won before its turn"
			}
		}
	}
	for _, l := range tl.lanes {
		tl.total = max(tl.total, l.end)
	}
	return tl
}

func (st *sendTimer) hostOf(l *liveLane) string {
	if l.host != "" {
		return l.host
	}
	return st.host
}

// attemptOutcome is how an attempt that did not win ended, and why, in
// the command's words for its failure (internal/diag, worded for the
// command line), made safe.
func attemptOutcome(err error, done bool) (outcome, reason string) {
	switch {
	case !done:
		return outcomeLost, "still winding down when the send ended"
	case errors.Is(err, submit.ErrLostRace):
		return outcomeLost, "lost the race"
	case errors.Is(err, submit.ErrDialEnded):
		return outcomeStopped, untrusted.Reply(submit.ErrDialEnded.Error())
	case err == nil:
		return outcomeStopped, ""
	}
	if d, ok := diag.Of(err); ok {
		return outcomeFailed, "failed: " + untrusted.Reply(d.Line())
	}
	return outcomeFailed, "failed: " + untrusted.Reply(err.Error())
}

// probeTimeline is the timeline of a probe's report: one lane per port,
// each with the steps of every connection made to it.
func probeTimeline(rep *probe.Report) timeline {
	tl := timeline{command: "probe", host: rep.Host, winner: -1}
	for _, p := range rep.Ports {
		l := lane{host: p.Host, cand: tlsmode.Candidate{Port: p.Port, Mode: p.ConfiguredMode}, started: true}
		for i, s := range p.Steps {
			sp := span{name: s.Name, start: s.Start, elapsed: s.Elapsed}
			if s.Attempt != "probe" {
				sp.attempt = s.Attempt
			}
			// A failed step of the connection that decides the port;
			// the legacy check's refusal is good news.
			sp.failed = s.Error != "" && s.Attempt != "tls-legacy"
			if i == 0 || sp.start < l.start {
				l.start = sp.start
			}
			l.end = max(l.end, s.Start+s.Elapsed)
			l.steps = append(l.steps, sp)
		}
		rec := rep.Recommendation
		switch {
		case rec != nil && rec.Port == p.Port && rec.Mode == p.Mode && strings.EqualFold(rep.RecommendedHost, p.Host):
			l.outcome = outcomeRecommended
			tl.winner = len(tl.lanes)
			if p.AuthResult == "failed" {
				l.reason = "but authentication failed"
			}
		case p.Usable:
			l.outcome = outcomeUsable
		default:
			l.outcome, l.reason = outcomeUnusable, untrusted.Reply(oneLine(p.Error))
		}
		tl.total = max(tl.total, l.end)
		tl.lanes = append(tl.lanes, l)
	}
	return tl
}

// oneLine joins the lines of s.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// ms is a duration that marshals to JSON as milliseconds, to the
// microsecond.
type ms time.Duration

func (d ms) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, float64(d)/float64(time.Millisecond), 'f', 3, 64), nil
}

// timingJSON is the timeline as -json prints it.
type timingJSON struct {
	Command string             `json:"command"`
	Host    string             `json:"host"`
	TotalMS ms                 `json:"total_ms"`
	Winner  *tlsmode.Candidate `json:"winner"`
	Ports   []laneJSON         `json:"ports"`
	// Sent and QueueID: send only.
	Sent    *bool  `json:"sent,omitempty"`
	QueueID string `json:"queue_id,omitempty"`
}

type laneJSON struct {
	Host      string     `json:"host,omitempty"`
	Port      int        `json:"port"`
	Mode      string     `json:"mode"`
	Outcome   string     `json:"outcome"`
	Reason    string     `json:"reason,omitempty"`
	StartMS   *ms        `json:"start_ms,omitempty"` // absent when not started
	ElapsedMS *ms        `json:"elapsed_ms,omitempty"`
	Steps     []spanJSON `json:"steps"`
}

type spanJSON struct {
	Name      string `json:"name"`
	Attempt   string `json:"attempt,omitempty"`
	StartMS   ms     `json:"start_ms"`
	ElapsedMS ms     `json:"elapsed_ms"`
	Failed    bool   `json:"failed,omitempty"`
}

// json returns the timeline's JSON document: the same figures as the
// waterfall, in milliseconds from the start of the Dial (or of the probe).
// Names and the queue id are as the peer gave them, as in probe's report
// (JSON escapes them, and writeJSON the controls it leaves); a reason is
// the command's words, made safe as in the view.
func (tl timeline) json() timingJSON {
	out := timingJSON{Command: tl.command, Host: tl.host, TotalMS: ms(tl.total), Ports: []laneJSON{}}
	if tl.winner >= 0 {
		c := tl.lanes[tl.winner].cand
		out.Winner = &c
	}
	if tl.command == "send" {
		out.Sent = &tl.sent
		out.QueueID = tl.queueID
	}
	for _, l := range tl.lanes {
		lj := laneJSON{Host: l.host, Port: l.cand.Port, Mode: l.cand.Mode.String(), Outcome: l.outcome,
			Reason: untrusted.Reply(l.reason), Steps: []spanJSON{}}
		if l.started {
			start, elapsed := ms(l.start), ms(l.end-l.start)
			lj.StartMS, lj.ElapsedMS = &start, &elapsed
		}
		for _, s := range l.steps {
			lj.Steps = append(lj.Steps, spanJSON{Name: s.name, Attempt: s.attempt, StartMS: ms(s.start), ElapsedMS: ms(s.elapsed), Failed: s.failed})
		}
		out.Ports = append(out.Ports, lj)
	}
	return out
}
