# shellcheck shell=bash
# .ci/servers/lib.sh — sourced by .ci/servers/<name>.sh; not run on its own.
#
# Every server of the interoperability matrix runs on 127.0.0.1 with a
# certificate from the CI's throwaway CA (made by .ci/realmta.sh), the same
# user and password, and its own pair of ports: STARTTLS and implicit TLS.
# Paths are the well-known system ones these scripts create:
#   /var/lib/portwise-ci          CA (realmta.sh), certs/<name>/, servers/<name>/ (config, stores)
#   /var/cache/portwise-ci        downloads and builds kept between runs (debs, npm, Go binaries)
#   /run/portwise-ci              pid files and env/<name>.env (read by .ci/interop.sh)
#   /var/log/portwise-ci          one log per server
set -euo pipefail

if [[ ${EUID} -ne 0 ]]; then
	echo "${0##*/}: must run as root" >&2
	exit 1
fi

SERVERS_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
CI_STATE=/var/lib/portwise-ci
CI_CACHE=/var/cache/portwise-ci
CI_RUN=/run/portwise-ci
CI_LOG=/var/log/portwise-ci
CA_PEM=${CI_STATE}/ca.pem
CA_KEY=${CI_STATE}/ca.key

HOST=127.0.0.1
DOMAIN=example.test
USER1=alice@${DOMAIN}
PASS1=s3cret-Passw0rd
RCPT=bob@${DOMAIN}
UTF8RCPT=dörte@${DOMAIN} # for SMTPUTF8

install -d -m 0755 "$CI_STATE" "$CI_CACHE" "$CI_RUN" "$CI_RUN/env" "$CI_LOG"

log() { printf '%s: %s\n' "${NAME:-servers}" "$*" >&2; }
die() {
	log "$*"
	exit 1
}

# issue_cert NAME [OWNER[:GROUP]]: a certificate for DNS:localhost and
# IP:127.0.0.1 signed by the CI CA, in /var/lib/portwise-ci/certs/NAME/
# {cert.pem,key.pem,chain.pem}; kept while it verifies and has 30 days left.
issue_cert() {
	local name=$1 owner=${2:-root:root} dir=${CI_STATE}/certs/$1 work
	[[ -s $CA_PEM && -s $CA_KEY ]] || die "no CA at $CA_PEM: run .ci/realmta.sh (the postfix server) first"
	install -d -m 0755 "$dir"
	if [[ -s $dir/cert.pem && -s $dir/key.pem ]] &&
		openssl verify -CAfile "$CA_PEM" -purpose sslserver "$dir/cert.pem" >/dev/null 2>&1 &&
		openssl x509 -in "$dir/cert.pem" -noout -checkend $((30 * 86400)) >/dev/null 2>&1; then
		chown "$owner" "$dir/key.pem" "$dir/cert.pem" "$dir/chain.pem"
		return 0
	fi
	log "issuing a certificate for localhost and 127.0.0.1 from the CI CA"
	work=$(mktemp -d)
	cat >"$work/ext.cnf" <<'CNF'
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF
	# RSA, not EC: every server here takes it (GnuTLS, OpenSSL, Node, Go, Python).
	openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/key.pem" 2>/dev/null
	openssl req -new -key "$work/key.pem" -subj "/O=portwise CI/CN=localhost" -out "$work/req.csr"
	openssl x509 -req -in "$work/req.csr" -CA "$CA_PEM" -CAkey "$CA_KEY" \
		-set_serial "0x$(openssl rand -hex 16)" -days 825 -sha256 \
		-extfile "$work/ext.cnf" -out "$work/cert.pem" 2>/dev/null
	cat "$work/cert.pem" "$CA_PEM" >"$work/chain.pem"
	install -m 0640 -o "${owner%%:*}" -g "${owner#*:}" "$work/key.pem" "$dir/key.pem"
	install -m 0644 -o "${owner%%:*}" -g "${owner#*:}" "$work/cert.pem" "$dir/cert.pem"
	install -m 0644 -o "${owner%%:*}" -g "${owner#*:}" "$work/chain.pem" "$dir/chain.pem"
	rm -rf "$work"
}

# install_node_modules: Haraka and smtp-server, at the versions of
# .ci/servers/node/package-lock.json, in /var/cache/portwise-ci/node
# (kept while the lock file is unchanged). Prints NODE_PATH.
install_node_modules() {
	local dir=${CI_CACHE}/node src=${SERVERS_DIR}/node
	if [[ ! -d $dir/node_modules ]] || ! cmp -s "$src/package-lock.json" "$dir/package-lock.json"; then
		log "npm ci (haraka, smtp-server) in $dir"
		install -d "$dir"
		cp "$src/package.json" "$src/package-lock.json" "$dir/"
		(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null 2>"$CI_LOG/npm.err") ||
			{ cat "$CI_LOG/npm.err" >&2; die "npm ci failed"; }
	fi
	echo "$dir/node_modules"
}

# pid_alive NAME: prints the pid recorded by start_daemon when that process
# is still running.
pid_alive() {
	local pid
	pid=$(cat "$CI_RUN/$1.pid" 2>/dev/null) || return 1
	[[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
	[[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]] || return 1
	echo "$pid"
}

# start_daemon NAME CMD...: runs CMD in its own session (so stop_daemon can
# end it with its children), stdio to /var/log/portwise-ci/NAME.out.
start_daemon() {
	local name=$1
	shift
	setsid "$@" </dev/null >>"$CI_LOG/$name.out" 2>&1 9>&- &
	echo $! >"$CI_RUN/$name.pid"
}

# stop_daemon NAME: ends the process group started by start_daemon.
stop_daemon() {
	local name=$1 pid
	if pid=$(pid_alive "$name"); then
		kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL -- "-$pid" 2>/dev/null || true
		log "stopped (pid $pid)"
	fi
	rm -f "$CI_RUN/$name.pid"
}

# wait_smtp PORT MODE [SECONDS]: until the port greets with 220, in clear
# (MODE starttls) or after a TLS handshake verified against the CA for
# 127.0.0.1 (implicit). Waits for the greeting before saying QUIT: some
# servers drop a client that talks first.
wait_smtp() {
	local port=$1 mode=$2 deadline=$((SECONDS + ${3:-30}))
	while ((SECONDS < deadline)); do
		if /usr/bin/python3 - "$HOST" "$port" "$mode" "$CA_PEM" 2>/dev/null <<'PY'; then
import socket, ssl, sys
host, port, mode, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
s = socket.create_connection((host, port), timeout=5)
if mode == "implicit":
    s = ssl.create_default_context(cafile=ca).wrap_socket(s, server_hostname=host)
f = s.makefile("rb")
line = f.readline()
while line[3:4] == b"-":
    line = f.readline()
s.sendall(b"QUIT\r\n")
sys.exit(0 if line.startswith(b"220") else 1)
PY
			return 0
		fi
		sleep 0.2
	done
	die "$HOST:$port ($mode) did not greet within ${3:-30}s; see $CI_LOG/${NAME}*"
}

# write_env NAME STARTTLS_PORT IMPLICIT_PORT VERSION STORE LOG [EXTRA...]:
# the variables the Go tests read, in /run/portwise-ci/env/NAME.env.
write_env() {
	local name=$1 up
	up=$(tr '[:lower:]-' '[:upper:]_' <<<"$name")
	{
		echo "# $name: written by .ci/servers/$name.sh"
		echo "export PORTWISE_INTEROP_${up}_STARTTLS=$HOST:$2"
		echo "export PORTWISE_INTEROP_${up}_IMPLICIT=$HOST:$3"
		echo "export PORTWISE_INTEROP_${up}_VERSION='$4'"
		echo "export PORTWISE_INTEROP_${up}_STORE=$5"
		echo "export PORTWISE_INTEROP_${up}_LOG=$6"
		echo "export PORTWISE_INTEROP_${up}_USER=$USER1"
		echo "export PORTWISE_INTEROP_${up}_PASS=$PASS1"
		echo "export PORTWISE_INTEROP_${up}_RCPT=$RCPT"
		echo "export PORTWISE_INTEROP_${up}_UTF8RCPT=$UTF8RCPT"
		shift 6
		local kv
		for kv in "$@"; do
			echo "export PORTWISE_INTEROP_${up}_${kv}"
		done
	} >"$CI_RUN/env/$name.env"
}

# main start|stop|restart: dispatches to the script's start and stop functions.
main() {
	case ${1:-} in
	start) start ;;
	stop)
		stop
		rm -f "$CI_RUN/env/$NAME.env"
		;;
	restart)
		stop
		start
		;;
	*)
		echo "usage: $0 start|stop|restart" >&2
		exit 2
		;;
	esac
}
