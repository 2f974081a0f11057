"""`mailhop sendmail` (issue 5): the sendmail interface through the daemon into a `mailhop sink`
Maildir — recipients on the command line, -t (To:/Cc:/Bcc:, Bcc: removed), -f, -F, -i, the
`sendmail` and `mailq` names (argv[0]), and exit 75 (EX_TEMPFAIL) when the daemon is down.
"""

import os
import re
import subprocess

from mailhop_e2e import (COMMAND_DEADLINE, DELIVERY_DEADLINE, MAILHOP_BIN, E2ETest, MailhopSink, free_port,
                         main, wait_for)

EX_USAGE = 64
EX_TEMPFAIL = 75


class Sendmail(E2ETest):

    def setUp(self):
        super().setUp()
        self.sink_port = free_port()
        self.sink = MailhopSink(self.sink_port, os.path.join(self.dir, "maildir"),
                                os.path.join(self.dir, "sink.log"))
        self.addCleanup(self.sink.stop)
        self.relay_port = self.sink_port
        self.write_config()

    def sendmail(self, args, message, program=MAILHOP_BIN, subcommand=True):
        argv = [program] + (["sendmail"] if subcommand else []) + ["-C", self.config_path] + list(args)
        return subprocess.run(argv, input=message, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=COMMAND_DEADLINE)

    def delivered(self, count=1):
        msgs = wait_for(lambda: len(self.sink.messages()) >= count and self.sink.messages(),
                        DELIVERY_DEADLINE, lambda: "%d message(s) in the sink%s" % (count, self.ctx()))
        self.assertEqual(len(msgs), count)
        return msgs

    @staticmethod
    def envelope(stored):
        sender = re.match(rb"Return-Path: <([^>]*)>\r\n", stored).group(1).decode()
        rcpts = sorted(m.decode() for m in re.findall(rb"X-Mailhop-Sink-Rcpt: <([^>]*)>\r\n", stored))
        return sender, rcpts

    def test_recipients_on_the_command_line_and_f_and_F(self):
        self.start_daemon()
        r = self.sendmail(["-f", "cron@example.org", "-F", "Cron Daemon", "ops@example.org", "dev@example.org"],
                          b"Subject: nightly\n\nall good\n")
        self.assertEqual(r.returncode, 0, r.stderr.decode() + self.ctx())
        stored = self.delivered()[0]
        self.assertEqual(self.envelope(stored), ("cron@example.org", ["dev@example.org", "ops@example.org"]))
        self.assertIn(b"\r\nFrom: Cron Daemon <cron@example.org>\r\n", stored)
        self.assertIn(b"Subject: nightly\r\n", stored)
        self.assertTrue(stored.endswith(b"\r\n\r\nall good\r\n"), stored)

    def test_t_reads_to_cc_bcc_and_removes_bcc(self):
        self.start_daemon()
        message = (b"From: App <app@example.org>\n"
                   b"To: Alice <alice@example.org>, bob@example.org\n"
                   b"Cc: \"Carol, C.\" <carol@example.org>\n"
                   b"Bcc: hidden@example.org,\n"
                   b"  hidden2@example.org\n"
                   b"Subject: -t test\n"
                   b"\n"
                   b"body\n")
        r = self.sendmail(["-t", "-i", "-f", "app@example.org"], message)
        self.assertEqual(r.returncode, 0, r.stderr.decode() + self.ctx())
        stored = self.delivered()[0]
        sender, rcpts = self.envelope(stored)
        self.assertEqual(rcpts, ["alice@example.org", "bob@example.org", "carol@example.org",
                                 "hidden2@example.org", "hidden@example.org"])
        self.assertNotIn(b"Bcc:", stored)
        self.assertNotIn(b"hidden", MailhopSink.without_delivery_headers(stored))  # only in the envelope
        self.assertIn(b"From: App <app@example.org>\r\n", stored)
        self.assertEqual(stored.count(b"From: "), 1)  # none added

    def test_dot_line_ends_input_unless_i(self):
        self.start_daemon()
        r = self.sendmail(["ops@example.org"], b"Subject: dots\n\nline one\n.\nnot part of the message\n")
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        r = self.sendmail(["-oi", "ops@example.org"], b"Subject: dots -i\n\nline one\n.\n..two\nlast\n")
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        msgs = self.delivered(2)
        by_subject = {re.search(rb"Subject: ([^\r]*)", m).group(1): m for m in msgs}
        self.assertTrue(by_subject[b"dots"].endswith(b"\r\n\r\nline one\r\n"), by_subject[b"dots"])
        self.assertNotIn(b"not part", by_subject[b"dots"])
        # With -i the lone dot and the dot-started line are content, unstuffed as sent.
        self.assertTrue(by_subject[b"dots -i"].endswith(b"\r\n\r\nline one\r\n.\r\n..two\r\nlast\r\n"),
                        by_subject[b"dots -i"])

    def test_default_sender_is_login_at_hostname(self):
        self.start_daemon()
        r = self.sendmail(["ops@example.org"], b"Subject: who\n\nx\n")
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        sender, _ = self.envelope(self.delivered()[0])
        self.assertTrue(sender.endswith("@mailhop.test"), sender)

    def test_invoked_as_sendmail_and_mailq(self):
        self.start_daemon()
        link = os.path.join(self.dir, "sendmail")
        os.symlink(MAILHOP_BIN, link)
        # sendmail's no-op flags are accepted.
        r = self.sendmail(["-odi", "-oem", "-bm", "-U", "-v", "ops@example.org"], b"Subject: as sendmail\n\nx\n",
                          program=link, subcommand=False)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.delivered()
        mailq = os.path.join(self.dir, "mailq")
        os.symlink(MAILHOP_BIN, mailq)
        r = subprocess.run([mailq, "-c", self.config_path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=COMMAND_DEADLINE)
        self.assertEqual(r.returncode, 0, r.stderr.decode())

    def test_usage_errors(self):
        r = self.sendmail([], b"Subject: nobody\n\nx\n")  # no recipients, no -t
        self.assertEqual(r.returncode, EX_USAGE)
        self.assertIn(b"no recipients", r.stderr)
        r = self.sendmail(["-Q", "ops@example.org"], b"x\n")
        self.assertEqual(r.returncode, EX_USAGE)

    def test_daemon_down_is_tempfail(self):
        r = self.sendmail(["ops@example.org"], b"Subject: later\n\nx\n")  # no daemon started
        self.assertEqual(r.returncode, EX_TEMPFAIL, r.stderr.decode())
        self.assertIn(b"is the mailhop daemon running?", r.stderr)


if __name__ == "__main__":
    main()
