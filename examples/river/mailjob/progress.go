package mailjob

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/riverqueue/river/rivertype"
)

// MetadataKey is the key of the job's metadata under which Worker records
// its Progress. River merges it into the job row at the end of every
// attempt, failed ones included, so the next attempt reads it.
const MetadataKey = "portwise"

// Progress is what a job's attempts achieved so far, recipient by
// recipient: who has the message and who refused it for good. The next
// attempt sends only to the others (Pending).
type Progress struct {
	// Delivered are the recipients that accepted the message.
	Delivered []string `json:"delivered,omitempty"`
	// Refused are the recipients refused with a 5xx, never tried again.
	Refused []Refusal `json:"refused,omitempty"`
}

// Refusal is a recipient the server refused permanently, with its reply.
type Refusal struct {
	Addr  string `json:"addr"`
	Reply string `json:"reply"` // "550 5.1.1 no such user", made safe to print
}

// ProgressOf reads the Progress recorded in a job's metadata; a job that
// has none yet has an empty one.
func ProgressOf(job *rivertype.JobRow) (Progress, error) {
	var md struct {
		P *Progress `json:"portwise"`
	}
	if len(job.Metadata) > 0 {
		if err := json.Unmarshal(job.Metadata, &md); err != nil {
			return Progress{}, fmt.Errorf("mailjob: job %d: reading which recipients have the message from its metadata: %w", job.ID, err)
		}
	}
	if md.P == nil {
		return Progress{}, nil
	}
	return *md.P, nil
}

// Pending returns the recipients of to that neither have the message nor
// refused it permanently, in their order.
func (p Progress) Pending(to []string) []string {
	var out []string
	for _, addr := range to {
		if slices.Contains(p.Delivered, addr) || slices.ContainsFunc(p.Refused, func(r Refusal) bool { return r.Addr == addr }) {
			continue
		}
		out = append(out, addr)
	}
	return out
}

func (p Progress) clone() Progress {
	return Progress{Delivered: slices.Clone(p.Delivered), Refused: slices.Clone(p.Refused)}
}

func (p Progress) equal(q Progress) bool {
	return slices.Equal(p.Delivered, q.Delivered) && slices.Equal(p.Refused, q.Refused)
}

// FixedRetryPolicy is a river.ClientRetryPolicy that retries a failed job
// after the same Delay every time. It is for tests and demonstrations,
// where River's default backoff (attempt⁴ seconds: 1 s, 16 s, 81 s, ...)
// would make a run wait minutes; that default is the one to keep in
// production, where a server refusing temporarily often means "slow down".
type FixedRetryPolicy struct {
	Delay time.Duration
}

// NextRetry returns now plus Delay.
func (p FixedRetryPolicy) NextRetry(*rivertype.JobRow) time.Time {
	return time.Now().Add(p.Delay)
}
