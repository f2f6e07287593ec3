#!/usr/bin/env bash
# .ci/servers/smtp-server.sh start|stop — Nodemailer's smtp-server (npm,
# 3.21) running .ci/servers/node/smtp_server.js on 127.0.0.1:14587
# (STARTTLS) and 14465 (implicit TLS).
NAME=smtp-server
# shellcheck source=lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

PORT_STARTTLS=14587
PORT_IMPLICIT=14465
DATA=${CI_STATE}/servers/smtp-server
STORE=${DATA}/store
LOGFILE=${CI_LOG}/smtp-server.log

start() {
	local node_path
	node_path=$(install_node_modules)
	issue_cert smtp-server
	stop
	rm -rf "$STORE"
	install -d -m 0755 "$DATA" "$STORE"
	install -m 0600 /dev/null "$DATA/password"
	printf '%s\n' "$PASS1" >"$DATA/password"
	: >"$LOGFILE"
	log "starting"
	NODE_PATH=$node_path SMTPSERVER_HOST=$HOST SMTPSERVER_STORE=$STORE SMTPSERVER_USER=$USER1 \
		SMTPSERVER_PASSWORD_FILE=$DATA/password SMTPSERVER_LOG=$LOGFILE \
		SMTPSERVER_KEY=$CI_STATE/certs/smtp-server/key.pem SMTPSERVER_CERT=$CI_STATE/certs/smtp-server/chain.pem \
		SMTPSERVER_STARTTLS_PORT=$PORT_STARTTLS SMTPSERVER_IMPLICIT_PORT=$PORT_IMPLICIT \
		start_daemon smtp-server node "$SERVERS_DIR/node/smtp_server.js"
	wait_smtp "$PORT_STARTTLS" starttls
	wait_smtp "$PORT_IMPLICIT" implicit
	local version
	version=$(node -p "require('$node_path/smtp-server/package.json').version")
	write_env smtp-server "$PORT_STARTTLS" "$PORT_IMPLICIT" "$version" "$STORE" "$LOGFILE"
	log "ready: $HOST:$PORT_STARTTLS (STARTTLS), $HOST:$PORT_IMPLICIT (implicit TLS), smtp-server $version"
}

stop() {
	stop_daemon smtp-server
}

main "$@"
