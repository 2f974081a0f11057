#!/usr/bin/env python3
"""The further scenarios of issue 6 (bench/connections, bench/restart), mailhop only.

connections: N concurrent SMTP sessions held open mid-session (after MAIL FROM): the daemon's RSS
  per held connection, then every session finished (RCPT, DATA, message, QUIT) and counted.
restart: N messages queued while the next hop hangs (accepts TCP, never greets), the daemon
  stopped, the next hop brought up (smtp-sink on the same port), the daemon started again: time
  until it accepts (220) and until the first message reaches the sink; RSS after recovery.

Shares bench.py's machinery (free ports, PID bookkeeping, smtp-sink counter, /proc sampling).
"""

import argparse
import asyncio
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import datetime as dt
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402
from bench import HOST, PROCS, log  # noqa: E402


def vm_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def raise_nofile(n):
    """Raises the soft fd limit (inherited by the daemon) to n, or to the hard limit if lower."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(soft, n)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(want, hard)))
    except (ValueError, OSError):  # no CAP_SYS_RESOURCE: the hard limit is the ceiling
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


class Args:  # what bench.Mailhop reads
    def __init__(self, **kw):
        self.workers, self.mailhop_log, self.max_conns, self.threads = 80, "info", 1000, 0
        self.__dict__.update(kw)


# ------------------------------------------------------------------------- connections

async def held_session(port, opened, release, out, sem):
    try:
        async with sem:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), 60)

            async def reply():
                while True:
                    line = await asyncio.wait_for(reader.readline(), 300)
                    if not line:
                        raise ConnectionError("closed")
                    if line[3:4] != b"-":
                        return line
            if not (await reply()).startswith(b"220"):
                raise ConnectionError("no 220")
            writer.write(b"EHLO held.bench\r\nMAIL FROM:<held@example.org>\r\n")
            await reply()
            if not (await reply()).startswith(b"250"):
                raise ConnectionError("MAIL refused")
        opened.append(1)
        await release.wait()
        writer.write(b"RCPT TO:<rcpt@example.com>\r\nDATA\r\n")
        r1, r2 = await reply(), await reply()
        if not r2.startswith(b"354"):
            raise ConnectionError(f"{r1!r} {r2!r}")
        writer.write(b"Subject: held\r\n\r\nhello\r\n.\r\nQUIT\r\n")
        if (await reply()).startswith(b"250"):
            out.append(1)
        writer.close()
    except (OSError, ConnectionError, asyncio.TimeoutError) as e:
        out.append(str(e) or type(e).__name__)


async def connections_run(port, n, pid):
    opened, out = [], []
    release = asyncio.Event()
    sem = asyncio.Semaphore(200)  # connects in flight at once (the accept backlog)
    tasks = [asyncio.create_task(held_session(port, opened, release, out, sem)) for _ in range(n)]
    t0 = time.monotonic()
    while len(opened) + len([o for o in out if o != 1]) < n and time.monotonic() - t0 < 600:
        await asyncio.sleep(0.2)
    open_s = time.monotonic() - t0
    await asyncio.sleep(1.0)
    held_rss = vm_rss_kib(pid)
    held_pss = bench.pss_kib(pid)[0]
    held = len(opened)
    release.set()
    await asyncio.gather(*tasks)
    errors = [o for o in out if o != 1]
    return {"held": held, "open_s": round(open_s, 2), "held_rss_kib": held_rss, "held_pss_kib": held_pss,
            "served_250": out.count(1), "errors": len(errors), "error_samples": errors[:5]}


def connections(args, workdir):
    lim = raise_nofile(args.n + 1000)
    log(f"RLIMIT_NOFILE now {lim}")
    sink = bench.Sink()
    mh = bench.Mailhop(workdir, sink.port, Args(max_conns=args.n + 100))
    try:
        bench.smtp_source(mh.port, 5, 50, 1024)  # warm up: allocator arenas, pools, the relay connection
        sink.wait_for(50, 30)
        time.sleep(1.0)
        idle = vm_rss_kib(mh.pid)
        r = asyncio.run(connections_run(mh.port, args.n, mh.pid))
        sink.wait_for(50 + r["served_250"], 120)
        r.update({"connections": args.n, "idle_rss_kib": idle, "delivered": sink.count - 50,
                  "rss_per_connection_kib": round((r["held_rss_kib"] - idle) / max(1, r["held"]), 2),
                  "loadavg": bench.loadavg()})
        return r
    finally:
        mh.stop()
        sink.stop()
        mh.cleanup()


# ------------------------------------------------------------------------- restart

class BlackHole:
    """A next hop that accepts TCP connections and never says anything."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((HOST, 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.held = []
        self._stop = False
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                c, _ = self.sock.accept()
                self.held.append(c)
            except OSError:
                pass

    def close(self):
        self._stop = True
        self._t.join()
        for c in self.held:
            c.close()
        self.sock.close()


HANG_TIMEOUTS = """\
  timeouts:
    connect: 30m
    greeting: 30m
"""


def restart(args, workdir):
    hole = BlackHole()
    margs = Args(max_conns=1000)
    mh = bench.Mailhop(workdir, hole.port, margs)
    # the same spool and config for both starts; the relay waits 30 minutes for a greeting
    text = mh.config.read_text().replace("  verify: false\n", "  verify: false\n" + HANG_TIMEOUTS)
    mh.config.write_text(text)
    PROCS.stop(mh.proc)  # restart with the hanging timeouts
    mh.logf.close()
    res = {"messages": args.n}
    try:
        mh.logf = open(mh.dir / "mailhop.log", "ab")
        mh.proc = PROCS.add(subprocess.Popen([str(bench.MAILHOP), "run", "-c", str(mh.config)],
                                             stdout=mh.logf, stderr=subprocess.STDOUT))
        bench.wait_for_banner(mh.port, 60, mh.proc)
        log(f"queueing {args.n} messages with the next hop hanging")
        secs = bench.smtp_source(mh.port, 50, args.n, 4096)
        res["queue_fill_mps"] = round(args.n / secs, 1)
        res["rss_before_restart_mib"] = round(vm_rss_kib(mh.proc.pid) / 1024, 1)
        log(f"  {args.n / secs:,.0f} msgs/s; stopping the daemon")
        t0 = time.monotonic()
        mh.proc.send_signal(signal.SIGTERM)
        try:
            mh.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            mh.proc.kill()
            mh.proc.wait()
            res["stop_needed_sigkill"] = True
        res["stop_s"] = round(time.monotonic() - t0, 2)
        queued = len(os.listdir(mh.dir / "spool" / "env"))
        res["queued_on_disk"] = queued
        hole.close()
        # the next hop comes up on the same port
        sink = bench.Sink.__new__(bench.Sink)
        sink.port, sink.count, sink._lock, sink.first_at = hole.port, 0, threading.Lock(), None
        sink.proc = PROCS.add(subprocess.Popen(["smtp-sink", "-u", "nobody", "-c", f"{HOST}:{hole.port}", "1024"],
                                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=0))
        sink._t = threading.Thread(target=sink._read, daemon=True)
        sink._t.start()
        bench.wait_for_banner(hole.port, 10, sink.proc)
        log(f"restarting with {queued} queued")
        t0 = time.monotonic()
        mh.proc = PROCS.add(subprocess.Popen([str(bench.MAILHOP), "run", "-c", str(mh.config)],
                                             stdout=mh.logf, stderr=subprocess.STDOUT))
        t_accept = bench.wait_for_banner(mh.port, 600, mh.proc)
        res["accepting_s"] = round(t_accept - t0, 3)
        res["rss_at_accept_mib"] = round(vm_rss_kib(mh.proc.pid) / 1024, 1)
        end = time.monotonic() + 600
        while sink.first_at is None and time.monotonic() < end:
            time.sleep(0.005)
        res["first_delivered_s"] = round(sink.first_at - t0, 3) if sink.first_at else None
        meter = bench.SystemMeter(mh.proc.pid, tree=False)
        with meter:
            done = sink.wait_for(queued, args.drain_deadline)
        res["drained_s"] = round(done - t0, 2) if done else None
        res["delivered_after_restart"] = sink.count
        res["peak_rss_during_drain_mib"] = round(meter.peak_rss / 1024, 1)
        res["loadavg"] = bench.loadavg()
        sink.stop()
        return res
    finally:
        mh.stop()
        mh.cleanup()
        if not hole._stop:
            hole.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenario", choices=["connections", "restart"])
    ap.add_argument("-n", type=int, help="connections (default 10000) or queued messages (default 100000)")
    ap.add_argument("--drain-deadline", type=float, default=900, help="restart: seconds to wait for the queue to drain")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--binary", type=Path, help="measure this mailhop binary; nothing is built (as in bench/run)")
    ap.add_argument("--source", choices=["auto", "tree", "head"], default="auto", help="as in bench/run")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root (smtp-sink -u)")
    args.n = args.n or (10000 if args.scenario == "connections" else 100000)
    if args.binary:
        bench.MAILHOP = args.binary.resolve()
    elif not args.no_build:
        bench.build(args.source)
    elif args.source == "head":
        bench.MAILHOP = bench.REPO / "build" / "release" / "snapshot-build" / "mailhop"
    bench.RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    workdir = Path(tempfile.mkdtemp(prefix="mailhop-bench.", dir=bench.REPO / "build" / "release"))
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    res = {"scenario": args.scenario, "timestamp": stamp, "nproc": os.cpu_count(), "loadavg_before": bench.loadavg()}
    try:
        res.update(connections(args, workdir) if args.scenario == "connections" else restart(args, workdir))
    except KeyboardInterrupt:
        res["interrupted"] = True
    finally:
        PROCS.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
    out = bench.RESULTS / f"{stamp}.{args.scenario}.json"
    out.write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))
    log(f"raw results: {out}")
    return 1 if res.get("interrupted") else 0


if __name__ == "__main__":
    sys.exit(main())
