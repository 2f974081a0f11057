"""Shared pieces of the chaos suite (tests/chaos/): the e2e harness on the import path, a load
client that records every message it saw acknowledged with 250, and the lost/duplicated count.

Run the scripts with Debian's /usr/bin/python3; CTest sets MAILHOP_BIN. MAILHOP_CHAOS_LONG=1
selects the long versions (see tests/chaos/README.md), MAILHOP_CHAOS_SEED the random seed.
"""

import collections
import os
import random
import re
import smtplib
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))

import mailhop_e2e  # noqa: E402  (after the path is set)

LONG = os.environ.get("MAILHOP_CHAOS_LONG") == "1"


def seed():
    value = int(os.environ.get("MAILHOP_CHAOS_SEED", str(int(time.time() * 1000) % 1000000)))
    print("chaos seed: MAILHOP_CHAOS_SEED=%d" % value, flush=True)
    return random.Random(value)


def message(message_id, subject, size=600):
    body = ("chaos line %s\r\n" % subject) * max(1, size // 40)
    return ("From: <chaos@example.org>\r\nTo: <rcpt@example.net>\r\nSubject: %s\r\n"
            "Message-ID: <%s>\r\n\r\n%s" % (subject, message_id, body)).encode()


MESSAGE_ID = re.compile(rb"(?mi)^Message-ID:\s*<([^>\r\n]+)>")


def message_ids(contents):
    """Counter of Message-IDs over a list of message contents (bytes)."""
    counts = collections.Counter()
    for content in contents:
        m = MESSAGE_ID.search(content)
        if m:
            counts[m.group(1).decode()] += 1
    return counts


class LoadClient(threading.Thread):
    """Sends messages over and over (reusing the connection, reconnecting after any error),
    each with a unique Message-ID; `acked` holds the IDs answered 250 after DATA."""

    def __init__(self, port, name, stop_event, size=600, rate=None):
        super().__init__(daemon=True)
        # At most `rate` messages a second (None: as fast as the daemon takes them). A paced
        # load keeps the backlog a run leaves behind bounded however fast the machine is.
        self.rate = rate
        self.port = port
        self.name_ = name
        self.stop_event = stop_event
        self.size = size
        self.acked = []
        self.failed = 0
        self.sent = 0

    def run(self):
        n = 0
        smtp = None
        started = time.monotonic()
        while not self.stop_event.is_set():
            if self.rate:
                ahead = started + n / self.rate - time.monotonic()
                if ahead > 0 and self.stop_event.wait(ahead):  # pacing, not synchronisation
                    break
            try:
                if smtp is None:
                    smtp = smtplib.SMTP("127.0.0.1", self.port, local_hostname="chaos.test", timeout=20)
                    smtp.ehlo()
                n += 1
                mid = "%s-%d@chaos.test" % (self.name_, n)
                self.sent += 1
                code, _ = smtp.mail("chaos@example.org")
                if code != 250:
                    raise smtplib.SMTPException("MAIL %d" % code)
                code, _ = smtp.rcpt("rcpt@example.net")
                if code != 250:
                    raise smtplib.SMTPException("RCPT %d" % code)
                code, _ = smtp.data(message(mid, "%s %d" % (self.name_, n), self.size))
                if code == 250:
                    self.acked.append(mid)
                else:
                    self.failed += 1
            except (OSError, smtplib.SMTPException):
                self.failed += 1
                if smtp is not None:
                    try:
                        smtp.close()
                    except OSError:
                        pass
                smtp = None
                # The daemon is down (being restarted): try again shortly. This pause is load
                # pacing, not synchronisation: the test waits on conditions, not on it.
                self.stop_event.wait(0.05)
        if smtp is not None:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()


def lost_and_duplicated(acked, delivered_counts):
    lost = sorted(m for m in acked if delivered_counts.get(m, 0) == 0)
    duplicated = {m: c for m, c in delivered_counts.items() if c > 1}
    return lost, duplicated


def report(name, acked, delivered_counts, extra=""):
    lost, duplicated = lost_and_duplicated(acked, delivered_counts)
    line = ("%s: acknowledged=%d delivered=%d (distinct %d) lost=%d duplicated=%d%s"
            % (name, len(acked), sum(delivered_counts.values()), len(delivered_counts), len(lost),
               len(duplicated), extra))
    print(line, flush=True)
    return lost, duplicated, line
