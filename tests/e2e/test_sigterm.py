"""SIGTERM (issue 5, "Signals"): a graceful stop that is bounded however the next hop behaves,
and that loses nothing and sends nothing twice.

- A next hop that accepts TCP and never speaks (a listening socket in this process, the
  greeting timeout 5 minutes): relay connections waiting for its greeting are aborted at once,
  the daemon exits 0 well within the bound, and the message is still queued (not counted as an
  attempt), delivered after a restart towards a good next hop.
- A next hop slow to answer (tests/chaos/scripted_peer.py --mode slow: every reply, the one to
  the final dot included, comes late): SIGTERM while it holds a reply to the final dot; the
  transaction in progress finishes within delivery.shutdown_grace, the daemon exits 0, and after
  a restart with a good next hop (`mailhop sink`) every message that got 250 arrives exactly once
  (Message-IDs counted at both next hops).
- A next hop that never answers the final dot (scripted_peer.py --mode stall-after-data): the
  transaction is abandoned after delivery.shutdown_grace, the daemon exits 0, the message stays
  queued and is delivered after the restart. (The stalled next hop may have kept a copy: the
  duplicate RFC 1047 describes, which no client can rule out.)
"""

import os
import re
import smtplib
import socket
import subprocess
import time

from mailhop_e2e import (COMMAND_DEADLINE, DELIVERY_DEADLINE, PYTHON, SOURCE_DIR, E2ETest, MailhopSink, crlf,
                         free_port, main, queue_list, scripted_peer_records, start_process, stop_process, wait_for,
                         wait_port)

SCRIPTED_PEER = os.path.join(SOURCE_DIR, "tests", "chaos", "scripted_peer.py")
EXIT_BOUND = 15  # seconds from SIGTERM to exit


def message(n):
    return crlf("From: alice@example.org\nTo: bob@example.net\nSubject: stop %d\n"
                "Message-ID: <stop-%d@client.test>\n\nhello %d\n" % (n, n, n))


def message_ids(blobs):
    return [m.decode() for blob in blobs for m in re.findall(rb"Message-ID: <(stop-\d+@client\.test)>", blob)]


class Sigterm(E2ETest):

    def setUp(self):
        super().setUp()
        self.admin = "127.0.0.1:%d" % free_port()

    def config(self, relay_port, **extra):
        cfg = {"relay": {"port": relay_port}, "admin": {"listen": self.admin}}
        cfg.update(extra)
        return cfg

    def send(self, n):
        with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=COMMAND_DEADLINE) as s:
            self.assertEqual(s.sendmail("alice@example.org", ["bob@example.net"], message(n)), {})

    def terminate(self):
        """SIGTERM; returns the seconds until the daemon exited, having checked it exited 0."""
        started = time.monotonic()
        self.daemon.proc.terminate()
        try:
            rc = self.daemon.proc.wait(timeout=EXIT_BOUND)
        except subprocess.TimeoutExpired:
            self.fail("the daemon did not exit within %d s of SIGTERM%s" % (EXIT_BOUND, self.ctx()))
        self.assertEqual(rc, 0, self.ctx())
        return time.monotonic() - started

    def restart_towards_sink(self):
        """A good next hop, the configuration pointing at it, the daemon started again."""
        port = free_port()
        sink = MailhopSink(port, os.path.join(self.dir, "sink"), os.path.join(self.dir, "sink.log"))
        self.addCleanup(sink.stop)
        self.start_daemon(self.config(port))
        return sink

    def test_next_hop_that_never_greets(self):
        silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        silent.bind(("127.0.0.1", self.relay_port))
        silent.listen(16)
        silent.settimeout(0.2)
        self.addCleanup(silent.close)
        held = []  # accepted, never answered
        self.addCleanup(lambda: [c.close() for c in held])

        def accepted():
            try:
                held.append(silent.accept()[0])
            except socket.timeout:
                pass
            return held

        # Greeting timeout 5 minutes and a long grace: only an immediate abort stops in time.
        self.start_daemon(self.config(self.relay_port,
                                      relay={"port": self.relay_port, "timeouts": {"greeting": "5m"}},
                                      delivery={"shutdown_grace": "1m"}))
        self.send(1)
        wait_for(accepted, DELIVERY_DEADLINE, "a relay connection waiting for the greeting")
        elapsed = self.terminate()
        self.assertLess(elapsed, 10, "the stop waited for the greeting or the grace period" + self.ctx())

        # Still queued, and the aborted connection was not an attempt.
        queue = queue_list(self, self.config_path)
        self.assertEqual(len(queue), 1, queue)
        self.assertEqual(queue[0]["attempts"], 0, queue)

        sink = self.restart_towards_sink()
        wait_for(lambda: len(sink.messages()) == 1, DELIVERY_DEADLINE, "the message at the good next hop")
        self.assertEqual(message_ids(sink.messages()), ["stop-1@client.test"])
        self.wait_queue(lambda q: q == [], "an empty queue")

    def test_during_a_delivery_nothing_lost_nothing_twice(self):
        store = os.path.join(self.dir, "slow")
        with open(os.path.join(self.dir, "slow.log"), "ab") as log:
            peer = start_process([PYTHON, SCRIPTED_PEER, "--listen", "127.0.0.1:%d" % self.relay_port,
                                  "--store", store, "--mode", "slow", "--delay", "1"],
                                 stdout=log, stderr=subprocess.STDOUT)
        self.addCleanup(stop_process, peer)
        wait_port(self.relay_port, proc=peer)

        self.start_daemon(self.config(self.relay_port, delivery={"shutdown_grace": "10s", "max_connections": 2}))
        count = 6
        for n in range(count):
            self.send(n)
        # The peer stores a message when its final dot arrives and then waits before its 250:
        # mailhop is waiting for the reply to the end of data right now.
        wait_for(lambda: scripted_peer_records(store), DELIVERY_DEADLINE, "a transaction at its final dot")
        self.terminate()
        first_run = self.log()
        self.assertIn("delivery: stopping", first_run)
        self.assertIn("status=sent", first_run, "the transaction in progress was not finished")
        stop_process(peer)

        sink = self.restart_towards_sink()
        accepted_by_slow = message_ids(r["raw"] for r in scripted_peer_records(store) if r["outcome"] == "accepted")
        self.wait_queue(lambda q: q == [], "an empty queue")
        arrived = accepted_by_slow + message_ids(sink.messages())
        self.assertEqual(sorted(arrived), sorted("stop-%d@client.test" % n for n in range(count)),
                         "every message once: %s%s" % (arrived, self.ctx()))

    def test_transaction_past_the_grace_period_is_abandoned(self):
        store = os.path.join(self.dir, "stall")
        with open(os.path.join(self.dir, "stall.log"), "ab") as log:
            peer = start_process([PYTHON, SCRIPTED_PEER, "--listen", "127.0.0.1:%d" % self.relay_port,
                                  "--store", store, "--mode", "stall-after-data", "--count", "1"],
                                 stdout=log, stderr=subprocess.STDOUT)
        self.addCleanup(stop_process, peer)
        wait_port(self.relay_port, proc=peer)
        # The reply to the final dot would take minutes; the grace period is 2 s.
        self.start_daemon(self.config(self.relay_port, delivery={"shutdown_grace": "2s"},
                                      relay={"port": self.relay_port, "timeouts": {"data_end": "5m"}}))
        self.send(1)
        wait_for(lambda: os.path.exists(os.path.join(store, "stalled")), DELIVERY_DEADLINE,
                 "the next hop holding its reply to the final dot")
        elapsed = self.terminate()
        self.assertGreaterEqual(elapsed, 1.5, "the transaction was not given its grace period" + self.ctx())
        self.assertIn("still busy after delivery.shutdown_grace", self.log())
        stop_process(peer)
        # Abandoned, not lost: still queued, and delivered after the restart.
        queue = queue_list(self, self.config_path)
        self.assertEqual(len(queue), 1, queue)
        sink = self.restart_towards_sink()
        wait_for(lambda: len(sink.messages()) == 1, DELIVERY_DEADLINE, "the message at the good next hop")
        self.assertEqual(message_ids(sink.messages()), ["stop-1@client.test"])


if __name__ == "__main__":
    main()
