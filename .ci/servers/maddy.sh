#!/usr/bin/env bash
# .ci/servers/maddy.sh start|stop — maddy (Go module github.com/foxcpp/maddy,
# v0.8.1 exactly) on 127.0.0.1:18587 (STARTTLS) and 18465 (implicit TLS).
#
# Built from the module at that version into /var/cache/portwise-ci/bin.
# `go install github.com/foxcpp/maddy/cmd/maddy@v0.8.1` is the way to build
# it, but go install also asks the module proxy for the module's version
# list (to check for a deprecation notice), which the proxy CI can reach
# refuses for this module; so the script downloads exactly v0.8.1 (go mod
# download, checked against go.sum of the module) and builds its cmd/maddy
# in the module's own directory, with its own go.mod and go.sum: the same
# build as go install. Mail for example.test goes to maddy's storage
# (storage.imapsql: SQLite index, message files in a blob directory the
# tests read). io_debug logs every command, AUTH included, to stderr.
NAME=maddy
# shellcheck source=lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

VERSION=v0.8.1
PORT_STARTTLS=18587
PORT_IMPLICIT=18465
BIN=${CI_CACHE}/bin/maddy-${VERSION}
DATA=${CI_STATE}/servers/maddy
CONF=${DATA}/maddy.conf
LOGFILE=${CI_LOG}/maddy.out

build() {
	local dir
	log "building github.com/foxcpp/maddy/cmd/maddy@$VERSION"
	dir=$(cd / && GOFLAGS='' go mod download -json "github.com/foxcpp/maddy@$VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[[ -n $dir && -f $dir/go.mod ]] || die "go mod download github.com/foxcpp/maddy@$VERSION failed"
	(cd "$dir" && GOFLAGS=-mod=readonly go build -trimpath \
		-ldflags "-X github.com/foxcpp/maddy.Version=${VERSION#v}" -o "$BIN.tmp" ./cmd/maddy)
	mv "$BIN.tmp" "$BIN"
}

start() {
	[[ -x $BIN ]] || build
	issue_cert maddy
	stop
	rm -rf "$DATA"
	install -d -m 0755 "$DATA" "$DATA/state" "$CI_RUN/maddy"
	local cert=${CI_STATE}/certs/maddy hash
	hash=$("$BIN" hash --password "$PASS1")
	cat >"$CONF" <<CONF
# Written by .ci/servers/maddy.sh on every start.
hostname localhost
state_dir ${DATA}/state
runtime_dir ${CI_RUN}/maddy
tls file ${cert}/chain.pem ${cert}/key.pem {
    # maddy's default is tls1.0 tls1.3; a provider no longer accepts 1.0 and 1.1.
    protocols tls1.2 tls1.3
}
log stderr

auth.pass_table local_authdb {
    table static {
        entry "${USER1}" "${hash}"
    }
}

storage.imapsql local_mailboxes {
    driver sqlite3
    dsn imapsql.db
    msg_store fs messages/
}

submission tls://${HOST}:${PORT_IMPLICIT} tcp://${HOST}:${PORT_STARTTLS} {
    auth &local_authdb
    sasl_login yes
    io_debug yes
    debug yes
    insecure_auth no
    source ${DOMAIN} {
        destination ${DOMAIN} {
            deliver_to &local_mailboxes
        }
        default_destination {
            reject 550 5.7.1 "portwise CI: no outbound mail"
        }
    }
    default_source {
        reject 501 5.1.8 "portwise CI: senders are @${DOMAIN}"
    }
}
CONF
	local u
	for u in "$RCPT" "dörte@$DOMAIN" "$USER1"; do
		"$BIN" --config "$CONF" imap-acct create "$u" >/dev/null
	done
	: >"$LOGFILE"
	log "starting"
	start_daemon maddy "$BIN" --config "$CONF" run
	wait_smtp "$PORT_STARTTLS" starttls
	wait_smtp "$PORT_IMPLICIT" implicit
	local version
	version=$("$BIN" version | awk 'NR == 1 { print $1 }')
	write_env maddy "$PORT_STARTTLS" "$PORT_IMPLICIT" "$version" "$DATA/state/messages" "$LOGFILE"
	log "ready: $HOST:$PORT_STARTTLS (STARTTLS), $HOST:$PORT_IMPLICIT (implicit TLS), maddy $version"
}

stop() {
	stop_daemon maddy
}

main "$@"
