"""Crash proof (issue 4, Crash and fault proofs): under load, the daemon is killed with SIGKILL
at random moments, many times, and restarted each time. At the end every message that any
client saw acknowledged with 250 has reached the next hop (`mailhop sink`, a Maildir) at least
once. Lost must be 0; duplicates (a crash between the next hop's 250 and the mark in the
envelope) are allowed and reported.

Load: several Python SMTP clients (LoadClient) that record each Message-ID answered 250 after
DATA, reconnecting whenever the daemon is down.

Short version (CI): 8 kills, 1-4 s apart (~20 s of load). Long version: MAILHOP_CHAOS_LONG=1, 150
kills, 0.05-4 s apart (some right after a restart, during the start-up scan), more clients.
MAILHOP_CHAOS_SEED reproduces a run's kill moments.
"""

import os
import threading
import time

import chaoslib
from chaoslib import LONG, LoadClient, message_ids, report
from mailhop_e2e import E2ETest, MailhopSink, free_port, main, queue_list_or_none, wait_for

KILLS = 150 if LONG else 8
GAP = (0.05, 4.0) if LONG else (1.0, 4.0)
CLIENTS = 6 if LONG else 3
# Messages a second per client: together a little under what a debug build delivers, so the
# backlog at the end drains well within DRAIN_DEADLINE on a fast machine as on a slow one.
RATE = 25
DRAIN_DEADLINE = 300 if LONG else 120


class KillNine(E2ETest):

    def test_sigkill_under_load_loses_nothing(self):
        rng = chaoslib.seed()
        sink = MailhopSink(self.relay_port, os.path.join(self.dir, "maildir"),
                           os.path.join(self.dir, "sink.log"))
        self.addCleanup(sink.stop)
        self.start_daemon({
            "delivery": {"workers": 8, "max_connections": 4,
                         "retry": {"initial": "1s", "max": "2s", "give_up_after": "1d"}},
            "log": {"level": "info", "format": "text"},
        })

        stop = threading.Event()
        clients = [LoadClient(self.smtp_port, "c%d" % i, stop, rate=RATE) for i in range(CLIENTS)]
        for c in clients:
            c.start()
        kills = []
        try:
            for k in range(KILLS):
                # A random moment: the wait is the randomness under test, not a synchronisation.
                time.sleep(rng.uniform(*GAP))
                acked_before = sum(len(c.acked) for c in clients)
                self.daemon.kill9()
                kills.append(acked_before)
                self.daemon.start()  # waits until the port accepts; fails with the log tail
            # A last stretch of load after the final restart, so that the restarted daemon
            # takes mail too; it ends when each client got at least one more 250.
            counts = [len(c.acked) for c in clients]
            wait_for(lambda: all(len(c.acked) > n for c, n in zip(clients, counts)), 60,
                     lambda: "a 250 for every client after the last restart" + self.ctx())
        finally:
            stop.set()
            for c in clients:
                c.join(timeout=30)

        acked = [m for c in clients for m in c.acked]
        self.assertGreater(len(acked), KILLS, "too little load to prove anything")
        # Everything acknowledged is in the queue or delivered: wait for the queue to drain.
        wait_for(lambda: queue_list_or_none(self.config_path) == [], DRAIN_DEADLINE,
                 lambda: "the queue to drain (%s)%s" % (queue_list_or_none(self.config_path), self.ctx()))
        delivered = message_ids(sink.messages())
        corrupt_dir = os.path.join(self.dir, "spool", "corrupt")
        corrupt = os.listdir(corrupt_dir) if os.path.isdir(corrupt_dir) else []
        lost, duplicated, line = report(
            "chaos_kill", acked, delivered,
            " kills=%d sent=%d not-acknowledged=%d quarantined=%d"
            % (len(kills), sum(c.sent for c in clients), sum(c.failed for c in clients), len(corrupt)))
        self.assertEqual(lost, [], "acknowledged but never delivered: %s\n%s%s" % (lost[:20], line, self.ctx()))
        # A SIGKILL is not a power cut: every file the daemon wrote survives it whole, so
        # nothing may look damaged to the start-up scan.
        self.assertEqual(corrupt, [], "quarantined after SIGKILLs: %s" % corrupt)
        unexpected = set(delivered) - set(acked)
        # Messages whose 250 the client never read (killed before it arrived) may arrive; any
        # other Message-ID would be a message nobody sent.
        self.assertTrue(all(m.split("@")[0].rsplit("-", 1)[0] in {c.name_ for c in clients}
                            for m in unexpected), unexpected)


if __name__ == "__main__":
    main()
