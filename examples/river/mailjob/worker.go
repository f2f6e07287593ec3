package mailjob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/portwise/portwise/examples/river/fleet"
	"github.com/portwise/portwise/submit"
)

// Sender sends one message. *submit.Mailer is the Sender to use: one per
// process, shared by all of River's worker goroutines, so that they reuse a
// few authenticated connections instead of logging in once per job.
type Sender interface {
	SendWith(ctx context.Context, from string, to []string, msg io.Reader, o *submit.SendOptions) (*submit.SendResult, error)
}

// Worker is the River worker for Args: it sends the message through Mailer
// and maps portwise's classification of the outcome onto River's.
//
//   - Sent to every recipient: the job completes.
//   - A temporary failure (submit.IsTemporary: a 4xx, a timeout, a
//     connection refused or reset): Work returns the error and River
//     retries the job with its backoff, until the job's MaxAttempts.
//   - ErrOutcomeUnknown (the connection broke after the message went and
//     before the server's reply): the job is cancelled with an
//     *OutcomeUnknownError and never retried, since a retry may deliver the
//     message twice; a person checks and enqueues it again if needed.
//   - Any failure of the Dial (a *submit.DialError): Work returns the
//     error and River retries with its backoff, until the job's
//     MaxAttempts. A Dial failure is never the message's fault: it is the
//     way to the server (a credential rejected, a certificate that does
//     not verify, STARTTLS stripped, a greeting refusing the client), and
//     before TLS is verified anyone on the path can forge it (a 554
//     greeting, a garbage banner, a TLS alert); cancelling on it would let
//     one misconfiguration or one meddling network empty the queue.
//   - A failure about this message, reported over the established session
//     (a 5xx to the sender, the recipients or the message, a message too
//     large or with a line too long, a bad address): the job is cancelled
//     (river.JobCancel) with the reason.
//   - The job's own context ending (the client stopping, the job's
//     timeout) or the Mailer closing: the error is returned as it is, so
//     River retries the job instead of cancelling it.
//   - Held back by Limits (the account paused after a quota reply, no
//     turn or no session slot soon enough): the job is snoozed until the
//     hold ends (river.JobSnooze), which is not an attempt, and HoldKey in
//     its metadata says why.
//
// Recipients are accounted for one by one, in the job's metadata (see
// Progress), because a *submit.SendError can mean that the message went to
// some recipients and not to others. A recipient that accepted the message
// is never sent it again; one refused with a 5xx is not tried again; only
// those refused with a 4xx (SendError.Retry) are retried. The job completes
// when every recipient has accepted the message; once the only ones left
// were refused permanently, it is cancelled with a *RefusedError naming
// them, and the recipients who have the message.
//
// The Mailer may retry temporary refusals itself before the body (a
// Mailer with retries); what it gives up on reaches River as above. Between
// a delivery and River recording it lies a window no queue can close: if
// the worker process dies there, River rescues the job and the message is
// sent again. The Message-ID lets the recipient's side recognise it.
type Worker struct {
	river.WorkerDefaults[Args]

	// Mailer sends the messages; it must be set.
	Mailer Sender
	// Options are given to every SendWith (e.g. RequireTLS); nil for
	// none.
	Options *submit.SendOptions
	// Logger gets one record per attempt; nil logs nothing.
	Logger *slog.Logger
	// Limits, when set, holds every send to the limits this process
	// shares with every other process sending as the same account
	// (package fleet, on PostgreSQL): a cap on sessions, a rate, a pause
	// after a quota reply. A send they hold back snoozes the job
	// (river.JobSnooze): it neither fails nor uses an attempt, and its
	// metadata says why until when (HoldKey). nil leaves the Mailer's own
	// limits, those of one process, as on SQLite. With Limits, give the
	// Mailer MaxTries -1: its own retries would send outside the shared
	// schedule, and River's take a turn each.
	Limits *fleet.Limits
}

// HoldKey is the key of the job's metadata under which Worker records the
// last time the shared limits held the job back: {"account", "cause"
// ("paused", "rate" or "sessions"), "until", "reason"}. River keeps, under
// "snoozes", how many times the job was snoozed.
const HoldKey = "portwise_hold"

// Hold is what Worker records under HoldKey.
type Hold struct {
	Account string    `json:"account"` // the account's key, host/user
	Cause   string    `json:"cause"`   // fleet.HoldPaused, HoldRate or HoldSessions
	Until   time.Time `json:"until"`   // when the job is tried again
	Reason  string    `json:"reason"`  // for a pause, the rule and the server's reply
}

// Work sends the job's message to the recipients that do not have it yet.
func (w *Worker) Work(ctx context.Context, job *river.Job[Args]) error {
	prev, err := ProgressOf(job.JobRow)
	if err != nil {
		// Without the record of who has the message, sending could
		// deliver it twice.
		return river.JobCancel(err)
	}
	pending := prev.Pending(job.Args.To)
	var (
		res     *submit.SendResult
		sendErr error
	)
	t0 := time.Now()
	if len(pending) > 0 {
		send := func(ctx context.Context) (*submit.SendResult, error) {
			return w.Mailer.SendWith(ctx, job.Args.From, pending, bytes.NewReader(job.Args.Message), w.Options)
		}
		if w.Limits != nil {
			res, sendErr = w.Limits.Send(ctx, send)
		} else {
			res, sendErr = send(ctx)
		}
	}
	next, v, err := decide(ctx.Err(), job.Args.MessageID, pending, prev, res, sendErr)
	if !next.equal(prev) {
		if merr := river.MetadataSet(ctx, MetadataKey, next); merr != nil {
			return river.JobCancel(fmt.Errorf("mailjob: recording the recipients that have message %s: %w", job.Args.MessageID, merr))
		}
	}
	w.log(ctx, job.JobRow, job.Args.MessageID, pending, time.Since(t0), v, err)
	switch v {
	case cancel:
		return river.JobCancel(err)
	case snooze:
		var h *fleet.HoldError
		errors.As(err, &h)
		if merr := river.MetadataSet(ctx, HoldKey, Hold{Account: h.Account, Cause: h.Cause, Until: h.Until, Reason: h.Reason}); merr != nil {
			return fmt.Errorf("mailjob: recording why message %s waits: %w", job.Args.MessageID, merr)
		}
		return river.JobSnooze(max(h.Wait, 0))
	}
	return err
}

func (w *Worker) log(ctx context.Context, job *rivertype.JobRow, messageID string, to []string, d time.Duration, v verdict, err error) {
	if w.Logger == nil {
		return
	}
	attrs := []slog.Attr{
		slog.Int64("job_id", job.ID), slog.String("message_id", messageID),
		slog.Int("attempt", job.Attempt), slog.Int("max_attempts", job.MaxAttempts),
		slog.String("to", strings.Join(to, ",")), slog.Duration("elapsed", d), slog.String("outcome", v.String()),
	}
	level := slog.LevelInfo
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
		if v == cancel {
			level = slog.LevelWarn
		}
	}
	w.Logger.LogAttrs(ctx, level, "portwise mail job", attrs...)
}

// verdict is what River does with the job after an attempt.
type verdict int

const (
	complete verdict = iota // return nil
	retry                   // return the error: River retries
	cancel                  // river.JobCancel(err)
	snooze                  // river.JobSnooze: held back by the shared limits, not an attempt
)

// String names the verdict in the log.
func (v verdict) String() string {
	return [...]string{"completed", "retry", "cancelled", "snoozed"}[v]
}

// decide maps one attempt's outcome onto River's: the progress to record,
// the verdict, and the error to return (or to cancel with). ctxErr is the
// job context's error after the send; pending are the recipients the
// attempt sent to; prev is what earlier attempts achieved.
func decide(ctxErr error, messageID string, pending []string, prev Progress, res *submit.SendResult, err error) (Progress, verdict, error) {
	p := prev.clone()
	var (
		se *submit.SendError
		de *submit.DialError
		h  *fleet.HoldError
	)
	switch {
	case err == nil:
		accepted := pending
		if res != nil && res.Accepted != nil {
			accepted = res.Accepted
		}
		p.Delivered = append(p.Delivered, accepted...)
	case errors.Is(err, submit.ErrOutcomeUnknown):
		var rcpts []string
		if res != nil {
			rcpts = res.Accepted
		}
		return p, cancel, &OutcomeUnknownError{MessageID: messageID, Recipients: rcpts, Err: err}
	case errors.As(err, &h):
		// Nothing was sent, or a quota reply paused the account: those
		// who accepted before it have the message; nobody else is refused
		// for good, they wait for the pause to end.
		if errors.As(err, &se) && se.Accepted > 0 && res != nil {
			p.Delivered = append(p.Delivered, res.Accepted...)
		}
		return p, snooze, err
	case errors.As(err, &se):
		if se.Accepted > 0 && res != nil {
			// The server took the message for these (a 250 after DATA).
			p.Delivered = append(p.Delivered, res.Accepted...)
		}
		for _, r := range se.Rejected {
			if !r.Reply.Temporary() {
				p.Refused = append(p.Refused, Refusal{Addr: r.Addr, Reply: r.Reply.Error()})
			}
		}
		if len(se.Retry()) > 0 {
			return p, retry, err
		}
	case ctxErr != nil || errors.Is(err, submit.ErrMailerClosed):
		// The worker is stopping or the job ran out of time: nothing is
		// wrong with the message.
		return p, retry, err
	case errors.As(err, &de), submit.IsTemporary(err), pathBroken(err), errors.Is(err, fleet.ErrUnavailable):
		return p, retry, err
	default:
		return p, cancel, &PermanentError{MessageID: messageID, Delivered: p.Delivered, Err: err}
	}
	if len(p.Refused) > 0 {
		return p, cancel, &RefusedError{MessageID: messageID, Delivered: p.Delivered, Refused: p.Refused}
	}
	return p, complete, nil
}

// pathBroken reports a failure of the way to the server rather than of the
// message: a credential rejected, a certificate that does not verify, TLS
// too old, STARTTLS stripped, a port in the other TLS mode, no usable AUTH
// mechanism, no OAuth2 token. The Mailer returns these inside a
// *submit.DialError, which decide retries anyway; the list keeps them
// retried should one ever arrive without it. Returned as errors, the jobs
// wait with River's backoff (up to their MaxAttempts) for the fix, and the
// Mailer still never logs in again with a rejected credential.
func pathBroken(err error) bool {
	for _, s := range []error{
		submit.ErrAuthFailed, submit.ErrCertificate, submit.ErrTLSVersion, submit.ErrSTARTTLSStripped,
		submit.ErrResponseInjection, submit.ErrWrongMode, submit.ErrPlaintextAuth,
		submit.ErrMechanismUnavailable, submit.ErrTokenUnavailable,
	} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// OutcomeUnknownError cancels a job whose message may have been delivered:
// the connection broke after the message was sent and before the server
// answered (submit.ErrOutcomeUnknown, which errors.Is finds through it).
// River does not retry it, because the retry would deliver the message a
// second time whenever the first one got through.
type OutcomeUnknownError struct {
	MessageID string
	// Recipients are those the server had accepted (RCPT TO) before the
	// message: they may have it.
	Recipients []string
	Err        error
}

// Error says that the message may have been delivered, and what to check
// before resending it.
func (e *OutcomeUnknownError) Error() string {
	return fmt.Sprintf("mailjob: message %s may have been delivered to %s: the connection broke after it was sent and before the server's reply. "+
		"Not retried, since a retry may deliver it twice: check the recipients' mailboxes or the server's log for the Message-ID before enqueueing it again: %v",
		e.MessageID, listOrNone(e.Recipients), e.Err)
}

// Unwrap returns the send's error.
func (e *OutcomeUnknownError) Unwrap() error { return e.Err }

// PermanentError cancels a job whose send failed in a way that trying again
// cannot fix: a 5xx refusal of the sender or the message, a message over
// the server's size or with a line over 998 bytes.
type PermanentError struct {
	MessageID string
	// Delivered are the recipients that earlier attempts delivered to.
	Delivered []string
	Err       error
}

// Error names the message, the reason, and who has the message already.
func (e *PermanentError) Error() string {
	s := fmt.Sprintf("mailjob: message %s not sent, and not retried: %v", e.MessageID, e.Err)
	if len(e.Delivered) > 0 {
		s += "; delivered earlier to " + strings.Join(e.Delivered, ", ")
	}
	return s
}

// Unwrap returns the send's error.
func (e *PermanentError) Unwrap() error { return e.Err }

// RefusedError cancels a job once the only recipients without the message
// are those the server refused permanently (5xx); the others have it.
type RefusedError struct {
	MessageID string
	Delivered []string
	Refused   []Refusal
}

// Error lists the refused recipients with the server's reply, then those
// that have the message.
func (e *RefusedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "mailjob: message %s refused permanently for", e.MessageID)
	for i, r := range e.Refused {
		if i > 0 {
			b.WriteString(";")
		}
		b.WriteString(" " + r.Addr + " (" + r.Reply + ")")
	}
	b.WriteString("; delivered to " + listOrNone(e.Delivered))
	return b.String()
}

func listOrNone(addrs []string) string {
	if len(addrs) == 0 {
		return "no recipient"
	}
	return strings.Join(addrs, ", ")
}
