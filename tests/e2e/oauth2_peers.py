"""OAuth2 peers for test_oauth2.py, in one process (run with /usr/bin/python3):

- a token endpoint: Python's http.server wrapped in ssl (a certificate from the test CA), POST
  /token with the refresh_token grant (client_id, client_secret, scope and the current refresh
  token checked); each answer issues a new access token valid for --expires-in seconds and, with
  --rotate, a new refresh token (the old one stops working, as with Microsoft's);
- an aiosmtpd next hop with STARTTLS (required before AUTH) offering only XOAUTH2 and
  OAUTHBEARER, accepting a token only if this endpoint issued it, it has not expired and it has
  not been revoked. A refused XOAUTH2/OAUTHBEARER gets the 334 JSON error challenge, then 535.

Signals: SIGUSR1 takes the token endpoint down (its port refuses connections) or brings it back;
SIGUSR2 revokes every token issued so far (the next hop refuses them from then on).
The state also counts the SMTP sessions open now.
--state FILE is rewritten atomically after every event: token requests, tokens issued, AUTH
attempts (mechanism, user, accepted), whether the endpoint is up. Messages are stored in --store
as NNNN.eml + NNNN.json, the .json last. Stops on SIGTERM.
"""

import argparse
import base64
import json
import logging
import os
import secrets
import signal
import ssl
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult


class State:
    def __init__(self, path, refresh_token, client_id, client_secret, scope, expires_in, rotate):
        self.path = path
        self.lock = threading.Lock()
        self.refresh_token = refresh_token
        self.client_id = client_id
        self.client_secret = client_secret
        self.scope = scope
        self.expires_in = expires_in
        self.rotate = rotate
        self.tokens = {}  # token -> expiry (time.time())
        self.revoked = set()
        self.requests = []  # one entry per token request: "ok" or why refused
        self.auth = []      # {"mechanism", "user", "ok"}
        self.endpoint_up = True
        self.messages = 0
        self.sessions = 0  # SMTP connections open now

    def save(self):  # with self.lock held
        data = {"requests": self.requests, "auth": self.auth, "issued": len(self.tokens),
                "endpoint_up": self.endpoint_up, "messages": self.messages, "sessions": self.sessions,
                "revoked": len(self.revoked),
                # Test-only: so the test can check that none of these shows in mailhop's log.
                "tokens": sorted(self.tokens), "refresh_token": self.refresh_token}
        with open(self.path + ".tmp", "w") as f:
            json.dump(data, f)
        os.rename(self.path + ".tmp", self.path)

    def token_request(self, form):
        with self.lock:
            def refuse(why):
                self.requests.append(why)
                self.save()
                return 400, {"error": "invalid_grant" if "refresh" in why else "invalid_request",
                             "error_description": why}
            if form.get("grant_type") != "refresh_token":
                return refuse("grant_type %r" % form.get("grant_type"))
            if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
                return refuse("client credentials")
            if form.get("scope") != self.scope:
                return refuse("scope %r" % form.get("scope"))
            if form.get("refresh_token") != self.refresh_token:
                return refuse("refresh token")
            token = "at-%d-%s" % (len(self.tokens) + 1, secrets.token_urlsafe(24))
            self.tokens[token] = time.time() + self.expires_in
            answer = {"access_token": token, "token_type": "Bearer", "expires_in": self.expires_in,
                      "scope": self.scope}
            if self.rotate:
                self.refresh_token = "rt-%s" % secrets.token_urlsafe(16)
                answer["refresh_token"] = self.refresh_token
            self.requests.append("ok")
            self.save()
            return 200, answer

    def check(self, mechanism, user, token):
        with self.lock:
            ok = (token in self.tokens and token not in self.revoked
                  and time.time() < self.tokens[token])
            self.auth.append({"mechanism": mechanism, "user": user, "ok": ok})
            self.save()
            return ok

    def revoke_all(self):
        with self.lock:
            self.revoked.update(self.tokens)
            self.save()


class TokenHandler(BaseHTTPRequestHandler):
    state = None

    def do_POST(self):
        if self.path != "/token":
            self.send_error(404)
            return
        length = int(self.headers.get("Content-Length", "0"))
        if self.headers.get("Content-Type") != "application/x-www-form-urlencoded":
            self.send_error(415)
            return
        form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode(), keep_blank_values=True))
        status, answer = self.state.token_request(form)
        body = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        logging.info("token endpoint: " + fmt, *args)


class Endpoint:
    """The HTTPS token endpoint; stop() closes its port, start() opens it again."""

    def __init__(self, host, port, context):
        self.host, self.port, self.context = host, port, context
        self.server = None

    def start(self):
        server = ThreadingHTTPServer((self.host, self.port), TokenHandler)
        server.socket = self.context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.server = server

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


class Handler:
    def __init__(self, state, store):
        self.state = state
        self.store = store

    async def _refuse(self, server):
        # Google's and Microsoft's form: a 334 JSON error challenge, the client's answer, 535.
        challenge = json.dumps({"status": "401", "schemes": "bearer", "scope": "https://mail.test/"})
        await server.challenge_auth(challenge)
        return AuthResult(success=False, handled=False, message="535 5.7.8 Username and Password not accepted")

    async def auth_XOAUTH2(self, server, args):
        if len(args) < 2:
            return AuthResult(success=False, handled=False, message="501 5.5.2 initial response required")
        raw = base64.b64decode(args[1]).decode()
        parts = raw.split("\x01")
        # user=U ^A auth=Bearer T ^A ^A
        fields = dict(p.split("=", 1) for p in parts if "=" in p)
        well_formed = (raw.endswith("\x01\x01") and raw.startswith("user=")
                       and fields.get("auth", "").startswith("Bearer "))
        user = fields.get("user", "")
        token = fields.get("auth", "")[len("Bearer "):]
        if well_formed and self.state.check("XOAUTH2", user, token):
            server.session.e2e = ("XOAUTH2", user)
            return AuthResult(success=True, auth_data=user)
        return await self._refuse(server)

    async def auth_OAUTHBEARER(self, server, args):
        if len(args) < 2:
            return AuthResult(success=False, handled=False, message="501 5.5.2 initial response required")
        raw = base64.b64decode(args[1]).decode()
        # RFC 7628: n,a=U, ^A host=H ^A port=P ^A auth=Bearer T ^A ^A
        header, _, rest = raw.partition("\x01")
        gs2 = header.split(",")
        fields = dict(p.split("=", 1) for p in rest.split("\x01") if "=" in p)
        well_formed = (raw.endswith("\x01\x01") and gs2[0] == "n" and len(gs2) == 3
                       and gs2[1].startswith("a=") and "host" in fields and "port" in fields
                       and fields.get("auth", "").startswith("Bearer "))
        user = gs2[1][2:] if len(gs2) > 1 else ""
        token = fields.get("auth", "")[len("Bearer "):]
        if well_formed and self.state.check("OAUTHBEARER", user, token):
            server.session.e2e = ("OAUTHBEARER", user)
            return AuthResult(success=True, auth_data=user)
        # RFC 7628 §3.2.2: the error challenge; the client answers with ^A.
        challenge = json.dumps({"status": "invalid_token", "scope": "https://mail.test/"})
        answer = await server.challenge_auth(challenge)
        if answer != b"\x01":
            return AuthResult(success=False, handled=False, message="501 5.5.2 expected ^A")
        return AuthResult(success=False, handled=False, message="535 5.7.8 Authentication failed")

    async def handle_DATA(self, server, session, envelope):
        mechanism, user = getattr(session, "e2e", (None, None))
        meta = {"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                "tls": server.transport.get_extra_info("ssl_object") is not None,
                "auth_user": user, "auth_mechanism": mechanism}
        with self.state.lock:
            self.state.messages += 1
            base = os.path.join(self.store, "%04d" % self.state.messages)
            with open(base + ".eml", "wb") as f:
                f.write(envelope.original_content)
            with open(base + ".json.tmp", "w") as f:
                json.dump(meta, f)
            os.rename(base + ".json.tmp", base + ".json")
            self.state.save()
        return "250 2.0.0 OK stored"


class CountingSMTP(SMTP):
    """Counts open sessions, so a test can wait until mailhop's idle connections are gone."""

    def connection_made(self, transport):
        # Called again after STARTTLS, for the same session: counted once.
        if not getattr(self, "e2e_counted", False):
            self.e2e_counted = True
            with self.event_handler.state.lock:
                self.event_handler.state.sessions += 1
                self.event_handler.state.save()
        super().connection_made(transport)

    def connection_lost(self, exc):
        if getattr(self, "e2e_counted", False):
            self.e2e_counted = False
            with self.event_handler.state.lock:
                self.event_handler.state.sessions -= 1
                self.event_handler.state.save()
        super().connection_lost(exc)


class CountingController(Controller):
    def factory(self):
        return CountingSMTP(self.handler, **self.SMTP_kwargs)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--smtp", required=True)
    p.add_argument("--https", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--store", required=True)
    p.add_argument("--state", required=True)
    p.add_argument("--refresh-token", required=True)
    p.add_argument("--client-id", required=True)
    p.add_argument("--client-secret", required=True)
    p.add_argument("--scope", required=True)
    p.add_argument("--expires-in", type=int, default=3600)
    p.add_argument("--rotate", action="store_true")
    args = p.parse_args()
    logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("asyncio").setLevel(logging.WARNING)

    state = State(args.state, args.refresh_token, args.client_id, args.client_secret, args.scope,
                  args.expires_in, args.rotate)
    with state.lock:
        state.save()
    TokenHandler.state = state
    os.makedirs(args.store, exist_ok=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.cert, args.key)

    host, port = args.https.rsplit(":", 1)
    endpoint = Endpoint(host, int(port), context)
    endpoint.start()

    host, port = args.smtp.rsplit(":", 1)
    controller = CountingController(Handler(state, args.store), hostname=host, port=int(port),
                            server_hostname="peer.test", ident="oauth2 e2e peer",
                            tls_context=context, require_starttls=True, auth_required=True,
                            auth_require_tls=True, auth_exclude_mechanism=["PLAIN", "LOGIN"])

    events = []
    wake = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: (events.append("stop"), wake.set()))
    signal.signal(signal.SIGINT, lambda *_: (events.append("stop"), wake.set()))
    signal.signal(signal.SIGUSR1, lambda *_: (events.append("toggle"), wake.set()))
    signal.signal(signal.SIGUSR2, lambda *_: (events.append("revoke"), wake.set()))
    controller.start()
    print("listening", flush=True)
    while True:
        wake.wait()
        wake.clear()
        while events:
            event = events.pop(0)
            if event == "stop":
                endpoint.stop()
                controller.stop()
                return
            if event == "toggle":
                if endpoint.server:
                    endpoint.stop()
                else:
                    endpoint.start()
                with state.lock:
                    state.endpoint_up = endpoint.server is not None
                    state.save()
            elif event == "revoke":
                state.revoke_all()


if __name__ == "__main__":
    main()
