"""SMTP smuggling end to end (issue 4, Hostile input; SEC Consult, "SMTP Smuggling", Dec 2023;
Postfix smtpd_forbid_bare_newline): for each published end-of-data variant, a raw socket client
sends a message whose body holds the variant followed by a second, smuggled transaction
(MAIL FROM, RCPT TO, DATA, a message), then the real end CRLF.CRLF and QUIT. The next hop is
tests/chaos/scripted_peer.py, which records the raw DATA bytes it received.

What must never happen, checked for every variant:
  - the next hop receives a message the client did not see acknowledged with 250 in its own
    session (matched by queue ID, in the Received: field, and by Subject:);
  - a relayed message holds a bare CR, a bare LF, or a line starting with "." that is not
    dot-stuffed (so a lenient next hop could not find an end of data in it either).
A bare LF is a line end for mailhop: with LF-only variants the DATA ends there and the smuggled
lines are ordinary commands of the same session, under the same checks: from an address
outside allowed_networks the smuggled RCPT gets 554 5.7.1 like any other.
"""

import os
import re
import socket
import subprocess

from mailhop_e2e import (scripted_peer_records, E2ETest, DELIVERY_DEADLINE, PYTHON, SOURCE_DIR, main, queue_list_or_none,
                         start_process, stop_process, wait_for, wait_port)

SCRIPTED_PEER = os.path.join(SOURCE_DIR, "tests", "chaos", "scripted_peer.py")

# (name, bytes that end the outer body, what mailhop makes of it)
#   "lf"     : a bare-LF line end (lenient) — the data ends there, the rest is commands;
#   "bare_cr": a CR not followed by LF — the message is refused after the real end;
#   "content": no end of data for mailhop — the smuggled text is part of the one message.
VARIANTS = [
    ("LF.LF", b"\n.\n", "lf"),
    ("LF.CRLF", b"\n.\r\n", "lf"),
    ("CRLF.LF", b"\r\n.\n", "lf"),
    ("CR.CRLF", b"\r.\r\n", "bare_cr"),
    ("CRLF.CR", b"\r\n.\r", "bare_cr"),
    ("CR.CR", b"\r.\r", "bare_cr"),
    ("CRLF.CRCRLF", b"\r\n.\r\r\n", "bare_cr"),
    ("CR.LF", b"\r.\n", "bare_cr"),
    ("LF.CR", b"\n.\r", "bare_cr"),
    ("CRCRLF.CRCRLF", b"\r\r\n.\r\r\n", "bare_cr"),
    ("CRLF-NUL.CRLF", b"\r\n\x00.\r\n", "content"),
    ("CRLF.NUL-CRLF", b"\r\n.\x00\r\n", "content"),
    ("CRLF-SP.CRLF", b"\r\n .\r\n", "content"),
    ("CRLF..CRLF", b"\r\n..\r\n", "content"),
]

QUEUED = re.compile(r"^250 .*queued as ([A-Za-z0-9._-]+)")


def replies_of(data):
    """Complete replies in `data` (bytes): list of (code, last line text)."""
    out = []
    for line in data.decode("utf-8", "replace").split("\r\n"):
        if len(line) >= 4 and line[3] == "-":
            continue
        if line:
            out.append((int(line[:3]) if line[:3].isdigit() else 0, line))
    return out


class Client:
    def __init__(self, port, source="127.0.0.1"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.bind((source, 0))
        self.sock.connect(("127.0.0.1", port))
        self.buf = b""
        self.transcript = []

    def reply(self):
        """One complete (possibly multi-line) reply."""
        while True:
            m = re.search(rb"(?m)^\d{3} [^\r\n]*\r\n", self.buf)
            if m:
                text = self.buf[:m.end()]
                self.buf = self.buf[m.end():]
                last = m.group(0).decode("utf-8", "replace").rstrip("\r\n")
                self.transcript.append("S: " + last)
                return int(last[:3]), last
            data = self.sock.recv(65536)
            if not data:
                raise AssertionError("connection closed; transcript:\n" + "\n".join(self.transcript))
            self.buf += data

    def cmd(self, line):
        self.transcript.append("C: " + line)
        self.sock.sendall(line.encode() + b"\r\n")
        return self.reply()

    def send_rest_and_read_all(self, raw):
        """Sends `raw` at once (as an attacker would) and reads every reply until the server
        closes the connection."""
        self.transcript.append("C: %r" % raw)
        self.sock.sendall(raw)
        data = self.buf
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            data += chunk
        replies = replies_of(data)
        self.transcript += ["S: " + text for _, text in replies]
        return replies

    def close(self):
        self.sock.close()


def smuggle_payload(tag, variant):
    outer = (b"Subject: outer-" + tag + b"\r\nMessage-ID: <outer-" + tag + b"@client.test>\r\n\r\n"
             b"outer body line\r\nlast outer line")
    smuggled = (b"MAIL FROM:<mallory@example.org>\r\n"
                b"RCPT TO:<victim@example.net>\r\n"
                b"DATA\r\n"
                b"Subject: smuggled-" + tag + b"\r\nMessage-ID: <smuggled-" + tag + b"@client.test>\r\n"
                b"From: <ceo@example.org>\r\n\r\nsmuggled body")
    return outer + variant + smuggled + b"\r\n.\r\n"


def split_raw_lines(raw):
    """Lines as a lenient reader sees them: split at CRLF, LF or CR."""
    return re.split(rb"\r\n|\n|\r", raw)


class Smuggling(E2ETest):

    def setUp(self):
        super().setUp()
        self.store = os.path.join(self.dir, "peer")
        with open(os.path.join(self.dir, "peer.log"), "ab") as log:
            self.peer = start_process([PYTHON, SCRIPTED_PEER, "--listen", "127.0.0.1:%d" % self.relay_port,
                                       "--store", self.store], stdout=log, stderr=subprocess.STDOUT)
        self.addCleanup(stop_process, self.peer)
        wait_port(self.relay_port, proc=self.peer)
        # 127.0.0.1 may relay; 127.0.0.2 is "outside" (it may not).
        self.start_daemon({"allowed_networks": ["127.0.0.1/32"],
                           "limits": {"max_errors": 100}})

    def peer_messages(self):
        return scripted_peer_records(self.store)

    def wait_all_delivered(self):
        """The client's session is over, so everything acknowledged is in the queue; once the
        queue is empty, everything was handed to the peer (it records before it answers 250)."""
        wait_for(lambda: queue_list_or_none(self.config_path) == [], DELIVERY_DEADLINE,
                 lambda: "an empty queue" + self.ctx())
        return self.peer_messages()

    def check_raw(self, raw, context):
        """The relayed bytes carry no end of data for any reader, strict or lenient."""
        self.assertNotRegex(raw, rb"\r(?!\n)", "bare CR relayed " + context)
        self.assertNotRegex(raw, rb"(?<!\r)\n", "bare LF relayed " + context)
        self.assertTrue(raw == b"" or raw.endswith(b"\r\n"), "data does not end in CRLF " + context)
        for line in raw.split(b"\r\n"):
            if line.startswith(b"."):
                self.assertTrue(line.startswith(b".."), "unstuffed line %r relayed %s" % (line, context))
        for line in split_raw_lines(raw):
            self.assertNotEqual(line, b".", "a lenient reader would see an end of data " + context)

    def run_variant(self, name, variant, source="127.0.0.1"):
        tag = re.sub(r"[^A-Za-z0-9-]", "_", name).encode()
        c = Client(self.smtp_port, source)
        self.addCleanup(c.close)
        self.assertEqual(c.reply()[0], 220)
        self.assertEqual(c.cmd("EHLO client.test")[0], 250)
        self.assertEqual(c.cmd("MAIL FROM:<alice@example.org>")[0], 250)
        rcpt = c.cmd("RCPT TO:<bob@example.net>")
        data = c.cmd("DATA") if rcpt[0] == 250 else None
        if data is not None:
            self.assertEqual(data[0], 354, "\n".join(c.transcript))
        rest = c.send_rest_and_read_all(smuggle_payload(tag, variant) + b"QUIT\r\n")
        return c, rcpt, rest

    def subjects(self, messages):
        return [re.search(rb"(?m)^Subject: (\S+)\r$", m["raw"]).group(1).decode() for m in messages]

    def test_variants_from_an_allowed_client(self):
        for name, variant, kind in VARIANTS:
            with self.subTest(variant=name):
                # A fresh peer store per variant: only this variant's messages are counted.
                before = len(self.peer_messages())
                client, rcpt, replies = self.run_variant(name, variant)
                self.assertEqual(rcpt[0], 250)
                acked, messages = self.check_no_unacknowledged_since(name, client, before)
                tag = re.sub(r"[^A-Za-z0-9-]", "_", name)
                context = "(variant %s)\n%s%s" % (name, "\n".join(client.transcript), self.ctx())
                if kind == "lf":
                    # Two transactions in one session, both acknowledged, both relayed; the
                    # smuggled one is an ordinary message of this client's.
                    self.assertEqual(len(acked), 2, context)
                    self.assertEqual(sorted(self.subjects(messages)),
                                     sorted(["outer-" + tag, "smuggled-" + tag]), context)
                elif kind == "bare_cr":
                    self.assertEqual(acked, [], context)
                    self.assertTrue(any(code == 554 and " 5.6.0 " in text for code, text in replies),
                                    "bare CR not refused with 554 5.6.0 " + context)
                else:
                    self.assertEqual(len(acked), 1, context)
                    self.assertEqual(self.subjects(messages), ["outer-" + tag], context)
                    # The smuggled text is content of the one message, stuffed where needed.
                    self.assertIn(b"MAIL FROM:<mallory@example.org>\r\n", messages[0]["raw"], context)
                self.assertEqual(replies[-1][0], 221, context)

    def check_no_unacknowledged_since(self, name, client, before):
        acked = [QUEUED.match(line[3:]).group(1) for line in client.transcript
                 if line.startswith("S: ") and QUEUED.match(line[3:])]
        messages = self.wait_all_delivered()[before:]
        context = "(variant %s)\ntranscript:\n%s%s" % (name, "\n".join(client.transcript), self.ctx())
        delivered_ids = []
        for m in messages:
            self.check_raw(m["raw"], context)
            self.assertEqual(m["outcome"], "accepted")
            ids = re.findall(rb"\tby mailhop\.test \(mailhop\) with \S+ id ([A-Za-z0-9._-]+)", m["raw"])
            self.assertEqual(len(ids), 1, "relayed message without exactly one mailhop Received: %r %s"
                             % (m["raw"][:300], context))
            delivered_ids.append(ids[0].decode())
        self.assertEqual(sorted(delivered_ids), sorted(acked),
                         "next hop received messages the client did not see acknowledged (or not "
                         "exactly once) %s" % context)
        return acked, messages

    def test_smuggled_commands_are_checked_like_any_other(self):
        """From 127.0.0.2 (outside allowed_networks, no AUTH) the outer RCPT is refused, and so
        is the smuggled one: the lines after a bare-LF "." are commands under the session's
        own checks. Each line is sent alone, so each reply belongs to a known line."""
        for name, variant, kind in VARIANTS:
            if kind != "lf":
                continue
            with self.subTest(variant=name):
                c = Client(self.smtp_port, source="127.0.0.2")
                self.addCleanup(c.close)
                self.assertEqual(c.reply()[0], 220)
                self.assertEqual(c.cmd("EHLO outside.test")[0], 250)
                self.assertEqual(c.cmd("MAIL FROM:<alice@example.org>")[0], 250)
                code, text = c.cmd("RCPT TO:<bob@example.net>")
                self.assertEqual((code, text[:9]), (554, "554 5.7.1"), "\n".join(c.transcript))
                self.assertNotEqual(c.cmd("DATA")[0], 354)
                payload = smuggle_payload(b"outside", variant)
                by_line = {}
                for piece in re.findall(rb"[^\r\n]*(?:\r\n|\n)", payload):
                    c.transcript.append("C: %r" % piece)
                    c.sock.sendall(piece)
                    by_line.setdefault(piece.rstrip(b"\r\n"), []).append(c.reply())
                context = "(variant %s)\n%s%s" % (name, "\n".join(c.transcript), self.ctx())
                self.assertEqual([r[0] for r in by_line[b"RCPT TO:<victim@example.net>"]], [554], context)
                self.assertTrue(by_line[b"RCPT TO:<victim@example.net>"][0][1].startswith("554 5.7.1"), context)
                self.assertNotIn(354, [r[0] for r in by_line[b"DATA"]], context)
                self.assertEqual(c.cmd("QUIT")[0], 221)
                self.assertFalse(any(QUEUED.match(l[3:]) for l in c.transcript if l.startswith("S: ")),
                                 context)
        self.assertEqual(self.wait_all_delivered(), [], "something was relayed for an outside client")


if __name__ == "__main__":
    main()
