package diag

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/portwise/portwise/internal/untrusted"
	"github.com/portwise/portwise/tlsmode"
)

// This file is the one place a failure becomes text: package submit's
// errors, the command's messages and the probe's findings all render
// through it, each for its audience, so none assembles "what happened —
// what to do" or ranks failures on its own.

// Sentence renders the diagnosis on one line for a: where it happened
// ("587/starttls", "port 587"; "" for nowhere in particular), the step and
// what was seen, and after " — " what to do.
func (d Diagnosis) Sentence(a Audience, where string) string {
	s := d.Line()
	if where != "" {
		s = where + ": " + s
	}
	if adv := d.Advice(a); adv != "" {
		s += " — " + adv
	}
	return s
}

// Where names the diagnosis's candidate as errors do ("587/starttls"), or
// "" when the failure is not a port's.
func (d Diagnosis) Where() string {
	if d.Candidate.Port == 0 {
		return ""
	}
	return d.Candidate.String()
}

// Record keeps a diagnosis inside an error of another package (submit's
// StepError), so that Of finds it and no reader classifies the error
// again. Embed it under an unexported alias (type rec = diag.Record): it
// has no exported methods, so the embedding type gains none.
type Record struct {
	d  Diagnosis
	ok bool
}

// Recorded keeps d in a Record.
func Recorded(d Diagnosis) Record { return Record{d: d, ok: true} }

func (r Record) recorded() (Diagnosis, bool) { return r.d, r.ok }

type recorder interface{ recorded() (Diagnosis, bool) }

// Of returns the diagnosis recorded in err, or in the first error of its
// tree that holds a Record; false when there is none.
func Of(err error) (Diagnosis, bool) {
	var r recorder
	if err == nil || !errors.As(err, &r) {
		return Diagnosis{}, false
	}
	return r.recorded()
}

// MostTelling returns the index, among n failures whose kinds kind
// gives (false for an entry that is no failure), of the one that tells
// most about why nothing worked: the highest Rank, the first of equals;
// -1 when there is none. A Dial's outcome is named by it.
func MostTelling(n int, kind func(i int) (Kind, bool)) int {
	best, rank := -1, -1
	for i := range n {
		if k, ok := kind(i); ok && Rank(k) > rank {
			best, rank = i, Rank(k)
		}
	}
	return best
}

// Dial is a Dial that produced no client, as its error reads.
type Dial struct {
	Host string
	// Err is the Dial's own failure, if it ended for a reason of its own.
	Err       error
	Attempts  []Attempt
	Discovery error // what went wrong finding servers, if anything
}

// Attempt is one candidate of a Dial, as far as it got.
type Attempt struct {
	Host      string
	Candidate tlsmode.Candidate
	Elapsed   time.Duration
	Err       error // nil: the attempt succeeded
}

// Decisive is the failure that names the Dial's outcome: the Dial's own,
// else the attempt's that MostTelling picks; false when there is none.
func (f Dial) Decisive() (Diagnosis, bool) {
	if f.Err != nil {
		if d, ok := Of(f.Err); ok {
			return d, true
		}
		return Classify("", tlsmode.Candidate{}, f.Host, 0, f.Err), true
	}
	i := MostTelling(len(f.Attempts), func(i int) (Kind, bool) {
		d, ok := Of(f.Attempts[i].Err)
		return d.Kind, ok
	})
	if i < 0 {
		return Diagnosis{}, false
	}
	return Of(f.Attempts[i].Err)
}

// Render is the Dial's error for a: prefix ("submit: ") and the host, the
// outcome's headline and the Dial's own failure, then one line per
// attempt in the order of the plan, then the discovery problem. Every
// peer's text is made safe.
func (f Dial) Render(a Audience, prefix string) string {
	var b strings.Builder
	d, ok := f.Decisive()
	kind := KindOther
	if ok {
		kind = d.Kind
	}
	b.WriteString(prefix + untrusted.Name(f.Host) + ": " + Headline(kind))
	if f.Err != nil {
		b.WriteString(": " + d.Sentence(a, d.Where()))
	}
	for _, at := range f.Attempts {
		b.WriteString("\n  ")
		if at.Host != "" && !strings.EqualFold(at.Host, f.Host) {
			b.WriteString(untrusted.Name(at.Host) + ":")
		}
		switch ad, ok := Of(at.Err); {
		case at.Err == nil:
			b.WriteString(at.Candidate.String() + ": succeeded in " + Round(at.Elapsed).String())
		case ok:
			b.WriteString(ad.Sentence(a, ad.Where()))
		default:
			b.WriteString(at.Candidate.String() + ": " + safe(at.Err))
		}
	}
	if f.Discovery != nil {
		b.WriteString("\n  discovery: " + safe(f.Discovery))
	}
	if len(f.Attempts) == 0 && f.Err == nil {
		b.WriteString(" (no candidate was tried)")
	}
	return b.String()
}

// Refusals is a transaction in which the server refused recipients, as a
// SendError reads.
type Refusals struct {
	Accepted int // recipients that took the message
	Refused  []Refusal
}

// Refusal is one refused recipient and the diagnosis of its reply (see
// Refused).
type Refusal struct {
	Addr      string
	Diagnosis Diagnosis
}

// Render is the refusals for a: prefix ("submit: ") and whether the
// message went anywhere, then one line per refused recipient: its
// address, the server's reply and what to do.
func (r Refusals) Render(a Audience, prefix string) string {
	var b strings.Builder
	b.WriteString(prefix)
	if r.Accepted == 0 {
		b.WriteString("every recipient was refused; nothing was sent")
	} else {
		b.WriteString("sent to " + strconv.Itoa(r.Accepted) + " recipient(s), refused by the server for " + strconv.Itoa(len(r.Refused)))
	}
	for _, rf := range r.Refused {
		b.WriteString("\n  " + untrusted.Name(rf.Addr) + ": " + rf.Diagnosis.said())
		if adv := rf.Diagnosis.Advice(a); adv != "" {
			b.WriteString(" — " + adv)
		}
	}
	return b.String()
}

// Advice is what to do about the refusals for a: the one advice when they
// share it, else each distinct advice after the addresses it is for.
func (r Refusals) Advice(a Audience) string {
	var order []string
	addrs := map[string][]string{}
	for _, rf := range r.Refused {
		adv := rf.Diagnosis.Advice(a)
		if adv == "" {
			continue
		}
		if _, seen := addrs[adv]; !seen {
			order = append(order, adv)
		}
		addrs[adv] = append(addrs[adv], untrusted.Name(rf.Addr))
	}
	if len(order) == 1 {
		return order[0]
	}
	parts := make([]string, len(order))
	for i, adv := range order {
		parts[i] = "for " + strings.Join(addrs[adv], ", ") + ": " + adv
	}
	return strings.Join(parts, "; ")
}

// said is the server's reply as a person would quote it, made safe; the
// line's detail when the diagnosis has no reply.
func (d Diagnosis) said() string {
	if d.Reply != nil {
		return d.Reply.String()
	}
	return d.Detail
}
