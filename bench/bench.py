#!/usr/bin/env python3
"""mailhop vs Postfix, side by side on this machine (issue 6, "The harness").

Runs, in one process and one run:
  - the machine's ceilings: durable writes per second (4 KiB + fsync + rename + directory fsync,
    1 and 20 threads) and the SMTP loopback ceiling (smtp-source straight into smtp-sink);
  - for every scenario (message size x smtp-source sessions): mailhop relaying to a fresh
    smtp-sink, then Postfix 3.7 as a relay-only null client relaying to a fresh smtp-sink,
    each with a fresh spool/queue under a temporary folder on the same file system as the
    repository; submission msgs/s, end-to-end msgs/s (until the sink counted every message),
    acceptance latency p50/p99 at fixed rates (our own client: final dot -> 250), peak memory
    (PSS summed over the system's processes), CPU seconds per 1,000 messages;
  - prints a table with mailhop/Postfix ratios, writes JSON and a PNG chart to bench/results/.

Only 127.0.0.1 is used; every process started is tracked by PID and stopped on exit, error or
Ctrl-C. Must run as root (Postfix's master and smtp-sink's -u need it).
"""

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
MAILHOP = REPO / "build" / "release" / "mailhop"
HOST = "127.0.0.1"


def log(*a):
    print(f"[{time.strftime('%H:%M:%S')}]", *a, flush=True)


# ---------------------------------------------------------------------------------------------
# Process bookkeeping: everything we start is registered and stopped by PID.

class Procs:
    def __init__(self):
        self.popens = []          # subprocess.Popen objects we started
        self.postfix_dirs = []    # config dirs of Postfix instances we started
        self.extra_pids = {}      # pid -> /proc start time (Postfix descendants seen)

    def add(self, p):
        self.popens.append(p)
        return p

    def stop(self, p, sig=signal.SIGTERM, wait=10.0):
        if p.poll() is not None:
            return
        try:
            p.send_signal(sig)
            p.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

    def remember_tree(self, root_pid):
        for pid in descendants(root_pid) | {root_pid}:
            st = start_time(pid)
            if st is not None:
                self.extra_pids[pid] = st

    def cleanup(self):
        for d in list(self.postfix_dirs):
            stop_postfix(d, self)
        for p in list(self.popens):
            self.stop(p, wait=5.0)
        for pid, st in list(self.extra_pids.items()):
            if start_time(pid) == st:  # still the same process (no PID reuse)
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.extra_pids.clear()


PROCS = Procs()


def start_time(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
        return int(s[s.rfind(")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
            ppid = int(s[s.rfind(")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    return kids


def descendants(pid):
    kids = children_map()
    out, todo = set(), [pid]
    while todo:
        for c in kids.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def cpu_ticks(pid, with_children=False):
    """utime+stime (+cutime+cstime of waited-for children) in clock ticks, or 0 if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
        fields = s[s.rfind(")") + 2:].split()
        t = int(fields[11]) + int(fields[12])
        if with_children:
            t += int(fields[13]) + int(fields[14])
        return t
    except (OSError, ValueError, IndexError):
        return 0


def pss_kib(pid):
    """(PSS, RSS) in KiB from smaps_rollup; (0, 0) if the process is gone."""
    pss = rss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss = int(line.split()[1])
    except OSError:
        pass
    return pss, rss


TICK = os.sysconf("SC_CLK_TCK")


class SystemMeter:
    """Samples a process tree: peak PSS/RSS sum and process count; CPU seconds between marks.

    CPU: the root's own time plus its waited-for children's (cutime/cstime: Postfix's master
    reaps its short-lived daemons) plus the live descendants' own time.
    """

    def __init__(self, root_pid, tree=True, period=0.5):
        self.root, self.tree, self.period = root_pid, tree, period
        self.peak_pss = self.peak_rss = self.peak_procs = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def pids(self):
        return ({self.root} | descendants(self.root)) if self.tree else {self.root}

    def cpu_seconds(self):
        pids = self.pids()
        t = cpu_ticks(self.root, with_children=True)
        t += sum(cpu_ticks(p) for p in pids if p != self.root)
        return t / TICK

    def sample(self):
        pids = self.pids()
        pss = rss = 0
        for p in pids:
            a, b = pss_kib(p)
            pss += a
            rss += b
        self.peak_pss = max(self.peak_pss, pss)
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_procs = max(self.peak_procs, len(pids))
        if self.tree:
            PROCS.remember_tree(self.root)

    def _run(self):
        while not self._stop.wait(self.period):
            self.sample()

    def __enter__(self):
        self.sample()
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.sample()


# ---------------------------------------------------------------------------------------------
# Helpers

def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_for_banner(port, deadline_s=30.0, proc=None):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection((HOST, port), timeout=2) as s:
                if s.recv(512).startswith(b"220"):
                    s.sendall(b"QUIT\r\n")
                    return time.monotonic()
        except OSError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"nothing answered 220 on {HOST}:{port} within {deadline_s}s")


NOISY_BUSY = 0.2  # share of the CPUs busy with other work, between runs, that flags a run as noisy


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def cpu_busy_fraction(seconds=1.0):
    """How busy the machine's CPUs are while this harness runs nothing (between runs): other
    work on the machine, which the load average cannot tell from the benchmark's own load (a
    Postfix run with 100 sessions alone lifts the 1-minute load above 4)."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        idle = v[3] + v[4]  # idle + iowait
        return sum(v) - idle, sum(v)
    b0, t0 = sample()
    time.sleep(seconds)
    b1, t1 = sample()
    return round((b1 - b0) / max(1, t1 - t0), 3)


class Sink:
    """Postfix's smtp-sink on a free loopback port, its running counter (-c) parsed live."""

    def __init__(self):
        self.port = free_port()
        self.count = 0
        self._lock = threading.Lock()
        self.first_at = None
        self.proc = PROCS.add(subprocess.Popen(
            ["smtp-sink", "-u", "nobody", "-c", f"{HOST}:{self.port}", "1024"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=0))
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()
        wait_for_banner(self.port, 10, self.proc)

    def _read(self):
        buf = b""
        while True:
            chunk = self.proc.stdout.read(4096)
            if not chunk:
                return
            buf += chunk
            m = None
            for m in re.finditer(rb"mesg=(\d+)", buf):
                pass
            if m:
                with self._lock:
                    n = int(m.group(1))
                    if n > 0 and self.first_at is None:
                        self.first_at = time.monotonic()
                    self.count = n
                buf = buf[m.end():]

    def wait_for(self, n, deadline_s):
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            with self._lock:
                if self.count >= n:
                    return time.monotonic()
            time.sleep(0.005)
        return None

    def stop(self):
        PROCS.stop(self.proc)


def smtp_source(port, sessions, messages, size):
    """Runs smtp-source (a new connection per message, like the issue's figures); returns secs."""
    cmd = ["smtp-source", "-s", str(sessions), "-m", str(messages), "-l", str(size),
           "-f", "bench@example.org", "-t", "rcpt@example.com", f"{HOST}:{port}"]
    t0 = time.monotonic()
    p = PROCS.add(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
    _, err = p.communicate(timeout=3600)
    t1 = time.monotonic()
    if p.returncode != 0:
        raise RuntimeError(f"smtp-source failed ({p.returncode}): {err.decode(errors='replace')[-500:]}")
    return t1 - t0


# ---------------------------------------------------------------------------------------------
# Ceilings

def durable_write_ceiling(directory, threads, seconds):
    """4 KiB write + fsync + rename + directory fsync, per second, with `threads` writers."""
    d = Path(directory)
    (d / "tmp").mkdir(exist_ok=True)
    (d / "new").mkdir(exist_ok=True)
    data = os.urandom(4096)
    counts = [0] * threads
    stop = time.monotonic() + seconds

    def worker(i):
        dfd = os.open(d / "new", os.O_RDONLY | os.O_DIRECTORY)
        n = 0
        while time.monotonic() < stop:
            tmp = d / "tmp" / f"{i}.{n}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, data)
            os.fsync(fd)
            os.close(fd)
            os.rename(tmp, d / "new" / f"{i}.{n}")
            os.fsync(dfd)
            n += 1
        os.close(dfd)
        counts[i] = n

    t0 = time.monotonic()
    ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    elapsed = time.monotonic() - t0
    shutil.rmtree(d / "tmp")
    shutil.rmtree(d / "new")
    return sum(counts) / elapsed


# ---------------------------------------------------------------------------------------------
# Acceptance latency: our own client, final dot -> 250, at a fixed offered rate.

async def _latency_conn(port, schedule, body, out, errors):
    try:
        reader, writer = await asyncio.open_connection(HOST, port)
    except OSError as e:
        errors.append(str(e))
        return

    async def reply():
        while True:
            line = await reader.readline()
            if not line:
                raise ConnectionError("closed")
            if line[3:4] != b"-":
                return line

    try:
        await reply()
        writer.write(b"EHLO latency.bench\r\n")
        await reply()
        loop = asyncio.get_running_loop()
        for at in schedule:
            delay = at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            writer.write(b"MAIL FROM:<lat@example.org>\r\n")
            r = await reply()
            writer.write(b"RCPT TO:<rcpt@example.com>\r\n")
            r = await reply()
            writer.write(b"DATA\r\n")
            r = await reply()
            if not r.startswith(b"354"):
                errors.append(r.decode(errors="replace").strip())
                continue
            writer.write(body)
            await writer.drain()
            t0 = time.perf_counter()
            writer.write(b".\r\n")
            r = await reply()
            t1 = time.perf_counter()
            if r.startswith(b"250"):
                out.append((t1 - t0) * 1000.0)
            else:
                errors.append(r.decode(errors="replace").strip())
        writer.write(b"QUIT\r\n")
        await reply()
    except (OSError, ConnectionError) as e:
        errors.append(str(e))
    finally:
        writer.close()


async def _latency(port, rate, count, conns, size):
    body = (b"Subject: latency probe\r\n\r\n" + (b"x" * 76 + b"\r\n") * max(1, size // 78))
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.2
    # message i is offered at start + i/rate, round-robin over the connections
    schedules = [[start + i / rate for i in range(c, count, conns)] for c in range(conns)]
    out, errors = [], []
    await asyncio.gather(*(_latency_conn(port, s, body, out, errors) for s in schedules))
    return out, errors


def percentile(xs, q):
    if not xs:
        return None
    xs = sorted(xs)
    k = max(0, min(len(xs) - 1, int(round(q / 100.0 * len(xs) + 0.5)) - 1))
    return xs[k]


def measure_latency(port, rate, count, conns=8, size=4096):
    out, errors = asyncio.run(_latency(port, rate, count, conns, size))
    return {"rate": rate, "offered": count, "answered_250": len(out), "errors": errors[:5],
            "p50_ms": percentile(out, 50), "p99_ms": percentile(out, 99),
            "max_ms": max(out) if out else None,
            "mean_ms": statistics.fmean(out) if out else None}


# ---------------------------------------------------------------------------------------------
# The systems under test

MAILHOP_YAML = """\
# mailhop's benchmark configuration (written by bench/bench.py): same outbound parallelism as
# Postfix (20 connections to the next hop), plaintext to the local smtp-sink, durable spool.
hostname: bench.localdomain
threads: {threads}
listen:
  - address: "{host}:{port}"
    tls: none
    auth: none
allowed_networks: ["127.0.0.0/8"]
limits:
  max_connections: {max_conns}
  max_connections_per_ip: {max_conns}
spool:
  path: {spool}
relay:
  host: {host}
  port: {sink_port}
  tls: none
  verify: false
delivery:
  workers: {workers}
  max_connections: 20
  retry:
    initial: 1s
    max: 5s
admin:
  listen: "{host}:{admin_port}"
log:
  level: {log_level}
  format: text
"""


class Mailhop:
    name = "mailhop"

    def __init__(self, workdir, sink_port, args, perf=False):
        self.dir = Path(tempfile.mkdtemp(prefix="mailhop.", dir=workdir))
        self.port = free_port()
        self.config = self.dir / "mailhop.yaml"
        self.config.write_text(MAILHOP_YAML.format(
            host=HOST, port=self.port, spool=self.dir / "spool", sink_port=sink_port,
            workers=args.workers, admin_port=free_port(), log_level=args.mailhop_log,
            max_conns=args.max_conns, threads=args.threads))
        self.logf = open(self.dir / "mailhop.log", "wb")
        self.proc = PROCS.add(subprocess.Popen([str(MAILHOP), "run", "-c", str(self.config)],
                                               stdout=self.logf, stderr=subprocess.STDOUT))
        self.t_exec = time.monotonic()
        self.t_ready = wait_for_banner(self.port, 120, self.proc)
        self.pid = self.proc.pid
        self.perf = None
        if perf:
            self.perf = PROCS.add(subprocess.Popen(
                ["perf", "record", "-F", "499", "-g", "--call-graph", "dwarf,16384", "-p", str(self.pid),
                 "-o", str(perf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            time.sleep(1.0)

    def meter(self):
        return SystemMeter(self.pid, tree=False)

    def stop(self):
        if self.perf:
            PROCS.stop(self.perf, signal.SIGINT, wait=120)
        PROCS.stop(self.proc, wait=30)
        self.logf.close()

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


POSTFIX_MAIN = """\
# Postfix 3.7 as a relay-only null client (written by bench/bench.py); fsync defaults kept.
compatibility_level = 3.6
queue_directory = {dir}/queue
data_directory = {dir}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = bench.localdomain
mydomain = localdomain
myorigin = $myhostname
mydestination =
local_transport = error:local delivery disabled
alias_maps =
alias_database =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
relayhost = [{host}]:{sink_port}
disable_dns_lookups = yes
smtp_dns_support_level = disabled
default_destination_concurrency_limit = 20
maillog_file_prefixes = {dir}
maillog_file = {dir}/maillog
smtputf8_enable = no
"""

# Debian's master.cf, without chroot (a chroot needs the init script's copies of /etc files),
# the smtpd on a free loopback port, and without the pipe/local transports a null client never uses.
POSTFIX_MASTER = """\
{host}:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def postfix_cmd(conf, *args):
    # `script` gives postfix(1) a terminal, so its messages reach us instead of a missing syslog.
    return subprocess.run(["script", "-qec", " ".join(["postfix", "-c", str(conf), *args]), "/dev/null"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)


def stop_postfix(conf, procs):
    pidfile = Path(conf).parent / "queue" / "pid" / "master.pid"
    master = None
    try:
        master = int(pidfile.read_text().split()[0])
        procs.remember_tree(master)
    except (OSError, ValueError, IndexError):
        pass
    postfix_cmd(conf, "stop")
    end = time.monotonic() + 15
    while master and start_time(master) is not None and time.monotonic() < end:
        time.sleep(0.1)
    if conf in procs.postfix_dirs:
        procs.postfix_dirs.remove(conf)


class Postfix:
    name = "postfix"

    def __init__(self, workdir, sink_port, args):
        self.dir = Path(tempfile.mkdtemp(prefix="postfix.", dir=workdir))
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        conf = self.dir / "conf"
        conf.mkdir()
        (self.dir / "queue").mkdir()
        (self.dir / "data").mkdir()
        shutil.chown(self.dir / "data", "postfix")
        (conf / "main.cf").write_text(POSTFIX_MAIN.format(dir=self.dir, host=HOST, sink_port=sink_port))
        (conf / "master.cf").write_text(POSTFIX_MASTER.format(host=HOST, port=self.port))
        self.conf = conf
        PROCS.postfix_dirs.append(conf)
        self.t_exec = time.monotonic()
        r = postfix_cmd(conf, "start")
        if r.returncode != 0:
            raise RuntimeError(f"postfix -c {conf} start failed: {r.stdout.strip()}")
        self.t_ready = wait_for_banner(self.port, 60)
        self.pid = int((self.dir / "queue" / "pid" / "master.pid").read_text().split()[0])
        PROCS.remember_tree(self.pid)

    def meter(self):
        return SystemMeter(self.pid, tree=True)

    def stop(self):
        stop_postfix(self.conf, PROCS)

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# One scenario for one system

def resolve_rates(latency_rates, half_of):
    """'half' in --latency-rates: half of mailhop's end-to-end msgs/s in this scenario (the
    issue's "at half of mailhop's maximum throughput"), offered to both systems alike."""
    out = []
    for r in latency_rates:
        if r == "half":
            if half_of:
                out.append(max(1, int(half_of / 2)))
        else:
            out.append(int(r))
    return out


def run_system(kind, workdir, args, sessions, messages, size, latency_rates, perf=None, half_of=None):
    busy_before = cpu_busy_fraction()  # nothing of ours runs now: what else uses the CPUs
    sink = Sink()
    sysobj = None
    try:
        sysobj = Mailhop(workdir, sink.port, args, perf) if kind == "mailhop" else Postfix(workdir, sink.port, args)
        res = {"system": kind, "sessions": sessions, "messages": messages, "size": size,
               "startup_s": round(sysobj.t_ready - sysobj.t_exec, 3), "loadavg_before": loadavg(),
               "foreign_cpu_busy_before": busy_before}
        with sysobj.meter() as m:
            cpu0 = m.cpu_seconds()
            t0 = time.monotonic()
            sub = smtp_source(sysobj.port, sessions, messages, size)
            done = sink.wait_for(messages, args.e2e_deadline)
            cpu1 = m.cpu_seconds()
        e2e = (done - t0) if done else None
        res.update({
            "submission_s": round(sub, 3), "submission_mps": round(messages / sub, 1),
            "e2e_s": round(e2e, 3) if e2e else None,
            "e2e_mps": round(messages / e2e, 1) if e2e else None,
            "delivered": sink.count,
            "cpu_s": round(cpu1 - cpu0, 3),
            "cpu_s_per_1000": round((cpu1 - cpu0) * 1000.0 / messages, 3),
            "peak_pss_mib": round(m.peak_pss / 1024, 1), "peak_rss_mib": round(m.peak_rss / 1024, 1),
            "peak_processes": m.peak_procs,
        })
        lat = []
        for rate in resolve_rates(latency_rates, half_of or res["e2e_mps"]):
            base = sink.count
            # let the queue drain first, so the probe sees an idle relay at the offered rate
            lat.append(measure_latency(sysobj.port, rate, args.latency_messages, size=size))
            sink.wait_for(base + lat[-1]["answered_250"], 60)
        res["latency"] = lat
        res["loadavg_after"] = loadavg()
        return res
    finally:
        if sysobj is not None:
            sysobj.stop()
            if not args.keep:
                sysobj.cleanup()
        sink.stop()


# ---------------------------------------------------------------------------------------------
# Output

def fmt(x, nd=0):
    if x is None:
        return "-"
    return f"{x:,.{nd}f}"


def ratio(a, b, invert=False):
    if a is None or b is None or a == 0 or b == 0:
        return None
    return (b / a) if invert else (a / b)


def print_table(results):
    rows = []
    hdr = ["scenario", "metric", "mailhop", "postfix", "mailhop/postfix"]
    for sc in results["scenarios"]:
        mh, pf = sc["mailhop"], sc["postfix"]
        name = f"{sc['size'] // 1024} KiB x {sc['messages']}, -s {sc['sessions']}"
        def add(metric, key, nd=0, better_low=False):
            a, b = mh.get(key), pf.get(key)
            r = ratio(a, b)
            rows.append([name, metric + (" (lower is better)" if better_low else ""), fmt(a, nd), fmt(b, nd),
                         fmt(r, 2) + "x" if r else "-"])
        add("submission msgs/s", "submission_mps")
        add("end-to-end msgs/s", "e2e_mps")
        for i, lm in enumerate(mh.get("latency", [])):
            lp = pf["latency"][i] if i < len(pf.get("latency", [])) else {}
            for q in ("p50_ms", "p99_ms"):
                a, b = lm.get(q), lp.get(q)
                r = ratio(a, b)
                rows.append([name, f"latency {q[:3]} ms @ {lm['rate']}/s (lower is better)", fmt(a, 2), fmt(b, 2),
                             fmt(r, 2) + "x" if r else "-"])
        add("peak PSS MiB", "peak_pss_mib", 1, True)
        add("peak processes", "peak_processes")
        add("CPU s / 1000 msgs", "cpu_s_per_1000", 3, True)
    widths = [max(len(str(r[i])) for r in rows + [hdr]) for i in range(len(hdr))]
    line = "  ".join(h.ljust(w) for h, w in zip(hdr, widths))
    print(line)
    print("-" * len(line))
    last = None
    for r in rows:
        if last is not None and r[0] != last:
            print()
        last = r[0]
        print("  ".join(str(c).ljust(w) if i < 2 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
    c = results["ceilings"]
    print()
    print("machine ceilings: durable writes/s 1 thread {} / 20 threads {}; loopback smtp-source->smtp-sink {}"
          .format(fmt(c["durable_writes_1"]), fmt(c["durable_writes_20"]),
                  ", ".join(f"-s {k}: {fmt(v)} msgs/s" for k, v in c["loopback"].items())))
    m = results["machine"]
    print(f"machine: {m['nproc']} CPUs; loadavg before {m['loadavg_before']} after {m['loadavg_after']}; "
          f"other work's CPU share between runs at most {m.get('foreign_cpu_busy_max')}"
          f"{f'  NOISY RUN (other work above {NOISY_BUSY})' if m['noisy'] else ''}")


def write_chart(results, png):
    if not shutil.which("gnuplot"):
        log("gnuplot missing: no chart")
        return None
    data = png.with_suffix(".dat")
    size = 4096
    sess = sorted({sc["sessions"] for sc in results["scenarios"] if sc["size"] == size})
    with open(data, "w") as f:
        f.write("# sessions mailhop_e2e postfix_e2e mailhop_sub postfix_sub loopback\n")
        for s in sess:
            sc = next(x for x in results["scenarios"] if x["size"] == size and x["sessions"] == s)
            lb = results["ceilings"]["loopback"].get(str(s)) or 0
            f.write(f"{s} {sc['mailhop'].get('e2e_mps') or 0} {sc['postfix'].get('e2e_mps') or 0} "
                    f"{sc['mailhop'].get('submission_mps') or 0} {sc['postfix'].get('submission_mps') or 0} {lb}\n")
    script = f"""
set terminal pngcairo size 900,560 noenhanced
set output '{png}'
set title 'Throughput vs concurrency, 4 KiB messages ({results['timestamp']}, load {results['machine']['loadavg_before'][0]})'
set xlabel 'smtp-source sessions (-s)'
set ylabel 'messages per second'
set logscale x
set xtics ({', '.join(str(s) for s in sess)})
set key outside right
set grid
plot '{data}' u 1:2 w lp lw 2 t 'mailhop end-to-end', \\
     '{data}' u 1:4 w lp dt 2 t 'mailhop submission', \\
     '{data}' u 1:3 w lp lw 2 t 'Postfix end-to-end', \\
     '{data}' u 1:5 w lp dt 2 t 'Postfix submission', \\
     '{data}' u 1:6 w lp dt 3 t 'loopback ceiling'
"""
    r = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    if r.returncode != 0:
        log("gnuplot failed:", r.stderr.strip())
        return None
    return png


# ---------------------------------------------------------------------------------------------

def ensure_tools():
    missing = [t for t in ("smtp-source", "smtp-sink", "postfix") if not shutil.which(t)]
    if missing:
        sys.exit(f"missing {missing}: install Debian's postfix package")
    if not shutil.which("gnuplot"):
        log("installing gnuplot-nox (for the chart)")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "gnuplot-nox"],
                       env=env, stdout=subprocess.DEVNULL)


def build(source="tree"):
    """Builds mailhop; returns (binary, what was built).

    source "tree": the release preset from the working tree (build/release/mailhop).
    source "head": the committed HEAD, exported with git archive into build/release/snapshot/ and
    built RelWithDebInfo (the release preset's type) in build/release/snapshot-build/ — for a
    shared working tree where other work in progress may not build. "auto": tree, then head.
    """
    global MAILHOP
    if source in ("tree", "auto"):
        log("building the release preset (working tree)")
        ok = subprocess.run(["cmake", "--preset", "release"], cwd=REPO, stdout=subprocess.DEVNULL).returncode == 0
        ok = ok and subprocess.run(["nice", "cmake", "--build", "--preset", "release", "--target", "mailhop", "-j2"],
                                   cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
        if ok:
            MAILHOP = REPO / "build" / "release" / "mailhop"
            return MAILHOP, "working tree"
        if source == "tree":
            sys.exit("the release build failed (try --source head)")
        log("the working tree does not build: falling back to the committed HEAD")
    snap, out = REPO / "build" / "release" / "snapshot", REPO / "build" / "release" / "snapshot-build"
    shutil.rmtree(snap, ignore_errors=True)
    snap.mkdir(parents=True)
    log("building the committed HEAD (git archive) RelWithDebInfo")
    subprocess.run(f"git -C {REPO} archive HEAD | tar -x -C {snap}", shell=True, check=True)
    subprocess.run(["cmake", "-S", str(snap), "-B", str(out), "-G", "Ninja", "-DCMAKE_BUILD_TYPE=RelWithDebInfo"],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["nice", "cmake", "--build", str(out), "--target", "mailhop", "-j2"], check=True,
                   stdout=subprocess.DEVNULL, env=dict(os.environ, CCACHE_NOHASHDIR="1"))
    MAILHOP = out / "mailhop"
    return MAILHOP, "HEAD"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer messages (a couple of minutes)")
    ap.add_argument("--no-build", action="store_true", help="use the binary as it is (see --source)")
    ap.add_argument("--source", choices=["auto", "tree", "head"], default="auto",
                    help="build the working tree (release preset), the committed HEAD, or auto: tree, else HEAD")
    ap.add_argument("--binary", type=Path,
                    help="measure this mailhop binary (e.g. build/h-spool-rel/mailhop, a release build of your own); "
                         "nothing is built")
    ap.add_argument("--only", choices=["mailhop", "postfix"], help="run one system only")
    ap.add_argument("--sessions", default="20,100", help="smtp-source -s values (default 20,100)")
    ap.add_argument("--messages", type=int, help="4 KiB messages per scenario (default 10000; quick 2000)")
    ap.add_argument("--big-messages", type=int, help="100 KiB messages per scenario (default 2000; quick 300; 0 = skip)")
    ap.add_argument("--latency-rates", default="100,half",
                    help="offered rates for the latency probe, msgs/s; 'half' = half of mailhop's "
                         "end-to-end msgs/s in the same scenario, offered to Postfix too (default 100,half)")
    ap.add_argument("--latency-messages", type=int, help="messages per latency probe (default 1000; quick 300)")
    ap.add_argument("--threads", type=int, default=0,
                    help="mailhop's network threads (default 0: one per core)")
    ap.add_argument("--workers", type=int, default=80,
                    help="mailhop delivery.workers (default 80: four per connection, the ratio of the "
                         "shipped defaults, 16 workers for 4 connections)")
    ap.add_argument("--max-conns", type=int, default=1000, help="mailhop limits.max_connections")
    ap.add_argument("--mailhop-log", default="info", help="mailhop log.level (default info, like production)")
    ap.add_argument("--e2e-deadline", type=float, default=600, help="seconds to wait for the sink")
    ap.add_argument("--perf", action="store_true", help="perf record -g the daemon during the 4 KiB -s 20 run")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folders (logs, spools)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: Postfix's master and smtp-sink -u need it")
    quick = args.quick
    msgs = args.messages or (2000 if quick else 10000)
    big = args.big_messages if args.big_messages is not None else (300 if quick else 2000)
    args.latency_messages = args.latency_messages or (300 if quick else 1000)
    sessions = [int(s) for s in args.sessions.split(",")]
    rates = [r.strip() if r.strip() == "half" else int(r) for r in args.latency_rates.split(",")]

    def on_signal(signo, _frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)

    ensure_tools()
    global MAILHOP
    built = "not rebuilt"
    if args.binary:
        MAILHOP = args.binary.resolve()
        built = "given (--binary)"
    elif not args.no_build:
        _, built = build(args.source)
    elif args.source == "head":
        MAILHOP = REPO / "build" / "release" / "snapshot-build" / "mailhop"
    if not MAILHOP.exists() and args.only != "postfix":
        sys.exit(f"{MAILHOP} missing: build the release preset")
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    # Same file system as the repository (the spools and the durable-write probe live here).
    workdir = Path(tempfile.mkdtemp(prefix="mailhop-bench.", dir=REPO / "build" / "release"))
    os.chmod(workdir, 0o755)
    results = {"timestamp": stamp, "mode": "quick" if quick else "full",
               "machine": {"nproc": os.cpu_count(), "loadavg_before": loadavg(),
                           "kernel": os.uname().release, "workdir": str(workdir)},
               "mailhop_config": {"workers": args.workers, "delivery.max_connections": 20,
                                  "threads": "0 (one per core)", "log.level": args.mailhop_log},
               "ceilings": {}, "scenarios": []}
    try:
        r = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        results["mailhop_commit"] = r.stdout.strip()
        results["mailhop_binary"] = {"path": str(MAILHOP), "built_from": built}
        log(f"load average {results['machine']['loadavg_before']} on {os.cpu_count()} CPUs")
        log("durable-write ceiling (4 KiB + fsync + rename + dir fsync)")
        secs = 2.0 if quick else 4.0
        results["ceilings"]["durable_writes_1"] = round(durable_write_ceiling(workdir, 1, secs), 1)
        results["ceilings"]["durable_writes_20"] = round(durable_write_ceiling(workdir, 20, secs), 1)
        log("  ", results["ceilings"]["durable_writes_1"], "/", results["ceilings"]["durable_writes_20"], "per s")
        results["ceilings"]["loopback"] = {}
        for s in sessions:
            secs = smtp_source_ceiling(s, msgs, 4096)
            results["ceilings"]["loopback"][str(s)] = round(msgs / secs, 1)
            log(f"loopback ceiling -s {s}: {msgs / secs:,.0f} msgs/s")
        plan = [(4096, s, msgs) for s in sessions] + ([(102400, s, big) for s in sessions] if big else [])
        for size, s, n in plan:
            sc = {"size": size, "sessions": s, "messages": n}
            for kind in (["mailhop", "postfix"] if not args.only else [args.only]):
                perf = None
                if args.perf and kind == "mailhop" and size == 4096 and s == sessions[0]:
                    perf = RESULTS / f"{stamp}.perf.data"
                log(f"{kind}: {n} x {size // 1024} KiB, -s {s}")
                half_of = sc.get("mailhop", {}).get("e2e_mps")  # Postfix is offered mailhop's rates
                sc[kind] = run_system(kind, workdir, args, s, n, size, rates, perf, half_of)
                x = sc[kind]
                log(f"  submission {fmt(x['submission_mps'])}/s, end-to-end {fmt(x['e2e_mps'])}/s, "
                    f"delivered {x['delivered']}/{n}, CPU {x['cpu_s_per_1000']} s/1000, "
                    f"PSS {x['peak_pss_mib']} MiB ({x['peak_processes']} procs), latency " +
                    ", ".join(f"@{l['rate']}/s p50 {fmt(l['p50_ms'], 2)} p99 {fmt(l['p99_ms'], 2)} ms" for l in x["latency"]))
            sc.setdefault("mailhop", {})
            sc.setdefault("postfix", {})
            results["scenarios"].append(sc)
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
        results["interrupted"] = True
    finally:
        PROCS.cleanup()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    results["machine"]["loadavg_after"] = loadavg()
    # Noisy: other work used more than a fifth of the CPUs in a quiet second before some run.
    busy = [sc[k]["foreign_cpu_busy_before"] for sc in results["scenarios"] for k in ("mailhop", "postfix")
            if "foreign_cpu_busy_before" in sc.get(k, {})]
    results["machine"]["foreign_cpu_busy_max"] = max(busy) if busy else None
    results["machine"]["noisy"] = bool(busy) and max(busy) > NOISY_BUSY
    for sc in results["scenarios"]:
        mh, pf = sc.get("mailhop", {}), sc.get("postfix", {})
        sc["ratios"] = {k: ratio(mh.get(k), pf.get(k)) for k in ("submission_mps", "e2e_mps", "cpu_s_per_1000", "peak_pss_mib")}
    out = RESULTS / f"{stamp}.json"
    out.write_text(json.dumps(results, indent=2))
    if results["scenarios"] and not args.only:
        print()
        print_table(results)
        png = write_chart(results, RESULTS / f"{stamp}.png")
        if png:
            log(f"chart: {png}")
    log(f"raw results: {out}")
    return 1 if results.get("interrupted") else 0


def smtp_source_ceiling(sessions, messages, size):
    sink = Sink()
    try:
        secs = smtp_source(sink.port, sessions, messages, size)
        sink.wait_for(messages, 30)
        return secs
    finally:
        sink.stop()


if __name__ == "__main__":
    sys.exit(main())
