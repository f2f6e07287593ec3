package fleet

import (
	"context"
	"time"
)

// wantedFor is how long a process's word that it waits for a slot holds;
// it says it again at every look while it waits.
const wantedFor = time.Second

// want tells the account's other processes that this one waits for a
// session slot and holds none, at most every other PollInterval.
func (l *Limits) want(ctx context.Context) {
	l.mu.Lock()
	if len(l.held) > 0 || time.Since(l.wanted) < 2*l.cfg.PollInterval {
		l.mu.Unlock()
		return
	}
	l.wanted = time.Now()
	l.mu.Unlock()
	l.cfg.Pool.Exec(ctx, `UPDATE `+l.t.account+` SET wanted_at = clock_timestamp() WHERE account = $1`, l.cfg.Account)
}

// handOffIdle hands an idle session over while another process waits:
// every few polls (New runs it), if this process holds a connection idle
// for HandOff and another process said it waits, it closes that
// connection, which gives its slot back. One at a time, so that two
// processes do not trade slots back and forth. The Mailer finds the
// connection closed when it next takes it from its pool, before sending
// anything on it, and dials again (leasedConn.handOff).
func (l *Limits) handOffIdle() {
	c := l.idlest()
	if c == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*l.cfg.PollInterval)
	var wanted bool
	err := l.cfg.Pool.QueryRow(ctx, `SELECT coalesce(wanted_at > clock_timestamp() - $2::bigint * `+us+`, false) FROM `+l.t.account+` WHERE account = $1`,
		l.cfg.Account, wantedFor.Microseconds()).Scan(&wanted)
	cancel()
	if err == nil && wanted && c.handOff(l.cfg.HandOff) {
		l.logger.Info("fleet: handed an idle session over to a process waiting for a slot", "account", l.cfg.Account, "slot", c.ls.slot)
	}
}

// idlest returns this process's connection idle the longest, if it has
// been idle for HandOff.
func (l *Limits) idlest() *leasedConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	var best *leasedConn
	for _, ls := range l.held {
		c := ls.connection()
		if c != nil && c.idle() >= l.cfg.HandOff && (best == nil || c.idle() > best.idle()) {
			best = c
		}
	}
	return best
}
