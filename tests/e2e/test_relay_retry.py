"""Outbound end to end, retries and bounces (issue 3, "What must show"), with Postfix's
smtp-sink as the next hop (its -r/-f options refuse commands with 4xx/5xx):

- 4xx at RCPT: deferred and retried, delivered once the next hop accepts;
- 5xx at RCPT: the recipient fails and the sender receives a DSN (multipart/report) through the
  same relay (smtp-sink refuses every RCPT, the DSN's too, so the DSN's content is checked with
  an aiosmtpd next hop that refuses only the bad recipient);
- the next hop down for a while: everything is delivered once it is back;
- the daemon restarted with messages deferred: they are delivered after the restart, none twice;
  a recipient accepted before the restart is not sent to again (aiosmtpd deferring one of two);
- relay.fallback (a `mailhop sink`) when the primary is unreachable or answers 421.

The test configuration retries after 1 s, doubling up to 2 s.
"""

import os
import re
import smtplib

from mailhop_e2e import (AioPeer, E2ETest, MailhopSink, SmtpSink, check_added_headers, crlf,
                         free_port, main, queued_id_from_reply, wait_for)


def message(n):
    return crlf("From: app@app.example\n"
                "To: r@example.net\n"
                "Subject: retry test %d\n"
                "\n"
                "Body %d.\n"
                ".dotted line\n" % (n, n))


def subject_of(content):
    m = re.search(rb"^Subject: (.*)\r$", content, re.M)
    return m.group(1).decode() if m else None


class RelayRetry(E2ETest):

    def submit(self, sent, rcpts=("r@example.net",), sender="app@app.example"):
        with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=30) as s:
            s.ehlo("app.example")
            self.assertEqual(s.mail(sender)[0], 250)
            for r in rcpts:
                self.assertEqual(s.rcpt(r)[0], 250)
            code, msg = s.data(sent)
            self.assertEqual(code, 250, msg)
            return queued_id_from_reply(msg.decode())

    def sink(self, name, **kw):
        s = SmtpSink(self.relay_port, os.path.join(self.dir, name), **kw)
        self.addCleanup(s.stop)
        return s

    def wait_empty(self, what="an empty queue"):
        return self.wait_queue(lambda q: q == [], what)

    def wait_deferred(self, ids, min_attempts=1):
        ids = set(ids)

        def deferred(q):
            mine = [e for e in q if e["id"] in ids]
            return len(mine) == len(ids) and all(
                e["attempts"] >= min_attempts and e["last_error"]
                and all(r["state"] == "pending" for r in e["recipients"]) for e in mine)
        return self.wait_queue(deferred, "%d messages deferred (attempts >= %d)" % (len(ids), min_attempts))

    def assert_delivered_once(self, sink, sent):
        """`sent`: {subject: content}. Each arrived exactly once, intact."""
        got = sink.messages()
        subjects = [subject_of(m["content"]) for m in got]
        for subject in sent:
            self.assertEqual(subjects.count(subject), 1, "%r arrived %d times (all: %r)%s"
                             % (subject, subjects.count(subject), subjects, self.ctx()))
        self.assertEqual(len(got), len(sent), "unexpected messages at the next hop: %r" % subjects)
        for m in got:
            check_added_headers(self, sent[subject_of(m["content"])], m["content"])

    def test_4xx_at_rcpt_deferred_then_delivered(self):
        refusing = self.sink("refusing", refuse_soft="RCPT")
        self.start_daemon()
        sent = message(1)
        qid = self.submit(sent, rcpts=("a@example.net", "b@example.net"))
        queue = self.wait_deferred([qid], min_attempts=2)  # retried, still refused
        self.assertRegex(queue[0]["last_error"], r"4\d\d", queue[0])
        self.assertEqual(refusing.messages(), [])
        log = self.log()
        self.assertRegex(log, r"%s: to=<a@example\.net> relay=\S*\[127\.0\.0\.1\]:%d delay=[\d.]+ "
                         r"attempts=\d+ dsn=4\.\d+\.\d+ status=deferred \(.+\)" % (qid, self.relay_port),
                         "no deferred log line")
        refusing.stop()
        accepting = self.sink("accepting")
        self.wait_empty("delivery once the next hop accepts")
        self.assert_delivered_once(accepting, {"retry test 1": sent})
        m = accepting.messages()[0]
        self.assertEqual(sorted(m["rcpts"]), ["<a@example.net>", "<b@example.net>"])
        self.assertRegex(self.log(), r"%s: to=<b@example\.net> relay=\S*\[127\.0\.0\.1\]:%d "
                         r"delay=[\d.]+ attempts=\d+ dsn=2\.\d+\.\d+ status=sent \(250"
                         % (qid, self.relay_port))

    def test_5xx_at_rcpt_bounces_through_smtp_sink(self):
        # smtp-sink refuses every RCPT, the DSN's too (and it dumps nothing without DATA): what
        # shows here is the failure, the bounce, and the DSN leaving through the same relay with
        # the null sender to the original sender. Its content is checked with aiosmtpd below.
        self.sink("refusing", refuse_hard="RCPT")
        self.start_daemon()
        qid = self.submit(message(2), rcpts=("nobody@example.net",), sender="sender@app.example")
        self.wait_empty("the message to leave the queue after its 5xx (and the DSN after its own)")
        log = self.log()
        self.assertRegex(log, r"%s: to=<nobody@example\.net> relay=\S*\[127\.0\.0\.1\]:%d .*"
                         r"dsn=5\.3\.0 status=bounced \(500 5\.3\.0 " % (qid, self.relay_port),
                         "no bounced log line")
        m = re.search(r"(\S+): to=<sender@app\.example> relay=\S*\[127\.0\.0\.1\]:%d .*status="
                      % self.relay_port, log)
        self.assertIsNotNone(m, "no DSN to the sender through the relay in the log")
        self.assertNotEqual(m.group(1), qid + ":")

    def test_5xx_at_rcpt_sender_receives_dsn(self):
        # A next hop that refuses only the bad recipient (aiosmtpd, 550 5.1.1) and accepts the
        # rest, including the DSN: the sender gets a multipart/report through the same relay.
        peer = AioPeer(self.relay_port, os.path.join(self.dir, "peer"),
                       extra=["--reject-rcpt", "nobody@=550 5.1.1 <nobody@example.net>: no such user"])
        self.addCleanup(peer.stop)
        self.start_daemon()
        sent = message(3)
        self.submit(sent, rcpts=("nobody@example.net", "somebody@example.net"),
                    sender="sender@app.example")
        wait_for(lambda: len(peer.messages()) >= 2, 30, lambda: "the message and the DSN at the next hop" + self.ctx())
        self.wait_empty("an empty queue after the DSN")
        got = peer.messages()
        self.assertEqual(len(got), 2, [(m["mail_from"], m["rcpt_tos"]) for m in got])
        original = [m for m in got if m["mail_from"] == "sender@app.example"]
        dsns = [m for m in got if m["mail_from"] == ""]
        self.assertEqual(len(original), 1)
        self.assertEqual(original[0]["rcpt_tos"], ["somebody@example.net"])
        check_added_headers(self, sent, original[0]["content"])
        self.assertEqual(len(dsns), 1, "one DSN with the null envelope sender")
        dsn = dsns[0]
        self.assertEqual(dsn["rcpt_tos"], ["sender@app.example"])
        content = dsn["content"]
        head = content.split(b"\r\n\r\n", 1)[0]
        self.assertRegex(head, rb"(?im)^From: .*MAILER-DAEMON@mailhop\.test")
        self.assertRegex(head, rb"(?im)^To: .*sender@app\.example")
        self.assertRegex(head, rb"(?i)Content-Type: multipart/report;(\s|\r\n)*.*report-type=\"?delivery-status")
        self.assertRegex(content, rb"(?i)Content-Type: message/delivery-status")
        self.assertRegex(content, rb"(?im)^Final-Recipient: rfc822; ?nobody@example\.net")
        self.assertNotRegex(content, rb"(?im)^Final-Recipient: rfc822; ?somebody@example\.net",
                            "the delivered recipient is in the DSN")
        self.assertRegex(content, rb"(?im)^Action: failed")
        self.assertRegex(content, rb"(?im)^Status: 5\.1\.1")
        self.assertIn(b"no such user", content, "the next hop's reply is not in the DSN")
        self.assertRegex(content, rb"(?i)Content-Type: text/rfc822-headers")
        self.assertIn(b"Subject: retry test 3", content, "the original headers are not in the DSN")
        self.assertNotIn(b"Body 3.", content, "the original body is in a headers-only DSN")

    def test_next_hop_down_then_back(self):
        self.start_daemon()  # relay_port: nobody listens
        sent, ids = {}, []
        for n in range(10, 15):
            content = message(n)
            sent["retry test %d" % n] = content
            ids.append(self.submit(content, rcpts=("r%d@example.net" % n,)))
        queue = self.wait_deferred(ids)
        for e in queue:
            self.assertTrue(e["last_error"], e)
        sink = self.sink("back")
        self.wait_empty("delivery of every message once the next hop is back")
        self.assert_delivered_once(sink, sent)

    def test_restart_with_deferred_messages_none_twice(self):
        sink = self.sink("up")
        self.start_daemon()
        sent = {}
        for n in range(20, 23):
            content = message(n)
            sent["retry test %d" % n] = content
            self.submit(content)
        self.wait_empty("delivery while the next hop is up")
        wait_for(lambda: len(sink.messages()) == 3, 10, "3 messages at the next hop")
        sink.stop()
        ids = []
        for n in range(23, 26):
            content = message(n)
            sent["retry test %d" % n] = content
            ids.append(self.submit(content))
        self.wait_deferred(ids)
        self.assertEqual(self.daemon.stop(), 0, "SIGTERM did not exit 0%s" % self.ctx())
        queue = self.queue()  # read from disk with the daemon stopped
        self.assertEqual(sorted(e["id"] for e in queue), sorted(ids))
        sink = self.sink("up")  # same dump directory: the whole history in one place
        self.daemon.start()
        self.wait_empty("delivery after the restart")
        self.assert_delivered_once(sink, sent)

    def test_restart_after_partial_delivery_sends_no_recipient_twice(self):
        # The next hop takes one recipient and defers the other (451): the accepted one is
        # marked sent at once, so neither the retries nor a restart send to it again.
        first = AioPeer(self.relay_port, os.path.join(self.dir, "peer1"),
                        extra=["--reject-rcpt", "later@=451 4.3.0 try again later"])
        self.addCleanup(first.stop)
        self.start_daemon()
        sent = message(30)
        qid = self.submit(sent, rcpts=("now@example.net", "later@example.net"))

        def partially_sent(q):
            states = {r["address"]: r["state"] for e in q if e["id"] == qid for r in e["recipients"]}
            return states == {"now@example.net": "sent", "later@example.net": "pending"} and all(
                e["attempts"] >= 2 for e in q if e["id"] == qid)  # retried at least once
        self.wait_queue(partially_sent, "now@ sent, later@ pending after a retry")
        self.assertEqual(self.daemon.stop(), 0)
        first.stop()
        got = first.messages()
        self.assertEqual([m["rcpt_tos"] for m in got], [["now@example.net"]],
                         "the first next hop got the message more than once or wrongly")
        check_added_headers(self, sent, got[0]["content"])

        second = AioPeer(self.relay_port, os.path.join(self.dir, "peer2"))
        self.addCleanup(second.stop)
        self.daemon.start()
        self.wait_empty("delivery to later@ after the restart")
        got = second.messages()
        self.assertEqual([m["rcpt_tos"] for m in got], [["later@example.net"]],
                         "after the restart: %r" % [m["rcpt_tos"] for m in got])
        check_added_headers(self, sent, got[0]["content"])

    def test_fallback_when_primary_unreachable_or_421(self):
        # relay.fallback is tried in order when the primary cannot be reached (first case) or
        # answers 421 at the greeting (second case: smtp-sink -Q CONNECT).
        down = free_port()
        fallback = MailhopSink(free_port(), os.path.join(self.dir, "maildir"),
                               os.path.join(self.dir, "sink.log"))
        self.addCleanup(fallback.stop)
        self.sink("greeting421", extra=["-Q", "CONNECT"])  # on relay_port, the primary
        for primary in (down, self.relay_port):
            with self.subTest(primary=primary):
                self.write_config({"relay": {"port": primary,
                                             "fallback": ["127.0.0.1:%d" % fallback.port]}})
                self.start_daemon()
                sent = message(40 + len(fallback.messages()))
                self.submit(sent)
                wait_for(lambda: len(fallback.messages()) >= (1 if primary == down else 2), 30,
                         lambda: "the message at the fallback" + self.ctx())
                self.wait_empty("an empty queue after delivery to the fallback")
                # Found by its subject: the Maildir's file names do not sort by arrival within
                # one second.
                subject = subject_of(sent)
                got = [m for m in fallback.messages() if subject_of(m) == subject]
                self.assertEqual(len(got), 1, "%r at the fallback %d times" % (subject, len(got)))
                got = got[0]
                self.assertIn(b"X-Mailhop-Sink-Rcpt: <r@example.net>", got)
                check_added_headers(self, sent, MailhopSink.without_delivery_headers(got))
                self.assertEqual(self.daemon.stop(), 0)


if __name__ == "__main__":
    main()
