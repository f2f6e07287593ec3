#!/usr/bin/env bash
# .ci/servers/haraka.sh start|stop — Haraka (npm, 3.3) on 127.0.0.1:13587
# (STARTTLS) and 13465 (implicit TLS: Haraka's smtps_port).
#
# Plugins: tls, portwise_auth (auth/flat_file offering AUTH only once TLS is
# up: flat_file itself offers it in clear to private addresses) and
# our queue plugin .ci/servers/haraka/portwise_store.js, which writes each
# message and its envelope to a directory. Log level "protocol": every
# command is in the log (the tests count AUTH there).
NAME=haraka
# shellcheck source=lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

PORT_STARTTLS=13587
PORT_IMPLICIT=13465
DATA=${CI_STATE}/servers/haraka
ROOT=${DATA}/root
STORE=${DATA}/store
LOGFILE=${CI_LOG}/haraka.log

start() {
	local node_path
	node_path=$(install_node_modules)
	issue_cert haraka
	stop
	rm -rf "$ROOT" "$STORE"
	install -d -m 0755 "$DATA" "$ROOT/config" "$ROOT/plugins" "$ROOT/queue" "$STORE"
	# Haraka's packaged defaults first (connection.ini and the rest), then ours.
	cp -r "$node_path/haraka/config/." "$ROOT/config/"
	cp "$SERVERS_DIR/haraka/portwise_store.js" "$SERVERS_DIR/haraka/portwise_auth.js" "$ROOT/plugins/"
	local cert=${CI_STATE}/certs/haraka
	echo localhost >"$ROOT/config/me"
	printf 'tls\nportwise_auth\nportwise_store\n' >"$ROOT/config/plugins"
	cat >"$ROOT/config/smtp.ini" <<INI
[main]
listen=${HOST}:${PORT_STARTTLS},${HOST}:${PORT_IMPLICIT}
smtps_port=${PORT_IMPLICIT}
nodes=0
daemonize=false
INI
	cat >"$ROOT/config/tls.ini" <<INI
[main]
key=${cert}/key.pem
cert=${cert}/chain.pem
INI
	cat >"$ROOT/config/auth_flat_file.ini" <<INI
[core]
methods=PLAIN,LOGIN

[users]
${USER1}=${PASS1}
INI
	printf '[main]\nlevel=protocol\ntimestamps=true\n' >"$ROOT/config/log.ini"
	: >"$CI_LOG/haraka.out"
	log "starting"
	PORTWISE_HARAKA_STORE=$STORE NODE_PATH=$node_path \
		start_daemon haraka node "$node_path/haraka/bin/haraka" -c "$ROOT"
	# Haraka logs to stdout: the .out file is its log.
	ln -sf "$CI_LOG/haraka.out" "$LOGFILE"
	wait_smtp "$PORT_STARTTLS" starttls 60
	wait_smtp "$PORT_IMPLICIT" implicit 60
	local version
	version=$(node -p "require('$node_path/haraka/package.json').version")
	write_env haraka "$PORT_STARTTLS" "$PORT_IMPLICIT" "$version" "$STORE" "$LOGFILE"
	log "ready: $HOST:$PORT_STARTTLS (STARTTLS), $HOST:$PORT_IMPLICIT (implicit TLS), Haraka $version"
}

stop() {
	stop_daemon haraka
}

main "$@"
