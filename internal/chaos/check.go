package chaos

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/portwise/portwise/submit"
)

type checkInput struct {
	reg      *registry
	msgs     []*message
	results  []result
	copies   map[string]int // by Message-ID
	dials    *dialTracker
	leftover bool // client sockets still open after Close
	baseline int
	stacks   string // of every goroutine, when more were left than at the start
	slack    time.Duration
	own      bool // the fault server: its own records can be checked too
}

// outcomeKind sorts a Send's result for the summary.
func outcomeKind(err error) string {
	switch {
	case err == nil:
		return "nil"
	case errors.Is(err, submit.ErrOutcomeUnknown):
		return "unknown"
	case errors.Is(err, submit.ErrMailerClosed):
		return "error:closed"
	case errors.Is(err, submit.ErrAuthFailed):
		return "error:auth"
	case errors.Is(err, context.DeadlineExceeded):
		return "error:deadline"
	case errors.Is(err, context.Canceled):
		return "error:canceled"
	case submit.IsTemporary(err):
		return "error:temporary"
	}
	return "error:permanent"
}

// check verifies the invariants of a run and fills rep.
func check(rep *Report, in *checkInput) {
	reg := in.reg
	rep.Outcomes = map[string]int{}
	rep.Faults = reg.faultCounts()
	rep.Conns = len(reg.allConns())
	reg.auth.mu.Lock()
	rejected := append([]rejection(nil), reg.auth.rejected...)
	reg.auth.mu.Unlock()
	rep.RejectedAUTH = len(rejected)

	add := func(class string, n int, format string, args ...any) {
		detail := fmt.Sprintf(format, args...)
		if n >= 0 {
			detail += "\n" + in.describe(n)
		}
		rep.Violations = append(rep.Violations, Violation{Class: class, Message: n, Detail: detail})
	}

	var firstAuthFail time.Time
	for _, res := range in.results {
		if errors.Is(res.err, submit.ErrAuthFailed) && (firstAuthFail.IsZero() || res.end.Before(firstAuthFail)) {
			firstAuthFail = res.end
		}
	}
	dialsBy := map[int][]*dialRecord{}
	for _, d := range in.dials.all() {
		dialsBy[d.n] = append(dialsBy[d.n], d)
	}

	for n, res := range in.results {
		m := in.msgs[n]
		kind := outcomeKind(res.err)
		rep.Outcomes[kind]++
		copies := in.copies[m.id]
		switch {
		case copies > 1:
			add("duplicate", n, "%d copies stored; Send returned %v", copies, errText(res.err))
		case res.err == nil && copies != 1:
			add("nil-not-stored", n, "Send returned nil but %d copies were stored", copies)
		case res.err != nil && kind != "unknown" && copies != 0:
			add("error-but-stored", n, "Send returned an error that is not ErrOutcomeUnknown, but %d copy was stored: %v", copies, res.err)
		}
		if late := res.end.Sub(res.ctxEnd); late > 0 {
			rep.MaxLate = max(rep.MaxLate, late)
			if late <= in.slack {
				rep.MaxLateWithin = max(rep.MaxLateWithin, late)
			} else {
				add("late-return", n, "Send returned %v after its context ended (slack %v): %v", late.Round(time.Millisecond), in.slack, errText(res.err))
			}
		}
		// The library may see its deadline pass (a socket deadline) a
		// moment before the context's own timer fires: what counts is
		// whether the Send's deadline had passed, or it was cancelled.
		if errors.Is(res.err, context.DeadlineExceeded) && res.end.Before(res.deadline) {
			add("foreign-context-error", n, "Send's error wraps context.DeadlineExceeded %v before its own deadline: %v", res.deadline.Sub(res.end).Round(time.Millisecond), res.err)
		}
		if errors.Is(res.err, context.Canceled) && (res.cancelled.IsZero() || res.end.Before(res.cancelled)) {
			add("foreign-context-error", n, "Send's error wraps context.Canceled, but its own context was not cancelled: %v", res.err)
		}
		if !firstAuthFail.IsZero() && res.start.After(firstAuthFail) {
			if !errors.Is(res.err, submit.ErrAuthFailed) && !errors.Is(res.err, submit.ErrMailerClosed) {
				add("auth-not-remembered", n, "Send started after a Send had returned ErrAuthFailed, but returned %v", errText(res.err))
			}
			if len(dialsBy[n]) > 0 {
				add("auth-not-remembered", n, "Send started after a Send had returned ErrAuthFailed, and still connected %d time(s)", len(dialsBy[n]))
			}
		}
		if !in.own {
			continue
		}
		reg.mu.Lock()
		rm := reg.msgs[n]
		var mailAfter []int64
		var bad []string
		if rm != nil {
			bad = rm.bad
			if len(rm.wholeBody) > 0 {
				for _, seq := range rm.mailFrom {
					if seq > rm.wholeBody[0] {
						mailAfter = append(mailAfter, seq)
					}
				}
			}
		}
		reg.mu.Unlock()
		if len(mailAfter) > 0 {
			add("mail-after-body", n, "the server had the whole body (event #%d), then got MAIL FROM for it again (event #%v); Send returned %v", rm.wholeBody[0], mailAfter, errText(res.err))
		}
		if len(bad) > 0 {
			add("body-mismatch", n, "the server got a body that is not the message sent: %s", strings.Join(bad, "; "))
		}
	}

	late := 0
	for _, r := range rejected {
		if r.late {
			late++
		}
	}
	if late > 0 {
		var b strings.Builder
		for _, r := range rejected {
			fmt.Fprintf(&b, "  AUTH on connection %d at %.3fs (EHLO answered after the client learned: %v)\n", r.conn, r.at.Seconds(), r.late)
			if c := reg.conn(r.conn); c != nil {
				b.WriteString(c.describe())
			}
		}
		add("auth-after-rejection", -1, "%d AUTH(s) with the revoked credential came on sessions opened after a client had been told it was rejected (of %d rejected in all):\n%s", late, len(rejected), b.String())
	}

	if in.leftover {
		var b strings.Builder
		for _, d := range in.dials.open() {
			fmt.Fprintf(&b, "  %s, dialled by message %d at %.3fs\n", d.local, d.n, d.at.Sub(reg.start).Seconds())
		}
		add("socket-leak", -1, "client sockets still open after Close returned and every Send had:\n%s", b.String())
	}
	if in.stacks != "" {
		add("goroutine-leak", -1, "more goroutines than the %d at the start, after Close and the servers stopped:\n%s", in.baseline, in.stacks)
	}
}

func errText(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}

// describe is message n's plan, result and every connection it touched.
func (in *checkInput) describe(n int) string {
	m, res := in.msgs[n], in.results[n]
	var b strings.Builder
	fmt.Fprintf(&b, "  message %d: %d bytes as %s, NoChunking %v, timeout %v", n, len(m.body), m.reader, m.noChunking, m.timeout)
	if m.cancel > 0 {
		fmt.Fprintf(&b, ", cancelled after %v", m.cancel)
	}
	fmt.Fprintf(&b, "\n  started %.3fs, returned %.3fs (context ended %.3fs), copies %d\n  error: %s\n",
		res.start.Sub(in.reg.start).Seconds(), res.end.Sub(in.reg.start).Seconds(), res.ctxEnd.Sub(in.reg.start).Seconds(),
		in.copies[m.id], strings.ReplaceAll(errText(res.err), "\n", "\n    "))
	ids := map[int]bool{}
	in.reg.mu.Lock()
	if rm := in.reg.msgs[n]; rm != nil {
		for _, id := range rm.conns {
			ids[id] = true
		}
	}
	in.reg.mu.Unlock()
	// The connections its Send dialled, matched by the client's address.
	byAddr := map[string][]*conn{}
	for _, c := range in.reg.allConns() {
		byAddr[c.clientAddr] = append(byAddr[c.clientAddr], c)
	}
	for _, d := range in.dials.all() {
		if d.n == n {
			for _, c := range byAddr[d.local] {
				ids[c.id] = true
			}
		}
	}
	sorted := make([]int, 0, len(ids))
	for id := range ids {
		sorted = append(sorted, id)
	}
	sort.Ints(sorted)
	for _, id := range sorted {
		b.WriteString(in.reg.conn(id).describe())
	}
	return b.String()
}

// add sums r into t, for a summary of several runs; t's violations keep
// only their class.
func (t *Report) add(r *Report) {
	t.Messages += r.Messages
	t.Conns += r.Conns
	t.RejectedAUTH += r.RejectedAUTH
	t.MaxLate = max(t.MaxLate, r.MaxLate)
	t.MaxLateWithin = max(t.MaxLateWithin, r.MaxLateWithin)
	for k, v := range r.Outcomes {
		t.Outcomes[k] += v
	}
	for k, v := range r.Faults {
		t.Faults[k] += v
	}
	for _, v := range r.Violations {
		t.Violations = append(t.Violations, Violation{Class: v.Class, Message: v.Message})
	}
}

// Summary is the run in one line: outcomes, faults and violations by kind.
func (r *Report) Summary() string {
	classes := map[string]int{}
	for _, v := range r.Violations {
		classes[v.Class]++
	}
	head := fmt.Sprintf("chaos seed=%d (%s)", r.Seed, r.Scenario)
	if r.Scenario.Mode == 0 {
		head = "chaos"
	}
	s := fmt.Sprintf("%s: %d messages in %v: %s; %d connections; faults: %s; rejected AUTH=%d; latest return after the context ended %v (%v within the slack); violations=%d",
		head, r.Messages, r.Took.Round(time.Millisecond), formatCounts(r.Outcomes), r.Conns,
		formatCounts(r.Faults), r.RejectedAUTH, r.MaxLate.Round(time.Millisecond), r.MaxLateWithin.Round(time.Millisecond), len(r.Violations))
	if len(classes) > 0 {
		s += " (" + formatCounts(classes) + ")"
	}
	return s
}
