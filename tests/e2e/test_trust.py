"""Trust end to end (issue 4: inbound TLS, AUTH, no open relay) with real clients against the
built daemon: swaks (--tls, --tls-on-connect, --auth PLAIN|LOGIN), Python's smtplib
(starttls(), login()), openssl s_client -starttls smtp, a raw socket for the STARTTLS injection
test (CVE-2011-0411) and for the classic Java AUTH LOGIN client of ../shared/origin/, clients
bound to 127.0.0.2 (outside allowed_networks: 127.0.0.1/32) for the relay rule, and SIGHUP with a
new and with a broken certificate.

The next hop is a closed port, so every accepted message stays queued.
"""

import base64
import os
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess

from mailhop_e2e import (COMMAND_DEADLINE, E2ETest, crlf, main, make_ca, mailhop, queued_id_from_reply,
                         swaks, wait_for)

PASSWORD = "s3cret pass"  # a space: PLAIN and LOGIN must carry it whole

MESSAGE = crlf("From: alice@example.org\nTo: bob@example.net\nSubject: trust\n\nhello\n")


def users_line(user, password, senders=None):
    r = mailhop("passwd", user, input=password.encode())
    assert r.returncode == 0, r.stderr
    line = r.stdout.decode().strip()
    assert line.startswith(user + ":$"), line
    return line + (":" + senders if senders else "")


def peer_der(port, source="127.0.0.1", starttls=True):
    """The DER certificate a new TLS handshake sees (STARTTLS or implicit)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    sock = socket.create_connection(("127.0.0.1", port), timeout=COMMAND_DEADLINE,
                                    source_address=(source, 0))
    f = sock.makefile("rb")
    if starttls:
        f.readline()
        sock.sendall(b"EHLO client.test\r\n")
        while f.readline()[3:4] == b"-":
            pass
        sock.sendall(b"STARTTLS\r\n")
        assert f.readline().startswith(b"220 2.0.0")
    tls = ctx.wrap_socket(sock, server_hostname="localhost")
    der = tls.getpeercert(binary_form=True)
    tls.close()
    return der


def der_of(pem_path):
    with open(pem_path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


class Line:
    """A raw client reading one line per call, as simple clients do."""

    def __init__(self, port, source="127.0.0.1"):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=COMMAND_DEADLINE,
                                             source_address=(source, 0))
        self.f = self.sock.makefile("rb")

    def line(self):
        return self.f.readline().decode().rstrip("\r\n")

    def reply(self):
        lines = [self.line()]
        while lines[-1][3:4] == "-":
            lines.append(self.line())
        return lines

    def send(self, text):
        self.sock.sendall(text.encode() if isinstance(text, str) else text)

    def close(self):
        self.sock.close()


class Trust(E2ETest):

    def setUp(self):
        super().setUp()
        self.certs = make_ca(os.path.join(self.dir, "ca"))
        # The configured certificate files are copies, so a test can replace them.
        self.cert = os.path.join(self.dir, "server.pem")
        self.key = os.path.join(self.dir, "server.key")
        shutil.copy(self.certs["localhost"][0], self.cert)
        shutil.copy(self.certs["localhost"][1], self.key)
        self.users = os.path.join(self.dir, "users")
        with open(self.users, "w") as f:
            f.write(users_line("alice", PASSWORD, "alice@example.org,@corp.example") + "\n")
            f.write(users_line("bob", PASSWORD) + "\n")
        os.chmod(self.users, 0o600)
        self.implicit_port = self.free_other_port()
        self.required_port = self.free_other_port()

    def free_other_port(self):
        from mailhop_e2e import free_port
        return free_port()

    def start(self, auth="optional", **extra):
        overrides = {
            "listen": [
                {"address": "127.0.0.1:%d" % self.smtp_port, "tls": "starttls", "auth": auth},
                {"address": "127.0.0.1:%d" % self.implicit_port, "tls": "implicit", "auth": "optional"},
                {"address": "127.0.0.1:%d" % self.required_port, "tls": "starttls", "auth": "required"},
            ],
            "allowed_networks": ["127.0.0.1/32"],
            "tls": {"cert_file": self.cert, "key_file": self.key},
            "auth": {"users_file": self.users},
        }
        overrides.update(extra)
        self.start_daemon(overrides)

    def stored(self, reply_text):
        qid = queued_id_from_reply(reply_text)
        self.assertIsNotNone(qid, reply_text)
        r = mailhop("queue", "cat", qid, config=self.config_path)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    # ---- TLS ----

    def test_swaks_starttls_and_tls_on_connect(self):
        self.start()
        rc, out = swaks("--server", "127.0.0.1:%d" % self.smtp_port, "--tls", "--from", "a@example.org",
                        "--to", "bob@example.net")
        self.assertEqual(rc, 0, out + self.ctx())
        self.assertIn("250-STARTTLS", out)
        # After TLS, STARTTLS is not offered again.
        after_tls = out.split("220 2.0.0 Ready to start TLS", 1)[1]
        self.assertNotIn("STARTTLS", after_tls.split("MAIL FROM", 1)[0])
        stored = self.stored(out)
        self.assertRegex(stored, rb"\(using TLSv1\.[23] with cipher \S+ \(\d+/\d+ bits\)\)")
        self.assertIn(b"with ESMTPS id", stored)

        rc, out = swaks("--server", "127.0.0.1:%d" % self.implicit_port, "--tls-on-connect",
                        "--from", "a@example.org", "--to", "bob@example.net")
        self.assertEqual(rc, 0, out + self.ctx())
        self.assertNotIn("STARTTLS", out.split("MAIL FROM", 1)[0], "STARTTLS offered on an implicit-TLS port")
        self.assertIn(b"with ESMTPS id", self.stored(out))

    def test_starttls_refused_again_and_on_implicit_port(self):
        self.start()
        c = Line(self.smtp_port)
        c.reply()
        c.send("EHLO client.test\r\nSTARTTLS\r\n")
        c.reply()
        self.assertEqual(c.line(), "220 2.0.0 Ready to start TLS")
        ctx = ssl.create_default_context(cafile=self.certs["ca"])
        tls = ctx.wrap_socket(c.sock, server_hostname="localhost")
        f = tls.makefile("rb")
        tls.sendall(b"MAIL FROM:<a@example.org>\r\n")  # the session started over: EHLO first
        self.assertTrue(f.readline().startswith(b"503 5.5.1"))
        tls.sendall(b"STARTTLS\r\n")
        self.assertTrue(f.readline().startswith(b"503 5.5.1"))
        tls.close()

        ctx2 = ssl.create_default_context(cafile=self.certs["ca"])
        raw = socket.create_connection(("127.0.0.1", self.implicit_port), timeout=COMMAND_DEADLINE)
        tls = ctx2.wrap_socket(raw, server_hostname="localhost")  # verified against the test CA
        f = tls.makefile("rb")
        self.assertTrue(f.readline().startswith(b"220 "))
        tls.sendall(b"EHLO client.test\r\nSTARTTLS\r\n")
        ehlo = []
        while True:
            line = f.readline()
            ehlo.append(line)
            if line[3:4] != b"-":
                break
        self.assertNotIn(b"250-STARTTLS\r\n", ehlo)
        self.assertTrue(f.readline().startswith(b"503 5.5.1"))
        tls.close()

    def test_starttls_injection_is_discarded(self):
        """CVE-2011-0411: a command sent in the same write as STARTTLS, before the handshake,
        is never executed: the first reply under TLS answers the client's EHLO, not the RSET."""
        self.start()
        c = Line(self.smtp_port)
        c.reply()
        c.send("EHLO client.test\r\n")
        c.reply()
        c.send("STARTTLS\r\nRSET\r\n")  # one write
        self.assertEqual(c.line(), "220 2.0.0 Ready to start TLS")
        ctx = ssl.create_default_context(cafile=self.certs["ca"])
        tls = ctx.wrap_socket(c.sock, server_hostname="localhost")
        f = tls.makefile("rb")
        tls.sendall(b"EHLO again.test\r\n")
        first = f.readline()
        self.assertEqual(first, b"250-mailhop.test\r\n", "a reply to the injected RSET came first")
        tls.close()
        wait_for(lambda: "discarded" in self.log(), 10, "the discard logged")

        # openssl s_client -starttls smtp: the injected plaintext line after its STARTTLS is
        # not answered either; s_client sends EHLO, STARTTLS itself.
        p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % self.smtp_port,
                            "-starttls", "smtp", "-CAfile", self.certs["ca"], "-quiet",
                            "-verify_return_error", "-servername", "localhost"],
                           input=b"EHLO s-client.test\r\nQUIT\r\n", stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=COMMAND_DEADLINE)
        self.assertIn(b"250-mailhop.test", p.stdout, p.stderr)
        self.assertIn(b"221 2.0.0", p.stdout)

    # ---- AUTH ----

    def test_swaks_auth_plain_and_login(self):
        self.start()
        for mech in ("PLAIN", "LOGIN"):
            for tls in ([], ["--tls"]):
                rc, out = swaks("--server", "127.0.0.1:%d" % self.smtp_port, *tls, "--auth", mech,
                                "--auth-user", "alice", "--auth-password", PASSWORD,
                                "--from", "alice@example.org", "--to", "bob@example.net")
                self.assertEqual(rc, 0, "%s %s: %s%s" % (mech, tls, out, self.ctx()))
                self.assertIn("235 2.7.0 Authentication successful", out)
                stored = self.stored(out)
                self.assertIn(b"(Authenticated sender: alice)", stored)
                self.assertIn(b"with ESMTPSA id" if tls else b"with ESMTPA id", stored)
        # Wrong password: 535, from 127.0.0.1.
        rc, out = swaks("--server", "127.0.0.1:%d" % self.smtp_port, "--auth", "LOGIN",
                        "--auth-user", "alice", "--auth-password", "wrong",
                        "--from", "alice@example.org", "--to", "bob@example.net")
        self.assertNotEqual(rc, 0)
        self.assertIn("535 5.7.8 Authentication credentials invalid", out)
        # From 127.0.0.2 without TLS: AUTH is neither offered nor accepted.
        rc, out = swaks("--server", "127.0.0.1:%d" % self.smtp_port, "--local-interface", "127.0.0.2",
                        "--auth", "PLAIN", "--auth-user", "alice", "--auth-password", PASSWORD,
                        "--from", "alice@example.org", "--to", "bob@example.net")
        self.assertNotEqual(rc, 0, out)
        self.assertNotIn("AUTH PLAIN", out)
        c = Line(self.smtp_port, source="127.0.0.2")
        c.reply()
        c.send("EHLO far.test\r\n")
        c.reply()
        c.send("AUTH PLAIN " + base64.b64encode(b"\0alice\0" + PASSWORD.encode()).decode() + "\r\n")
        self.assertEqual(c.line(), "538 5.7.11 Encryption required for requested authentication mechanism")
        c.close()
        log = self.log()
        self.assertIn("sasl_username=alice", log)
        self.assertNotIn(PASSWORD, log)
        self.assertNotIn(base64.b64encode(PASSWORD.encode()).decode(), log)

    def test_smtplib_starttls_login(self):
        self.start()
        with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=COMMAND_DEADLINE) as s:
            s.starttls(context=ssl.create_default_context(cafile=self.certs["ca"]))
            s.ehlo()
            self.assertIn("auth", s.esmtp_features)
            s.login("bob", PASSWORD)
            refused = s.sendmail("anyone@example.org", ["carol@example.net"], MESSAGE)
            self.assertEqual(refused, {})
            code, _ = s.mail("x@example.org")  # nothing pending; AUTH again is 503
            s.rset()
            code, text = s.docmd("AUTH", "PLAIN")
            self.assertEqual(code, 503, text)
        wait_for(lambda: "sasl_username=bob" in self.log(), 10, "sasl_username=bob logged")

    def test_java_auth_login_client(self):
        """The classic client of ../shared/origin/: HELO, `auth login`, base64 lines, one reply
        line read per command, lowercase commands, `quit` expecting 221."""
        self.start()
        c = Line(self.smtp_port)

        def send_server(text):
            c.send(text + "\r\n")
            return int(c.line()[:3])

        self.assertEqual(int(c.line()[:3]), 220)
        self.assertEqual(send_server("HELO localhost"), 250)
        self.assertEqual(send_server("auth login"), 334)
        self.assertEqual(send_server(base64.b64encode(b"alice").decode()), 334)
        self.assertEqual(send_server(base64.b64encode(PASSWORD.encode()).decode()), 235)
        self.assertEqual(send_server("mail from: <alice@example.org>"), 250)
        self.assertEqual(send_server("rcpt to: <bob@example.net>"), 250)
        self.assertEqual(send_server("data"), 354)
        for line in ("From: alice@example.org", "To: bob@example.net", "Subject: Test mail", "",
                     "Hi, Test2"):
            c.send(line + "\r\n")
        c.send(".\r\n")
        reply = c.line()
        self.assertTrue(reply.startswith("250"), reply)
        self.assertEqual(send_server("quit"), 221)
        c.close()
        self.assertIn(b"with ESMTPA id", self.stored(reply))

    def test_relay_from_outside_allowed_networks(self):
        self.start()
        ctx = ssl.create_default_context(cafile=self.certs["ca"])
        with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=COMMAND_DEADLINE,
                          source_address=("127.0.0.2", 0)) as s:
            s.ehlo()
            s.mail("bob@example.org")
            code, text = s.rcpt("carol@example.net")
            self.assertEqual((code, text), (554, b"5.7.1 Relay access denied"))
        with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=COMMAND_DEADLINE,
                          source_address=("127.0.0.2", 0)) as s:
            s.starttls(context=ctx)
            s.login("bob", PASSWORD)
            self.assertEqual(s.sendmail("bob@example.org", ["carol@example.net"], MESSAGE), {})

    def test_auth_required_and_sender_restriction(self):
        self.start()
        ctx = ssl.create_default_context(cafile=self.certs["ca"])
        with smtplib.SMTP("127.0.0.1", self.required_port, timeout=COMMAND_DEADLINE) as s:
            s.ehlo()
            code, text = s.mail("alice@example.org")
            self.assertEqual((code, text), (530, b"5.7.0 Authentication required"))
            s.starttls(context=ctx)
            s.login("alice", PASSWORD)
            code, text = s.mail("eve@example.org")
            self.assertEqual((code, text), (553, b"5.7.1 Sender address rejected: not owned by user alice"))
            code, text = s.mail("")  # the null sender: only when "<>" is listed
            self.assertEqual(code, 553, text)
            self.assertEqual(s.mail("x@corp.example")[0], 250)
            s.rset()
            self.assertEqual(s.sendmail("alice@example.org", ["bob@example.net"], MESSAGE), {})

    # ---- SIGHUP ----

    def test_sighup_reloads_certificate(self):
        self.start()
        old = der_of(self.certs["localhost"][0])
        new = der_of(self.certs["other"][0])
        self.assertEqual(peer_der(self.smtp_port), old)
        # A session in TLS before the reload...
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s = smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=COMMAND_DEADLINE)
        s.starttls(context=ctx)
        s.ehlo()
        shutil.copy(self.certs["other"][0], self.cert)
        shutil.copy(self.certs["other"][1], self.key)
        self.daemon.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "TLS certificate reloaded" in self.log(), 10, "the reload logged")
        self.assertEqual(peer_der(self.smtp_port), new)
        self.assertEqual(peer_der(self.implicit_port, starttls=False), new)
        # ...goes on, with the old certificate.
        self.assertEqual(s.sock.getpeercert(binary_form=True), old)
        self.assertEqual(s.sendmail("a@example.org", ["bob@example.net"], MESSAGE), {})
        s.quit()
        # A broken certificate: the last good one stays, and the log says why.
        with open(self.cert, "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
        self.daemon.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "the old one stays in use" in self.log(), 10, "the failed reload logged")
        self.assertEqual(peer_der(self.smtp_port), new)
        self.assertTrue(self.daemon.running())


if __name__ == "__main__":
    main()
