package fleet

import (
	"errors"
	"fmt"
	"time"
)

// The causes of a HoldError.
const (
	// HoldPaused: the account is paused after a quota reply.
	HoldPaused = "paused"
	// HoldRate: the account's shared schedule has no turn within MaxWait.
	HoldRate = "rate"
	// HoldSessions: every session slot of the account stayed taken for
	// MaxWait.
	HoldSessions = "sessions"
)

// ErrUnavailable means the shared limits could not be read or written
// (the database is unreachable, say). Nothing was sent; the send may be
// tried again later like any failure of the way to the server.
var ErrUnavailable = errors.New("fleet: the shared limits could not be read or written")

// HoldError means a send was held back by the account's shared limits and
// nothing was sent: the account is paused, its schedule has no turn soon
// enough, or no session slot came free. It is not a failure of the message
// and should not count as one: try again after Wait (mailjob snoozes the
// job). When a quota reply started the pause, Err is that send's error.
type HoldError struct {
	// Account is the account's key (see Account).
	Account string
	// Cause is HoldPaused, HoldRate or HoldSessions.
	Cause string
	// Wait is how long to wait before trying again, measured by the
	// database's clock, which every process shares.
	Wait time.Duration
	// Until is when the wait ends, by the database's clock, for people.
	Until time.Time
	// Reason says why: for a pause, the rule and the server's reply.
	Reason string
	// Err is the send's error when this send's reply started the pause.
	Err error
}

// Error says what holds the account, until when, and that nothing was
// sent.
func (e *HoldError) Error() string {
	var s string
	switch e.Cause {
	case HoldPaused:
		s = fmt.Sprintf("fleet: account %s is paused until %s (%s): not sent; sending resumes by itself", e.Account, e.Until.Format(time.RFC3339), e.Reason)
	case HoldRate:
		s = fmt.Sprintf("fleet: account %s: no turn in its shared schedule soon enough (%s): not sent; try again in %s", e.Account, e.Reason, e.Wait.Round(time.Millisecond))
	default:
		s = fmt.Sprintf("fleet: account %s: no session slot came free (%s): not sent; try again in %s", e.Account, e.Reason, e.Wait.Round(time.Millisecond))
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the send's error, if any.
func (e *HoldError) Unwrap() error { return e.Err }
