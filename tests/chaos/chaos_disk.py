"""Spool faults (issue 4, Crash and fault proofs; layout in docs/spool.md):
  - the spool's file system fills up (a small tmpfs): the client gets 452 4.3.1, the daemon goes
    on, no half-written queue entry is left (every env/ID has its msg/ID of the recorded size,
    tmp/ holds nothing of the refused messages), and when space returns (the tmpfs is made
    larger) new mail is accepted and everything acknowledged is delivered;
  - truncated and garbage files placed in the spool by hand while the daemon is stopped: the
    start-up scan quarantines them in corrupt/ and the good messages are delivered.

Mounting a tmpfs needs root (CAP_SYS_ADMIN); without it the first test is skipped, saying so.
MAILHOP_CHAOS_LONG=1 fills a larger file system with more messages.
"""

import os
import re
import smtplib
import subprocess

from chaoslib import LONG, message, message_ids, report
from mailhop_e2e import (scripted_peer_records, E2ETest, PYTHON, DELIVERY_DEADLINE, main, queue_list_or_none, start_process,
                         stop_process, wait_for, wait_port)
import chaoslib

PEER = os.path.join(chaoslib.HERE, "scripted_peer.py")
FS_SIZE = "8m" if LONG else "2m"
MESSAGE_SIZE = 60 * 1024
QUEUE_ID = re.compile(r"^[0-9A-F]{26}$")


def mount_tmpfs(path, size):
    os.makedirs(path, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0700" % size, "tmpfs", path],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return r.returncode == 0, r.stdout.decode(errors="replace")


class SpoolFaults(E2ETest):

    def start_peer(self):
        self.store = os.path.join(self.dir, "peer")
        with open(os.path.join(self.dir, "peer.log"), "ab") as log:
            peer = start_process([PYTHON, PEER, "--listen", "127.0.0.1:%d" % self.relay_port,
                                  "--store", self.store], stdout=log, stderr=subprocess.STDOUT)
        self.addCleanup(stop_process, peer)
        wait_port(self.relay_port, proc=peer)

    def delivered(self):
        return message_ids([r["raw"] for r in scripted_peer_records(self.store)
                            if r["outcome"] == "accepted"])

    def overrides(self):
        return {"limits": {"max_message_size": "1MiB"},
                "delivery": {"retry": {"initial": "1s", "max": "2s", "give_up_after": "1d"}}}

    def check_spool_consistent(self, spool):
        """Every queued envelope has its content, of the recorded size; nothing else in msg/."""
        envs = sorted(os.listdir(os.path.join(spool, "env")))
        msgs = sorted(os.listdir(os.path.join(spool, "msg")))
        for name in envs:
            self.assertRegex(name, QUEUE_ID)
            with open(os.path.join(spool, "env", name)) as f:
                text = f.read()
            self.assertTrue(text.startswith("mailhop-envelope 1\n") and text.endswith("\nend\n"),
                            "half-written envelope %s: %r" % (name, text[-80:]))
            size = int(re.search(r"(?m)^size: (\d+)$", text).group(1))
            path = os.path.join(spool, "msg", name)
            self.assertTrue(os.path.exists(path), "envelope %s without content" % name)
            self.assertEqual(os.path.getsize(path), size, "content of %s has the wrong size" % name)
        self.assertEqual(sorted(set(msgs) - set(envs)), [], "content without an envelope in msg/")
        return envs

    def test_full_file_system(self):
        spool = os.path.join(self.dir, "spool")
        ok, why = mount_tmpfs(spool, FS_SIZE)
        if not ok:
            self.skipTest("cannot mount a tmpfs (needs root): " + why.strip())
        self.addCleanup(subprocess.run, ["umount", "-l", spool])
        # The next hop is down: everything accepted stays in the spool and fills it.
        self.start_daemon(self.overrides())
        acked, refusals = [], []
        with smtplib.SMTP("127.0.0.1", self.smtp_port, local_hostname="client.test", timeout=30) as s:
            s.ehlo()
            for i in range(200):
                mid = "full-%d@chaos.test" % i
                self.assertEqual(s.mail("chaos@example.org")[0], 250)
                self.assertEqual(s.rcpt("rcpt@example.net")[0], 250)
                code, text = s.data(message(mid, "full %d" % i, MESSAGE_SIZE))
                if code == 250:
                    acked.append(mid)
                    continue
                refusals.append((code, text.decode(errors="replace")))
                if len(refusals) >= 3:  # full, and it stays full
                    break
                s.rset()
        self.assertTrue(acked, "nothing fitted in %s" % FS_SIZE)
        self.assertTrue(refusals, "the spool never filled up (%d messages accepted)" % len(acked))
        for code, text in refusals:
            self.assertEqual(code, 452, "%s %s%s" % (code, text, self.ctx()))
            self.assertTrue(text.startswith("4.3.1"), text)
        self.assertTrue(self.daemon.running(), "the daemon died of a full disk" + self.ctx())
        # No half-written entries: exactly the acknowledged messages are queued, whole.
        envs = self.check_spool_consistent(spool)
        self.assertEqual(len(envs), len(acked), "queued %d, acknowledged %d" % (len(envs), len(acked)))
        self.assertEqual(os.listdir(os.path.join(spool, "tmp")), [], "refused messages left in tmp/")

        # Space returns: the same file system, made larger.
        r = subprocess.run(["mount", "-o", "remount,size=64m", spool], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        self.assertEqual(r.returncode, 0, r.stdout)
        with smtplib.SMTP("127.0.0.1", self.smtp_port, local_hostname="client.test", timeout=30) as s:
            mid = "after@chaos.test"
            s.sendmail("chaos@example.org", ["rcpt@example.net"], message(mid, "after", MESSAGE_SIZE))
            acked.append(mid)
        self.start_peer()
        wait_for(lambda: queue_list_or_none(self.config_path) == [], DELIVERY_DEADLINE * 3,
                 lambda: "the queue to drain%s" % self.ctx())
        lost, duplicated, line = report("chaos_disk full", acked, self.delivered(),
                                        " refused=%d" % len(refusals))
        self.assertEqual(lost, [], line + self.ctx())

    def test_damaged_files_are_quarantined(self):
        spool = os.path.join(self.dir, "spool")
        # Three good messages, queued while the next hop is down; then the daemon stops.
        self.start_daemon(self.overrides())
        acked = []
        with smtplib.SMTP("127.0.0.1", self.smtp_port, local_hostname="client.test", timeout=30) as s:
            for i in range(5):
                mid = "good-%d@chaos.test" % i
                s.sendmail("chaos@example.org", ["rcpt@example.net"], message(mid, "good %d" % i))
                acked.append(mid)
        self.assertEqual(self.daemon.stop(), 0, self.ctx())
        ids = sorted(os.listdir(os.path.join(spool, "env")))
        self.assertEqual(len(ids), 5)
        good = ids[:3]

        def forged(n):
            return ids[0][:14] + "FFFF" + "%08X" % n

        def env_text(queue_id):
            with open(os.path.join(spool, "env", queue_id)) as f:
                return f.read()

        damaged = {}
        # 1. An envelope cut in half (no "end" line).
        text = env_text(ids[3])
        with open(os.path.join(spool, "env", ids[3]), "w") as f:
            f.write(text[:len(text) // 2])
        damaged[ids[3]] = "truncated envelope"
        # 2. Content truncated: the size no longer matches.
        with open(os.path.join(spool, "msg", ids[4]), "r+b") as f:
            f.truncate(100)
        damaged[ids[4]] = "truncated content"
        # 3. Garbage under a valid queue ID, with content.
        g = forged(1)
        with open(os.path.join(spool, "env", g), "wb") as f:
            f.write(os.urandom(300))
        with open(os.path.join(spool, "msg", g), "wb") as f:
            f.write(b"Subject: garbage\r\n\r\nx\r\n")
        damaged[g] = "garbage envelope"
        # 4. A valid envelope copied under another ID (it names a different ID).
        g = forged(2)
        with open(os.path.join(spool, "env", g), "w") as f:
            f.write(env_text(good[0]))
        with open(os.path.join(spool, "msg", g), "wb") as f:
            with open(os.path.join(spool, "msg", good[0]), "rb") as src:
                f.write(src.read())
        damaged[g] = "envelope naming another ID"
        # 5. An envelope whose content is missing.
        g = forged(3)
        with open(os.path.join(spool, "env", g), "w") as f:
            f.write(env_text(good[1]).replace(good[1], g))
        damaged[g] = "content missing"
        # 6. A file that is not a queue ID at all, and an empty file.
        with open(os.path.join(spool, "env", "not-a-queue-id"), "w") as f:
            f.write("hello\n")
        damaged["not-a-queue-id"] = "not a queue ID"
        g = forged(4)
        open(os.path.join(spool, "env", g), "w").close()
        damaged[g] = "empty envelope"
        # 7. Leftovers in tmp/ and content without an envelope.
        with open(os.path.join(spool, "tmp", forged(5) + ".msg"), "wb") as f:
            f.write(b"half a mess")
        with open(os.path.join(spool, "msg", forged(6)), "wb") as f:
            f.write(b"orphan")

        self.start_peer()
        self.daemon.start()
        wait_for(lambda: queue_list_or_none(self.config_path) == [], DELIVERY_DEADLINE * 2,
                 lambda: "the good messages to leave the queue%s" % self.ctx())
        corrupt = sorted(os.listdir(os.path.join(spool, "corrupt")))
        for name, why in damaged.items():
            self.assertIn(name + ".env", corrupt, "%s (%s) not quarantined: %s%s" % (name, why, corrupt, self.ctx()))
            self.assertRegex(self.log(), r"quarantined .*%s" % re.escape(name))
        self.assertEqual(os.listdir(os.path.join(spool, "tmp")), [], "tmp/ leftovers kept")
        self.assertNotIn(forged(6), os.listdir(os.path.join(spool, "msg")), "orphan content kept")
        delivered = self.delivered()
        good_mids = ["good-%d@chaos.test" % i for i in range(3)]
        lost, duplicated, line = report("chaos_disk quarantine", good_mids, delivered,
                                        " quarantined=%d" % len(corrupt))
        self.assertEqual(lost, [], line + self.ctx())
        # Nothing damaged was relayed: only the three good messages reached the next hop.
        self.assertEqual(sorted(delivered), sorted(good_mids), line)
        self.assertTrue(self.daemon.running())


if __name__ == "__main__":
    main()
