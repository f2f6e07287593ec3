package fleet

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portwise/portwise/submit"
)

// maxReason bounds the reason kept with a pause: a rule's name and the
// server's reply, which submit already escaped and bounded.
const maxReason = 400

// paused returns a *HoldError while the account is paused.
func (l *Limits) paused(ctx context.Context) (*HoldError, error) {
	var (
		until  time.Time
		reason string
		waitUS int64
	)
	err := l.cfg.Pool.QueryRow(ctx, `SELECT until, reason, (extract(epoch FROM until - now()) * 1e6)::bigint FROM `+l.t.pause+`
WHERE account = $1 AND until > now()`, l.cfg.Account).Scan(&until, &reason, &waitUS)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, unavailable("reading the account's pause", err)
	}
	return &HoldError{Account: l.cfg.Account, Cause: HoldPaused, Wait: time.Duration(waitUS) * time.Microsecond, Until: until, Reason: reason}, nil
}

// startPause pauses the account for every process after a quota reply:
// until now plus the rule's pause (at most MaxPause), or later if a pause
// already runs to later. It returns the send's HoldError; should the
// database not take the pause, this send is held all the same.
func (l *Limits) startPause(ctx context.Context, q Quota, reply *submit.Reply, sendErr error) *HoldError {
	pause := q.Pause
	if l.cfg.MaxPause > 0 && pause > l.cfg.MaxPause {
		pause = l.cfg.MaxPause
	}
	reason := q.Rule + ": " + reply.Error()
	if len(reason) > maxReason {
		reason = reason[:maxReason] + "…"
	}
	h := &HoldError{Account: l.cfg.Account, Cause: HoldPaused, Wait: pause, Until: time.Now().Add(pause), Reason: reason, Err: sendErr}
	var waitUS int64
	err := l.cfg.Pool.QueryRow(context.WithoutCancel(ctx), `
INSERT INTO `+l.t.pause+` AS p (account, since, until, reason, holder) VALUES ($1, now(), now() + $2::bigint * `+us+`, $3, $4)
ON CONFLICT (account) DO UPDATE SET
	since = CASE WHEN p.until <= now() THEN now() ELSE p.since END,
	reason = CASE WHEN p.until <= excluded.until THEN excluded.reason ELSE p.reason END,
	holder = CASE WHEN p.until <= excluded.until THEN excluded.holder ELSE p.holder END,
	until = greatest(p.until, excluded.until)
RETURNING until, reason, (extract(epoch FROM until - now()) * 1e6)::bigint`,
		l.cfg.Account, pause.Microseconds(), reason, l.cfg.Holder).Scan(&h.Until, &h.Reason, &waitUS)
	if err != nil {
		l.logger.Error("fleet: recording the account's pause failed; only this send is held",
			"account", l.cfg.Account, "reason", reason, "error", err.Error())
		return h
	}
	h.Wait = time.Duration(waitUS) * time.Microsecond
	l.logger.Warn("fleet: account paused after a quota reply", "account", l.cfg.Account, "until", h.Until, "reason", h.Reason)
	return h
}
