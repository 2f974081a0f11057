"""SIGHUP (issue 5, "Signals"): `mailhop run` reads its configuration file again and applies
what can change while it runs, for new sessions and new relay connections, and logs each key
that needs a restart; a file that does not load changes nothing.

Real peers: Python's ssl (the certificate a new handshake sees), smtplib bound to 127.0.0.2
(the relay rule), `mailhop sink` as the next hops (one per port, for relay.port), and two
aiosmtpd next hops with STARTTLS and AUTH for /readyz (one refuses the relay password).
"""

import http.client
import json
import os
import signal
import smtplib
import socket
import ssl

from mailhop_e2e import (COMMAND_DEADLINE, DELIVERY_DEADLINE, AioPeer, E2ETest, MailhopSink, crlf, free_port,
                         main, make_ca, port_accepts, wait_for, wait_port)


def message(n):
    return crlf("From: alice@example.org\nTo: bob@example.net\nSubject: reload %d\n"
                "Message-ID: <reload-%d@client.test>\n\nhello %d\n" % (n, n, n))


def peer_der(port):
    """The DER certificate that a new STARTTLS handshake sees."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP("127.0.0.1", port, timeout=COMMAND_DEADLINE) as s:
        s.starttls(context=ctx)
        return s.sock.getpeercert(binary_form=True)


def der_of(pem_path):
    with open(pem_path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


class Reload(E2ETest):

    def setUp(self):
        super().setUp()
        # Pinned: the harness picks a new admin port each time it writes a configuration.
        self.overrides = {"log": {"level": "info"}, "admin": {"listen": "127.0.0.1:%d" % free_port()}}
        self.reloads = 0

    def start(self, **extra):
        self.overrides.update(extra)
        self.start_daemon(self.overrides)

    def sink(self, port, name):
        sink = MailhopSink(port, os.path.join(self.dir, name), os.path.join(self.dir, name + ".log"))
        self.addCleanup(sink.stop)
        return sink

    def reload_with(self, text=None, **changes):
        """Writes the configuration (the running one with `changes`, or `text`), sends SIGHUP
        and waits until the daemon has logged the outcome of this reload."""
        if text is None:
            self.overrides.update(changes)
            self.write_config(self.overrides)
        else:
            self.write_config(text=text)
        self.reloads += 1
        before = self.log().count("SIGHUP: configuration reloaded") + self.log().count("is not valid")
        self.daemon.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: self.log().count("SIGHUP: configuration reloaded") + self.log().count("is not valid") > before,
                 COMMAND_DEADLINE, "the reload logged")
        self.assertTrue(self.daemon.running(), self.ctx())

    def send(self, n, source="127.0.0.1"):
        with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=COMMAND_DEADLINE,
                          source_address=(source, 0)) as s:
            return s.sendmail("alice@example.org", ["bob@example.net"], message(n))

    def test_new_certificate_files(self):
        certs = make_ca(os.path.join(self.dir, "ca"))
        listen = [{"address": "127.0.0.1:%d" % self.smtp_port, "tls": "starttls", "auth": "none"}]
        self.start(listen=listen, tls={"cert_file": certs["localhost"][0], "key_file": certs["localhost"][1]})
        self.assertEqual(peer_der(self.smtp_port), der_of(certs["localhost"][0]))
        # Other files (a renewal written next to the old one): new handshakes see the new certificate.
        self.reload_with(tls={"cert_file": certs["other"][0], "key_file": certs["other"][1]})
        self.assertIn("SIGHUP: TLS certificate reloaded from %s" % certs["other"][0], self.log())
        self.assertIn("SIGHUP: tls.cert_file changed: applied", self.log())
        self.assertEqual(peer_der(self.smtp_port), der_of(certs["other"][0]))
        # A key that does not belong to the certificate: the running one stays.
        self.reload_with(tls={"cert_file": certs["localhost"][0], "key_file": certs["other"][1]})
        self.assertIn("the old one stays in use", self.log())
        self.assertEqual(peer_der(self.smtp_port), der_of(certs["other"][0]))

    def test_broken_configuration_keeps_the_running_one(self):
        sink = self.sink(self.relay_port, "sink")
        self.start()
        with open(self.config_path) as f:
            good = f.read()
        lines = good.splitlines()
        # A value that is not a size, on a line whose number the error must name.
        at = next(i for i, l in enumerate(lines) if "max_message_size" in l)
        lines[at] = lines[at].split(":")[0] + ": lots"
        self.reload_with(text="\n".join(lines) + "\n")
        log = self.log()
        self.assertIn("is not valid; the running configuration stays in use", log)
        self.assertIn("%s:%d: limits.max_message_size:" % (self.config_path, at + 1), log, self.ctx())
        # Still running, still relaying with the old configuration.
        self.assertEqual(self.send(1), {})
        wait_for(lambda: len(sink.messages()) == 1, DELIVERY_DEADLINE, "the message at the next hop")
        self.assertIn(b"Message-ID: <reload-1@client.test>", sink.messages()[0])

    def test_allowed_networks(self):
        self.start(allowed_networks=["127.0.0.1/32"])
        with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=COMMAND_DEADLINE,
                          source_address=("127.0.0.2", 0)) as s:
            s.ehlo()
            s.mail("alice@example.org")
            self.assertEqual(s.rcpt("bob@example.net"), (554, b"5.7.1 Relay access denied"))
        self.reload_with(allowed_networks=["127.0.0.0/8"])
        self.assertIn("SIGHUP: allowed_networks changed: applied", self.log())
        self.assertEqual(self.send(1, source="127.0.0.2"), {})

    def test_log_level(self):
        sink = self.sink(self.relay_port, "sink")
        # Idle relay connections close after 1 s, a debug line each time.
        self.start(log={"level": "info"}, relay={"timeouts": {"idle": "1s"}})
        self.send(1)
        wait_for(lambda: "status=sent" in self.log(), DELIVERY_DEADLINE, "the first delivery logged")
        self.assertNotIn(" debug ", self.log())
        self.reload_with(log={"level": "debug"})
        self.send(2)
        wait_for(lambda: len(sink.messages()) == 2, DELIVERY_DEADLINE, "both messages at the next hop")
        wait_for(lambda: " debug " in self.log().split("SIGHUP: configuration reloaded")[-1], DELIVERY_DEADLINE,
                 "debug lines after the reload")

    def test_relay_port_goes_to_the_new_next_hop(self):
        first = self.sink(self.relay_port, "first")
        second_port = free_port()
        second = self.sink(second_port, "second")
        self.start()
        self.assertEqual(self.send(1), {})
        wait_for(lambda: len(first.messages()) == 1, DELIVERY_DEADLINE, "message 1 at the first next hop")
        self.reload_with(relay={"port": second_port})
        self.assertIn("SIGHUP: relay.port changed: applied", self.log())
        self.assertEqual(self.send(2), {})
        wait_for(lambda: len(second.messages()) == 1, DELIVERY_DEADLINE, "message 2 at the second next hop")
        self.assertIn(b"<reload-2@client.test>", second.messages()[0])
        self.assertEqual(len(first.messages()), 1)

    def readyz(self):
        """(status, body as JSON) of GET /readyz on the pinned admin port."""
        host, port = self.overrides["admin"]["listen"].rsplit(":", 1)
        c = http.client.HTTPConnection(host, int(port), timeout=COMMAND_DEADLINE)
        try:
            c.request("GET", "/readyz")
            r = c.getresponse()
            return r.status, json.loads(r.read())
        finally:
            c.close()

    def test_readyz_follows_a_new_next_hop(self):
        # Both next hops require STARTTLS and AUTH; the first refuses mailhop's password.
        certs = make_ca(os.path.join(self.dir, "ca"))
        password_file = os.path.join(self.dir, "relay-password")
        with open(password_file, "w") as f:
            f.write("pw-reload-1\n")
        cert, key = certs["localhost"]
        refusing = AioPeer(self.relay_port, os.path.join(self.dir, "refusing"), cert=cert, key=key,
                           tls="starttls", users={"relayuser": "another-password"})
        self.addCleanup(refusing.stop)
        good_port = free_port()
        good = AioPeer(good_port, os.path.join(self.dir, "good"), cert=cert, key=key, tls="starttls",
                       users={"relayuser": "pw-reload-1"})
        self.addCleanup(good.stop)
        relay = {"host": "localhost", "port": self.relay_port, "tls": "starttls", "ca_file": certs["ca"],
                 "username": "relayuser", "password_file": password_file}
        self.start(relay=relay)
        wait_port(int(self.overrides["admin"]["listen"].rsplit(":", 1)[1]), proc=self.daemon.proc,
                  log=self.daemon.log_path)

        status, body = self.readyz()
        self.assertEqual(status, 503, "%s%s" % (body, self.ctx()))
        self.assertEqual(body["failed"], ["next_hop"], body)
        self.assertRegex(body["checks"]["next_hop"]["detail"], r"(?i)535|auth", body)
        self.assertTrue(refusing.auth_attempts(), "the probe did not try the password")

        # A reload to the good next hop. Within the 30 s after a failure /readyz would trust the
        # failed record if it still judged by the old relay settings: the deadline is shorter.
        self.reload_with(relay=dict(relay, port=good_port))
        self.assertIn("SIGHUP: relay.port changed: applied", self.log())
        ready = lambda: self.readyz()[0] == 200
        wait_for(ready, 15, "/readyz 200 after the reload to the good next hop")
        status, body = self.readyz()
        self.assertEqual(body["failed"], [], body)
        self.assertTrue(body["checks"]["next_hop"]["detail"].endswith(":%d" % good_port), body)
        self.assertTrue(good.auth_attempts(), "the good next hop was never asked")

    def test_listen_change_needs_a_restart(self):
        self.start()
        other = free_port()
        self.reload_with(listen=[{"address": "127.0.0.1:%d" % other, "tls": "none", "auth": "none"}])
        self.assertIn("SIGHUP: listen changed, but needs a restart to take effect", self.log())
        self.assertIn("(0 change(s) applied, 1 need a restart)", self.log())
        # The running listener stays; the new address is not bound.
        self.assertTrue(port_accepts(self.smtp_port))
        self.assertFalse(port_accepts(other))
        self.assertEqual(self.send(1), {})


if __name__ == "__main__":
    main()
