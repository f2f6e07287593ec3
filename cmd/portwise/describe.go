package main

import (
	"errors"
	"strings"

	"github.com/portwise/portwise/internal/diag"
	"github.com/portwise/portwise/internal/untrusted"
	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/tlsmode"
)

// describe renders an error for a person at the command line: the same
// diagnosis as package submit's (internal/diag), its advice worded with
// this command's flags (-ca FILE, -port N/implicit) instead of Go names, one
// line per attempt, every peer's text made safe.
func describe(err error) string {
	var (
		de   *submit.DialError
		se   *submit.StepError
		send *submit.SendError
	)
	switch {
	case errors.As(err, &de):
		return describeDial(de)
	case errors.As(err, &se):
		return stepLine(se)
	case errors.As(err, &send):
		return safeLines(send.Error())
	}
	return safeLines(err.Error())
}

func describeDial(de *submit.DialError) string {
	var b strings.Builder
	var decisive diag.Diagnosis
	best := -1
	lines := make([]string, 0, len(de.Attempts))
	for _, a := range de.Attempts {
		var se *submit.StepError
		if !errors.As(a.Err, &se) {
			continue
		}
		d := classify(se)
		if r := diag.Rank(d.Kind); r > best {
			decisive, best = d, r
		}
		line := a.Candidate.String() + ": " + d.Line()
		if a.Host != "" && !strings.EqualFold(a.Host, de.Host) {
			line = untrusted.Name(a.Host) + ":" + line
		}
		if adv := d.Advice(diag.CLI); adv != "" {
			line += " — " + adv
		}
		lines = append(lines, line)
	}
	if de.Err != nil {
		var se *submit.StepError
		if errors.As(de.Err, &se) {
			decisive = classify(se)
		} else {
			decisive = diag.Classify("", tlsmode.Candidate{}, de.Host, 0, de.Err)
		}
	}
	b.WriteString(untrusted.Name(de.Host) + ": " + diag.Headline(decisive.Kind))
	if de.Err != nil {
		b.WriteString(": " + decisive.Line())
		if adv := decisive.Advice(diag.CLI); adv != "" {
			b.WriteString(" — " + adv)
		}
	}
	for _, l := range lines {
		b.WriteString("\n  " + l)
	}
	if de.Discovery != nil {
		b.WriteString("\n  discovery: " + untrusted.Reply(de.Discovery.Error()))
	}
	return b.String()
}

// classify is the shared diagnosis of a step's failure.
func classify(se *submit.StepError) diag.Diagnosis {
	return diag.Classify(se.Step, se.Candidate, se.Host, se.Elapsed, se.Err)
}

// stepLine renders one failed step of a session.
func stepLine(se *submit.StepError) string {
	d := classify(se)
	s := d.Line()
	if se.Candidate.Port != 0 {
		s = se.Candidate.String() + ": " + s
	}
	if adv := d.Advice(diag.CLI); adv != "" {
		s += " — " + adv
	}
	return s
}

// safeLines makes each line of a message safe, keeping its line breaks.
func safeLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = untrusted.Text(l, 4*untrusted.MaxText)
	}
	return strings.Join(lines, "\n")
}
