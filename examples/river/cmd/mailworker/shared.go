package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/portwise/portwise/examples/river/fleet"
	"github.com/portwise/portwise/examples/river/mailjob"
)

// fleetFlags are work's flags for the limits every worker of an account
// keeps together.
type fleetFlags struct {
	sessions int
	rate     string
	lease    time.Duration
	maxWait  time.Duration
	maxPause time.Duration
}

func (f *fleetFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&f.sessions, "shared-sessions", 0, "sessions to the account's server open at once across every worker on this PostgreSQL queue (0: no shared cap)")
	fs.StringVar(&f.rate, "shared-rate", "", "messages across every worker on this PostgreSQL queue, N/DURATION, e.g. 30/1m (default: no shared rate)")
	fs.DurationVar(&f.lease, "lease", 30*time.Second, "how long a killed worker's session slots stay taken (renewed every third of it)")
	fs.DurationVar(&f.maxWait, "max-wait", 10*time.Second, "how long a job waits for a session slot or its turn before it is snoozed")
	fs.DurationVar(&f.maxPause, "max-pause", 0, "the longest pause a quota reply starts (0: the rule's, an hour for a daily limit)")
}

// on reports whether any shared limit was asked for; a quota reply pauses
// the account only then, as only then do the workers share a database row
// to pause.
func (f *fleetFlags) on() bool { return f.sessions > 0 || f.rate != "" }

// limits makes the account's shared limits on q's PostgreSQL database, in
// a pool of their own, so that a turn's query never queues behind River's;
// nil without shared limits. close closes them, then their pool.
func (f *fleetFlags) limits(ctx context.Context, q *mailjob.Queue, smtpURL, holder string, workers int, logger *slog.Logger) (l *fleet.Limits, close func(), err error) {
	if !f.on() {
		return nil, func() {}, nil
	}
	if q.Pool() == nil {
		return nil, nil, errors.New("work: -shared-sessions and -shared-rate need a PostgreSQL queue: a SQLite one has one worker process, whose limits are its Mailer's own (-conns, -rate)")
	}
	rate, every, err := parseRate(f.rate)
	if err != nil {
		return nil, nil, fmt.Errorf("work: -shared-rate: %w", err)
	}
	account, err := fleet.Account(smtpURL)
	if err != nil {
		return nil, nil, err
	}
	pool, err := q.OpenPool(ctx, int32(workers+4))
	if err != nil {
		return nil, nil, err
	}
	l, err = fleet.New(ctx, fleet.Config{
		Pool: pool, Schema: q.Schema(), Account: account, Holder: holder,
		Sessions: f.sessions, Lease: f.lease, Rate: rate, Interval: every,
		MaxWait: f.maxWait, MaxPause: f.maxPause, Logger: logger,
	})
	if err != nil {
		pool.Close()
		return nil, nil, err
	}
	return l, func() { l.Close(); pool.Close() }, nil
}

// parseRate reads "N/DURATION" ("30/1m", "20/1s"); "" is no limit.
func parseRate(s string) (int, time.Duration, error) {
	if s == "" {
		return 0, 0, nil
	}
	n, d, ok := strings.Cut(s, "/")
	count, err := strconv.Atoi(n)
	if !ok || err != nil || count < 1 {
		return 0, 0, fmt.Errorf("%q: want N/DURATION, e.g. 30/1m", s)
	}
	every, err := time.ParseDuration(d)
	if err != nil || every <= 0 {
		return 0, 0, fmt.Errorf("%q: want N/DURATION, e.g. 30/1m", s)
	}
	return count, every, nil
}
