"""Next-hop faults (issue 4, Crash and fault proofs): the next hop (tests/chaos/scripted_peer.py)
killed with SIGKILL in the middle of a transaction, answering too slowly, hanging up after the
data, or answering 451 after the data. In every case each message the client saw acknowledged
with 250 is in the end accepted by the next hop at least once (lost = 0), and the queue drains.

Short in CI (a few messages per case); MAILHOP_CHAOS_LONG=1 sends more.
"""

import os
import smtplib
import subprocess

from chaoslib import LONG, message, report
from mailhop_e2e import (scripted_peer_records, E2ETest, PYTHON, DELIVERY_DEADLINE, main, queue_list_or_none, start_process,
                         stop_process, kill9, wait_for, wait_port)
import chaoslib

PEER = os.path.join(chaoslib.HERE, "scripted_peer.py")
MESSAGES = 40 if LONG else 5


class NextHopFaults(E2ETest):

    def setUp(self):
        super().setUp()
        self.store = os.path.join(self.dir, "peer")
        self.peer = None

    def start_peer(self, mode="normal", count=None, delay=None):
        argv = [PYTHON, PEER, "--listen", "127.0.0.1:%d" % self.relay_port, "--store", self.store,
                "--mode", mode]
        if count is not None:
            argv += ["--count", str(count)]
        if delay is not None:
            argv += ["--delay", str(delay)]
        with open(os.path.join(self.dir, "peer.log"), "ab") as log:
            self.peer = start_process(argv, stdout=log, stderr=subprocess.STDOUT)
        self.addCleanup(stop_process, self.peer)
        wait_port(self.relay_port, proc=self.peer)

    def start_relay(self, timeouts=None):
        relay = {"timeouts": timeouts} if timeouts else {}
        self.start_daemon({"relay": relay,
                           "delivery": {"workers": 2, "max_connections": 2,
                                        "retry": {"initial": "1s", "max": "2s", "give_up_after": "1d"}}})

    def submit(self, n, tag):
        acked = []
        with smtplib.SMTP("127.0.0.1", self.smtp_port, local_hostname="client.test", timeout=30) as s:
            for i in range(n):
                mid = "%s-%d@chaos.test" % (tag, i)
                s.sendmail("chaos@example.org", ["rcpt@example.net"], message(mid, "%s %d" % (tag, i)))
                acked.append(mid)  # sendmail raises unless the message was answered 250
        return acked

    def peer_records(self):
        return scripted_peer_records(self.store)

    def finish(self, name, acked):
        wait_for(lambda: queue_list_or_none(self.config_path) == [], DELIVERY_DEADLINE * 2,
                 lambda: "the queue to drain: %s%s" % (queue_list_or_none(self.config_path), self.ctx()))
        records = self.peer_records()
        accepted = chaoslib.message_ids([r["raw"] for r in records if r["outcome"] == "accepted"])
        outcomes = sorted({r["outcome"] for r in records})
        lost, duplicated, line = report(name, acked, accepted, " peer outcomes=%s" % outcomes)
        self.assertEqual(lost, [], line + self.ctx())
        return records

    def test_next_hop_killed_mid_transaction(self):
        self.start_peer("stall-after-data", count=1)
        self.start_relay()
        acked = self.submit(MESSAGES, "killed")
        # The peer has the data of one message and will never answer: kill it there.
        wait_for(lambda: os.path.exists(os.path.join(self.store, "stalled")), DELIVERY_DEADLINE,
                 lambda: "the peer to stall in a transaction" + self.ctx())
        kill9(self.peer)
        self.start_peer("normal")
        records = self.finish("chaos_nexthop killed", acked)
        self.assertIn("stalled", [r["outcome"] for r in records])

    def test_next_hop_too_slow(self):
        # Each reply takes 2 s; the relay waits at most 1 s for one: every attempt times out
        # (deferred) until the next hop is replaced by a prompt one.
        self.start_peer("slow", delay=2)
        self.start_relay({"connect": "5s", "greeting": "1s", "command": "1s",
                          "data_init": "1s", "data_block": "1s", "data_end": "1s"})
        acked = self.submit(MESSAGES, "slow")
        wait_for(lambda: "status=deferred" in self.log(), DELIVERY_DEADLINE,
                 lambda: "a deferral while the next hop is slow" + self.ctx())
        self.assertEqual([r for r in self.peer_records() if r["outcome"] == "accepted"], [])
        stop_process(self.peer)
        self.start_peer("normal")
        self.finish("chaos_nexthop slow", acked)

    def test_next_hop_slow_but_within_timeouts(self):
        self.start_peer("slow", delay=0.3)
        self.start_relay({"connect": "5s", "greeting": "5s", "command": "5s",
                          "data_init": "5s", "data_block": "5s", "data_end": "5s"})
        acked = self.submit(3, "patient")
        records = self.finish("chaos_nexthop patient", acked)
        self.assertEqual(len([r for r in records if r["outcome"] == "accepted"]), 3)

    def test_next_hop_hangs_up_after_data(self):
        self.start_peer("hangup-after-data", count=3)
        self.start_relay()
        acked = self.submit(MESSAGES, "hangup")
        records = self.finish("chaos_nexthop hangup", acked)
        self.assertEqual(len([r for r in records if r["outcome"] == "hangup"]), 3)

    def test_next_hop_tempfails_after_data(self):
        self.start_peer("tempfail-data", count=3)
        self.start_relay()
        acked = self.submit(MESSAGES, "tempfail")
        records = self.finish("chaos_nexthop tempfail", acked)
        self.assertEqual(len([r for r in records if r["outcome"] == "tempfail"]), 3)


if __name__ == "__main__":
    main()
