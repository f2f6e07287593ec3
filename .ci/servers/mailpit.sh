#!/usr/bin/env bash
# .ci/servers/mailpit.sh start|stop — Mailpit (Go module
# github.com/axllent/mailpit, v1.33.1) on 127.0.0.1:15587 (STARTTLS) and
# 15465 (implicit TLS).
#
# One Mailpit listens on one SMTP port, so two run: one requiring STARTTLS,
# one requiring TLS from the first byte, each with its own database and
# HTTP API (15025 and 15026), through which the tests read messages back.
# Mailpit advertises AUTH before STARTTLS (a quirk: it refuses AUTH until
# TLS is up all the same). Built with go install (GOFLAGS= so the module
# builds on its own terms) into /var/cache/portwise-ci/bin.
NAME=mailpit
# shellcheck source=lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

VERSION=v1.33.1
PORT_STARTTLS=15587
PORT_IMPLICIT=15465
API_STARTTLS=15025
API_IMPLICIT=15026
BIN=${CI_CACHE}/bin/mailpit-${VERSION}
DATA=${CI_STATE}/servers/mailpit
LOGDIR=${CI_LOG}/mailpit

start() {
	if [[ ! -x $BIN ]]; then
		log "building github.com/axllent/mailpit@$VERSION"
		local gobin
		gobin=$(mktemp -d)
		GOFLAGS='' GOBIN=$gobin go install "github.com/axllent/mailpit@$VERSION"
		install -D -m 0755 "$gobin/mailpit" "$BIN"
		rm -rf "$gobin"
	fi
	issue_cert mailpit
	stop
	rm -rf "$DATA"
	install -d -m 0755 "$DATA" "$LOGDIR"
	install -m 0600 /dev/null "$DATA/smtp-auth"
	printf '%s:%s\n' "$USER1" "$PASS1" >"$DATA/smtp-auth"
	local cert=${CI_STATE}/certs/mailpit mode port api
	for mode in starttls implicit; do
		if [[ $mode == starttls ]]; then
			port=$PORT_STARTTLS api=$API_STARTTLS
			set -- --smtp-require-starttls
		else
			port=$PORT_IMPLICIT api=$API_IMPLICIT
			set -- --smtp-require-tls
		fi
		: >"$LOGDIR/$mode.log"
		log "starting ($mode)"
		start_daemon "mailpit-$mode" "$BIN" --smtp "$HOST:$port" --listen "$HOST:$api" \
			--database "$DATA/$mode.db" --smtp-tls-cert "$cert/chain.pem" --smtp-tls-key "$cert/key.pem" "$@" \
			--smtp-auth-file "$DATA/smtp-auth" --smtp-disable-rdns --disable-version-check \
			--verbose --log-file "$LOGDIR/$mode.log"
	done
	wait_smtp "$PORT_STARTTLS" starttls
	wait_smtp "$PORT_IMPLICIT" implicit
	# The module version recorded in the binary (mailpit version says "dev"
	# when built with go install).
	local version
	version=$(go version -m "$BIN" | awk '$1 == "mod" { print $3 }')
	write_env mailpit "$PORT_STARTTLS" "$PORT_IMPLICIT" "${version#v}" \
		"http://$HOST:$API_STARTTLS,http://$HOST:$API_IMPLICIT" "$LOGDIR/starttls.log,$LOGDIR/implicit.log"
	log "ready: $HOST:$PORT_STARTTLS (STARTTLS), $HOST:$PORT_IMPLICIT (implicit TLS), Mailpit $version"
}

stop() {
	stop_daemon mailpit-starttls
	stop_daemon mailpit-implicit
}

main "$@"
