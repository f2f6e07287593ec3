package submit

import "github.com/portwise/portwise/internal/diag"

// A refused recipient reaches the program as a value in a SendError rather
// than as a StepError, so its diagnosis is made here, from its reply, by
// the same internal/diag that diagnoses every other refusal.

// Advice says what to do about the refusal, in Go terms ("the recipient's
// address does not exist: check it for typos"); "" when the reply says it
// all. A provider's known reply gets the provider's advice.
func (e RecipientError) Advice() string { return e.diagnosis().Advice(diag.Go) }

// diagnosis is the refusal's diagnosis, as the reply to RCPT TO.
func (e RecipientError) diagnosis() diag.Diagnosis {
	if e.Reply == nil {
		return diag.Diagnosis{}
	}
	return diag.Refused("RCPT TO", "", e.Reply.Code, e.Reply.Enhanced, e.Reply.Text)
}

// temporary reports whether sending to the recipient again later may
// work: a 4xx, unless a provider's known reply says otherwise (GMX's 550
// rate limit is temporary).
func (e RecipientError) temporary() bool { return e.diagnosis().Temporary() }

// Advice says what to do about the refused recipients, in Go terms: the
// one advice when they share it, else each advice after the recipients it
// is for; "" when the replies say it all.
func (e *SendError) Advice() string { return e.refusals().Advice(diag.Go) }

// refusals is the SendError as internal/diag renders it.
func (e *SendError) refusals() diag.Refusals {
	r := diag.Refusals{Accepted: e.Accepted, Refused: make([]diag.Refusal, len(e.Rejected))}
	for i, rj := range e.Rejected {
		r.Refused[i] = diag.Refusal{Addr: rj.Addr, Diagnosis: rj.diagnosis()}
	}
	return r
}

// temporary reports whether every refusal may clear later (SendError's
// Temporary, with the providers' knowledge): one permanent refusal makes
// it false, whatever the order of the recipients.
func (e *SendError) temporary() bool {
	for _, r := range e.Rejected {
		if !r.temporary() {
			return false
		}
	}
	return len(e.Rejected) > 0
}
