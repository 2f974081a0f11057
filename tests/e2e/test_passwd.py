"""`mailhop passwd USER` (issue 4, AUTH): prints one users-file line `USER:HASH` for a password
read from standard input. Checked from the outside: the PHC string is verified independently
with Python's hashlib (scrypt and PBKDF2-HMAC-SHA256), the password appears nowhere in the
output, a pipe gives one line, and a terminal (a pseudo-terminal here) is prompted twice with
echo off.
"""

import base64
import hashlib
import os
import re
import select
import subprocess
import time
import unittest

from mailhop_e2e import MAILHOP_BIN, mailhop, main

EX_USAGE, EX_DATAERR = 64, 65
PHC_SCRYPT = re.compile(r"^\$scrypt\$ln=(\d+),r=(\d+),p=(\d+)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$")
PHC_PBKDF2 = re.compile(r"^\$pbkdf2-sha256\$i=(\d+)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$")
PTY_DEADLINE = 20.0


def b64(text):
    """PHC B64: standard base64 without padding."""
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def verifies(phc, password):
    """Independent check of a PHC string with hashlib."""
    m = PHC_SCRYPT.match(phc)
    if m:
        ln, r, p = (int(x) for x in m.group(1, 2, 3))
        salt, want = b64(m.group(4)), b64(m.group(5))
        got = hashlib.scrypt(password.encode(), salt=salt, n=1 << ln, r=r, p=p, dklen=len(want),
                             maxmem=256 * 1024 * 1024)
        return got == want
    m = PHC_PBKDF2.match(phc)
    if m:
        salt, want = b64(m.group(2)), b64(m.group(3))
        return hashlib.pbkdf2_hmac("sha256", password.encode(), salt, int(m.group(1)), len(want)) == want
    raise AssertionError("not a PHC string mailhop writes: %r" % phc)


class Passwd(unittest.TestCase):

    def run_passwd(self, stdin, *args):
        r = mailhop("passwd", *args, input=stdin)
        return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")

    def line_for(self, stdin, user="alice", *args):
        code, out, err = self.run_passwd(stdin, user, *args)
        self.assertEqual(code, 0, err)
        self.assertEqual(out.count("\n"), 1, "expected one line: %r" % out)
        self.assertTrue(out.endswith("\n"))
        name, _, phc = out.rstrip("\n").partition(":")
        self.assertEqual(name, user)
        return phc, out + err

    def test_pipe_prints_user_and_scrypt_hash(self):
        phc, everything = self.line_for(b"secret\n")
        m = PHC_SCRYPT.match(phc)
        self.assertIsNotNone(m, phc)
        self.assertEqual(m.group(1, 2, 3), ("15", "8", "1"))
        self.assertEqual(len(b64(m.group(4))), 16)  # salt
        self.assertEqual(len(b64(m.group(5))), 32)  # hash
        self.assertNotIn("secret", everything)
        self.assertTrue(verifies(phc, "secret"))
        self.assertFalse(verifies(phc, "secret\n"))
        self.assertFalse(verifies(phc, "Secret"))

    def test_pbkdf2(self):
        phc, everything = self.line_for(b"correct horse\n", "app@example.org", "--pbkdf2")
        self.assertRegex(phc, r"^\$pbkdf2-sha256\$i=600000\$")
        self.assertNotIn("correct horse", everything)
        self.assertTrue(verifies(phc, "correct horse"))
        self.assertFalse(verifies(phc, "correct hors"))

    def test_only_the_line_end_is_stripped(self):
        for stdin, password in ((b"secret", "secret"), (b"secret\r\n", "secret"),
                                (b" sp ace \n", " sp ace "), (b"first\nsecond\n", "first")):
            with self.subTest(stdin=stdin):
                phc, everything = self.line_for(stdin)
                self.assertNotIn(password.strip(), everything)
                self.assertTrue(verifies(phc, password))

    def test_fresh_salt_each_time(self):
        a, _ = self.line_for(b"secret\n")
        b, _ = self.line_for(b"secret\n")
        self.assertNotEqual(a, b)
        self.assertTrue(verifies(b, "secret"))

    def test_refusals(self):
        for stdin in (b"", b"\n"):
            with self.subTest(stdin=stdin):
                code, out, err = self.run_passwd(stdin, "alice")
                self.assertEqual(code, EX_DATAERR, err)
                self.assertEqual(out, "")
                self.assertIn("empty password", err)
        for user in ("a:b", "with space", ""):
            with self.subTest(user=user):
                code, out, err = self.run_passwd(b"secret\n", user)
                self.assertEqual(code, EX_USAGE, err)
                self.assertEqual(out, "")
                self.assertNotIn("secret", err)
        code, _, _ = self.run_passwd(b"secret\n")  # no USER
        self.assertEqual(code, EX_USAGE)


class Terminal(unittest.TestCase):
    """stdin and stderr on a pseudo-terminal, stdout a pipe, as in `mailhop passwd alice >> users`."""

    def start(self):
        master, slave = os.openpty()
        self.addCleanup(os.close, master)
        proc = subprocess.Popen([MAILHOP_BIN, "passwd", "alice"], stdin=slave, stderr=slave,
                                stdout=subprocess.PIPE, close_fds=True)
        os.close(slave)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        self.seen = b""
        return master, proc

    def expect(self, master, text):
        """Reads the terminal until `text` shows, within the deadline; returns what was read."""
        deadline = time.monotonic() + PTY_DEADLINE
        while text not in self.seen:
            left = deadline - time.monotonic()
            self.assertGreater(left, 0, "no %r on the terminal; saw %r" % (text, self.seen))
            ready, _, _ = select.select([master], [], [], left)
            if ready:
                try:
                    chunk = os.read(master, 1024)
                except OSError:  # EIO: the other side closed
                    chunk = b""
                self.assertTrue(chunk, "terminal closed before %r; saw %r" % (text, self.seen))
                self.seen += chunk

    def drain(self, master, proc):
        while True:
            try:
                chunk = os.read(master, 1024) if select.select([master], [], [], 0.2)[0] else b""
            except OSError:
                chunk = b""
            if not chunk and proc.poll() is not None:
                return
            self.seen += chunk

    def test_asks_twice_without_echo(self):
        master, proc = self.start()
        self.expect(master, b"Password: ")
        os.write(master, b"tty-secret\n")
        self.expect(master, b"Again: ")
        os.write(master, b"tty-secret\n")
        out, _ = proc.communicate(timeout=PTY_DEADLINE)
        self.drain(master, proc)
        self.assertEqual(proc.returncode, 0, self.seen)
        self.assertNotIn(b"tty-secret", self.seen)  # echo was off
        line = out.decode()
        self.assertTrue(line.startswith("alice:$scrypt$"), line)
        self.assertNotIn("tty-secret", line)
        self.assertTrue(verifies(line.rstrip("\n").partition(":")[2], "tty-secret"))

    def test_two_different_passwords_are_refused(self):
        master, proc = self.start()
        self.expect(master, b"Password: ")
        os.write(master, b"one-secret\n")
        self.expect(master, b"Again: ")
        os.write(master, b"two-secret\n")
        out, _ = proc.communicate(timeout=PTY_DEADLINE)
        self.drain(master, proc)
        self.assertEqual(proc.returncode, EX_DATAERR, self.seen)
        self.assertEqual(out, b"")
        self.assertIn(b"differ", self.seen)
        self.assertNotIn(b"secret", self.seen)


if __name__ == "__main__":
    main()
