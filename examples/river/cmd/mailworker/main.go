// Command mailworker sends mail from a River job queue through a portwise
// Mailer, enqueues test messages, and shows the queue's state.
//
//	mailworker [work] -db sqlite:mail.db -smtp smtps://user:pass@smtp.example.com [-ca FILE] [-workers N]
//	mailworker work -db postgres://... -shared-sessions 3 -shared-rate 30/1m
//	mailworker enqueue -db sqlite:mail.db -n 10 -from me@example.com -to you@example.com
//	mailworker status -db postgres://...
//
// work runs until SIGINT or SIGTERM, then finishes the sends in progress
// (for up to -stop-timeout) and exits. -db names River's database: a SQLite
// file (one worker process) or postgres://... (any number of processes
// sharing the queue); River's tables are created or migrated on start.
// -smtp is a submit.ParseURL URL, or $SMTP_URL when the flag is empty, so
// that the password need not appear in the process list. On PostgreSQL,
// -shared-sessions and -shared-rate are limits every worker sending as
// the account (the URL's host and user) keeps together (package fleet),
// and a quota reply pauses them all; status shows the jobs by state and
// each account's sessions, schedule and pause.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/riverqueue/river"

	"github.com/portwise/portwise/examples/river/fleet"
	"github.com/portwise/portwise/examples/river/mailjob"
	"github.com/portwise/portwise/submit"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "mailworker:", err)
		os.Exit(1)
	}
}

// run runs the subcommand of args; ctx ending stops the worker.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd := "work"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "work":
		return work(ctx, args, stderr)
	case "enqueue":
		return enqueue(ctx, args, stdout, stderr)
	case "status":
		return status(ctx, args, stdout, stderr)
	}
	return fmt.Errorf("unknown command %q: want work, enqueue or status", mailjob.RedactDSN(cmd))
}

// redactArgs quotes arguments for an error: one of them may be a DSN or a
// submission URL given without its flag, password and all.
func redactArgs(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = strconv.Quote(mailjob.RedactDSN(a))
	}
	return strings.Join(out, " ")
}

// dbFlags are the flags both commands take.
type dbFlags struct {
	db, schema string
}

func (f *dbFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.db, "db", "sqlite:mailqueue.db", "River's database: sqlite:PATH, postgres://... or 'host=... dbname=...' (a password is better in $PGPASSWORD or ~/.pgpass, out of the process list)")
	fs.StringVar(&f.schema, "schema", "", "PostgreSQL schema of River's tables (default: the search path)")
}

func work(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("mailworker work", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		dbf         dbFlags
		smtpURL     = fs.String("smtp", "", "submission server URL for submit.ParseURL (default $SMTP_URL)")
		caFile      = fs.String("ca", "", "PEM file of the CA to trust instead of the system's")
		workers     = fs.Int("workers", 10, "jobs worked at once by this process")
		conns       = fs.Int("conns", 0, "Mailer.MaxConns: connections to the server at once (0: the Mailer's default, 3)")
		retryDelay  = fs.Duration("retry-delay", 0, "wait this long before every retry (0: River's backoff, attempt⁴ seconds)")
		jobTimeout  = fs.Duration("job-timeout", 0, "a job's time limit (0: River's, 1m)")
		stopTimeout = fs.Duration("stop-timeout", 30*time.Second, "on SIGTERM, how long sends in progress may take")
		verbose     = fs.Bool("v", false, "log every attempt, not only failures")
		rateLimit   = fs.String("rate", "", "Mailer.RateLimit of this process, N/DURATION, e.g. 30/1m (default: none)")
		shared      fleetFlags
	)
	dbf.register(fs)
	shared.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("work: unexpected arguments %s", redactArgs(fs.Args()))
	}
	if *smtpURL == "" {
		*smtpURL = os.Getenv("SMTP_URL")
	}
	d, host, err := smtpDialer(*smtpURL, *caFile)
	if err != nil {
		return err
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	rate, every, err := parseRate(*rateLimit)
	if err != nil {
		return fmt.Errorf("work: -rate: %w", err)
	}
	hostname, _ := os.Hostname()
	// The process in each job's attempted_by (which worker sent it), and
	// in the lease table.
	id := fmt.Sprintf("mailworker_%.60s_%d", hostname, os.Getpid())

	q, err := mailjob.Open(ctx, dbf.db, dbf.schema)
	if err != nil {
		return err
	}
	defer q.Close()
	m := &submit.Mailer{Dialer: d, Host: host, MaxConns: *conns, RateLimit: rate, RateInterval: every}
	limits, closeLimits, err := shared.limits(ctx, q, *smtpURL, id, *workers, logger)
	if err != nil {
		return err
	}
	defer closeLimits() // after the Mailer's Close: its connections hold slots
	if limits != nil {
		d.NetDialer = limits.Dialer(d.NetDialer)
		// Every attempt takes a turn of the shared schedule through
		// River's retries; the Mailer's own would send outside it.
		m.MaxTries = -1
	}
	defer m.Close()

	ws := river.NewWorkers()
	river.AddWorker(ws, &mailjob.Worker{Mailer: m, Logger: logger, Limits: limits})
	cfg := &river.Config{
		ID:         id,
		Queues:     map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: *workers}},
		Workers:    ws,
		JobTimeout: *jobTimeout,
		// River's own records (a job errored, retrying) only at warn.
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	if *retryDelay > 0 {
		cfg.RetryPolicy = mailjob.FixedRetryPolicy{Delay: *retryDelay}
	}
	client, err := q.NewClient(cfg)
	if err != nil {
		return err
	}
	// The client runs until ctx ends; River's own context must outlive it
	// so that the sends in progress can finish.
	if err := client.Start(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	logger.Warn("mailworker: working", "id", cfg.ID, "db", mailjob.RedactDSN(dbf.db), "smtp", submit.RedactURL(*smtpURL), "workers", *workers,
		"shared_sessions", shared.sessions, "shared_rate", shared.rate)
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), *stopTimeout)
	defer cancel()
	if err := client.Stop(sctx); err != nil {
		// Sends still running past the timeout: cancel them; River makes
		// those jobs available again (or cancels them, when the message
		// may have gone: ErrOutcomeUnknown).
		hctx, hcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer hcancel()
		if err := client.StopAndCancel(hctx); err != nil {
			return fmt.Errorf("work: stopping: %w", err)
		}
	}
	logger.Warn("mailworker: stopped")
	return nil
}

func enqueue(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mailworker enqueue", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		dbf      dbFlags
		n        = fs.Int("n", 1, "how many test messages")
		from     = fs.String("from", "", "envelope sender and From field")
		to       = fs.String("to", "", "recipients, comma-separated")
		subject  = fs.String("subject", "portwise mailworker test", "subject; each message adds its number")
		attempts = fs.Int("attempts", 0, "River's MaxAttempts per job (0: River's default, 25)")
		domain   = fs.String("id-domain", "", "domain of the Message-IDs (default: the sender's)")
	)
	dbf.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("enqueue: unexpected arguments %s", redactArgs(fs.Args()))
	}
	if *from == "" || *to == "" || *n < 1 {
		return errors.New("enqueue: -from, -to and -n ≥ 1 are required")
	}
	rcpts := strings.Split(strings.ReplaceAll(*to, " ", ""), ",")
	if *domain == "" {
		_, *domain, _ = strings.Cut(*from, "@")
	}
	q, err := mailjob.Open(ctx, dbf.db, dbf.schema)
	if err != nil {
		return err
	}
	defer q.Close()
	client, err := q.NewClient(&river.Config{Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return err
	}
	params := make([]river.InsertManyParams, *n)
	ids := make([]string, *n)
	for i := range params {
		ids[i] = mailjob.NewMessageID(*domain)
		a, err := mailjob.NewArgs(*from, rcpts, testMessage(*from, rcpts, fmt.Sprintf("%s %d/%d", *subject, i+1, *n), ids[i]))
		if err != nil {
			return err
		}
		params[i] = river.InsertManyParams{Args: a, InsertOpts: &river.InsertOpts{MaxAttempts: *attempts}}
	}
	res, err := client.InsertMany(ctx, params)
	if err != nil {
		return err
	}
	for i, r := range res {
		fmt.Fprintf(stdout, "job %d %s\n", r.Job.ID, ids[i])
	}
	return nil
}

func status(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mailworker status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var dbf dbFlags
	dbf.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("status: unexpected arguments %s", redactArgs(fs.Args()))
	}
	q, err := mailjob.Open(ctx, dbf.db, dbf.schema)
	if err != nil {
		return err
	}
	defer q.Close()
	counts, err := q.JobCounts(ctx)
	if err != nil {
		return fmt.Errorf("status: counting the jobs: %w", err)
	}
	fmt.Fprintf(stdout, "queue %s\n  jobs:", mailjob.RedactDSN(dbf.db))
	states := slices.Sorted(maps.Keys(counts))
	if len(states) == 0 {
		fmt.Fprint(stdout, " none")
	}
	for _, st := range states {
		fmt.Fprintf(stdout, " %s %d", st, counts[st])
	}
	fmt.Fprintln(stdout)
	if q.Pool() == nil {
		fmt.Fprintln(stdout, "SQLite: one worker process, whose limits are its Mailer's own")
		return nil
	}
	sts, err := fleet.ReadStatus(ctx, q.Pool(), q.Schema())
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	if len(sts) == 0 {
		fmt.Fprintln(stdout, "no shared limits: no worker ran with -shared-sessions or -shared-rate")
	}
	for _, st := range sts {
		fmt.Fprint(stdout, st)
	}
	return nil
}

func testMessage(from string, to []string, subject, id string) []byte {
	return []byte("From: " + from + "\r\n" +
		"To: " + strings.Join(to, ", ") + "\r\n" +
		"Subject: " + subject + "\r\n" +
		"Date: " + time.Now().Format(time.RFC1123Z) + "\r\n" +
		"Message-ID: " + id + "\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"\r\n" +
		"Sent by mailworker through a River queue and a portwise Mailer.\r\n")
}

// smtpDialer makes the Dialer of the submission server URL rawURL,
// trusting the CA in caFile when it is set.
func smtpDialer(rawURL, caFile string) (*submit.Dialer, string, error) {
	if rawURL == "" {
		return nil, "", errors.New("work: -smtp or $SMTP_URL is required")
	}
	d, host, err := submit.ParseURL(rawURL)
	if err != nil {
		return nil, "", err
	}
	if _, pending := d.Auth.(*submit.PendingAuth); pending {
		return nil, "", fmt.Errorf("work: %s has a user without a password", submit.RedactURL(rawURL))
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, "", err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, "", fmt.Errorf("work: %s holds no PEM certificate", caFile)
		}
		d.TLSConfig = &tls.Config{RootCAs: pool}
	}
	return d, host, nil
}
