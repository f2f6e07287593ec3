#!/usr/bin/env bash
# .ci/servers/postfix.sh start|stop — Postfix with Dovecot SASL, set up by
# .ci/realmta.sh (packages, the CI CA, configuration; see that script):
# 127.0.0.1:10587 (STARTTLS), 10465 (implicit TLS), 12525 (STARTTLS), and
# 10025 (plain, no AUTH: for bench/realserver and smtp-source).
# smtpd_tls_auth_only: AUTH only after TLS. Mail for example.test is
# delivered to maildirs under /var/mail/vhosts/example.test.
# It must start first: the other servers' certificates come from its CA.
NAME=postfix
# shellcheck source=lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

start() {
	bash "$SERVERS_DIR/../realmta.sh" >/dev/null
	# shellcheck disable=SC1091
	. "$SERVERS_DIR/../realmta.env"
	local version
	version="$(postconf -h mail_version) (Debian $(dpkg-query -W -f='${Version}' postfix))"
	write_env postfix "${PORTWISE_REALMTA_STARTTLS##*:}" "${PORTWISE_REALMTA_IMPLICIT##*:}" "$version" \
		"$PORTWISE_REALMTA_MAILDIR" "$PORTWISE_REALMTA_LOG"
	log "ready: $PORTWISE_REALMTA_STARTTLS (STARTTLS), $PORTWISE_REALMTA_IMPLICIT (implicit TLS), Postfix $version"
}

stop() {
	postfix stop >/dev/null 2>&1 || true
	doveadm stop >/dev/null 2>&1 || dovecot stop >/dev/null 2>&1 || true
	log "stopped"
}

main "$@"
