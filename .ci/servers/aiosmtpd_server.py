"""A submission server built on aiosmtpd, for portwise's interop matrix.

Run by .ci/servers/aiosmtpd.sh with Debian's python3 and python3-aiosmtpd.
Two listeners share one handler: STARTTLS (tls_context, require_starttls)
and implicit TLS (ssl_context). Each message is stored as it was received
(envelope.original_content: the DATA bytes, CRLF, dot-unstuffed, nothing
added) in STORE/<n>.eml, with its envelope in STORE/<n>.json. aiosmtpd logs
every command line to LOG ('>> b"AUTH ..."', credentials redacted).
"""

import argparse
import asyncio
import itertools
import json
import logging
import os
import signal
import ssl

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Store:
    def __init__(self, root):
        self.root = root
        self.seq = itertools.count(1)

    async def handle_DATA(self, server, session, envelope):
        n = f"{os.getpid()}-{next(self.seq):06d}"
        meta = {
            "mail_from": envelope.mail_from,
            "mail_options": envelope.mail_options,
            "rcpt_tos": envelope.rcpt_tos,
            "rcpt_options": envelope.rcpt_options,
            "smtputf8": envelope.smtp_utf8,
            "tls": session.ssl is not None or server.tls_context is None,
            "auth": session.authenticated,
        }
        tmp = os.path.join(self.root, "tmp", n)
        with open(tmp + ".json", "w", encoding="utf-8") as f:
            json.dump(meta, f, ensure_ascii=False)
        with open(tmp + ".eml", "wb") as f:
            f.write(envelope.original_content)
        os.rename(tmp + ".json", os.path.join(self.root, n + ".json"))
        os.rename(tmp + ".eml", os.path.join(self.root, n + ".eml"))
        return f"250 2.0.0 Ok: queued as {n}"


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == user
            and auth_data.password.decode() == password
        )
        logging.getLogger("mail.log").info("auth %s for %r: %s", mechanism, auth_data.login, "ok" if ok else "failed")
        # handled=False: aiosmtpd answers 535 itself (with the default,
        # handled=True, a failed AUTH gets no reply at all).
        return AuthResult(success=ok, handled=False)

    return check


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--starttls-port", type=int, required=True)
    p.add_argument("--implicit-port", type=int, required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--store", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password-file", required=True)
    a = p.parse_args()
    logging.basicConfig(filename=a.log, level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    with open(a.password_file, encoding="utf-8") as f:
        password = f.read().strip()
    os.makedirs(os.path.join(a.store, "tmp"), exist_ok=True)

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(a.cert, a.key)
    handler = Store(a.store)
    common = dict(
        hostname=a.host,
        server_hostname="localhost",
        ident="aiosmtpd portwise-ci",
        authenticator=authenticator(a.user, password),
        auth_required=True,
        enable_SMTPUTF8=True,
    )
    starttls = Controller(handler, port=a.starttls_port, tls_context=ctx, require_starttls=True,
                          auth_require_tls=True, **common)
    # aiosmtpd's auth_require_tls only recognises a STARTTLS session: on a
    # listener with ssl_context it would refuse AUTH over the implicit TLS
    # connection (538) and never advertise it. Every byte on this listener
    # is inside TLS, so requiring TLS for AUTH is moot here.
    implicit = Controller(handler, port=a.implicit_port, ssl_context=ctx, auth_require_tls=False, **common)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    starttls.start()
    implicit.start()
    try:
        signal.sigwait({signal.SIGTERM, signal.SIGINT})
    finally:
        implicit.stop()
        starttls.stop()


if __name__ == "__main__":
    main()
