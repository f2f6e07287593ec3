#!/usr/bin/env bash
# .ci/servers/aiosmtpd.sh start|stop — aiosmtpd (Debian's python3-aiosmtpd,
# 1.4) running .ci/servers/aiosmtpd_server.py on 127.0.0.1:17587 (STARTTLS)
# and 17465 (implicit TLS). Messages and their envelopes are written to a
# directory; see the script.
NAME=aiosmtpd
# shellcheck source=lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

PORT_STARTTLS=17587
PORT_IMPLICIT=17465
DATA=${CI_STATE}/servers/aiosmtpd
STORE=${DATA}/store
LOGFILE=${CI_LOG}/aiosmtpd.log
PY=/usr/bin/python3 # Debian's, where python3-aiosmtpd is installed (not a pyenv shim)

start() {
	if [[ $(dpkg-query -W -f='${db:Status-Status}' python3-aiosmtpd 2>/dev/null || true) != installed ]]; then
		log "installing python3-aiosmtpd"
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends -q python3-aiosmtpd >/dev/null ||
			{ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends -q python3-aiosmtpd >/dev/null; }
	fi
	issue_cert aiosmtpd
	stop
	rm -rf "$STORE"
	install -d -m 0755 "$DATA" "$STORE"
	install -m 0600 /dev/null "$DATA/password"
	printf '%s\n' "$PASS1" >"$DATA/password"
	: >"$LOGFILE"
	log "starting"
	start_daemon aiosmtpd "$PY" "$SERVERS_DIR/aiosmtpd_server.py" --host "$HOST" \
		--starttls-port "$PORT_STARTTLS" --implicit-port "$PORT_IMPLICIT" \
		--cert "$CI_STATE/certs/aiosmtpd/chain.pem" --key "$CI_STATE/certs/aiosmtpd/key.pem" \
		--store "$STORE" --log "$LOGFILE" --user "$USER1" --password-file "$DATA/password"
	wait_smtp "$PORT_STARTTLS" starttls
	wait_smtp "$PORT_IMPLICIT" implicit
	local version
	version="$("$PY" -c 'import aiosmtpd; print(aiosmtpd.__version__)') (Debian $(dpkg-query -W -f='${Version}' python3-aiosmtpd))"
	write_env aiosmtpd "$PORT_STARTTLS" "$PORT_IMPLICIT" "$version" "$STORE" "$LOGFILE"
	log "ready: $HOST:$PORT_STARTTLS (STARTTLS), $HOST:$PORT_IMPLICIT (implicit TLS), aiosmtpd $version"
}

stop() {
	stop_daemon aiosmtpd
}

main "$@"
