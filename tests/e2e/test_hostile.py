"""Hostile clients end to end (issue 4, Hostile input), on a raw socket:
  - the error limit: after limits.max_errors errors, 421 4.7.0 Too many errors and close;
  - an HTTP request line as the first (or any) command: at most one reply, then the
    connection closes, and nothing the request carried is executed (cross-protocol attacks);
  - deadlines that trickling bytes do not extend: the per-command deadline (a line that never
    ends) and the whole-session deadline (a client busy with commands, or trickling message
    data). The 421 4.4.2 must come no later than the deadline plus a generous margin.

The trickle (one byte every 200 ms) is the behaviour under test, so the client waits between
bytes; every other wait has a deadline.
"""

import re
import select
import socket
import time

from mailhop_e2e import E2ETest, main

# Lateness allowed after a deadline on a busy 2-core machine (sanitizer builds included).
MARGIN = 4.0
TRICKLE_INTERVAL = 0.2


class Raw:
    def __init__(self, port, source="127.0.0.1"):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30, source_address=(source, 0))
        self.buf = b""
        self.transcript = []
        self.closed = False

    def _take_reply(self):
        m = re.search(rb"(?m)^\d{3} [^\r\n]*\r\n", self.buf)
        if not m:
            return None
        last = m.group(0).decode("utf-8", "replace").rstrip("\r\n")
        self.buf = self.buf[m.end():]
        self.transcript.append("S: " + last)
        return int(last[:3]), last

    def reply(self):
        while True:
            r = self._take_reply()
            if r:
                return r
            data = self.sock.recv(65536)
            if not data:
                raise AssertionError("connection closed; transcript:\n" + self.text())
            self.buf += data

    def cmd(self, line):
        self.transcript.append("C: " + line)
        self.sock.sendall(line.encode() + b"\r\n")
        return self.reply()

    def read_to_eof(self, deadline=30):
        """Every reply until the server closes; raises when it does not close in time."""
        end = time.monotonic() + deadline
        replies = []
        while True:
            r = self._take_reply()
            if r:
                replies.append(r)
                continue
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError("server did not close the connection; transcript:\n" + self.text())
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                self.closed = True
                return replies
            self.buf += data

    def trickle(self, payload, limit):
        """Sends `payload` (repeated as needed) one byte every TRICKLE_INTERVAL, reading replies
        meanwhile, until the server closes or `limit` seconds pass. Returns a list of
        (seconds since start, reply) and whether the server closed."""
        start = time.monotonic()
        got = []
        i = 0
        while time.monotonic() - start < limit:
            if not self.closed:
                try:
                    self.sock.sendall(payload[i % len(payload):i % len(payload) + 1])
                    i += 1
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the server is gone; the replies tell why
            readable, _, _ = select.select([self.sock], [], [], TRICKLE_INTERVAL)
            if readable:
                try:
                    data = self.sock.recv(65536)
                except ConnectionResetError:
                    data = b""
                if not data:
                    self.closed = True
                    return got, True
                self.buf += data
                while True:
                    r = self._take_reply()
                    if not r:
                        break
                    got.append((time.monotonic() - start, r))
        return got, False

    def text(self):
        return "\n".join(self.transcript)

    def close(self):
        self.sock.close()


class ErrorLimit(E2ETest):

    def dialogue(self, max_errors):
        overrides = {"limits": {"max_errors": max_errors}} if max_errors else {}
        self.start_daemon(overrides)
        c = Raw(self.smtp_port)
        self.addCleanup(c.close)
        self.assertEqual(c.reply()[0], 220)
        self.assertEqual(c.cmd("EHLO client.test")[0], 250)
        return c

    def check_limit(self, c, limit):
        for i in range(limit - 1):
            code, _ = c.cmd("BOGUS %d" % i)
            self.assertEqual(code // 100, 5, c.text())
        # The error that reaches the limit is answered, then 421 4.7.0, then the close.
        self.assertEqual(c.cmd("BOGUS last")[0] // 100, 5, c.text())
        rest = c.read_to_eof()
        self.assertEqual(len(rest), 1, "after the limit: %r\n%s" % (rest, c.text()))
        self.assertEqual(rest[0][0], 421, c.text() + self.ctx())
        self.assertRegex(rest[0][1], r"^421 4\.7\.0 .*Too many errors", c.text())
        self.assertIn("too many errors", self.log())

    def test_default_limit_is_ten(self):
        self.check_limit(self.dialogue(None), 10)

    def test_configured_limit(self):
        self.check_limit(self.dialogue(3), 3)

    def test_mixed_errors_count_and_the_session_is_closed_after(self):
        """Refusals of different kinds count alike (bad sequence, syntax, relay denied), and
        commands sent after the limit are not executed."""
        self.start_daemon({"limits": {"max_errors": 4}, "allowed_networks": ["127.0.0.1/32"]})
        c = Raw(self.smtp_port, source="127.0.0.2")
        self.addCleanup(c.close)
        self.assertEqual(c.reply()[0], 220)
        self.assertEqual(c.cmd("EHLO outside.test")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<x@example.net>")[0], 503)         # 1: no MAIL
        self.assertEqual(c.cmd("MAIL FROM:<broken")[0], 501)               # 2: syntax
        self.assertEqual(c.cmd("MAIL FROM:<s@example.org>")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<x@example.net>")[0], 554)         # 3: relay denied
        # 4th error pipelined with a whole transaction behind it: none of it may run.
        c.transcript.append("C: RCPT + pipelined transaction")
        c.sock.sendall(b"RCPT TO:<y@example.net>\r\nRSET\r\nMAIL FROM:<s@example.org>\r\n"
                       b"RCPT TO:<z@example.net>\r\nDATA\r\nSubject: x\r\n\r\nx\r\n.\r\n")
        rest = c.read_to_eof()
        self.assertEqual([r[0] for r in rest], [554, 421], c.text() + self.ctx())
        self.assertEqual(self.queue(), [])


class HttpRequest(E2ETest):

    def setUp(self):
        super().setUp()
        self.start_daemon()

    def check_request(self, request, ehlo_first):
        c = Raw(self.smtp_port)
        self.addCleanup(c.close)
        self.assertEqual(c.reply()[0], 220)
        if ehlo_first:
            self.assertEqual(c.cmd("EHLO client.test")[0], 250)
        c.transcript.append("C: %r" % request)
        c.sock.sendall(request)
        replies = c.read_to_eof()
        self.assertLessEqual(len(replies), 1, "more than one reply to an HTTP request:\n" + c.text())
        if replies:
            self.assertEqual(replies[0][0] // 100, 5, c.text())
        self.assertTrue(c.closed)
        self.assertEqual(self.queue(), [], "an HTTP request queued something")
        return c

    def test_get(self):
        self.check_request(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: e2e\r\n\r\n", False)

    def test_post_carrying_smtp_commands(self):
        # The classic cross-protocol attack: a browser form posting SMTP commands. The body
        # would be a complete transaction if the lines after the request line were executed.
        body = (b"EHLO evil.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\n"
                b"DATA\r\nSubject: cross-protocol\r\n\r\nhi\r\n.\r\nQUIT\r\n")
        request = (b"POST /x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n"
                   b"Content-Length: %d\r\n\r\n" % len(body)) + body
        self.check_request(request, False)

    def test_post_after_ehlo(self):
        body = b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\nx\r\n.\r\n"
        self.check_request(b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n" % len(body) + body,
                           True)

    def test_connect_and_other_methods(self):
        for line in (b"CONNECT 127.0.0.1:25 HTTP/1.1", b"HEAD / HTTP/1.0", b"PUT /y HTTP/1.1"):
            with self.subTest(line=line):
                self.check_request(line + b"\r\nHost: h\r\n\r\nMAIL FROM:<a@example.org>\r\n", False)


class Deadlines(E2ETest):

    def connect(self):
        c = Raw(self.smtp_port)
        self.addCleanup(c.close)
        self.assertEqual(c.reply()[0], 220)
        return c

    def expect_timeout(self, got, closed, deadline, c, what):
        timeouts = [(t, r) for t, r in got if r[0] == 421]
        self.assertTrue(timeouts, "no 421 while %s (replies %r, closed=%s)\n%s%s"
                        % (what, got, closed, c.text(), self.ctx()))
        t, (code, text) = timeouts[0]
        self.assertRegex(text, r"^421 4\.4\.2 ", c.text())
        self.assertGreaterEqual(t, deadline - 0.5, "421 before the deadline (%.2fs of %ss)" % (t, deadline))
        self.assertLessEqual(t, deadline + MARGIN, "the trickle extended the deadline: 421 after "
                             "%.2fs, deadline %ss\n%s" % (t, deadline, c.text()))
        self.assertTrue(closed, "connection still open after the 421")
        return t

    def test_command_deadline_not_extended_by_a_trickled_line(self):
        self.start_daemon({"limits": {"command_timeout": "2s", "session_timeout": "1m"}})
        c = self.connect()
        self.assertEqual(c.cmd("EHLO client.test")[0], 250)
        # A line that never ends: one byte every 200 ms.
        got, closed = c.trickle(b"NOOP" + b"x" * 200, limit=2 + MARGIN + 5)
        self.expect_timeout(got, closed, 2, c, "trickling one command line")
        self.assertEqual(len(got), 1, "replies before the timeout: %r" % got)

    def test_command_deadline_in_mail_transaction(self):
        self.start_daemon({"limits": {"command_timeout": "2s", "session_timeout": "1m"}})
        c = self.connect()
        self.assertEqual(c.cmd("EHLO client.test")[0], 250)
        self.assertEqual(c.cmd("MAIL FROM:<s@example.org>")[0], 250)
        got, closed = c.trickle(b"RCPT TO:<" + b"r" * 300, limit=2 + MARGIN + 5)
        self.expect_timeout(got, closed, 2, c, "trickling RCPT")
        self.assertEqual(self.queue(), [])

    def test_session_deadline_not_extended_by_busy_commands(self):
        # Each NOOP completes well within the command deadline, so only the session deadline
        # can end this; it must, however busy the client keeps it.
        self.start_daemon({"limits": {"command_timeout": "30s", "session_timeout": "4s"}})
        connected = time.monotonic()
        c = self.connect()
        elapsed = time.monotonic() - connected
        got, closed = c.trickle(b"NOOP\r\n", limit=4 + MARGIN + 5)
        self.assertGreaterEqual(sum(1 for _, r in got if r[0] == 250), 2,
                                "the client was not kept busy: %r" % got)
        got = [(t + elapsed, r) for t, r in got]  # seconds since the connect
        self.expect_timeout(got, closed, 4, c, "sending NOOPs byte by byte")

    def test_session_deadline_not_extended_by_trickled_data(self):
        self.start_daemon({"limits": {"command_timeout": "30s", "data_timeout": "1m", "session_timeout": "4s"}})
        connected = time.monotonic()
        c = self.connect()
        self.assertEqual(c.cmd("EHLO client.test")[0], 250)
        self.assertEqual(c.cmd("MAIL FROM:<s@example.org>")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<r@example.net>")[0], 250)
        self.assertEqual(c.cmd("DATA")[0], 354)
        elapsed = time.monotonic() - connected
        got, closed = c.trickle(b"Subject: slow\r\n\r\n" + b"x" * 100 + b"\r\n", limit=4 + MARGIN + 5)
        got = [(t + elapsed, r) for t, r in got]
        self.expect_timeout(got, closed, 4, c, "trickling message data")
        self.assertEqual(self.queue(), [], "a message cut off by the deadline was queued")


if __name__ == "__main__":
    main()
