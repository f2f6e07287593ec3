package main

import (
	"errors"
	"strings"

	"github.com/portwise/portwise/internal/diag"
	"github.com/portwise/portwise/internal/untrusted"
	"github.com/portwise/portwise/submit"
)

// describe renders an error for a person at the command line: the
// diagnosis package submit made (internal/diag), rendered by the same
// renderer as the library's errors but worded with this command's flags
// (-ca FILE, -port N/implicit) instead of Go names; every peer's text made
// safe.
func describe(err error) string {
	var (
		de   *submit.DialError
		send *submit.SendError
	)
	switch {
	case errors.As(err, &de):
		v := diag.Dial{Host: de.Host, Err: de.Err, Discovery: de.Discovery, Attempts: make([]diag.Attempt, len(de.Attempts))}
		for i, a := range de.Attempts {
			v.Attempts[i] = diag.Attempt{Host: a.Host, Candidate: a.Candidate, Elapsed: a.Elapsed, Err: a.Err}
		}
		return v.Render(diag.CLI, "")
	case errors.As(err, &send):
		r := diag.Refusals{Accepted: send.Accepted, Refused: make([]diag.Refusal, len(send.Rejected))}
		for i, rj := range send.Rejected {
			r.Refused[i] = diag.Refusal{Addr: rj.Addr}
			if rj.Reply != nil {
				r.Refused[i].Diagnosis = diag.Refused("RCPT TO", "", rj.Reply.Code, rj.Reply.Enhanced, rj.Reply.Text)
			}
		}
		return r.Render(diag.CLI, "")
	}
	if d, ok := diag.Of(err); ok {
		return d.Sentence(diag.CLI, d.Where())
	}
	return safeLines(err.Error())
}

// safeLines makes each line of a message safe, keeping its line breaks.
func safeLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = untrusted.Text(l, 4*untrusted.MaxText)
	}
	return strings.Join(lines, "\n")
}
