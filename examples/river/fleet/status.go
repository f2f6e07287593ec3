package fleet

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Status is an account's shared limits as the database holds them now.
type Status struct {
	// Account is the account's key (see Account).
	Account string
	// Now is the database's clock, which every time here is on.
	Now time.Time

	// Sessions is the cap on sessions the account's last process to start
	// was given (0: none), Lease its lease, Rate per Interval its rate (0:
	// none); Holder is that process, Updated when it started.
	Sessions int
	Lease    time.Duration // the slots' lease
	Rate     int           // messages per Interval
	Interval time.Duration // Rate's interval
	Holder   string        // the process that set these limits
	Updated  time.Time     // when it did

	// Leases are the slots taken now, by slot.
	Leases []Lease
	// NextTurn is the start of the schedule's first free turn, when it is
	// ahead of Now (turns are taken up to it); zero otherwise.
	NextTurn time.Time
	// Pause is the account's last pause, in force or ended; nil if it
	// never paused.
	Pause *Pause
}

// Lease is a session slot taken.
type Lease struct {
	Slot     int       // 0 to Sessions-1
	Holder   string    // the process holding it
	Acquired time.Time // when it was taken
	Expires  time.Time // when it comes back unless renewed
}

// Pause is an account's pause after a quota reply.
type Pause struct {
	// Since and Until are when the pause began and ends (or ended).
	Since, Until time.Time
	// Reason is the rule and the server's reply.
	Reason string
	// Holder is the process whose send got the reply.
	Holder string
}

// Active reports whether the pause is in force at st.Now.
func (st Status) Active() bool { return st.Pause != nil && st.Pause.Until.After(st.Now) }

// ReadStatus returns the status of every account with shared limits in
// the schema's tables, by account; none when no process ever used them.
func ReadStatus(ctx context.Context, pool *pgxpool.Pool, schema string) ([]Status, error) {
	t := newTables(schema)
	var exists bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, t.account).Scan(&exists); err != nil {
		return nil, unavailable("reading the status", err)
	}
	if !exists {
		return nil, nil
	}
	rows, err := pool.Query(ctx, `
SELECT a.account, now(), a.sessions, a.lease_us, a.rate, a.interval_us, a.holder, a.updated_at,
	CASE WHEN r.next_at > now() THEN r.next_at END,
	p.since, p.until, p.reason, p.holder
FROM `+t.account+` a
LEFT JOIN `+t.rate+` r ON r.account = a.account
LEFT JOIN `+t.pause+` p ON p.account = a.account
ORDER BY a.account`)
	if err != nil {
		return nil, unavailable("reading the status", err)
	}
	var out []Status
	for rows.Next() {
		var (
			st                 Status
			leaseUS, intervUS  int64
			next               *time.Time
			since, until       *time.Time
			reason, pauseOwner *string
		)
		if err := rows.Scan(&st.Account, &st.Now, &st.Sessions, &leaseUS, &st.Rate, &intervUS, &st.Holder, &st.Updated,
			&next, &since, &until, &reason, &pauseOwner); err != nil {
			return nil, unavailable("reading the status", err)
		}
		st.Lease, st.Interval = time.Duration(leaseUS)*time.Microsecond, time.Duration(intervUS)*time.Microsecond
		if next != nil {
			st.NextTurn = *next
		}
		if until != nil {
			st.Pause = &Pause{Since: *since, Until: *until, Reason: *reason, Holder: *pauseOwner}
		}
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable("reading the status", err)
	}
	for i := range out {
		rows, err := pool.Query(ctx, `SELECT slot, holder, acquired_at, expires_at FROM `+t.lease+`
WHERE account = $1 AND expires_at > now() ORDER BY slot`, out[i].Account)
		if err != nil {
			return nil, unavailable("reading the status", err)
		}
		out[i].Leases, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Lease, error) {
			var l Lease
			err := r.Scan(&l.Slot, &l.Holder, &l.Acquired, &l.Expires)
			return l, err
		})
		if err != nil {
			return nil, unavailable("reading the status", err)
		}
	}
	return out, nil
}

// String renders the status as mailworker status prints it.
func (st Status) String() string {
	s := fmt.Sprintf("account %s\n", st.Account)
	if st.Sessions > 0 {
		s += fmt.Sprintf("  sessions: %d of %d taken (lease %s)\n", len(st.Leases), st.Sessions, st.Lease)
		for _, l := range st.Leases {
			s += fmt.Sprintf("    slot %d: %s, since %s, expires in %s\n", l.Slot, l.Holder,
				l.Acquired.Format(time.RFC3339), l.Expires.Sub(st.Now).Round(time.Millisecond))
		}
	} else {
		s += "  sessions: no shared cap\n"
	}
	if st.Rate > 0 {
		s += fmt.Sprintf("  rate: %d per %s", st.Rate, st.Interval)
		if !st.NextTurn.IsZero() {
			s += fmt.Sprintf(", turns taken for the next %s", st.NextTurn.Sub(st.Now).Round(time.Millisecond))
		}
		s += "\n"
	} else {
		s += "  rate: no shared rate\n"
	}
	switch {
	case st.Pause == nil:
		s += "  pause: never paused\n"
	case st.Active():
		s += fmt.Sprintf("  pause: PAUSED since %s until %s (%s left), by %s: %s\n", st.Pause.Since.Format(time.RFC3339),
			st.Pause.Until.Format(time.RFC3339), st.Pause.Until.Sub(st.Now).Round(time.Second), st.Pause.Holder, st.Pause.Reason)
	default:
		s += fmt.Sprintf("  pause: none now; the last from %s until %s, by %s: %s\n", st.Pause.Since.Format(time.RFC3339),
			st.Pause.Until.Format(time.RFC3339), st.Pause.Holder, st.Pause.Reason)
	}
	s += fmt.Sprintf("  limits set by %s at %s\n", st.Holder, st.Updated.Format(time.RFC3339))
	return s
}
