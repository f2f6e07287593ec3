#!/usr/bin/env bash
# .ci/servers/exim.sh start|stop — Exim 4 (Debian's exim4-daemon-light, 4.96)
# on 127.0.0.1:11587 (STARTTLS) and 11465 (implicit TLS).
#
# exim4-daemon-light conflicts with postfix as a package, so it is not
# installed: its .deb (with exim4-base's) is fetched with apt-get download and
# unpacked with dpkg -x under /var/cache/portwise-ci/exim, and run with a
# configuration file of our own (-C). Its shared libraries are ordinary
# packages that do not conflict, installed with apt when missing.
# AUTH PLAIN and LOGIN are advertised only once TLS is up
# (server_advertise_condition); mail for example.test goes to one maildir.
NAME=exim
# shellcheck source=lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

PORT_STARTTLS=11587
PORT_IMPLICIT=11465
ROOT=${CI_CACHE}/exim
EXIM=${ROOT}/usr/sbin/exim4
DATA=${CI_STATE}/servers/exim
CONF=${DATA}/exim.conf
MAILDIR=${DATA}/maildir
LOGDIR=${CI_LOG}/exim
EXIM_USER=Debian-exim # compiled into Debian's binary

install_exim() {
	local debs=${CI_CACHE}/deb libs=(libdb5.3 libgnutls-dane0 libgnutls30 libidn12 libidn2-0 libnsl2 libpcre2-8-0) missing=() p
	for p in "${libs[@]}"; do
		[[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true) == installed ]] || missing+=("$p")
	done
	if ((${#missing[@]})); then
		log "installing libraries: ${missing[*]}"
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends -q "${missing[@]}" >/dev/null ||
			{ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends -q "${missing[@]}" >/dev/null; }
	fi
	if [[ -x $EXIM ]]; then
		return 0
	fi
	install -d "$debs"
	if ! compgen -G "$debs/exim4-daemon-light_4.96*.deb" >/dev/null || ! compgen -G "$debs/exim4-base_4.96*.deb" >/dev/null; then
		log "downloading exim4-daemon-light and exim4-base"
		(cd "$debs" && { apt-get download -q exim4-daemon-light exim4-base >/dev/null 2>&1 ||
			{ apt-get update -q >/dev/null && apt-get download -q exim4-daemon-light exim4-base >/dev/null 2>&1; }; })
	fi
	rm -rf "$ROOT.tmp"
	for p in "$debs"/exim4-daemon-light_4.96*.deb "$debs"/exim4-base_4.96*.deb; do
		dpkg -x "$p" "$ROOT.tmp"
	done
	rm -rf "$ROOT"
	mv "$ROOT.tmp" "$ROOT"
}

start() {
	install_exim
	if ! id -u "$EXIM_USER" >/dev/null 2>&1; then
		useradd --system --user-group --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin "$EXIM_USER"
	fi
	issue_cert exim "root:$EXIM_USER"
	stop
	install -d -m 0750 -o "$EXIM_USER" -g "$EXIM_USER" "$DATA" "$DATA/spool" "$LOGDIR"
	rm -rf "$MAILDIR"
	install -d -m 0755 -o "$EXIM_USER" -g "$EXIM_USER" "$MAILDIR" "$MAILDIR/new" "$MAILDIR/cur" "$MAILDIR/tmp"
	: >"$LOGDIR/mainlog"
	chown "$EXIM_USER:$EXIM_USER" "$LOGDIR/mainlog"
	local cert=${CI_STATE}/certs/exim
	cat >"$CONF" <<CONF
# Written by .ci/servers/exim.sh on every start.
exim_path = ${EXIM}
spool_directory = ${DATA}/spool
log_file_path = ${LOGDIR}/%slog
pid_file_path = ${DATA}/exim-daemon.pid
primary_hostname = mx.portwise.test
qualify_domain = ${DOMAIN}
local_interfaces = <; ${HOST}.${PORT_STARTTLS} ; ${HOST}.${PORT_IMPLICIT}
tls_on_connect_ports = ${PORT_IMPLICIT}
tls_advertise_hosts = *
tls_certificate = ${cert}/chain.pem
tls_privatekey = ${cert}/key.pem
# Debian's GnuTLS build accepts TLS 1.0 and 1.1 by default; a provider no longer does.
tls_require_ciphers = NORMAL:-VERS-TLS1.0:-VERS-TLS1.1
# Deliver every message at once: by default Exim queues all but the first
# 10 of a connection for the next queue run.
smtp_accept_queue_per_connection = 0
pipelining_advertise_hosts = *
chunking_advertise_hosts = *
dsn_advertise_hosts = *
smtputf8_advertise_hosts = *
prdr_enable = false
host_lookup =
rfc1413_hosts =
keep_environment =
acl_smtp_auth = acl_auth
acl_smtp_mail = acl_mail
acl_smtp_rcpt = acl_rcpt
acl_smtp_data = acl_data
# Every AUTH attempt, envelope parameter and pipelined group is in mainlog.
log_selector = +smtp_connection +smtp_protocol_error +smtp_syntax_error +tls_cipher +received_recipients +pipelining +smtp_confirmation +all_parents +incoming_port

begin acl
# Every AUTH command, by mechanism only (the tests count them; Exim itself
# logs only failed ones).
acl_auth:
  accept logwrite = auth attempt: \${extract{1}{ }{\$smtp_command_argument}}

# The envelope as the client sent it (\$smtp_command), for the tests.
acl_mail:
  accept logwrite = envelope: \$smtp_command

acl_rcpt:
  accept authenticated = *
         domains = ${DOMAIN}
         logwrite = envelope: \$smtp_command
  deny   message = relay not permitted (authenticate first)

acl_data:
  accept logwrite = envelope: DATA smtputf8=\${if bool{\$message_smtputf8}{yes}{no}}

begin routers
local:
  driver = accept
  domains = ${DOMAIN}
  transport = maildir

begin transports
maildir:
  driver = appendfile
  directory = ${MAILDIR}
  maildir_format
  create_directory = false
  user = ${EXIM_USER}
  group = ${EXIM_USER}
  mode = 0644

begin authenticators
plain:
  driver = plaintext
  public_name = PLAIN
  server_advertise_condition = \${if def:tls_in_cipher}
  server_prompts = :
  server_condition = \${if and {{eq{\$auth2}{${USER1}}}{eq{\$auth3}{${PASS1}}}}}
  server_set_id = \$auth2

login:
  driver = plaintext
  public_name = LOGIN
  server_advertise_condition = \${if def:tls_in_cipher}
  server_prompts = Username:: : Password::
  server_condition = \${if and {{eq{\$auth1}{${USER1}}}{eq{\$auth2}{${PASS1}}}}}
  server_set_id = \$auth1
CONF
	"$EXIM" -C "$CONF" -bV >/dev/null || die "configuration error in $CONF"
	log "starting"
	start_daemon exim "$EXIM" -C "$CONF" -bdf -q1m
	wait_smtp "$PORT_STARTTLS" starttls
	wait_smtp "$PORT_IMPLICIT" implicit
	local version
	version=$("$EXIM" -C "$CONF" -bV 2>/dev/null | sed -n 's/^Exim version \([^ ]*\).*/\1/p')
	version+=" (Debian $(dpkg-deb -f "$(compgen -G "$CI_CACHE/deb/exim4-daemon-light_4.96*.deb" | head -n 1)" Version))"
	write_env exim "$PORT_STARTTLS" "$PORT_IMPLICIT" "$version" "$MAILDIR" "$LOGDIR/mainlog"
	log "ready: $HOST:$PORT_STARTTLS (STARTTLS), $HOST:$PORT_IMPLICIT (implicit TLS), Exim $version"
}

stop() {
	stop_daemon exim
}

main "$@"
