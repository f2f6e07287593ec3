package fleet

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// turn takes the send's turn in the account's schedule and waits for it,
// returning the pause's *HoldError if the account was paused meanwhile.
// The schedule is one row: next_at, the start of the first free turn.
// Taking a turn moves it to greatest(next_at, now()) plus the spacing, in
// one statement, so that the processes' turns never overlap; the turn is
// the old greatest(next_at, now()). This spaces sends as a token bucket
// with a burst of one does, like Mailer.RateLimit in one process. A turn
// further than the deadline is not taken: the send is held instead.
//
// "Now" is clock_timestamp(), not now(): now() is when the statement's
// transaction began, which is stale by the time it got the row's lock
// behind the other processes' turns, and a wait measured from it would
// start late and bunch the sends. The wait is measured at the end of the
// statement, so a send can only be late by the reply's way back, never
// early.
func (l *Limits) turn(ctx context.Context, deadline time.Time) error {
	_, err := l.takeTurn(ctx, deadline)
	return err
}

// takeTurn is turn, returning the turn's start by the database's clock.
func (l *Limits) takeTurn(ctx context.Context, deadline time.Time) (time.Time, error) {
	maxWait := max(time.Until(deadline), 0)
	var (
		slot   time.Time
		waitUS int64
	)
	err := l.cfg.Pool.QueryRow(ctx, `
INSERT INTO `+l.t.rate+` AS r (account, next_at, every_us) VALUES ($1, clock_timestamp() + $2::bigint * `+us+`, $2)
ON CONFLICT (account) DO UPDATE SET next_at = greatest(r.next_at, clock_timestamp()) + $2::bigint * `+us+`, every_us = $2
	WHERE greatest(r.next_at, clock_timestamp()) <= clock_timestamp() + $3::bigint * `+us+`
RETURNING next_at - $2::bigint * `+us+`, (extract(epoch FROM next_at - clock_timestamp()) * 1e6)::bigint - $2`,
		l.cfg.Account, l.every.Microseconds(), maxWait.Microseconds()).Scan(&slot, &waitUS)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, l.rateHold(ctx, maxWait)
	}
	if err != nil {
		if ctx.Err() != nil {
			return time.Time{}, ctx.Err()
		}
		return time.Time{}, unavailable("taking a turn in the schedule", err)
	}
	at := time.Now().Add(time.Duration(waitUS) * time.Microsecond)
	// The account may be paused while the send waits: look just before
	// the turn, so that the look never makes the send late.
	if !sleep(ctx, time.Until(at)-recheckAhead) {
		return slot, ctx.Err()
	}
	if h, err := l.paused(ctx); h != nil || err != nil {
		return slot, holdOr(h, err)
	}
	if !sleep(ctx, time.Until(at)) {
		return slot, ctx.Err()
	}
	return slot, nil
}

// recheckAhead is how long before its turn a send looks whether the
// account was paused meanwhile: enough for a query to a loaded database,
// little enough that only a pause starting in that moment goes unseen by
// the send (one send at most, at 40 a second or less).
const recheckAhead = 25 * time.Millisecond

// rateHold is the HoldError of a send whose turn would come after
// maxWait: it comes back when the turns already taken are mostly spent.
func (l *Limits) rateHold(ctx context.Context, maxWait time.Duration) error {
	var headUS int64
	if err := l.cfg.Pool.QueryRow(ctx, `SELECT (extract(epoch FROM greatest(next_at, clock_timestamp()) - clock_timestamp()) * 1e6)::bigint FROM `+l.t.rate+` WHERE account = $1`,
		l.cfg.Account).Scan(&headUS); err != nil {
		return unavailable("reading the schedule", err)
	}
	head := time.Duration(headUS) * time.Microsecond
	wait := jitter(max(head-maxWait/2, l.every))
	return &HoldError{
		Account: l.cfg.Account, Cause: HoldRate, Wait: wait, Until: time.Now().Add(wait),
		Reason: fmt.Sprintf("%d per %s, turns taken for the next %s", l.cfg.Rate, l.cfg.Interval, head.Round(time.Millisecond)),
	}
}
