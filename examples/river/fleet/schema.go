package fleet

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// tables are the fleet's tables, qualified by the schema when there is one.
// Every time in them is the database's (now()), the one clock the
// processes share.
type tables struct {
	// account: the limits the processes of an account were started with,
	// as the last one to start wrote them (for status, and a warning when
	// they differ), and when a process last waited for a session slot
	// holding none (wanted_at), for the others to hand an idle one over.
	account string
	// lease: one row per session slot of an account, (account, slot) for
	// slot 0..Sessions-1; a slot is taken while expires_at is ahead, and
	// its holder renews it every Lease/3 while the connection is open. A
	// killed holder renews nothing, so its slots come back after Lease.
	lease string
	// rate: one row per account, the start of the next free turn; taking
	// a turn moves it one spacing on.
	rate string
	// pause: one row per account, its last pause; in force while until is
	// ahead.
	pause string
}

func newTables(schema string) tables {
	q := func(name string) string {
		if schema == "" {
			return pgx.Identifier{name}.Sanitize()
		}
		return pgx.Identifier{schema, name}.Sanitize()
	}
	return tables{
		account: q("portwise_fleet_account"),
		lease:   q("portwise_fleet_lease"),
		rate:    q("portwise_fleet_rate"),
		pause:   q("portwise_fleet_pause"),
	}
}

// ddl creates the tables, once.
func (t tables) ddl() string {
	return strings.NewReplacer("{account}", t.account, "{lease}", t.lease, "{rate}", t.rate, "{pause}", t.pause).Replace(`
CREATE TABLE IF NOT EXISTS {account} (
	account     text PRIMARY KEY,
	sessions    integer NOT NULL,
	lease_us    bigint NOT NULL,
	rate        integer NOT NULL,
	interval_us bigint NOT NULL,
	holder      text NOT NULL,
	updated_at  timestamptz NOT NULL,
	wanted_at   timestamptz
);
CREATE TABLE IF NOT EXISTS {lease} (
	account     text NOT NULL,
	slot        integer NOT NULL,
	token       text NOT NULL,
	holder      text NOT NULL,
	acquired_at timestamptz NOT NULL,
	expires_at  timestamptz NOT NULL,
	PRIMARY KEY (account, slot)
);
CREATE TABLE IF NOT EXISTS {rate} (
	account  text PRIMARY KEY,
	next_at  timestamptz NOT NULL,
	every_us bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS {pause} (
	account text PRIMARY KEY,
	since   timestamptz NOT NULL,
	until   timestamptz NOT NULL,
	reason  text NOT NULL,
	holder  text NOT NULL
);`)
}

// migrate creates the tables under a transaction-scoped advisory lock:
// CREATE TABLE IF NOT EXISTS run by processes starting together can
// otherwise collide in PostgreSQL's catalog.
func migrate(ctx context.Context, pool *pgxpool.Pool, t tables) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext('portwise fleet tables'))"); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, t.ddl()); err != nil {
		return fmt.Errorf("creating the tables: %w", err)
	}
	return tx.Commit(ctx)
}

// us is the SQL for a bigint parameter of microseconds as an interval.
const us = "interval '1 microsecond'"
