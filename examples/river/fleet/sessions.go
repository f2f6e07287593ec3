package fleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portwise/portwise/submit"
)

// errSessionsBusy is a Dial's failure when every session this process
// holds is busy and no other slot is free: one of the process's own will
// be free in a moment, so Send keeps its turn and sends again rather than
// waiting for a slot the other processes hold.
var errSessionsBusy = errors.New("fleet: every session slot of the account is taken, this process's own all busy")

// lease is one session slot this process holds.
type lease struct {
	slot    int
	token   string    // this holding's, so that a slot taken over after it expired is never released or renewed by mistake
	taken   time.Time // when it was taken (local clock)
	renewed time.Time // when the database last confirmed it (local clock); guarded by Limits.mu

	mu   sync.Mutex
	conn *leasedConn // nil while spare or connecting
}

func (ls *lease) connection() *leasedConn {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return ls.conn
}

// Dialer returns a submit.ContextDialer, for Dialer.NetDialer, that takes
// a session slot of the account before each TCP connection and gives it
// back when the connection closes; base makes the connections (nil: a
// net.Dialer). A Dial may open more than one connection (ports racing, a
// check of a silent STARTTLS port): each takes a slot. Without Sessions it
// returns base.
//
// A connection waits for a slot within its context, for at most MaxWait
// and half the time the context has left, and then fails with a
// *HoldError. When this process already holds a slot it does not wait: it
// fails at once, and Send sends again on the connection the process has.
// While a connection is open its slot is renewed every Lease/3; a slot
// the database no longer confirms (the process stalled past Lease, the
// database unreachable that long) closes its connection, since another
// process may have it by then.
func (l *Limits) Dialer(base submit.ContextDialer) submit.ContextDialer {
	if base == nil {
		base = &net.Dialer{}
	}
	if l.cfg.Sessions <= 0 {
		return base
	}
	return &leaseDialer{l: l, base: base}
}

type leaseDialer struct {
	l    *Limits
	base submit.ContextDialer
}

// DialContext takes a slot, then connects.
func (d *leaseDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	ls, err := d.l.acquireForDial(ctx)
	if err != nil {
		return nil, err
	}
	c, err := d.base.DialContext(ctx, network, addr)
	if err != nil {
		d.l.release(ls)
		return nil, err
	}
	lc := &leasedConn{Conn: c, l: d.l, ls: ls, lastIO: time.Now()}
	ls.mu.Lock()
	ls.conn = lc
	ls.mu.Unlock()
	return lc, nil
}

// leasedConn gives its slot back when it closes, and knows how long it
// has been idle, for a hand-off.
type leasedConn struct {
	net.Conn
	l    *Limits
	ls   *lease
	once sync.Once

	mu     sync.Mutex
	busy   int       // reads and writes in progress
	lastIO time.Time // the end of the last read or write
	handed bool      // handed over: no read or write may start
}

// Read reads, marking the connection busy meanwhile: a session waiting for
// the server's reply is never idle.
func (c *leasedConn) Read(b []byte) (int, error) {
	if !c.begin() {
		return 0, net.ErrClosed
	}
	defer c.end()
	return c.Conn.Read(b)
}

// Write writes, marking the connection busy meanwhile.
func (c *leasedConn) Write(b []byte) (int, error) {
	if !c.begin() {
		return 0, net.ErrClosed
	}
	defer c.end()
	return c.Conn.Write(b)
}

func (c *leasedConn) begin() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.handed {
		return false
	}
	c.busy++
	return true
}

func (c *leasedConn) end() {
	c.mu.Lock()
	c.busy--
	c.lastIO = time.Now()
	c.mu.Unlock()
}

// idle returns how long the connection has had no read or write in
// progress; 0 while one is.
func (c *leasedConn) idle() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.busy > 0 {
		return 0
	}
	return time.Since(c.lastIO)
}

// handOff closes the connection if it has been idle for at least d,
// deciding so atomically with the start of any read or write: once it
// decided, nothing more is sent or read on it, so that a transaction
// cannot be cut between the message's end and the server's reply. The
// next send on it fails before anything was sent, and the Mailer dials
// again.
func (c *leasedConn) handOff(d time.Duration) bool {
	c.mu.Lock()
	if c.busy > 0 || time.Since(c.lastIO) < d {
		c.mu.Unlock()
		return false
	}
	c.handed = true
	c.mu.Unlock()
	c.Close()
	return true
}

// Close closes the connection, then gives its slot back: the server has
// seen the session end before another process may start one.
func (c *leasedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.ls) })
	return err
}

// acquireForDial returns the spare slot Send took for this Dial, or takes
// one, waiting while this process holds none.
func (l *Limits) acquireForDial(ctx context.Context) (*lease, error) {
	l.mu.Lock()
	if ls := l.spare; ls != nil {
		l.spare = nil
		l.mu.Unlock()
		return ls, nil
	}
	l.mu.Unlock()
	deadline := l.waitDeadline(ctx)
	for {
		ls, err := l.tryAcquire(ctx)
		switch {
		case err != nil:
			return nil, err
		case ls != nil:
			return ls, nil
		case l.holding() > 0:
			return nil, errSessionsBusy
		case !time.Now().Before(deadline):
			return nil, l.sessionsHold(ctx, nil)
		}
		l.want(ctx)
		if !sleep(ctx, l.cfg.PollInterval) {
			return nil, ctx.Err()
		}
	}
}

// ready returns once this process holds a slot, taking one (the spare, for
// its next Dial) when it holds none: a send takes a turn only when it can
// use it. One Send at a time takes the spare; the others wait for it.
func (l *Limits) ready(ctx context.Context, deadline time.Time) error {
	for {
		l.mu.Lock()
		have, mine := len(l.held) > 0, !l.taking && len(l.held) == 0
		if mine {
			l.taking = true
		}
		l.mu.Unlock()
		if have {
			return nil
		}
		if mine {
			ls, err := l.tryAcquire(ctx)
			l.mu.Lock()
			l.taking = false
			if ls != nil {
				l.spare = ls
			}
			l.mu.Unlock()
			if err != nil || ls != nil {
				return err
			}
		}
		if !time.Now().Before(deadline) {
			return l.sessionsHold(ctx, nil)
		}
		l.want(ctx)
		if !sleep(ctx, l.cfg.PollInterval) {
			return ctx.Err()
		}
	}
}

// holding is how many slots this process holds, spare included.
func (l *Limits) holding() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.held)
}

// tryAcquire takes a free slot of the account, if there is one: a slot
// number below Sessions with no row, or whose row has expired. Two
// processes after the same slot both insert; the second finds the first's
// live row on conflict and gets nothing. nil, nil means no slot was free.
func (l *Limits) tryAcquire(ctx context.Context) (*lease, error) {
	var b [16]byte
	rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	var slot int
	err := l.cfg.Pool.QueryRow(ctx, `
WITH free AS (
	SELECT s FROM generate_series(0, $2::integer - 1) AS s
	WHERE NOT EXISTS (SELECT 1 FROM `+l.t.lease+` t WHERE t.account = $1 AND t.slot = s AND t.expires_at > now())
	ORDER BY random() LIMIT 1
)
INSERT INTO `+l.t.lease+` AS t (account, slot, token, holder, acquired_at, expires_at)
SELECT $1, s, $3, $4, now(), now() + $5::bigint * `+us+` FROM free
ON CONFLICT (account, slot) DO UPDATE SET token = excluded.token, holder = excluded.holder,
	acquired_at = excluded.acquired_at, expires_at = excluded.expires_at
	WHERE t.expires_at <= now()
RETURNING slot`,
		l.cfg.Account, l.cfg.Sessions, token, l.cfg.Holder, l.cfg.Lease.Microseconds()).Scan(&slot)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, unavailable("taking a session slot", err)
	}
	now := time.Now()
	ls := &lease{slot: slot, token: token, taken: now, renewed: now}
	l.mu.Lock()
	closed := l.closed
	if !closed {
		l.held[token] = ls
	}
	l.mu.Unlock()
	if closed {
		l.deleteLease(ls)
		return nil, errors.New("fleet: Limits closed")
	}
	return ls, nil
}

// release gives a slot back: it stops renewing it, then deletes its row
// if it is still this holding's.
func (l *Limits) release(ls *lease) {
	l.mu.Lock()
	_, mine := l.held[ls.token]
	delete(l.held, ls.token)
	if l.spare == ls {
		l.spare = nil
	}
	l.mu.Unlock()
	if mine {
		l.deleteLease(ls)
	}
}

func (l *Limits) deleteLease(ls *lease) {
	// Off the caller's context: the connection is closed already, and a
	// row left behind only delays the slot's return until it expires.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := l.cfg.Pool.Exec(ctx, `DELETE FROM `+l.t.lease+` WHERE account = $1 AND slot = $2 AND token = $3`,
		l.cfg.Account, ls.slot, ls.token); err != nil {
		l.logger.Warn("fleet: giving a session slot back failed; it comes back when its lease expires",
			"account", l.cfg.Account, "slot", ls.slot, "lease", l.cfg.Lease, "error", err.Error())
	}
}

// renew extends every slot this process holds by Lease. A slot the
// database no longer has as this holding's was lost (it expired, another
// process took it): its connection is closed. When the database cannot be
// reached, a slot that would expire before the next renewal is treated as
// lost too. A spare unused for MaxWait is given back.
func (l *Limits) renew() {
	l.mu.Lock()
	tokens := make([]string, 0, len(l.held))
	for t := range l.held {
		tokens = append(tokens, t)
	}
	spare := l.spare
	l.mu.Unlock()
	if spare != nil && time.Since(spare.taken) > l.cfg.MaxWait {
		l.mu.Lock()
		if l.spare == spare {
			l.spare = nil
			l.mu.Unlock()
			l.release(spare)
		} else {
			l.mu.Unlock()
		}
	}
	if len(tokens) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.Lease/3)
	defer cancel()
	start := time.Now()
	rows, err := l.cfg.Pool.Query(ctx, `UPDATE `+l.t.lease+` SET expires_at = now() + $3::bigint * `+us+`
WHERE account = $1 AND token = ANY($2) RETURNING token`, l.cfg.Account, tokens, l.cfg.Lease.Microseconds())
	var kept []string
	if err == nil {
		kept, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	confirmed := map[string]bool{}
	for _, t := range kept {
		confirmed[t] = true
	}
	var lost []*lease
	l.mu.Lock()
	for _, t := range tokens {
		ls, ok := l.held[t]
		switch {
		case !ok:
		case confirmed[t]:
			ls.renewed = start
		case err == nil || time.Since(ls.renewed) > l.cfg.Lease-l.cfg.Lease/3:
			lost = append(lost, ls)
			delete(l.held, t)
			if l.spare == ls {
				l.spare = nil
			}
		}
	}
	l.mu.Unlock()
	for _, ls := range lost {
		reason := "the database no longer has it as this process's"
		if err != nil {
			reason = fmt.Sprintf("it could not be renewed before it expires: %v", err)
		}
		l.logger.Warn("fleet: a session slot was lost; closing its connection", "account", l.cfg.Account, "slot", ls.slot, "reason", reason)
		if c := ls.connection(); c != nil {
			c.Close()
		}
	}
}

// sessionsHold is the HoldError of a send that found no slot free.
func (l *Limits) sessionsHold(ctx context.Context, err error) *HoldError {
	reason := fmt.Sprintf("all %d taken", l.cfg.Sessions)
	var holders int
	if qerr := l.cfg.Pool.QueryRow(ctx, `SELECT count(DISTINCT holder) FROM `+l.t.lease+` WHERE account = $1 AND expires_at > now()`,
		l.cfg.Account).Scan(&holders); qerr == nil {
		reason = fmt.Sprintf("all %d taken, by %d of the account's processes", l.cfg.Sessions, holders)
	}
	wait := jitter(min(l.cfg.MaxWait, l.cfg.Lease) / 2)
	return &HoldError{Account: l.cfg.Account, Cause: HoldSessions, Wait: wait, Until: time.Now().Add(wait), Reason: reason, Err: err}
}
