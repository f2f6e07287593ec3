package mailjob

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"
	_ "modernc.org/sqlite" // the pure-Go SQLite that River's SQLite driver is tested with
)

// Client is the part of a *river.Client that the worker's programs and
// tests use. River's client is generic in its driver's transaction type;
// both drivers' clients satisfy this interface, so a program can choose
// the database at run time.
type Client interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	StopAndCancel(ctx context.Context) error
	Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
	InsertMany(ctx context.Context, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error)
	JobGet(ctx context.Context, id int64) (*rivertype.JobRow, error)
	JobList(ctx context.Context, params *river.JobListParams) (*river.JobListResult, error)
}

// Queue is River's database: an embedded SQLite file, for one worker
// process, or PostgreSQL, which any number of worker processes share.
type Queue struct {
	sqlite *sql.DB
	pg     *pgxpool.Pool
	schema string
	dsn    string
}

// Open opens the database that dsn names and migrates River's tables up to
// the version the River in this module needs:
//
//	sqlite:PATH                      a SQLite file, created if missing
//	postgres://... postgresql://...  PostgreSQL (pgx's connection string)
//	host=... user=... dbname=...     PostgreSQL, in the keyword/value form
//
// Its errors never show a password (see RedactDSN).
// schema, when not "", is the PostgreSQL schema holding River's tables
// (which must exist); "" uses the search path. Migrations on PostgreSQL run
// under an advisory lock, so that worker processes starting together do
// not race to create the tables. A SQLite file takes one process: River's
// SQLite driver uses one connection, as SQLite allows one writer.
func Open(ctx context.Context, dsn, schema string) (*Queue, error) {
	q := &Queue{schema: schema, dsn: dsn}
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		if schema != "" {
			return nil, errors.New("mailjob: a schema is for PostgreSQL; a SQLite file is its own")
		}
		path := strings.TrimPrefix(strings.TrimPrefix(dsn, "sqlite:"), "//")
		if path == "" || strings.ContainsAny(path, "?#") {
			return nil, fmt.Errorf("mailjob: %q: want sqlite:PATH, a file name without ? or #", dsn)
		}
		// WAL lets readers (River's UI, sqlite3) in beside the writer; the
		// busy timeout makes a second process wait rather than fail.
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
		if err != nil {
			return nil, fmt.Errorf("mailjob: opening %s: %w", path, err)
		}
		// River's advice for SQLite: one connection, so that its parallel
		// operations queue up instead of failing with SQLITE_BUSY.
		db.SetMaxOpenConns(1)
		q.sqlite = db
		if err := migrate(ctx, riversqlite.New(db), ""); err != nil {
			db.Close()
			return nil, err
		}
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"), isKeywordValue(dsn):
		pool, err := pgxpool.New(ctx, dsn)
		if err != nil {
			return nil, redactErr(fmt.Errorf("mailjob: PostgreSQL: %w", err), dsn)
		}
		q.pg = pool
		if err := q.migratePG(ctx, dsn); err != nil {
			pool.Close()
			return nil, redactErr(err, dsn)
		}
	default:
		return nil, fmt.Errorf("mailjob: database %q: want sqlite:PATH, a postgres:// URL or PostgreSQL's keyword/value form (host=... dbname=...)", RedactDSN(dsn))
	}
	return q, nil
}

// isKeywordValue reports PostgreSQL's keyword/value form of a DSN,
// "host=db.example.com user=mail dbname=queue", which pgx reads too.
func isKeywordValue(dsn string) bool {
	k, _, ok := strings.Cut(strings.TrimSpace(dsn), "=")
	return ok && k != "" && !strings.ContainsAny(k, ":/")
}

// migratePG migrates under a session advisory lock held on a connection of
// its own, which closing it releases whatever happens.
func (q *Queue) migratePG(ctx context.Context, dsn string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("mailjob: PostgreSQL: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock(hashtext('portwise mailjob migrate'))"); err != nil {
		return fmt.Errorf("mailjob: PostgreSQL: locking for the migration: %w", err)
	}
	return migrate(ctx, riverpgxv5.New(q.pg), q.schema)
}

func migrate[TTx any](ctx context.Context, driver riverdriver.Driver[TTx], schema string) error {
	m, err := rivermigrate.New(driver, &rivermigrate.Config{
		Schema: schema,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return fmt.Errorf("mailjob: migrating River's tables: %w", err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("mailjob: migrating River's tables: %w", err)
	}
	return nil
}

// NewClient returns a River client on the queue's database, with cfg's
// Schema set to the queue's. A cfg without Workers makes an insert-only
// client.
func (q *Queue) NewClient(cfg *river.Config) (Client, error) {
	c := *cfg
	c.Schema = q.schema
	if q.sqlite != nil {
		return river.NewClient(riversqlite.New(q.sqlite), &c)
	}
	return river.NewClient(riverpgxv5.New(q.pg), &c)
}

// Pool returns the PostgreSQL pool, nil on SQLite.
func (q *Queue) Pool() *pgxpool.Pool { return q.pg }

// OpenPool opens another pool of at most maxConns connections on the
// queue's PostgreSQL database, for work whose queries must not queue
// behind River's (the shared limits' turns). Close it before the Queue.
func (q *Queue) OpenPool(ctx context.Context, maxConns int32) (*pgxpool.Pool, error) {
	if q.pg == nil {
		return nil, errors.New("mailjob: a second pool is for PostgreSQL")
	}
	cfg, err := pgxpool.ParseConfig(q.dsn)
	if err != nil {
		return nil, redactErr(fmt.Errorf("mailjob: PostgreSQL: %w", err), q.dsn)
	}
	cfg.MaxConns = maxConns
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, redactErr(fmt.Errorf("mailjob: PostgreSQL: %w", err), q.dsn)
	}
	return pool, nil
}

// Schema returns the PostgreSQL schema of River's tables ("" for the
// search path).
func (q *Queue) Schema() string { return q.schema }

// JobCounts returns how many jobs of each state (available, scheduled,
// running, completed, retryable, cancelled, discarded...) the queue holds.
func (q *Queue) JobCounts(ctx context.Context) (map[string]int, error) {
	const query = "SELECT CAST(state AS TEXT), count(*) FROM %s GROUP BY state"
	if q.sqlite != nil {
		rows, err := q.sqlite.QueryContext(ctx, fmt.Sprintf(query, "river_job"))
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		return countsByState(rows)
	}
	table := pgx.Identifier{"river_job"}
	if q.schema != "" {
		table = pgx.Identifier{q.schema, "river_job"}
	}
	rows, err := q.pg.Query(ctx, fmt.Sprintf(query, table.Sanitize()))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return countsByState(rows)
}

// countsByState reads rows of (state, count), from database/sql or pgx.
func countsByState(rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}) (map[string]int, error) {
	out := map[string]int{}
	for rows.Next() {
		var state string
		var n int
		if err := rows.Scan(&state, &n); err != nil {
			return nil, err
		}
		out[state] = n
	}
	return out, rows.Err()
}

// Close closes the database; stop the queue's clients first.
func (q *Queue) Close() {
	if q.sqlite != nil {
		q.sqlite.Close()
	}
	if q.pg != nil {
		q.pg.Close()
	}
}
