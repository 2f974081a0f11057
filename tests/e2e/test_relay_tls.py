"""Outbound end to end, TLS and AUTH (issue 3, "What must show"): an aiosmtpd next hop, in its own
process, with a certificate from a CA this test makes with openssl.

- STARTTLS required + AUTH PLAIN (both offered: PLAIN preferred), relay.host a DNS name;
- STARTTLS + AUTH LOGIN (only LOGIN offered), relay.host an IP address (checked against the
  certificate's IP entry), password from password_env;
- implicit TLS (the next hop is TLS from connect);
- a certificate for another host name: nothing is sent, the message is deferred with a
  last_error that says why;
- a next hop that does not offer STARTTLS while tls: starttls: nothing is sent, deferred;
- a wrong password (535): deferred, not bounced, and the log names the cause.

Messages must arrive byte for byte as submitted, plus mailhop's added headers, authenticated as
the configured user, over TLS; the password never shows in the log.
"""

import os
import shutil
import smtplib
import tempfile

from mailhop_e2e import (AioPeer, E2ETest, check_added_headers, crlf, main, make_ca,
                         queued_id_from_reply, wait_for)

PASSWORD = "pw-e2e-7f3a9c"
USER = "relayuser"

CA = None
CA_DIR = None


def setUpModule():
    global CA, CA_DIR
    CA_DIR = tempfile.mkdtemp(prefix="mailhop-e2e-ca-")
    CA = make_ca(CA_DIR)


def tearDownModule():
    shutil.rmtree(CA_DIR, ignore_errors=True)


def message(n, extra=""):
    return crlf("From: app@app.example\n"
                "To: r%d@example.net\n"
                "Subject: relayed %d\n"
                "%s"
                "\n"
                "Body of message %d.\n"
                ".a line starting with a dot\n"
                ".\n"
                "Ünïcödé (8-bit)\n" % (n, n, extra, n))


class RelayTls(E2ETest):

    def setUp(self):
        super().setUp()
        self.pwfile = os.path.join(self.dir, "relay-password")
        with open(self.pwfile, "w") as f:
            f.write(PASSWORD + "\n")  # one trailing newline, stripped by mailhop

    def peer(self, cert="localhost", tls="starttls", mechanisms=("PLAIN", "LOGIN"), users=None):
        c, k = CA[cert]
        p = AioPeer(self.relay_port, os.path.join(self.dir, "peer"), cert=c, key=k, tls=tls,
                    users={USER: PASSWORD} if users is None else users, mechanisms=mechanisms)
        self.addCleanup(p.stop)
        return p

    def relay_config(self, host="localhost", tls="starttls", **extra):
        relay = {"host": host, "port": self.relay_port, "tls": tls, "verify": True,
                 "ca_file": CA["ca"], "username": USER, "password_file": self.pwfile}
        relay.update(extra)
        return {"relay": relay}

    def submit(self, sent, rcpts):
        with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=30) as s:
            s.ehlo("app.example")
            self.assertEqual(s.mail("app@app.example")[0], 250)
            for r in rcpts:
                self.assertEqual(s.rcpt(r)[0], 250)
            code, msg = s.data(sent)
            self.assertEqual(code, 250, msg)
            return queued_id_from_reply(msg.decode())

    def wait_delivered(self, peer, count):
        wait_for(lambda: len(peer.messages()) >= count, 30,
                 lambda: "%d messages at the next hop%s" % (count, self.ctx()))
        return self.wait_queue(lambda q: q == [], "an empty queue after delivery")

    def assert_arrived(self, peer, sent_by_rcpts, mechanism):
        got = peer.messages()
        self.assertEqual(len(got), len(sent_by_rcpts), "messages at the next hop: %r" % got)
        by_subject = {}
        for m in got:
            for line in m["content"].split(b"\r\n"):
                if line.startswith(b"Subject: "):
                    by_subject[line] = m
        for rcpts, sent in sent_by_rcpts:
            subject = [l for l in sent.split(b"\r\n") if l.startswith(b"Subject: ")][0]
            self.assertIn(subject, by_subject, "%r did not arrive" % subject)
            m = by_subject[subject]
            self.assertTrue(m["tls"], "delivered without TLS")
            self.assertEqual(m["auth_user"], USER)
            self.assertEqual(m["auth_mechanism"], mechanism)
            self.assertEqual(m["mail_from"], "app@app.example")
            self.assertEqual(sorted(m["rcpt_tos"]), sorted(rcpts))
            options = [o.upper() for o in m["mail_options"]]
            # The content has 8-bit bytes; the next hop offers SIZE and 8BITMIME.
            self.assertIn("BODY=8BITMIME", options, m["mail_options"])
            self.assertTrue(any(o.startswith("SIZE=") for o in options), m["mail_options"])
            check_added_headers(self, sent, m["content"], self.ctx())
        self.assertNotIn(PASSWORD, self.log(), "the relay password is in the log")

    def test_starttls_auth_plain_by_name(self):
        peer = self.peer()
        self.start_daemon(self.relay_config(host="localhost"))
        sent = [(["a@example.net", "b@example.net", "c@example.net"], message(1)),
                (["d@example.net"], message(2, "Date: Mon, 02 Nov 2026 10:00:00 +0000\n"))]
        for rcpts, content in sent:
            self.submit(content, rcpts)
        self.wait_delivered(peer, len(sent))
        self.assert_arrived(peer, sent, "PLAIN")

    def test_starttls_auth_login_by_ip_password_env(self):
        peer = self.peer(mechanisms=("LOGIN",))
        env = dict(os.environ, MAILHOP_E2E_RELAY_PW=PASSWORD)
        self.start_daemon(self.relay_config(host="127.0.0.1", password_file=None,
                                            password_env="MAILHOP_E2E_RELAY_PW"), env=env)
        sent = [(["a@example.net"], message(3))]
        self.submit(sent[0][1], sent[0][0])
        self.wait_delivered(peer, 1)
        self.assert_arrived(peer, sent, "LOGIN")

    def test_implicit_tls(self):
        peer = self.peer(tls="implicit")
        self.start_daemon(self.relay_config(host="localhost", tls="implicit"))
        sent = [(["a@example.net", "b@example.net"], message(4))]
        self.submit(sent[0][1], sent[0][0])
        self.wait_delivered(peer, 1)
        self.assert_arrived(peer, sent, "PLAIN")

    def assert_deferred_nothing_sent(self, peer, qid, why_regex):
        queue = self.wait_queue(
            lambda q: any(e["id"] == qid and e["attempts"] >= 1 and e["last_error"] for e in q),
            "message %s deferred with a last_error" % qid)
        e = [e for e in queue if e["id"] == qid][0]
        self.assertEqual([r["state"] for r in e["recipients"]], ["pending"],
                         "must stay pending (deferred), not fail: %r" % e)
        self.assertRegex(e["last_error"], why_regex, "last_error does not say why: %r" % e["last_error"])
        self.assertEqual(peer.messages(), [], "a message was sent anyway")
        self.assertNotIn(PASSWORD, self.log())

    def test_certificate_for_another_name_defers(self):
        peer = self.peer(cert="other")
        self.start_daemon(self.relay_config(host="localhost"))
        qid = self.submit(message(5), ["a@example.net"])
        self.assert_deferred_nothing_sent(
            peer, qid, r"(?i)(certificate|verif|host ?name|name mismatch|tls)")

    def test_starttls_required_but_not_offered_defers(self):
        peer = self.peer(tls="none", users={})
        self.start_daemon(self.relay_config(host="127.0.0.1"))
        qid = self.submit(message(6), ["a@example.net"])
        self.assert_deferred_nothing_sent(peer, qid, r"(?i)starttls|tls")

    def test_no_credentials_in_plaintext_when_opportunistic(self):
        # The next hop offers AUTH but no STARTTLS; with tls: opportunistic mailhop must not
        # send the password in the clear: the message waits.
        peer = self.peer(tls="none")
        self.start_daemon(self.relay_config(host="127.0.0.1", tls="opportunistic"))
        qid = self.submit(message(8), ["a@example.net"])
        self.assert_deferred_nothing_sent(peer, qid, r".")
        self.assertEqual(peer.auth_attempts(), [], "credentials were sent without TLS")

    def test_wrong_password_defers_and_logs_cause(self):
        peer = self.peer(users={USER: "another-password"})
        self.start_daemon(self.relay_config(host="localhost"))
        qid = self.submit(message(7), ["a@example.net"])
        self.assert_deferred_nothing_sent(peer, qid, r"(?i)535|auth")
        self.assertRegex(self.log(), r"(?i)(535|auth)", "the log does not name the AUTH failure")


if __name__ == "__main__":
    main()
