#!/usr/bin/env bash
# .ci/servers/chasquid.sh start|stop — chasquid (Debian's chasquid, 1.11) on
# 127.0.0.1:16587 (STARTTLS) and 16465 (implicit TLS); its SMTP port (25
# elsewhere) is 16025, unused by the tests.
#
# The package conflicts with postfix (both provide mail-transport-agent), so
# it is fetched with apt-get download and unpacked with dpkg -x under
# /var/cache/portwise-ci/chasquid; chasquid is one static binary. It offers
# AUTH only over TLS by design. Local delivery runs its mail delivery agent
# (a two-line sh here) which writes each message, as chasquid hands it over,
# into one maildir.
NAME=chasquid
# shellcheck source=lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

PORT_SMTP=16025
PORT_STARTTLS=16587
PORT_IMPLICIT=16465
ROOT=${CI_CACHE}/chasquid
BIN=${ROOT}/usr/bin
DATA=${CI_STATE}/servers/chasquid
CONF=${DATA}/etc
MAILDIR=${DATA}/maildir
LOGDIR=${CI_LOG}/chasquid

install_chasquid() {
	local debs=${CI_CACHE}/deb
	[[ -x $BIN/chasquid ]] && return 0
	install -d "$debs"
	if ! compgen -G "$debs/chasquid_1.11*.deb" >/dev/null; then
		log "downloading chasquid"
		(cd "$debs" && { apt-get download -q chasquid >/dev/null 2>&1 ||
			{ apt-get update -q >/dev/null && apt-get download -q chasquid >/dev/null 2>&1; }; })
	fi
	rm -rf "$ROOT.tmp"
	dpkg -x "$(compgen -G "$debs/chasquid_1.11*.deb" | head -n 1)" "$ROOT.tmp"
	rm -rf "$ROOT"
	mv "$ROOT.tmp" "$ROOT"
}

start() {
	install_chasquid
	issue_cert chasquid
	stop
	rm -rf "$CONF" "$MAILDIR" "$DATA/data"
	install -d -m 0755 "$DATA" "$CONF" "$CONF/certs/localhost" "$CONF/domains/$DOMAIN" "$DATA/data" "$LOGDIR" \
		"$MAILDIR" "$MAILDIR/new" "$MAILDIR/cur" "$MAILDIR/tmp"
	cp "$CI_STATE/certs/chasquid/chain.pem" "$CONF/certs/localhost/fullchain.pem"
	cp "$CI_STATE/certs/chasquid/key.pem" "$CONF/certs/localhost/privkey.pem"
	: >"$LOGDIR/chasquid.log"
	cat >"$CONF/chasquid.conf" <<CONF
# Written by .ci/servers/chasquid.sh on every start.
hostname: "localhost"
smtp_address: "${HOST}:${PORT_SMTP}"
submission_address: "${HOST}:${PORT_STARTTLS}"
submission_over_tls_address: "${HOST}:${PORT_IMPLICIT}"
data_dir: "${DATA}/data"
mail_log_path: "${LOGDIR}/mail.log"
mail_delivery_agent_bin: "/bin/sh"
mail_delivery_agent_args: "-c"
mail_delivery_agent_args: "f=\$(mktemp ${MAILDIR}/tmp/XXXXXXXX) && cat >\"\$f\" && chmod 0644 \"\$f\" && mv \"\$f\" ${MAILDIR}/new/"
mail_delivery_agent_args: "mda"
mail_delivery_agent_args: "%to%"
CONF
	local u
	for u in "$USER1" "$RCPT" "dörte@$DOMAIN"; do
		"$BIN/chasquid-util" -C="$CONF" user-add "$u" --password="$PASS1" >/dev/null
	done
	log "starting"
	# -v=2 logs each SMTP command ("-> AUTH <redacted>"): the tests count AUTH there.
	start_daemon chasquid "$BIN/chasquid" -config_dir="$CONF" -logfile="$LOGDIR/chasquid.log" -v=2
	wait_smtp "$PORT_STARTTLS" starttls
	wait_smtp "$PORT_IMPLICIT" implicit
	local version
	version=$("$BIN/chasquid" -version 2>&1 | sed -n 's/^chasquid \([^ ]*\).*/\1/p')
	write_env chasquid "$PORT_STARTTLS" "$PORT_IMPLICIT" "${version%%-*} (Debian $version)" "$MAILDIR" "$LOGDIR/chasquid.log"
	log "ready: $HOST:$PORT_STARTTLS (STARTTLS), $HOST:$PORT_IMPLICIT (implicit TLS), chasquid $version"
}

stop() {
	stop_daemon chasquid
}

main "$@"
