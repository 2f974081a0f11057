#!/usr/bin/env python3
"""Flush-cost probe: how long one group commit's flush takes, syncfs against fdatasync.

Emulates the spool's batch (docs/spool.md) in the current directory (run it on the spool's file
system): for each of N messages, 4 KiB of content written into a file, renamed tmp/ -> msg/, and
an envelope of ~400 bytes written into a second file; then the batch's flush, timed:

  syncfs          one syncfs() (what the committer does)
  fdatasync-each  fdatasync() of every file, one after the other, then fsync(msg/)
  fdatasync-par   the same fdatasyncs issued from P threads at once (jbd2 merges them), then
                  fsync(msg/)

then (not timed) the envelopes renamed into env/ + fsync(env/), and the files released for the
next round. Files are either NEW (created, unlinked afterwards: what the spool did before
spare/) or RECYCLED (the same files overwritten in place and renamed around: spare/).
Prints median / p90 / max in ms per mode. syncfs also writes back whatever else is dirty on the
file system, so its tail depends on other writers (compilers...).

Usage: bench/flushprobe.py [--rounds R] [--threads P] [N ...]   (default: 20 100; R 30; P 8)
"""
import argparse, concurrent.futures, ctypes, os, statistics, time

libc = ctypes.CDLL("libc.so.6", use_errno=True)
CONTENT = os.urandom(4096)
ENVELOPE = b"mailhop-envelope 1\n" + b"x" * 380 + b"\nend\n"


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def one_batch(n, mode, recycled, pool):
    fds = []
    for i in range(n):
        flags = os.O_WRONLY | (0 if recycled else os.O_CREAT | os.O_EXCL)
        if recycled:
            os.rename(f"spare/{i}.m", f"tmp/{i}.msg")
            os.rename(f"spare/{i}.e", f"tmp/{i}.env")
        c = os.open(f"tmp/{i}.msg", flags, 0o600)
        os.write(c, CONTENT)
        if recycled:
            os.ftruncate(c, len(CONTENT))
        os.rename(f"tmp/{i}.msg", f"msg/{i}")
        e = os.open(f"tmp/{i}.env", flags, 0o600)
        os.write(e, ENVELOPE)
        if recycled:
            os.ftruncate(e, len(ENVELOPE))
        fds += [c, e]
    t = time.perf_counter()
    if mode == "syncfs":
        libc.syncfs(fds[0])
    elif mode == "fdatasync-each":
        for fd in fds:
            os.fdatasync(fd)
        fsync_dir("msg")
    else:
        list(pool.map(os.fdatasync, fds))
        fsync_dir("msg")
    ms = (time.perf_counter() - t) * 1000
    for fd in fds:
        os.close(fd)
    for i in range(n):
        os.rename(f"tmp/{i}.env", f"env/{i}")
    fsync_dir("env")
    for i in range(n):
        if recycled:
            os.rename(f"msg/{i}", f"spare/{i}.m")
            os.rename(f"env/{i}", f"spare/{i}.e")
        else:
            os.unlink(f"msg/{i}")
            os.unlink(f"env/{i}")
    return ms


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sizes", nargs="*", type=int, default=[20, 100])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--threads", type=int, default=8)
    args = ap.parse_args()
    for d in ("tmp", "msg", "env", "spare"):
        os.makedirs(d, exist_ok=True)
    pool = concurrent.futures.ThreadPoolExecutor(args.threads)
    for n in args.sizes:
        for recycled in (False, True):
            if recycled:
                for i in range(n):
                    for suffix in ("m", "e"):
                        with open(f"spare/{i}.{suffix}", "wb") as f:
                            f.write(CONTENT)
            for mode in ("syncfs", "fdatasync-each", "fdatasync-par"):
                xs = sorted(one_batch(n, mode, recycled, pool) for _ in range(args.rounds))
                print(f"{n:4d} msgs {'recycled' if recycled else 'new':8s} {mode:15s} median {statistics.median(xs):6.1f} ms"
                      f"  p90 {xs[int(len(xs) * 0.9)]:6.1f} ms  max {xs[-1]:6.1f} ms", flush=True)
            if recycled:
                for i in range(n):
                    for suffix in ("m", "e"):
                        os.unlink(f"spare/{i}.{suffix}")
    print("loadavg", open("/proc/loadavg").read().strip())


if __name__ == "__main__":
    main()
