#!/usr/bin/env bash
# .ci/realmta.sh — provision a real, loopback-only Postfix + Dovecot-SASL mail
# server for portwise's "real MTA" integration tests.
#
# Target: Debian 12 (bookworm), run as root, no systemd, no syslog daemon,
# loopback-only network. Idempotent: safe to re-run; re-runs skip apt, keep the
# CA/certs, rewrite config, (re)start daemons and wait for the ports.
#
# Result (also written to .ci/realmta.env, source it from test scripts):
#   127.0.0.1:10587  SMTP + mandatory STARTTLS, AUTH PLAIN/LOGIN only after TLS
#   127.0.0.1:10465  implicit TLS (SMTPS / "submissions"), AUTH PLAIN/LOGIN
#   127.0.0.1:12525  SMTP + mandatory STARTTLS (same policy as 10587)
#   127.0.0.1:10025  plain SMTP, no TLS, no AUTH, relay for 127.0.0.0/8 only:
#                    for benchmarks that compare with smtp-source, which
#                    speaks neither (bench/realserver)
#   users            alice@example.test / s3cret-Passw0rd
#                    bob@example.test   / 0ther-Passw0rd
#   CA               /var/lib/portwise-ci/ca.pem
#   mail             /var/mail/vhosts/example.test/<localpart>/{new,cur,tmp}
#                    (unknown @example.test recipients -> .../catchall/)
#   discard          discard@example.test: accepted on every port and
#                    discarded by Postfix's discard(8) agent, so benchmarks
#                    can send thousands of messages without filling a maildir
#   logs             /var/log/postfix-ci.log, /var/log/dovecot-ci.log
#
# Optional env:
#   PORTWISE_REALMTA_MAIL_OWNER=<user>  own the maildirs as this (non-root)
#       user instead of the "vmail" system user, so non-root tests can read them.
#   PORTWISE_REALMTA_WAIT=<seconds>     port wait deadline (default 30).
set -euo pipefail

if [[ ${EUID} -ne 0 ]]; then
	echo "realmta.sh: must run as root" >&2
	exit 1
fi

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
ENV_FILE="${SCRIPT_DIR}/realmta.env"

STATE_DIR=/var/lib/portwise-ci
CA_PEM=${STATE_DIR}/ca.pem
CA_KEY=${STATE_DIR}/ca.key
SRV_PEM=${STATE_DIR}/server.pem
SRV_KEY=${STATE_DIR}/server.key

DOMAIN=example.test
VBASE=/var/mail/vhosts
MAILDIR=${VBASE}/${DOMAIN}
POSTFIX_LOG=/var/log/postfix-ci.log
DOVECOT_LOG=/var/log/dovecot-ci.log
PASSWD_FILE=/etc/dovecot/portwise-ci.passwd
AUTH_SOCKET=/var/spool/postfix/private/auth

USER1=alice@${DOMAIN}
PASS1=s3cret-Passw0rd
USER2=bob@${DOMAIN}
PASS2=0ther-Passw0rd

HOST=127.0.0.1
PORT_STARTTLS=10587
PORT_IMPLICIT=10465
PORT_ALT=12525
PORT_PLAIN=10025
DISCARD=discard@${DOMAIN}
MAIL_OWNER=${PORTWISE_REALMTA_MAIL_OWNER:-vmail}
WAIT_SECS=${PORTWISE_REALMTA_WAIT:-30}

log() { printf 'realmta: %s\n' "$*" >&2; }

# Serialise concurrent runs.
mkdir -p /run/lock
exec 9>/run/lock/portwise-realmta.lock
flock -w 120 9

# write_if_changed PATH MODE OWNER:GROUP  (content on stdin)
# Returns 0 if the file was (re)written, 1 if it was already up to date.
write_if_changed() {
	local path=$1 mode=$2 owner=$3 tmp
	tmp=$(mktemp "${path}.XXXXXX")
	cat >"$tmp"
	chmod "$mode" "$tmp"
	chown "$owner" "$tmp"
	if [[ -f $path ]] && cmp -s "$tmp" "$path"; then
		rm -f "$tmp"
		chmod "$mode" "$path"
		chown "$owner" "$path"
		return 1
	fi
	mv -f "$tmp" "$path"
	return 0
}

# ---------------------------------------------------------------- 1. packages
PKGS=(postfix dovecot-core openssl swaks libnet-ssleay-perl ca-certificates)
missing=()
for p in "${PKGS[@]}"; do
	if [[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true) != installed ]]; then
		missing+=("$p")
	fi
done
if ((${#missing[@]})); then
	log "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections
	# A fresh CI image usually has empty package lists.
	if ! apt-get install -y --no-install-recommends -q \
		-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
		"${missing[@]}" >/dev/null; then
		apt-get update -q >/dev/null
		apt-get install -y --no-install-recommends -q \
			-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
			"${missing[@]}" >/dev/null
	fi
else
	log "packages already installed, skipping apt"
fi

[[ -f /etc/postfix/main.cf ]] || cp /usr/share/postfix/main.cf.debian /etc/postfix/main.cf
[[ -f /etc/postfix/master.cf ]] || cp /usr/share/postfix/master.cf.dist /etc/postfix/master.cf
[[ -f /etc/mailname ]] || echo "mx.portwise.test" >/etc/mailname
if [[ ! -f /etc/aliases ]]; then
	printf 'postmaster: root\nabuse: root\n' >/etc/aliases
fi

# ------------------------------------------------------------ mailbox owner
if [[ $MAIL_OWNER == vmail ]] && ! id -u vmail >/dev/null 2>&1; then
	groupadd --system vmail 2>/dev/null || true
	useradd --system --gid vmail --home-dir "$VBASE" --no-create-home \
		--shell /usr/sbin/nologin vmail
fi
VUID=$(id -u "$MAIL_OWNER")
VGID=$(id -g "$MAIL_OWNER")
if ((VUID == 0)); then
	echo "realmta.sh: PORTWISE_REALMTA_MAIL_OWNER must not be root" >&2
	exit 1
fi
install -d -m 0755 "$VBASE"
install -d -m 0750 -o "$VUID" -g "$VGID" "$MAILDIR"
# Pre-create the users' maildirs so tests can inspect them before first delivery.
for u in "${USER1%@*}" "${USER2%@*}" catchall; do
	for sub in "" /new /cur /tmp; do
		install -d -m 0700 -o "$VUID" -g "$VGID" "$MAILDIR/$u$sub"
	done
done
# If the owner changed between runs, fix ownership of existing mail.
chown -R "$VUID:$VGID" "$MAILDIR"

# --------------------------------------------------------------- 2. certs
install -d -m 0755 "$STATE_DIR"
need_ca=0 need_srv=0
if [[ ! -s $CA_PEM || ! -s $CA_KEY ]] || ! openssl x509 -in "$CA_PEM" -noout -checkend $((30 * 86400)) >/dev/null 2>&1; then
	need_ca=1 need_srv=1
fi
if ((!need_srv)); then
	if [[ ! -s $SRV_PEM || ! -s $SRV_KEY ]] ||
		! openssl x509 -in "$SRV_PEM" -noout -checkend $((30 * 86400)) >/dev/null 2>&1 ||
		! openssl verify -CAfile "$CA_PEM" -purpose sslserver "$SRV_PEM" >/dev/null 2>&1 ||
		! openssl x509 -in "$SRV_PEM" -noout -ext subjectAltName 2>/dev/null | grep -q 'IP Address:127.0.0.1'; then
		need_srv=1
	fi
fi
if ((need_ca || need_srv)); then
	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT
	cat >"$work/openssl.cnf" <<'CNF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[srv_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF
	if ((need_ca)); then
		log "creating throwaway CA in $STATE_DIR"
		openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/ca.key" 2>/dev/null
		openssl req -new -x509 -config "$work/openssl.cnf" -key "$work/ca.key" \
			-subj "/O=portwise CI/CN=portwise CI throwaway CA $(date -u +%Y%m%dT%H%M%SZ)" \
			-days 3650 -sha256 -extensions ca_ext -out "$work/ca.pem"
		install -m 0600 -o root -g root "$work/ca.key" "$CA_KEY"
		install -m 0644 -o root -g root "$work/ca.pem" "$CA_PEM"
	fi
	log "issuing server certificate (DNS:localhost, IP:127.0.0.1)"
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/server.key" 2>/dev/null
	openssl req -new -config "$work/openssl.cnf" -key "$work/server.key" \
		-subj "/O=portwise CI/CN=localhost" -out "$work/server.csr"
	openssl x509 -req -in "$work/server.csr" -CA "$CA_PEM" -CAkey "$CA_KEY" \
		-set_serial "0x$(openssl rand -hex 16)" -days 825 -sha256 \
		-extfile "$work/openssl.cnf" -extensions srv_ext -out "$work/server.pem" 2>/dev/null
	install -m 0640 -o root -g postfix "$work/server.key" "$SRV_KEY"
	install -m 0644 -o root -g root "$work/server.pem" "$SRV_PEM"
	rm -rf "$work"
	trap - EXIT
else
	log "CA and server certificate present and valid, keeping them"
fi
chown root:postfix "$SRV_KEY"
chmod 0640 "$SRV_KEY"

# ----------------------------------------------------------- 3. dovecot
dovecot_changed=0
write_if_changed /etc/dovecot/dovecot.conf 0644 root:root <<CONF && dovecot_changed=1 || true
# Managed by portwise .ci/realmta.sh -- standalone config, overwritten on every
# run. Dovecot is used only as Postfix's SASL server: no IMAP/POP3/LMTP.
protocols = none
ssl = no
base_dir = /run/dovecot/
log_path = ${DOVECOT_LOG}
info_log_path = ${DOVECOT_LOG}
auth_mechanisms = plain login
auth_verbose = yes
# Postfix enforces TLS before AUTH (smtpd_tls_auth_only); the auth socket is local.
disable_plaintext_auth = no
auth_username_format = %Lu

passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%Lu ${PASSWD_FILE}
}
userdb {
  driver = static
  args = uid=${VUID} gid=${VGID} home=${VBASE}/%d/%n
}

service auth {
  unix_listener ${AUTH_SOCKET} {
    mode = 0660
    user = postfix
    group = postfix
  }
}
CONF
write_if_changed "$PASSWD_FILE" 0640 root:dovecot <<PW && dovecot_changed=1 || true
${USER1}:{PLAIN}${PASS1}::::::
${USER2}:{PLAIN}${PASS2}::::::
PW
touch "$DOVECOT_LOG"
doveconf -n >/dev/null # fail early on a config error

# ----------------------------------------------------------- 4. postfix
write_if_changed /etc/postfix/portwise-vmailbox 0644 root:root <<MAP || true
# Managed by portwise .ci/realmta.sh
${USER1} ${DOMAIN}/${USER1%@*}/
${USER2} ${DOMAIN}/${USER2%@*}/
@${DOMAIN} ${DOMAIN}/catchall/
MAP
if [[ ! -f /etc/postfix/portwise-vmailbox.db || /etc/postfix/portwise-vmailbox -nt /etc/postfix/portwise-vmailbox.db ]]; then
	postmap hash:/etc/postfix/portwise-vmailbox
fi
# The benchmarks' recipient: its mail goes to discard(8), not to a maildir.
write_if_changed /etc/postfix/portwise-transport 0644 root:root <<MAP || true
# Managed by portwise .ci/realmta.sh
${DISCARD} discard:portwise-bench
MAP
if [[ ! -f /etc/postfix/portwise-transport.db || /etc/postfix/portwise-transport -nt /etc/postfix/portwise-transport.db ]]; then
	postmap hash:/etc/postfix/portwise-transport
fi

MAIN_CF_SETTINGS=(
	"myhostname = mx.portwise.test"
	"mydomain = portwise.test"
	"myorigin = \$myhostname"
	"mydestination = \$myhostname, localhost"
	"mynetworks = 127.0.0.0/8"
	"inet_interfaces = loopback-only"
	"inet_protocols = ipv4"
	"relayhost ="
	"default_transport = error:portwise CI box: no outbound mail"
	"relay_transport = error:portwise CI box: no outbound mail"
	"relay_domains ="
	"alias_maps = hash:/etc/aliases"
	"alias_database = hash:/etc/aliases"
	"virtual_mailbox_domains = ${DOMAIN}"
	"virtual_mailbox_base = ${VBASE}"
	"virtual_mailbox_maps = hash:/etc/postfix/portwise-vmailbox"
	"transport_maps = hash:/etc/postfix/portwise-transport"
	"virtual_uid_maps = static:${VUID}"
	"virtual_gid_maps = static:${VGID}"
	"virtual_minimum_uid = ${VUID}"
	"virtual_mailbox_limit = 0"
	"mailbox_size_limit = 0"
	"message_size_limit = 52428800"
	"smtpd_tls_cert_file = ${SRV_PEM}"
	"smtpd_tls_key_file = ${SRV_KEY}"
	"smtpd_tls_security_level = may"
	"smtpd_tls_loglevel = 1"
	"smtpd_tls_protocols = >=TLSv1.2"
	"smtpd_tls_mandatory_protocols = >=TLSv1.2"
	"smtpd_tls_received_header = yes"
	"smtpd_sasl_type = dovecot"
	"smtpd_sasl_path = private/auth"
	"smtpd_sasl_auth_enable = no"
	"smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination"
	"smtp_tls_security_level = none"
	"maillog_file = ${POSTFIX_LOG}"
	"biff = no"
)
# Only touch main.cf when something differs: Postfix tools sleep ~1-2s when
# main.cf has just been modified, which made every re-run slow.
main_changes=()
for kv in "${MAIN_CF_SETTINGS[@]}"; do
	k=${kv%% =*} v=${kv#* = }
	[[ $kv == *" =" ]] && v=""
	if [[ $(postconf -h "$k" 2>/dev/null || true) != "$v" ]]; then
		main_changes+=("$kv")
	fi
done
if ((${#main_changes[@]})); then
	log "updating main.cf: ${#main_changes[@]} setting(s)"
	postconf -e "${main_changes[@]}"
fi

# master.cf is regenerated from the packaged default on every run:
#  - the port-25 smtpd listener is commented out (only our three ports listen),
#  - chroot is turned off everywhere (Debian's init script normally populates
#    the chroot; we don't use it, there is no systemd here),
#  - the packaged postlog service (needed for maillog_file) is kept,
#  - our three submission listeners are appended, and a plain one for
#    benchmarks (no TLS, no AUTH: mynetworks, which is loopback, may relay).
MASTER_SRC=/usr/share/postfix/master.cf.dist
[[ -f $MASTER_SRC ]] || MASTER_SRC=/etc/postfix/master.cf
sub_opts() { # $1=syslog name, $2=1 for wrapper mode
	printf '  -o syslog_name=postfix/%s\n' "$1"
	if [[ $2 == 1 ]]; then
		printf '  -o smtpd_tls_wrappermode=yes\n'
	fi
	cat <<'OPTS'
  -o smtpd_tls_security_level=encrypt
  -o smtpd_tls_auth_only=yes
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_sasl_type=dovecot
  -o smtpd_sasl_path=private/auth
  -o smtpd_sasl_security_options=noanonymous
  -o smtpd_reject_unlisted_recipient=no
  -o smtpd_client_restrictions=
  -o smtpd_helo_restrictions=
  -o smtpd_sender_restrictions=
  -o smtpd_recipient_restrictions=reject_non_fqdn_recipient,permit_sasl_authenticated,reject
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
  -o milter_macro_daemon_name=ORIGINATING
OPTS
}
{
	sed '/^# BEGIN portwise-ci/,/^# END portwise-ci/d' "$MASTER_SRC" | awk '
		/^[^#[:space:]]/ {
			if ($1 == "smtp" && $2 == "inet") { print "#" $0; next }
			$5 = "n"
			line = sprintf("%-9s %-5s %-7s %-7s %-7s %-7s %-7s", $1, $2, $3, $4, $5, $6, $7)
			for (i = 8; i <= NF; i++) line = line " " $i
			print line; next
		}
		{ print }'
	grep -q '^postlog' "$MASTER_SRC" || echo "postlog   unix-dgram n  -       n       -       1       postlogd"
	echo "# BEGIN portwise-ci (managed by .ci/realmta.sh, rewritten on every run)"
	echo "${HOST}:${PORT_STARTTLS} inet n - n - - smtpd"
	sub_opts submission-ci 0
	echo "${HOST}:${PORT_IMPLICIT} inet n - n - - smtpd"
	sub_opts submissions-ci 1
	echo "${HOST}:${PORT_ALT} inet n - n - - smtpd"
	sub_opts alt-ci 0
	echo "${HOST}:${PORT_PLAIN} inet n - n - - smtpd"
	cat <<'OPTS'
  -o syslog_name=postfix/bench-ci
  -o smtpd_tls_security_level=none
  -o smtpd_sasl_auth_enable=no
  -o smtpd_client_restrictions=
  -o smtpd_helo_restrictions=
  -o smtpd_sender_restrictions=
  -o smtpd_recipient_restrictions=permit_mynetworks,reject
  -o smtpd_relay_restrictions=permit_mynetworks,reject
OPTS
	echo "# END portwise-ci"
} | write_if_changed /etc/postfix/master.cf 0644 root:root || true

touch "$POSTFIX_LOG"
if [[ ! -f /etc/aliases.db || /etc/aliases -nt /etc/aliases.db ]]; then
	newaliases
fi
postfix check

# ----------------------------------------------------------- 5. (re)start
dovecot_pid() {
	local pid state
	pid=$(cat /run/dovecot/master.pid 2>/dev/null) || return 1
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	# Alive, not a zombie, and really dovecot (pid files survive kill -9).
	[[ $(cat "/proc/$pid/comm" 2>/dev/null) == dovecot ]] || return 1
	state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
	[[ $state != Z ]] || return 1
	echo "$pid"
}
# Daemons must not inherit our stdio or the lock fd: dovecot keeps stderr open
# for its lifetime, which would make `realmta.sh | tee` (or a CI step that waits
# for EOF on its output) hang, and an inherited fd 9 would hold the flock.
start_dovecot() {
	local i
	# Retry briefly: a dovecot that is still shutting down blocks a new start.
	for i in 1 2 3 4 5 6 7 8 9 10; do
		dovecot </dev/null >/dev/null 2>>"$DOVECOT_LOG" 9>&- && return 0
		sleep 0.5
	done
	echo "realmta.sh: dovecot failed to start; see $DOVECOT_LOG" >&2
	tail -n 20 "$DOVECOT_LOG" >&2 || true
	exit 1
}
if pid=$(dovecot_pid); then
	if ((dovecot_changed)); then
		log "dovecot config changed, restarting (pid $pid)"
		dovecot stop >/dev/null 2>&1 || kill "$pid" || true
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		start_dovecot
	else
		log "dovecot running (pid $pid), config unchanged"
	fi
else
	log "starting dovecot"
	start_dovecot
fi

if postfix status >/dev/null 2>&1; then
	log "reloading postfix"
	postfix reload </dev/null >/dev/null 2>&1 9>&-
else
	log "starting postfix"
	if ! postfix start </dev/null >/dev/null 2>&1 9>&-; then
		echo "realmta.sh: postfix failed to start; see $POSTFIX_LOG" >&2
		tail -n 20 "$POSTFIX_LOG" >&2 || true
		exit 1
	fi
fi

# ----------------------------------------------------------- wait for ports
deadline=$((SECONDS + WAIT_SECS))
until [[ -S $AUTH_SOCKET ]]; do
	if ((SECONDS >= deadline)); then
		echo "realmta.sh: dovecot auth socket $AUTH_SOCKET did not appear; see $DOVECOT_LOG" >&2
		tail -n 20 "$DOVECOT_LOG" >&2 || true
		exit 1
	fi
	sleep 0.1
done
for port in "$PORT_STARTTLS" "$PORT_IMPLICIT" "$PORT_ALT" "$PORT_PLAIN"; do
	until timeout 1 bash -c "exec 3<>/dev/tcp/${HOST}/${port}" 2>/dev/null; do
		if ((SECONDS >= deadline)); then
			echo "realmta.sh: ${HOST}:${port} not accepting connections after ${WAIT_SECS}s; see $POSTFIX_LOG" >&2
			tail -n 20 "$POSTFIX_LOG" >&2 || true
			exit 1
		fi
		sleep 0.2
	done
done

# End-to-end readiness: TLS (verified against our CA) + AUTH on every port.
# Catches a dead/half-configured dovecot that a TCP connect would not.
for spec in "${PORT_STARTTLS}:--tls" "${PORT_IMPLICIT}:--tls-on-connect" "${PORT_ALT}:--tls"; do
	port=${spec%%:*} mode=${spec#*:}
	until swaks --server "${HOST}:${port}" "$mode" --tls-verify --tls-ca-path "$CA_PEM" \
		--auth PLAIN --auth-user "$USER1" --auth-password "$PASS1" \
		--quit-after AUTH --timeout 5 </dev/null >/dev/null 2>&1; do
		if ((SECONDS >= deadline)); then
			echo "realmta.sh: TLS+AUTH smoke test failed on ${HOST}:${port}; see $POSTFIX_LOG and $DOVECOT_LOG" >&2
			tail -n 20 "$POSTFIX_LOG" "$DOVECOT_LOG" >&2 || true
			exit 1
		fi
		sleep 0.5
	done
done

# ----------------------------------------------------------- env file
write_if_changed "$ENV_FILE" 0644 root:root <<ENV || true
# Generated by .ci/realmta.sh -- do not edit. Source it: . .ci/realmta.env
export PORTWISE_REALMTA=1
export PORTWISE_REALMTA_CA=${CA_PEM}
export PORTWISE_REALMTA_STARTTLS=${HOST}:${PORT_STARTTLS}
export PORTWISE_REALMTA_IMPLICIT=${HOST}:${PORT_IMPLICIT}
export PORTWISE_REALMTA_ALT=${HOST}:${PORT_ALT}
export PORTWISE_REALMTA_PLAIN=${HOST}:${PORT_PLAIN}
export PORTWISE_REALMTA_DISCARD=${DISCARD}
export PORTWISE_REALMTA_USER=${USER1}
export PORTWISE_REALMTA_PASS=${PASS1}
export PORTWISE_REALMTA_USER2=${USER2}
export PORTWISE_REALMTA_PASS2=${PASS2}
export PORTWISE_REALMTA_MAILDIR=${MAILDIR}
export PORTWISE_REALMTA_LOG=${POSTFIX_LOG}
ENV

log "ready: ${HOST}:${PORT_STARTTLS} (STARTTLS), ${HOST}:${PORT_IMPLICIT} (implicit TLS), ${HOST}:${PORT_ALT} (STARTTLS), ${HOST}:${PORT_PLAIN} (plain, for benchmarks)"
echo "$CA_PEM"
