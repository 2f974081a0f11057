"""Refusals end to end (issue 2, The listener): each error reply with its code and enhanced
status code, from scripted dialogues on a raw socket, and nothing queued by any of them.

The next hop is a closed port: nothing leaves the queue.
"""

import re
import socket

from mailhop_e2e import E2ETest, main


class Dialogue:
    """A scripted SMTP client: `cmd(line)` sends one line (CRLF) and returns the whole reply
    as (code, text of the last line); multi-line replies are read to their end."""

    def __init__(self, port, source=None, timeout=20):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        if source:
            self.sock.bind((source, 0))
        self.sock.connect(("127.0.0.1", port))
        self.f = self.sock.makefile("rb")
        self.greeting = self.reply()

    def reply(self):
        lines = []
        while True:
            line = self.f.readline()
            if not line:
                raise AssertionError("connection closed; reply so far %r" % lines)
            lines.append(line.decode("utf-8", "replace").rstrip("\r\n"))
            if len(line) < 4 or line[3:4] != b"-":
                break
        last = lines[-1]
        return int(last[:3]), last

    def send(self, raw):
        self.sock.sendall(raw)

    def cmd(self, line):
        self.send(line.encode() + b"\r\n")
        return self.reply()

    def close(self):
        self.f.close()
        self.sock.close()


class Errors(E2ETest):

    def setUp(self):
        super().setUp()
        self.start_daemon({"limits": {"max_recipients": 3, "max_message_size": "64KiB"},
                           "allowed_networks": ["127.0.0.1/32"]})
        self.d = Dialogue(self.smtp_port)
        self.addCleanup(self.d.close)
        self.assertEqual(self.d.greeting[0], 220)
        self.assertEqual(self.d.cmd("EHLO client.test")[0], 250)

    def expect(self, reply, code, enhanced):
        self.assertEqual(reply[0], code, "reply %r, want %d %s%s" % (reply, code, enhanced, self.ctx()))
        self.assertRegex(reply[1], r"^%d %s \S" % (code, re.escape(enhanced)),
                         "enhanced code or explanation missing in %r" % (reply,))

    expect_queued = False

    def tearDown(self):
        # None of these dialogues may leave anything in the queue (but the one that sends a
        # message on purpose).
        if not self.expect_queued:
            self.assertEqual(self.queue(), [], "something was queued")

    def test_unknown_command(self):
        self.expect(self.d.cmd("FROBNICATE now"), 500, "5.5.1")
        # The session goes on.
        self.assertEqual(self.d.cmd("NOOP")[0], 250)

    def test_bad_sequence(self):
        self.expect(self.d.cmd("RCPT TO:<a@example.net>"), 503, "5.5.1")
        self.expect(self.d.cmd("DATA"), 503, "5.5.1")
        self.assertEqual(self.d.cmd("MAIL FROM:<s@example.org>")[0], 250)
        self.expect(self.d.cmd("MAIL FROM:<s@example.org>"), 503, "5.5.1")
        self.expect(self.d.cmd("DATA"), 503, "5.5.1")  # no recipient yet

    def test_syntax_error(self):
        self.expect(self.d.cmd("MAIL FROM:<unterminated@example.org"), 501, "5.5.4")

    def test_line_too_long(self):
        self.expect(self.d.cmd("NOOP " + "x" * 5000), 500, "5.5.6")
        self.assertEqual(self.d.cmd("NOOP")[0], 250)

    def test_too_many_recipients(self):
        self.assertEqual(self.d.cmd("MAIL FROM:<s@example.org>")[0], 250)
        for i in range(3):
            self.assertEqual(self.d.cmd("RCPT TO:<r%d@example.net>" % i)[0], 250)
        self.expect(self.d.cmd("RCPT TO:<r9@example.net>"), 452, "4.5.3")
        self.assertEqual(self.d.cmd("RSET")[0], 250)

    def test_size_announced_too_big(self):
        self.expect(self.d.cmd("MAIL FROM:<s@example.org> SIZE=%d" % (64 * 1024 + 1)), 552, "5.3.4")
        self.assertEqual(self.d.cmd("MAIL FROM:<s@example.org> SIZE=1000")[0], 250)

    def test_message_too_big_after_data(self):
        self.assertEqual(self.d.cmd("MAIL FROM:<s@example.org>")[0], 250)
        self.assertEqual(self.d.cmd("RCPT TO:<r@example.net>")[0], 250)
        self.assertEqual(self.d.cmd("DATA")[0], 354)
        line = b"y" * 76 + b"\r\n"
        self.d.send(b"Subject: big\r\n\r\n" + line * (70 * 1024 // len(line)) + b".\r\n")
        self.expect(self.d.reply(), 552, "5.3.4")
        # The session survives a refused message.
        self.assertEqual(self.d.cmd("RSET")[0], 250)

    def test_bare_cr_refused(self):
        self.assertEqual(self.d.cmd("MAIL FROM:<s@example.org>")[0], 250)
        self.assertEqual(self.d.cmd("RCPT TO:<r@example.net>")[0], 250)
        self.assertEqual(self.d.cmd("DATA")[0], 354)
        self.d.send(b"Subject: cr\r\n\r\nbefore\rafter\r\n.\r\n")
        code, text = self.d.reply()
        self.assertTrue(500 <= code < 600, "bare CR answered %d %s%s" % (code, text, self.ctx()))
        self.assertRegex(text, r"^5\d\d 5\.\d+\.\d+ \S")

    def test_vrfy_and_help(self):
        self.assertEqual(self.d.cmd("VRFY postmaster")[0], 252)
        self.assertIn(self.d.cmd("HELP")[0], (211, 214))

    def test_relay_refused_outside_allowed_networks(self):
        # The listener is on 127.0.0.1; the client speaks from 127.0.0.2, which is not in
        # allowed_networks (only 127.0.0.1/32).
        outsider = Dialogue(self.smtp_port, source="127.0.0.2")
        self.addCleanup(outsider.close)
        self.assertEqual(outsider.greeting[0], 220)
        self.assertEqual(outsider.cmd("EHLO outsider.test")[0], 250)
        reply = outsider.cmd("MAIL FROM:<s@example.org>")
        if reply[0] == 250:
            reply = outsider.cmd("RCPT TO:<r@example.net>")
        self.expect(reply, 554, "5.7.1")
        # The insider may.
        self.assertEqual(self.d.cmd("MAIL FROM:<s@example.org>")[0], 250)
        self.assertEqual(self.d.cmd("RCPT TO:<r@example.net>")[0], 250)

    def test_pipelined_group_gets_every_reply_in_order(self):
        # RFC 2920: MAIL, RCPTs (one refused) and DATA in one write; the replies come in order.
        self.d.send(b"MAIL FROM:<s@example.org>\r\nRCPT TO:<a@example.net>\r\n"
                    b"RCPT TO:<broken\r\nRCPT TO:<b@example.net>\r\nDATA\r\n")
        codes = [self.d.reply()[0] for _ in range(5)]
        self.assertEqual(codes, [250, 250, 501, 250, 354])
        self.d.send(b"Subject: pipelined\r\n\r\nbody\r\n.\r\nQUIT\r\n")
        code, text = self.d.reply()
        self.assertEqual(code, 250, text)
        self.assertEqual(self.d.reply()[0], 221)
        queue = self.queue()
        self.assertEqual([[r["address"] for r in e["recipients"]] for e in queue],
                         [["a@example.net", "b@example.net"]])
        self.expect_queued = True

    def test_quit(self):
        self.assertEqual(self.d.cmd("QUIT")[0], 221)


class Limits(E2ETest):
    """Connection limits and timeouts (issue 2: 421 4.7.0, 421 4.4.2)."""

    def test_too_many_connections_per_ip(self):
        # Clients in allowed_networks are exempt; 127.0.0.2 is outside it here.
        self.start_daemon({"allowed_networks": ["127.0.0.1/32"],
                           "limits": {"max_connections_per_ip": 2}})
        held = [Dialogue(self.smtp_port, source="127.0.0.2") for _ in range(2)]
        for d in held:
            self.addCleanup(d.close)
            self.assertEqual(d.greeting[0], 220)
        sock = socket.create_connection(("127.0.0.1", self.smtp_port), timeout=20,
                                        source_address=("127.0.0.2", 0))
        self.addCleanup(sock.close)
        line = sock.makefile("rb").readline().decode()
        self.assertRegex(line, r"^421 4\.7\.0 \S", "third connection from one IP: %r%s" % (line, self.ctx()))
        # The exempt client still gets in.
        insider = Dialogue(self.smtp_port)
        self.addCleanup(insider.close)
        self.assertEqual(insider.greeting[0], 220)

    def test_command_timeout(self):
        self.start_daemon({"limits": {"command_timeout": "1s"}})
        d = Dialogue(self.smtp_port)
        self.addCleanup(d.close)
        self.assertEqual(d.cmd("EHLO slow.test")[0], 250)
        # Say nothing: the server must answer 421 4.4.2 and close, within a bounded time.
        code, text = d.reply()
        self.assertEqual(code, 421, text)
        self.assertRegex(text, r"^421 4\.4\.2 \S")
        self.assertEqual(d.f.read(), b"", "the connection stays open after the timeout")


if __name__ == "__main__":
    main()
