#!/usr/bin/env bash
# .ci/postgres.sh start|stop — a PostgreSQL server on 127.0.0.1:15432 for
# examples/river's multi-process test. Run as root.
#
#   start  installs Debian's postgresql if it is missing, creates a cluster
#          of its own in /var/lib/portwise-ci/postgres (initdb as the
#          postgres user, once), starts it unless it runs, creates the role
#          and database portwise_river unless they exist, and prints the DSN
#          on stdout, the one line there:
#            export PORTWISE_RIVER_PG=$(bash .ci/postgres.sh start)
#   stop   stops it; the data stays for the next start.
#
# Its own cluster rather than Debian's 15/main: nothing outside this script
# depends on it, it listens on loopback only, on a port of its own, and a
# re-run finds it as it left it. The password is for a throwaway database
# on loopback, like the interop servers' (.ci/servers/lib.sh).
set -euo pipefail

PORT=15432
BASE=/var/lib/portwise-ci/postgres
DATA=$BASE/data
SOCK=$BASE/run
LOG=/var/log/portwise-ci/postgres.log
ROLE=portwise_river
PASS=river-Passw0rd
DB=portwise_river

log() { printf 'postgres.sh: %s\n' "$*" >&2; }

bindir() {
	local d
	for d in /usr/lib/postgresql/*/bin; do
		[[ -x $d/initdb && -x $d/pg_ctl ]] && { echo "$d"; return; }
	done
	return 1
}

as_pg() { runuser -u postgres -- "$@"; }

start() {
	local t=$SECONDS bin
	if ! bin=$(bindir); then
		log "installing postgresql from Debian"
		apt-get update -qq >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >&2
		bin=$(bindir)
	fi
	install -d -o postgres -g postgres -m 0700 "$BASE" "$SOCK"
	install -d -m 0755 "$(dirname "$LOG")"
	touch "$LOG" && chown postgres:postgres "$LOG"
	if [[ ! -s $DATA/PG_VERSION ]]; then
		log "initdb $DATA"
		rm -rf "$DATA"
		as_pg "$bin/initdb" -D "$DATA" -U postgres --auth-local=peer --auth-host=scram-sha-256 \
			--encoding=UTF8 --locale=C.UTF-8 >&2
	fi
	if ! as_pg "$bin/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
		log "starting on 127.0.0.1:$PORT"
		# fsync off: a test database, rebuilt at will; it makes River's many
		# small commits cheap on a CI disk.
		as_pg "$bin/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start \
			-o "-p $PORT -k $SOCK -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" >&2
	fi
	local psql=("$bin/psql" -h "$SOCK" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA)
	if [[ $(as_pg "${psql[@]}" -c "SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'") != 1 ]]; then
		as_pg "${psql[@]}" -c "CREATE ROLE $ROLE LOGIN PASSWORD '$PASS'" >&2
	fi
	if [[ $(as_pg "${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = '$DB'") != 1 ]]; then
		as_pg "${psql[@]}" -c "CREATE DATABASE $DB OWNER $ROLE" >&2
	fi
	log "ready in $((SECONDS - t))s"
	echo "postgres://$ROLE:$PASS@127.0.0.1:$PORT/$DB?sslmode=disable"
}

stop() {
	local bin
	bin=$(bindir) || return 0
	if [[ -s $DATA/PG_VERSION ]] && as_pg "$bin/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
		as_pg "$bin/pg_ctl" -D "$DATA" -w -m fast stop >&2
	fi
}

case ${1:-} in
start) start ;;
stop) stop ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
