package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/portwise/portwise/submit"
)

// The defaults of Config's zero fields.
const (
	defaultLease        = 30 * time.Second
	defaultMaxWait      = 10 * time.Second
	defaultPollInterval = 50 * time.Millisecond
	defaultHandOff      = time.Second
)

// Config sets an account's shared limits. Give every process that sends as
// the account the same values: each applies its own, against rows they all
// share.
type Config struct {
	// Pool is the PostgreSQL database the processes share; River's own
	// will do. It must be set.
	Pool *pgxpool.Pool
	// Schema is the schema holding the fleet's tables (created if
	// missing), as River's; "" is the search path.
	Schema string
	// Account is the key of the account (see Account); it must be set.
	Account string
	// Holder names this process in the lease table and in status; ""
	// means the host name and the process id.
	Holder string

	// Sessions, when positive, caps the sessions open to the account's
	// server at once across every process: each TCP connection made
	// through Dialer takes a slot first. 0 means no cap.
	Sessions int
	// Lease is how long a slot stays taken without its process renewing
	// it, which it does every Lease/3 while the connection is open: the
	// slots of a process that was killed come back after Lease. 0 means
	// 30s.
	Lease time.Duration

	// Rate, when positive, is how many messages every process together
	// sends per Interval, spaced evenly as Mailer.RateLimit spaces one
	// process's (burst 1): each send takes a turn in a schedule kept in
	// the database. 0 means no shared rate.
	Rate int
	// Interval is Rate's interval; 0 means one second.
	Interval time.Duration

	// MaxWait bounds how long a send waits for a session slot or for its
	// turn, and never more than half the time left to its context; past
	// it the send returns a *HoldError instead (mailjob snoozes the job).
	// 0 means 10s.
	MaxWait time.Duration
	// MaxPause, when positive, caps the pause a quota reply starts (a
	// rule's Pause is an hour for a daily limit): the account tries one
	// send again after it, and pauses again if still refused.
	MaxPause time.Duration
	// Quota classifies replies; nil means Classify (Rules).
	Quota Matcher
	// PollInterval is how often a send waiting for a session slot looks
	// for one; 0 means 50ms.
	PollInterval time.Duration
	// HandOff is how long a connection must have been idle (no read or
	// write) for this process to close it when another process of the
	// account waits for a slot and holds none: an idle pooled connection
	// would otherwise keep its slot until the Mailer's IdleTimeout while
	// the other process's jobs wait. 0 means 1s; a negative value never
	// hands a slot over.
	HandOff time.Duration
	// Logger receives a record when the account is paused and when a
	// slot was lost; nil is silent. It never receives a secret.
	Logger *slog.Logger
}

// Limits holds one process's sends as an account to the limits it shares
// with every other process sending as that account, through PostgreSQL:
// a cap on sessions (Dialer), a rate (Send), and a pause after a quota
// reply (Send). It is safe for concurrent use. It adds to the Mailer's own
// limits (MaxConns, RateLimit), which still apply inside the process.
type Limits struct {
	cfg    Config
	t      tables
	every  time.Duration // spacing of the turns; 0 without Rate
	match  Matcher
	logger *slog.Logger

	mu        sync.Mutex
	held      map[string]*lease // by token: slots this process holds
	spare     *lease            // taken by Send for this process's next Dial
	taking    bool              // a Send is taking the spare
	wanted    time.Time         // when this process last said it waits for a slot
	closed    bool
	stop      chan struct{}
	heartbeat sync.WaitGroup
}

// New makes the Limits of cfg.Account: it creates the tables if missing,
// records the account's limits for status, and starts renewing the slots
// this process will hold. Close it after the Mailer that dials through it.
func New(ctx context.Context, cfg Config) (*Limits, error) {
	if cfg.Pool == nil || cfg.Account == "" {
		return nil, errors.New("fleet: Config needs a Pool and an Account")
	}
	if cfg.Sessions < 0 || cfg.Rate < 0 {
		return nil, errors.New("fleet: Sessions and Rate cannot be negative")
	}
	if cfg.Lease <= 0 {
		cfg.Lease = defaultLease
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = defaultMaxWait
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = defaultPollInterval
	}
	if cfg.HandOff == 0 {
		cfg.HandOff = defaultHandOff
	}
	if cfg.Holder == "" {
		host, _ := os.Hostname()
		cfg.Holder = fmt.Sprintf("%s_%d", host, os.Getpid())
	}
	l := &Limits{
		cfg:    cfg,
		t:      newTables(cfg.Schema),
		match:  cfg.Quota,
		logger: cfg.Logger,
		held:   map[string]*lease{},
		stop:   make(chan struct{}),
	}
	if l.match == nil {
		l.match = Classify
	}
	if l.logger == nil {
		l.logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Rate > 0 {
		l.every = cfg.Interval / time.Duration(cfg.Rate)
	}
	if err := migrate(ctx, cfg.Pool, l.t); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if err := l.record(ctx); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if cfg.Sessions > 0 {
		l.repeat(cfg.Lease/3, l.renew) // a dead process's slots come back within a Lease
		if cfg.HandOff > 0 {
			l.repeat(5*cfg.PollInterval, l.handOffIdle)
		}
	}
	return l, nil
}

// repeat runs f every d, in a goroutine of its own, until Close.
func (l *Limits) repeat(d time.Duration, f func()) {
	l.heartbeat.Add(1)
	go func() {
		defer l.heartbeat.Done()
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-t.C:
				f()
			}
		}
	}()
}

// record writes the limits this process uses in the account's row, and
// warns when another process wrote different ones.
func (l *Limits) record(ctx context.Context) error {
	c := l.cfg
	var sessions, rate int
	var leaseUS, intervalUS int64
	var holder string
	err := c.Pool.QueryRow(ctx, `
WITH old AS (SELECT sessions, lease_us, rate, interval_us, holder FROM `+l.t.account+` WHERE account = $1),
up AS (
	INSERT INTO `+l.t.account+` (account, sessions, lease_us, rate, interval_us, holder, updated_at)
	VALUES ($1, $2, $3, $4, $5, $6, now())
	ON CONFLICT (account) DO UPDATE SET sessions = excluded.sessions, lease_us = excluded.lease_us,
		rate = excluded.rate, interval_us = excluded.interval_us, holder = excluded.holder, updated_at = now()
)
SELECT coalesce((SELECT sessions FROM old), $2), coalesce((SELECT lease_us FROM old), $3),
	coalesce((SELECT rate FROM old), $4), coalesce((SELECT interval_us FROM old), $5), coalesce((SELECT holder FROM old), $6)`,
		c.Account, c.Sessions, c.Lease.Microseconds(), c.Rate, c.Interval.Microseconds(), c.Holder,
	).Scan(&sessions, &leaseUS, &rate, &intervalUS, &holder)
	if err != nil {
		return err
	}
	if sessions != c.Sessions || leaseUS != c.Lease.Microseconds() || rate != c.Rate || intervalUS != c.Interval.Microseconds() {
		l.logger.Warn("fleet: this process's limits differ from those another process of the account was started with; give every process the same",
			"account", c.Account, "other", holder,
			"sessions", c.Sessions, "other_sessions", sessions, "rate", c.Rate, "other_rate", rate,
			"interval", c.Interval, "other_interval", time.Duration(intervalUS)*time.Microsecond)
	}
	return nil
}

// Close stops renewing the process's slots and gives them back; a
// connection still open through Dialer is closed first, so that no session
// outlives its slot. Close the Mailer before it.
func (l *Limits) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.stop)
	held := make([]*lease, 0, len(l.held))
	for _, ls := range l.held {
		held = append(held, ls)
	}
	l.mu.Unlock()
	l.heartbeat.Wait()
	for _, ls := range held {
		if c := ls.connection(); c != nil {
			c.Close() // releases the slot
		} else {
			l.release(ls)
		}
	}
	return nil
}

// Send sends through send within the account's shared limits: it returns a
// *HoldError, having sent nothing, while the account is paused; it waits
// for the account's next turn (and, with Sessions, until this process
// holds a session slot, so that no turn goes by unused) for at most
// MaxWait, and returns a *HoldError if there is none by then. A send that
// gets a quota reply (Config.Quota) pauses the account for every process
// and returns a *HoldError wrapping the send's error.
//
// The Mailer's own retries would send outside the shared schedule: give it
// MaxAttempts -1, so that every attempt goes through Send (mailjob's
// retries do).
func (l *Limits) Send(ctx context.Context, send func(context.Context) (*submit.SendResult, error)) (*submit.SendResult, error) {
	deadline := l.waitDeadline(ctx)
	if h, err := l.paused(ctx); h != nil || err != nil {
		return &submit.SendResult{}, holdOr(h, err)
	}
	if l.every > 0 {
		if l.cfg.Sessions > 0 {
			if err := l.ready(ctx, deadline); err != nil {
				return &submit.SendResult{}, err
			}
		}
		if err := l.turn(ctx, deadline); err != nil {
			return &submit.SendResult{}, err
		}
	}
	for {
		res, err := send(ctx)
		if errors.Is(err, errSessionsBusy) {
			// This process's sessions are all busy and no other slot is
			// free: one of them will be free in a moment; keep the turn.
			if time.Now().Before(deadline) && ctx.Err() == nil && sleep(ctx, l.cfg.PollInterval/2) {
				continue
			}
			return res, l.sessionsHold(ctx, err)
		}
		if q, reply, ok := quotaReply(err, l.match); ok {
			return res, l.startPause(ctx, q, reply, err)
		}
		return res, err
	}
}

// holdOr returns h, or err when there is no hold.
func holdOr(h *HoldError, err error) error {
	if h != nil {
		return h
	}
	return err
}

// waitDeadline is when a send stops waiting: MaxWait from now, and never
// past half the time left to ctx, which the send itself needs.
func (l *Limits) waitDeadline(ctx context.Context) time.Time {
	d := time.Now().Add(l.cfg.MaxWait)
	if dl, ok := ctx.Deadline(); ok {
		if half := time.Now().Add(time.Until(dl) / 2); half.Before(d) {
			d = half
		}
	}
	return d
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// jitter returns d plus up to half of d, at random, so that held sends of
// several processes do not all come back at the same instant.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d + rand.N(d/2+1)
}

func unavailable(op string, err error) error {
	return fmt.Errorf("%w: %s: %v", ErrUnavailable, op, err)
}
