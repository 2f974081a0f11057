#!/usr/bin/env python3
"""Flush-cost probe: how long one group commit's flush takes, syncfs vs fdatasync of each file.

Writes N new 4 KiB files, then flushes them either with one syncfs() (what the spool's committer
does, docs/spool.md) or with fdatasync() of each file, R rounds each, in the current directory
(run it on the spool's file system). Prints median / p90 / max in ms. syncfs also writes back
whatever else is dirty on the file system, so its tail depends on other writers (compilers...).
Usage: bench/flushprobe.py [N ...]   (default: 20 100), in the directory to test.
"""
import ctypes, os, statistics, sys, time

libc = ctypes.CDLL("libc.so.6", use_errno=True)
data = os.urandom(4096)


def batch(n, mode):
    fds = [os.open(f"probe.{i}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600) for i in range(n)]
    for fd in fds:
        os.write(fd, data)
    t = time.perf_counter()
    if mode == "syncfs":
        libc.syncfs(fds[0])
    else:
        for fd in fds:
            os.fdatasync(fd)
    ms = (time.perf_counter() - t) * 1000
    for i, fd in enumerate(fds):
        os.close(fd)
        os.unlink(f"probe.{i}")
    return ms


for n in [int(a) for a in sys.argv[1:]] or [20, 100]:
    for mode in ("syncfs", "fdatasync-each"):
        xs = sorted(batch(n, mode) for _ in range(30))
        print(f"{n:4d} files {mode:15s} median {statistics.median(xs):6.1f} ms  p90 {xs[26]:6.1f} ms  max {xs[-1]:6.1f} ms")
print("loadavg", open("/proc/loadavg").read().strip())
