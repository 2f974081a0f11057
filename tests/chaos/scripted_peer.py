"""A scripted next hop for the smuggling and chaos tests: a small SMTP server that records the
raw DATA bytes exactly as they came over the wire, and misbehaves on request.

Run with /usr/bin/python3 (stdlib only), in its own process so that a test can kill it:

    scripted_peer.py --listen 127.0.0.1:PORT --store DIR [--mode MODE] [--count K] [--delay S]

Each transaction that reaches the end of its data is stored in DIR as NNNN.raw (the bytes
between the 354 and the terminating ".", i.e. still dot-stuffed, with their line ends as sent)
and NNNN.json (envelope, written last and atomically: {"mail": ..., "rcpts": [...],
"outcome": "accepted" | "hangup" | "stalled"}). Only "accepted" transactions were answered 250.

End of data is recognised strictly: only CRLF "." CRLF (RFC 5321 §4.1.1.4). The raw bytes are
kept so that a test can check what a lenient reader would have made of them.

Modes (the first K transactions, --count, misbehave; later ones are served normally):
  normal            answer everything at once.
  slow              wait --delay seconds before each reply (greeting included), every time.
  hangup-after-data close the connection after the final dot, without a reply.
  stall-after-data  after the final dot, write DIR/stalled and never answer (the test kills
                    the process with SIGKILL there: a next hop dying mid-transaction).
  tempfail-data     answer 451 4.3.0 after the final dot.
Stops on SIGTERM.
"""

import argparse
import json
import os
import signal
import socketserver
import sys
import threading
import time


class Store:
    def __init__(self, directory):
        self.directory = directory
        self.lock = threading.Lock()
        self.count = 0
        self.misbehaved = 0

    def next_base(self):
        with self.lock:
            self.count += 1
            return os.path.join(self.directory, "%04d" % self.count)

    def take_misbehaviour(self, limit):
        """True for the first `limit` transactions that ask."""
        with self.lock:
            if self.misbehaved < limit:
                self.misbehaved += 1
                return True
            return False

    def save(self, raw, meta):
        base = self.next_base()
        with open(base + ".raw", "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        with open(base + ".json.tmp", "w") as f:
            json.dump(meta, f)
            f.flush()
            os.fsync(f.fileno())
        os.rename(base + ".json.tmp", base + ".json")


class Handler(socketserver.BaseRequestHandler):
    def setup(self):
        self.buf = b""
        self.sock = self.request
        self.sock.settimeout(120)

    def read_line(self):
        while b"\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                return None
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read_data(self):
        """Bytes up to CRLF.CRLF (or a leading .CRLF); returns them with the last CRLF, or None."""
        while True:
            if self.buf.startswith(b".\r\n"):
                self.buf = self.buf[3:]
                return b""
            i = self.buf.find(b"\r\n.\r\n")
            if i >= 0:
                raw, self.buf = self.buf[:i + 2], self.buf[i + 5:]
                return raw
            data = self.sock.recv(65536)
            if not data:
                return None
            self.buf += data

    def send(self, text):
        opts = self.server.opts
        if opts.mode == "slow":
            time.sleep(opts.delay)  # the slowness is the behaviour under test
        self.sock.sendall(text.encode() + b"\r\n")

    def handle(self):
        opts, store = self.server.opts, self.server.store
        mail, rcpts = None, []
        try:
            self.send("220 peer.test ESMTP scripted peer")
            while True:
                line = self.read_line()
                if line is None:
                    return
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    self.send("250-peer.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 104857600")
                elif verb == b"MAIL":
                    mail, rcpts = line[5:].decode("utf-8", "replace"), []
                    self.send("250 2.1.0 Ok")
                elif verb == b"RCPT":
                    rcpts.append(line[5:].decode("utf-8", "replace"))
                    self.send("250 2.1.5 Ok")
                elif verb == b"DATA":
                    self.send("354 End data with <CR><LF>.<CR><LF>")
                    raw = self.read_data()
                    if raw is None:
                        return
                    meta = {"mail": mail, "rcpts": rcpts}
                    misbehave = opts.mode in ("hangup-after-data", "stall-after-data", "tempfail-data") \
                        and store.take_misbehaviour(opts.count)
                    if misbehave and opts.mode == "hangup-after-data":
                        store.save(raw, dict(meta, outcome="hangup"))
                        return
                    if misbehave and opts.mode == "stall-after-data":
                        store.save(raw, dict(meta, outcome="stalled"))
                        with open(os.path.join(store.directory, "stalled"), "w") as f:
                            f.write("stalled\n")
                        time.sleep(3600)  # the test kills this process here
                        return
                    if misbehave and opts.mode == "tempfail-data":
                        store.save(raw, dict(meta, outcome="tempfail"))
                        self.send("451 4.3.0 Try again later")
                        mail, rcpts = None, []
                        continue
                    store.save(raw, dict(meta, outcome="accepted"))
                    self.send("250 2.0.0 Ok: stored")
                    mail, rcpts = None, []
                elif verb == b"RSET":
                    mail, rcpts = None, []
                    self.send("250 2.0.0 Ok")
                elif verb == b"NOOP":
                    self.send("250 2.0.0 Ok")
                elif verb == b"QUIT":
                    self.send("221 2.0.0 Bye")
                    return
                else:
                    self.send("502 5.5.2 Not implemented")
        except OSError:
            return


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--listen", required=True)
    p.add_argument("--store", required=True)
    p.add_argument("--mode", default="normal",
                   choices=["normal", "slow", "hangup-after-data", "stall-after-data", "tempfail-data"])
    p.add_argument("--count", type=int, default=1 << 30)
    p.add_argument("--delay", type=float, default=1.0)
    args = p.parse_args()
    host, port = args.listen.rsplit(":", 1)
    os.makedirs(args.store, exist_ok=True)
    server = Server((host, int(port)), Handler)
    server.opts = args
    server.store = Store(args.store)
    # Numbering continues after a restart on the same store.
    server.store.count = len([n for n in os.listdir(args.store) if n.endswith(".raw")])
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print("listening on %s mode=%s" % (args.listen, args.mode), flush=True)
    server.serve_forever()
    sys.exit(0)


if __name__ == "__main__":
    main()
