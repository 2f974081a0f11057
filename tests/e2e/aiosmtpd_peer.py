"""A next hop for the end-to-end tests, built on python3-aiosmtpd (run with /usr/bin/python3).

Listens on one loopback address, in plain text, with STARTTLS (then required before MAIL and
AUTH), or with implicit TLS; with --user it requires AUTH (PLAIN and LOGIN, restricted with
--mechanisms). Each accepted message is stored in --store as NNNN.eml (the content exactly as
received, dots unstuffed, CRLF line ends) and NNNN.json (envelope, TLS, authenticated user and
mechanism), the .json written last and atomically so a reader never sees half a message.

--reject-rcpt PREFIX=CODE TEXT refuses RCPT TO addresses starting with PREFIX.
Stops on SIGTERM.
"""

import argparse
import json
import logging
import os
import signal
import ssl
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Store:
    def __init__(self, directory):
        self.directory = directory
        self.lock = threading.Lock()
        self.count = 0

    def save(self, content, meta):
        with self.lock:
            self.count += 1
            base = os.path.join(self.directory, "%04d" % self.count)
        with open(base + ".eml", "wb") as f:
            f.write(content)
        with open(base + ".json.tmp", "w") as f:
            json.dump(meta, f)
        os.rename(base + ".json.tmp", base + ".json")


class Handler:
    def __init__(self, store, reject_rcpt):
        self.store = store
        self.reject_rcpt = reject_rcpt

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        for prefix, reply in self.reject_rcpt:
            if address.startswith(prefix):
                return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        auth = session.auth_data
        meta = {
            # aiosmtpd keeps the null sender as "<>"; stored as "" like mailhop's queue list.
            "mail_from": "" if envelope.mail_from == "<>" else envelope.mail_from,
            "mail_options": envelope.mail_options,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": server.transport.get_extra_info("ssl_object") is not None,
            "auth_user": auth.login.decode() if isinstance(auth, LoginPassword) else None,
            "auth_mechanism": getattr(session, "e2e_mechanism", None),
            "helo": session.host_name,
        }
        self.store.save(envelope.original_content, meta)
        return "250 2.0.0 OK stored"


class Authenticator:
    def __init__(self, users, log_path):
        self.users = users
        self.log_path = log_path

    def __call__(self, server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user = auth_data.login.decode()
        tls = server.transport.get_extra_info("ssl_object") is not None
        with open(self.log_path, "a") as f:  # every attempt, for tests that forbid one
            f.write("%s %s tls=%s\n" % (mechanism, user, tls))
        ok = self.users.get(user) == auth_data.password.decode()
        if ok:
            session.e2e_mechanism = mechanism
        return AuthResult(success=ok, handled=False, auth_data=auth_data)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--listen", required=True)
    p.add_argument("--store", required=True)
    p.add_argument("--tls", choices=["none", "starttls", "implicit"], default="none")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--user", action="append", default=[])
    p.add_argument("--mechanisms", default="PLAIN,LOGIN")
    p.add_argument("--reject-rcpt", action="append", default=[])
    args = p.parse_args()
    # The SMTP dialogue goes to stderr (the peer's log file), for failures to show what happened.
    logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("asyncio").setLevel(logging.WARNING)

    host, port = args.listen.rsplit(":", 1)
    reject = []
    for spec in args.reject_rcpt:
        prefix, reply = spec.split("=", 1)
        reject.append((prefix, reply))
    users = dict(u.split(":", 1) for u in args.user)

    kwargs = {"server_hostname": "peer.test", "ident": "aiosmtpd e2e peer"}
    context = None
    if args.tls != "none":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
    if args.tls == "starttls":
        kwargs.update(tls_context=context, require_starttls=True)
    elif args.tls == "implicit":
        kwargs.update(ssl_context=context)
    if users:
        offered = {m.strip().upper() for m in args.mechanisms.split(",")}
        kwargs.update(auth_required=True, # aiosmtpd only counts STARTTLS as TLS; with implicit TLS
                      # every byte is encrypted anyway.
                      auth_require_tls=args.tls == "starttls",
                      authenticator=Authenticator(users, os.path.join(args.store, "auth-attempts")),
                      auth_exclude_mechanism=[m for m in ("PLAIN", "LOGIN") if m not in offered])

    os.makedirs(args.store, exist_ok=True)
    controller = Controller(Handler(Store(args.store), reject), hostname=host, port=int(port),
                            **kwargs)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    controller.start()
    print("listening on %s" % args.listen, flush=True)
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
