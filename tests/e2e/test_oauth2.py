"""OAuth2 to the next hop end to end (issue 7, "What must show"): a local HTTPS token endpoint
and an aiosmtpd next hop with STARTTLS that accepts XOAUTH2 and OAUTHBEARER only for tokens that
endpoint handed out (oauth2_peers.py, one process, certificates from a test CA made with openssl).

- many messages over several connections: all arrive, authenticated, with one token request;
  the rotated refresh token is written back to refresh_token_file; no token, refresh token,
  client secret or AUTH line (not even base64-encoded) shows in the log;
- OAUTHBEARER with a short-lived token: after it expires a new one is fetched;
- a revoked token (the next hop starts refusing it): one refresh, and the message is delivered;
- the token endpoint down: the message is deferred with a last_error naming the endpoint, not
  bounced, and delivered once the endpoint is back;
- `mailhop oauth2 token -c FILE` prints the lifetime, not the token, and saves a rotated refresh
  token; with the endpoint down it fails naming the cause.
"""

import base64
import json
import os
import re
import shutil
import signal
import smtplib
import tempfile
import time

from mailhop_e2e import (E2ETest, PYTHON, HERE, crlf, free_port, main, make_ca, mailhop,
                         start_process, stop_process, wait_for, wait_port)

USER = "sender@mail.test"
CLIENT_ID = "mailhop-e2e-client"
CLIENT_SECRET = "cs+e2e/secret=7Q"
SCOPE = "https://mail.test/ offline_access"
FIRST_REFRESH = "rt-initial-5e1f"

CA = None
CA_DIR = None


def setUpModule():
    global CA, CA_DIR
    CA_DIR = tempfile.mkdtemp(prefix="mailhop-e2e-ca-")
    CA = make_ca(CA_DIR)


def tearDownModule():
    shutil.rmtree(CA_DIR, ignore_errors=True)


def message(n):
    return crlf("From: app@app.example\nTo: r%d@example.net\nSubject: oauth2 %d\n\nBody %d.\n" % (n, n, n))


class Peers:
    def __init__(self, case, expires_in=3600, rotate=True):
        self.smtp_port = case.relay_port
        self.https_port = free_port()
        self.store = os.path.join(case.dir, "peer")
        self.state_path = os.path.join(case.dir, "peer-state.json")
        self.log_path = os.path.join(case.dir, "peer.log")
        cert, key = CA["localhost"]
        argv = [PYTHON, os.path.join(HERE, "oauth2_peers.py"),
                "--smtp", "127.0.0.1:%d" % self.smtp_port, "--https", "127.0.0.1:%d" % self.https_port,
                "--cert", cert, "--key", key, "--store", self.store, "--state", self.state_path,
                "--refresh-token", FIRST_REFRESH, "--client-id", CLIENT_ID,
                "--client-secret", CLIENT_SECRET, "--scope", SCOPE, "--expires-in", str(expires_in)]
        if rotate:
            argv.append("--rotate")
        log = open(self.log_path, "ab")
        self.proc = start_process(argv, stdout=log, stderr=log)
        log.close()
        wait_port(self.smtp_port, proc=self.proc, log=self.log_path)
        wait_port(self.https_port, proc=self.proc, log=self.log_path)
        case.addCleanup(self.stop)

    def stop(self):
        stop_process(self.proc)

    def state(self):
        with open(self.state_path) as f:
            return json.load(f)

    def messages(self):
        out = []
        if not os.path.isdir(self.store):
            return out
        for name in sorted(os.listdir(self.store)):
            if name.endswith(".json"):
                with open(os.path.join(self.store, name)) as f:
                    out.append(json.load(f))
        return out

    def toggle_endpoint(self, up):
        self.proc.send_signal(signal.SIGUSR1)
        wait_for(lambda: self.state()["endpoint_up"] == up, 10, "token endpoint up=%s" % up)

    def wait_no_sessions(self):
        wait_for(lambda: self.state()["sessions"] == 0, 20, "mailhop's connections to the next hop closed")


class OAuth2(E2ETest):

    def setUp(self):
        super().setUp()
        self.refresh_file = os.path.join(self.dir, "refresh-token")
        with open(self.refresh_file, "w") as f:
            f.write(FIRST_REFRESH + "\n")
        os.chmod(self.refresh_file, 0o600)
        self.secret_file = os.path.join(self.dir, "client-secret")
        with open(self.secret_file, "w") as f:
            f.write(CLIENT_SECRET + "\n")

    def config(self, peers, auth="xoauth2", idle="1s"):
        return {
            "relay": {"host": "localhost", "port": peers.smtp_port, "tls": "starttls", "verify": True,
                      "ca_file": CA["ca"], "username": USER, "auth": auth,
                      "oauth2": {"token_url": "https://localhost:%d/token" % peers.https_port,
                                 "client_id": CLIENT_ID, "client_secret_file": self.secret_file,
                                 "scope": SCOPE, "grant": "refresh_token",
                                 "refresh_token_file": self.refresh_file},
                      "timeouts": {"idle": idle}},
        }

    def submit(self, content, rcpt="r@example.net"):
        with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=30) as s:
            s.ehlo("app.example")
            self.assertEqual(s.mail("app@app.example")[0], 250)
            self.assertEqual(s.rcpt(rcpt)[0], 250)
            code, msg = s.data(content)
            self.assertEqual(code, 250, msg)
            return re.search(r"queued as (\S+)", msg.decode()).group(1)

    def wait_delivered(self, peers, count):
        wait_for(lambda: len(peers.messages()) >= count, 30,
                 lambda: "%d messages at the next hop%s" % (count, self.ctx()))
        self.wait_queue(lambda q: q == [], "an empty queue after delivery")
        got = peers.messages()
        self.assertEqual(len(got), count)
        return got

    def assert_no_secrets_logged(self, peers):
        log = self.log()
        st = peers.state()
        secrets = [CLIENT_SECRET, FIRST_REFRESH, st["refresh_token"]] + st["tokens"]
        for t in st["tokens"]:
            secrets.append(base64.b64encode(("user=%s\x01auth=Bearer %s\x01\x01" % (USER, t)).encode()).decode())
            secrets.append(t[:24])  # also no recognisable part
        for s in secrets:
            self.assertNotIn(s, log, "a secret is in the log")

    def test_many_messages_one_token_request_and_rotation(self):
        peers = Peers(self)
        self.start_daemon(self.config(peers, idle="2s"))
        for n in range(12):
            self.submit(message(n), "r%d@example.net" % n)
        got = self.wait_delivered(peers, 12)
        for m in got:
            self.assertEqual(m["auth_mechanism"], "XOAUTH2")
            self.assertEqual(m["auth_user"], USER)
            self.assertTrue(m["tls"])
        st = peers.state()
        self.assertEqual(st["requests"], ["ok"], "one token request for all messages")
        self.assertTrue(all(a["ok"] for a in st["auth"]), st["auth"])
        # The endpoint rotated the refresh token: written back (atomically, mode kept).
        with open(self.refresh_file) as f:
            self.assertEqual(f.read(), st["refresh_token"] + "\n")
        self.assertNotEqual(st["refresh_token"], FIRST_REFRESH)
        self.assertEqual(os.stat(self.refresh_file).st_mode & 0o777, 0o600)
        self.assert_no_secrets_logged(peers)

    def test_oauthbearer_new_token_after_expiry(self):
        peers = Peers(self, expires_in=4)
        self.start_daemon(self.config(peers, auth="oauthbearer", idle="1s"))
        self.submit(message(1))
        self.wait_delivered(peers, 1)
        issued = time.time()
        self.assertEqual(peers.state()["requests"], ["ok"])
        peers.wait_no_sessions()
        # The condition is time itself: the token the endpoint issued has expired.
        wait_for(lambda: time.time() > issued + 4.5, 10, "the first token expired")
        self.submit(message(2))
        got = self.wait_delivered(peers, 2)
        self.assertEqual([m["auth_mechanism"] for m in got], ["OAUTHBEARER", "OAUTHBEARER"])
        st = peers.state()
        self.assertEqual(st["requests"], ["ok", "ok"], "a new token after expiry")
        self.assertTrue(all(a["ok"] for a in st["auth"]), "an expired token was offered: %r" % st["auth"])
        self.assert_no_secrets_logged(peers)

    def revoked_token(self, auth, mechanism):
        peers = Peers(self)
        self.start_daemon(self.config(peers, auth=auth, idle="1s"))
        self.submit(message(1))
        self.wait_delivered(peers, 1)
        peers.wait_no_sessions()
        peers.proc.send_signal(signal.SIGUSR2)  # the next hop refuses the cached token from now on
        wait_for(lambda: peers.state()["revoked"] == 1, 10, "the token revoked at the next hop")
        self.submit(message(2))
        got = self.wait_delivered(peers, 2)
        st = peers.state()
        self.assertEqual(st["requests"], ["ok", "ok"], "exactly one refresh after the refusal")
        self.assertEqual([a["ok"] for a in st["auth"]], [True, False, True], st["auth"])
        self.assertEqual([m["auth_mechanism"] for m in got], [mechanism, mechanism])
        self.assertIn("the cached OAuth2 access token was refused", self.log())
        self.assert_no_secrets_logged(peers)

    def test_revoked_token_xoauth2(self):
        self.revoked_token("xoauth2", "XOAUTH2")

    def test_revoked_token_oauthbearer(self):
        self.revoked_token("oauthbearer", "OAUTHBEARER")

    def test_endpoint_down_defers_then_delivers(self):
        peers = Peers(self)
        peers.toggle_endpoint(up=False)
        self.start_daemon(self.config(peers))
        qid = self.submit(message(1))
        queue = self.wait_queue(lambda q: any(e["id"] == qid and e["attempts"] >= 1 and e["last_error"] for e in q),
                                "message deferred with a last_error")
        e = [e for e in queue if e["id"] == qid][0]
        self.assertEqual([r["state"] for r in e["recipients"]], ["pending"], "deferred, not failed: %r" % e)
        self.assertIn("token endpoint https://localhost:%d/token" % peers.https_port, e["last_error"])
        self.assertRegex(e["last_error"], r"cannot connect")
        self.assertEqual(len(queue), 1, "no bounce was queued: %r" % queue)
        self.assertEqual(peers.messages(), [])
        # /readyz counts the failing token endpoint as not ready, and says so.
        down = mailhop("health", config=self.config_path)
        self.assertEqual(down.returncode, 1, down.stdout)
        self.assertIn("oauth2_token", json.loads(down.stdout)["failed"])
        peers.toggle_endpoint(up=True)
        got = self.wait_delivered(peers, 1)
        self.assertEqual(got[0]["auth_mechanism"], "XOAUTH2")
        up = mailhop("health", config=self.config_path)
        self.assertNotIn("oauth2_token", json.loads(up.stdout)["failed"], up.stdout)
        self.assertEqual(peers.state()["requests"], ["ok"])

    def test_oauth2_token_command(self):
        peers = Peers(self)
        path = self.write_config(self.config(peers))
        r = mailhop("oauth2", "token", config=path)
        out = r.stdout.decode() + r.stderr.decode()
        self.assertEqual(r.returncode, 0, out)
        self.assertRegex(r.stdout.decode(), r"access token for sender@mail.test \(\d+ bytes\) valid for 3[56]\d\d s, until 20")
        st = peers.state()
        self.assertEqual(st["requests"], ["ok"])
        for t in st["tokens"]:
            self.assertNotIn(t, out)
        with open(self.refresh_file) as f:
            self.assertEqual(f.read(), st["refresh_token"] + "\n")
        self.assertNotIn(st["refresh_token"], out)
        self.assertNotIn(CLIENT_SECRET, out)

        peers.toggle_endpoint(up=False)
        r = mailhop("oauth2", "token", config=path)
        self.assertEqual(r.returncode, 69, r.stderr)
        self.assertIn("token endpoint https://localhost:%d/token: cannot connect" % peers.https_port,
                      r.stderr.decode())


if __name__ == "__main__":
    main()
