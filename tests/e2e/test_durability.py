"""Durability end to end (issue 2, The spool): `250` is a promise.

- kill -9 right after the 250 (one message, then many concurrent sessions): after a restart every
  acknowledged message is still queued and intact.
- A store that fails: the spool on a 2 MiB tmpfs, filled while the daemon runs, until a
  submission gets `452 4.3.1`; then the queue holds only complete messages and no half-written
  leftovers take space.

The next hop is a closed port: nothing leaves the queue.
"""

import os
import smtplib
import subprocess
import threading

from mailhop_e2e import E2ETest, check_added_headers, crlf, main, queued_id_from_reply


def message(n, size=0):
    body = "".join("line %d of message %d, padding padding padding padding\n" % (i, n)
                   for i in range(max(1, size // 56)))
    return crlf("From: app@app.example\nTo: r@example.net\nSubject: durable %d\n\n%s" % (n, body))


def submit(port, content, rcpts=("r@example.net",), after_reply=None):
    """One message over smtplib; returns (code, text of the reply to the final dot).
    `after_reply` runs as soon as that reply is in, before QUIT."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        s.ehlo("app.example")
        code, msg = s.mail("app@app.example")
        if code != 250:
            return code, msg.decode()
        for r in rcpts:
            code, msg = s.rcpt(r)
            if code != 250:
                return code, msg.decode()
        try:
            code, msg = s.data(content)
        except smtplib.SMTPDataError as e:
            return e.smtp_code, e.smtp_error.decode()
        if after_reply:
            after_reply()
            s.sock.close()  # the server is gone: no QUIT
            s.sock = None
        return code, msg.decode()


class Crash(E2ETest):

    def test_kill9_right_after_250(self):
        self.start_daemon()
        sent = message(1)
        # kill -9 as soon as the 250 is in, before the client even says QUIT.
        code, text = submit(self.smtp_port, sent, rcpts=("a@example.net", "b@example.net"),
                            after_reply=self.daemon.kill9)
        self.assertEqual(code, 250, text)
        qid = queued_id_from_reply(text)
        self.daemon.start()
        queue = self.queue()
        entries = [e for e in queue if e["id"] == qid]
        self.assertEqual(len(entries), 1, "acknowledged message %s lost: %r%s" % (qid, queue, self.ctx()))
        self.assertEqual([r["address"] for r in entries[0]["recipients"]],
                         ["a@example.net", "b@example.net"])
        check_added_headers(self, sent, self.cat(qid), self.ctx())

    def test_kill9_after_concurrent_sessions(self):
        self.start_daemon()
        n = 12
        results = [None] * n
        sent = [message(i, size=2000) for i in range(n)]

        def client(i):
            try:
                results[i] = submit(self.smtp_port, sent[i])
            except Exception as e:  # a failed client is reported below, not swallowed
                results[i] = (0, repr(e))
        threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.daemon.kill9()
        for i, (code, text) in enumerate(results):
            self.assertEqual(code, 250, "client %d: %s%s" % (i, text, self.ctx()))
        ids = [queued_id_from_reply(text) for _, text in results]
        self.assertEqual(len(set(ids)), n, "queue IDs are not unique: %r" % ids)
        self.daemon.start()
        queued = {e["id"]: e for e in self.queue()}
        for i, qid in enumerate(ids):
            self.assertIn(qid, queued, "acknowledged message %s lost%s" % (qid, self.ctx()))
            check_added_headers(self, sent[i], self.cat(qid), "message %d" % i)
        self.assertEqual(len(queued), n)


class StoreFailure(E2ETest):

    def mount_tmpfs(self, path):
        os.makedirs(path)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", path],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        if r.returncode != 0:
            msg = ("*** SKIPPING the store-failure test: cannot mount a tmpfs (%s). It needs root "
                   "and CAP_SYS_ADMIN. ***" % r.stdout.decode().strip())
            print("\n" + msg, flush=True)
            self.skipTest(msg)
        self.addCleanup(subprocess.run, ["umount", "-l", path], timeout=30)

    def test_disk_full_answers_452_and_leaves_nothing(self):
        spool = os.path.join(self.dir, "spool")
        self.mount_tmpfs(spool)
        # Retries far apart, so the daemon does not keep rewriting envelopes while we look.
        self.start_daemon({"spool": {"path": spool},
                           "delivery": {"retry": {"initial": "1h", "max": "1h"}}})
        accepted = {}
        refusal = None
        for i in range(20):  # 20 x 300 KiB is three times the tmpfs
            content = message(i, size=300 * 1024)
            code, text = submit(self.smtp_port, content)
            if code == 250:
                accepted[queued_id_from_reply(text)] = content
                continue
            refusal = (code, text)
            break
        self.assertIsNotNone(refusal, "20 messages of 300 KiB fitted on a 2 MiB tmpfs?")
        self.assertEqual(refusal[0], 452, "store failure answered %r%s" % (refusal, self.ctx()))
        self.assertRegex(refusal[1], r"^4\.3\.1 ", "store failure: %r" % (refusal,))
        self.assertGreater(len(accepted), 0)

        def check_queue():
            queue = self.queue()
            self.assertEqual(sorted(e["id"] for e in queue), sorted(accepted),
                             "the queue is not exactly the acknowledged messages%s" % self.ctx())
            for qid, content in accepted.items():
                check_added_headers(self, content, self.cat(qid), qid)
            # No leftover of the refused message: what the spool holds on disk is the
            # acknowledged messages plus small envelopes, not 300 KiB more.
            used = 0
            for root, _, files in os.walk(spool):
                for name in files:
                    used += os.path.getsize(os.path.join(root, name))
            stored = sum(e["size"] for e in queue)
            self.assertLess(used, stored + len(queue) * 8192 + 64 * 1024,
                            "spool holds %d bytes for %d bytes of messages: leftovers? %r"
                            % (used, stored, sorted(os.listdir(spool))))

        check_queue()
        # The daemon keeps working: a small message may or may not fit, but the session must
        # get a clear answer (250 or 452), never a dropped connection.
        code, text = submit(self.smtp_port, message(99))
        self.assertIn(code, (250, 452), text)
        if code == 250:
            accepted[queued_id_from_reply(text)] = message(99)
        # And after a restart (recovery scan) the same holds.
        self.assertEqual(self.daemon.stop(), 0)
        self.daemon.start()
        check_queue()


if __name__ == "__main__":
    main()
