"""Outbound end to end, retries and bounces (issue 3, "What must show"), with Postfix's
smtp-sink as the next hop (its -r/-f options refuse commands with 4xx/5xx):

- 4xx at RCPT: deferred and retried, delivered once the next hop accepts;
- 5xx at RCPT: the recipient fails and the sender receives a DSN (multipart/report) through the
  same relay;
- the next hop down for a while: everything is delivered once it is back;
- the daemon restarted with messages deferred: they are delivered after the restart, none twice.

The test configuration retries after 1 s, doubling up to 2 s.
"""

import os
import re
import smtplib

from mailhop_e2e import (E2ETest, SmtpSink, check_added_headers, crlf, main, queued_id_from_reply,
                         wait_for)


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

    def test_5xx_at_rcpt_bounces_to_sender(self):
        # smtp-sink refuses every RCPT, the DSN's too; so it ends after its second session (the
        # first is the harness's readiness probe) and a 421 to RSET ends a reused connection:
        # the DSN then waits for the accepting sink started next.
        refusing = self.sink("refusing", refuse_hard="RCPT", extra=["-Q", "RSET", "-n", "2"])
        self.start_daemon({"delivery": {"max_connections": 1},
                           "relay": {"timeouts": {"idle": "1s"}}})
        sent = message(2)
        qid = self.submit(sent, rcpts=("nobody@example.net",), sender="sender@app.example")
        wait_for(lambda: refusing.proc.poll() is not None, 30,
                 "smtp-sink to end its session with mailhop%s" % self.ctx())
        self.assertRegex(self.log(), r"%s: to=<nobody@example\.net> .*dsn=5\.\d+\.\d+ status=bounced"
                         % qid, "no bounced log line")
        accepting = self.sink("accepting")
        wait_for(lambda: accepting.messages(), 30, "the DSN at the next hop%s" % self.ctx())
        self.wait_empty("an empty queue after the DSN")
        got = accepting.messages()
        self.assertEqual(len(got), 1, got)
        dsn = got[0]
        self.assertEqual(dsn["mail"], "<>", "a DSN has the null envelope sender")
        self.assertEqual(dsn["rcpts"], ["<sender@app.example>"])
        content = dsn["content"]
        head = content.split(b"\r\n\r\n", 1)[0]
        self.assertRegex(head, rb"(?im)^From: .*MAILER-DAEMON@mailhop\.test")
        self.assertRegex(head, rb"(?im)^To: .*sender@app\.example")
        self.assertRegex(head, rb"(?i)Content-Type: multipart/report;(\s|\r\n)*.*report-type=\"?delivery-status")
        self.assertRegex(content, rb"(?i)Content-Type: message/delivery-status")
        self.assertRegex(content, rb"(?im)^Final-Recipient: rfc822; ?nobody@example\.net")
        self.assertRegex(content, rb"(?im)^Action: failed")
        self.assertRegex(content, rb"(?im)^Status: 5\.\d+\.\d+")
        self.assertRegex(content, rb"(?i)Content-Type: text/rfc822-headers")
        self.assertIn(b"Subject: retry test 2", content, "the original headers are not in the DSN")
        self.assertNotIn(b"\r\nBody 2.", content.split(b"text/rfc822-headers", 1)[-1],
                         "the original body is in a headers-only DSN")

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


if __name__ == "__main__":
    main()
