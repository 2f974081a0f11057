"""End-to-end test harness: runs the built mailhop daemon against real peers.

Stdlib only, run with Debian's /usr/bin/python3. What it provides:
  - free loopback ports, a temporary directory per test (kept when MAILHOP_E2E_KEEP=1),
  - a configuration file written from a dict of overrides (schema: config/mailhop.yaml),
  - the daemon (`mailhop run -c FILE`) started with stderr captured to a file, waited for
    until its port accepts, stopped by PID (SIGTERM, then SIGKILL after a deadline),
  - `mailhop queue list --json` / `queue cat`, and the other subcommands,
  - peers: Postfix's smtp-sink, an aiosmtpd next hop (aiosmtpd_peer.py, its own process) with
    STARTTLS/implicit TLS and AUTH, `mailhop sink`, and a test CA made with `openssl`,
  - the comparison of a stored or relayed message with what the client sent.

Every wait polls a condition with a deadline; nothing sleeps to synchronise. Every process a
test starts is stopped by its PID in the test's cleanup (and at exit, as a last resort).
Only loopback addresses are used.
"""

import atexit
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("MAILHOP_SOURCE_DIR", os.path.abspath(os.path.join(HERE, "..", "..")))
MAILHOP_BIN = os.environ.get("MAILHOP_BIN", os.path.join(SOURCE_DIR, "build", "debug", "mailhop"))
PYTHON = "/usr/bin/python3"
SMTP_SINK = "/usr/sbin/smtp-sink"
SWAKS = "/usr/bin/swaks"
KEEP = os.environ.get("MAILHOP_E2E_KEEP") == "1"

# Deadlines (seconds). Generous for a loaded 2-core machine; a pass never waits for them.
START_DEADLINE = 15
STOP_DEADLINE = 10
COMMAND_DEADLINE = 30
DELIVERY_DEADLINE = 30

EX_CONFIG = 78


# ---------------------------------------------------------------------------------------------
# Processes: every one is registered so that nothing outlives the test run.

_live_processes = []


def _reap_all():
    for proc in list(_live_processes):
        stop_process(proc, deadline=2)


atexit.register(_reap_all)


def start_process(argv, stdout=None, stderr=None, cwd=None, env=None):
    proc = subprocess.Popen(argv, stdout=stdout if stdout else subprocess.DEVNULL,
                            stderr=stderr if stderr else subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL, cwd=cwd, env=env)
    _live_processes.append(proc)
    return proc


def stop_process(proc, deadline=STOP_DEADLINE, sig=signal.SIGTERM):
    """SIGTERM (or `sig`), then SIGKILL when it has not exited by the deadline. Returns the
    exit status, or None when the process had to be killed."""
    status = None
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
        except ProcessLookupError:
            pass
        try:
            status = proc.wait(timeout=deadline)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=deadline)
            status = None
    else:
        status = proc.returncode
    if proc in _live_processes:
        _live_processes.remove(proc)
    return status


def kill9(proc):
    proc.kill()
    proc.wait(timeout=STOP_DEADLINE)
    if proc in _live_processes:
        _live_processes.remove(proc)


def wait_for(predicate, deadline, what, interval=0.05):
    """Polls `predicate` until it returns something truthy; returns that value. Raises
    AssertionError naming `what` (a string, or a callable giving one at that moment, e.g. with
    a log tail) when the deadline passes."""
    end = time.monotonic() + deadline
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError("timed out after %ss waiting for %s"
                                 % (deadline, what() if callable(what) else what))
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------
# Network

_ports_handed_out = set()


def free_port(host="127.0.0.1"):
    """A TCP port nobody listens on right now (the kernel's choice, then released), never one
    this process was given before: the kernel may offer a just-released port again, and a test
    that asks twice (listen and admin.listen) must get two different ones."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port not in _ports_handed_out:
            _ports_handed_out.add(port)
            return port


def port_accepts(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def wait_port(port, deadline=START_DEADLINE, host="127.0.0.1", proc=None, log=None):
    def ready():
        if proc is not None and proc.poll() is not None:
            raise AssertionError("process exited with status %s before listening on %s:%s%s"
                                 % (proc.returncode, host, port, log_tail(log)))
        return port_accepts(port, host)
    wait_for(ready, deadline, "%s:%s to accept connections" % (host, port))


def log_tail(path, lines=40):
    if not path or not os.path.exists(path):
        return ""
    with open(path, "rb") as f:
        text = f.read().decode("utf-8", "replace").splitlines()
    return "\n--- %s (last %d lines) ---\n%s" % (path, lines, "\n".join(text[-lines:]))


# ---------------------------------------------------------------------------------------------
# Configuration: YAML written from a dict (block style, scalars quoted as JSON strings, which
# YAML accepts).

def deep_merge(base, overrides):
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _scalar(value):
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value))


def to_yaml(value, indent=0):
    pad = " " * indent
    lines = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                lines.append("%s%s:" % (pad, key))
                lines.append(to_yaml(item, indent + 2))
            elif isinstance(item, (dict, list)):
                lines.append("%s%s: %s" % (pad, key, "{}" if isinstance(item, dict) else "[]"))
            else:
                lines.append("%s%s: %s" % (pad, key, _scalar(item)))
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and item:
                first = True
                for key, sub in item.items():
                    prefix = pad + ("- " if first else "  ")
                    first = False
                    if isinstance(sub, (dict, list)) and sub:
                        lines.append("%s%s:" % (prefix, key))
                        lines.append(to_yaml(sub, indent + 4))
                    else:
                        lines.append("%s%s: %s" % (prefix, key, _scalar(sub)))
            else:
                lines.append("%s- %s" % (pad, _scalar(item)))
    else:
        lines.append(pad + _scalar(value))
    return "\n".join(lines)


def default_config(workdir, smtp_port, relay_port):
    """A configuration for one test: loopback only, spool in the test's directory, the next
    hop on `relay_port` in plain text, fast retries."""
    return {
        "hostname": "mailhop.test",
        "listen": [{"address": "127.0.0.1:%d" % smtp_port, "tls": "none", "auth": "none"}],
        "allowed_networks": ["127.0.0.0/8", "::1/128"],
        "limits": {
            "max_message_size": "1MiB",
            "max_recipients": 100,
            "max_connections": 100,
            "max_connections_per_ip": 50,
            "command_timeout": "1m",
            "data_timeout": "1m",
        },
        "spool": {"path": os.path.join(workdir, "spool")},
        "relay": {
            "host": "127.0.0.1",
            "port": relay_port,
            "tls": "none",
            "verify": True,
            "ca_file": None,
            "username": None,
            "password_file": None,
            # Short client timeouts: a hang shows as a deferral with a reason, within a test.
            "timeouts": {"connect": "5s", "greeting": "10s", "command": "10s",
                         "data_init": "10s", "data_block": "10s", "data_end": "10s"},
        },
        "delivery": {
            "workers": 4,
            "max_connections": 2,
            "retry": {"initial": "1s", "max": "2s", "give_up_after": "1d"},
        },
        "admin": {"listen": "127.0.0.1:%d" % free_port()},
        "log": {"level": "debug", "format": "text"},
    }


# ---------------------------------------------------------------------------------------------
# The mailhop binary

def mailhop(*args, config=None, timeout=COMMAND_DEADLINE, env=None, input=None):
    argv = [MAILHOP_BIN] + list(args)
    if config is not None:
        argv += ["-c", config]
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                          env=env, input=input)


class Daemon:
    """`mailhop run -c FILE`, stderr to `log`."""

    def __init__(self, config_path, port, log_path, env=None):
        self.env = env
        self.config_path = config_path
        self.port = port
        self.log_path = log_path
        self.proc = None
        self.starts = 0

    def start(self, wait=True):
        self.starts += 1
        log = open(self.log_path, "ab")
        log.write(b"=== start %d ===\n" % self.starts)
        log.flush()
        self.proc = start_process([MAILHOP_BIN, "run", "-c", self.config_path],
                                  stdout=log, stderr=log, env=self.env)
        log.close()
        if wait:
            wait_port(self.port, proc=self.proc, log=self.log_path)
        return self

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """SIGTERM, then SIGKILL after the deadline; returns the exit status (None if killed)."""
        if self.proc is None:
            return None
        status = stop_process(self.proc)
        return status

    def kill9(self):
        kill9(self.proc)

    def log(self):
        if not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def tail(self):
        return log_tail(self.log_path)


# ---------------------------------------------------------------------------------------------
# Peers

class SmtpSink:
    """Postfix's smtp-sink on a loopback port, dumping each transaction to `dump_dir`
    (one file per transaction). `refuse_soft`/`refuse_hard` are its -r/-f command lists."""

    def __init__(self, port, dump_dir, extra=(), refuse_soft=None, refuse_hard=None):
        self.port = port
        self.dump_dir = dump_dir
        os.makedirs(dump_dir, exist_ok=True)
        argv = [SMTP_SINK]
        if os.geteuid() == 0:
            # smtp-sink as root must drop to a user (-u); that user writes the dump files.
            shutil.chown(dump_dir, user="nobody")
            argv += ["-u", "nobody"]
        argv += ["-d", os.path.join(dump_dir, "%Y%m%d%H%M%S.")]
        if refuse_soft:
            argv += ["-r", refuse_soft]
        if refuse_hard:
            argv += ["-f", refuse_hard]
        argv += list(extra)
        argv += ["127.0.0.1:%d" % port, "16"]
        self.proc = start_process(argv)
        wait_port(port, proc=self.proc)

    def stop(self):
        stop_process(self.proc)

    def messages(self):
        """The dumped transactions: list of dict(mail=..., rcpts=[...], content=bytes with CRLF
        line ends) — only those that carried a message."""
        out = []
        if not os.path.isdir(self.dump_dir):
            return out
        for name in sorted(os.listdir(self.dump_dir)):
            with open(os.path.join(self.dump_dir, name), "rb") as f:
                data = f.read()
            out.append(parse_smtp_sink_dump(data))
        return [m for m in out if m["content"] is not None]


def parse_smtp_sink_dump(data):
    lines = data.split(b"\n")
    mail, rcpts, content = None, [], None
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith(b"X-Mail-Args: "):
            mail = line[len(b"X-Mail-Args: "):].decode()
        elif line.startswith(b"X-Rcpt-Args: "):
            rcpts.append(line[len(b"X-Rcpt-Args: "):].decode())
        elif line.startswith(b"Received: "):
            # smtp-sink's own three-line Received: ends its headers; the message follows,
            # then one empty line.
            body = lines[i + 3:]
            if body and body[-1] == b"":
                body = body[:-1]
            if body and body[-1] == b"":
                body = body[:-1]
            content = b"".join(l + b"\r\n" for l in body)
            break
        i += 1
    return {"mail": mail, "rcpts": rcpts, "content": content}


class AioPeer:
    """The aiosmtpd next hop (aiosmtpd_peer.py) in its own process. Stores each message in
    `store_dir` as NNNN.eml plus NNNN.json (envelope, TLS, authenticated user)."""

    def __init__(self, port, store_dir, cert=None, key=None, tls="none", users=None,
                 mechanisms=None, extra=()):
        self.port = port
        self.store_dir = store_dir
        self.log_path = store_dir.rstrip("/") + ".log"
        os.makedirs(store_dir, exist_ok=True)
        argv = [PYTHON, os.path.join(HERE, "aiosmtpd_peer.py"), "--listen", "127.0.0.1:%d" % port,
                "--store", store_dir, "--tls", tls]
        if cert:
            argv += ["--cert", cert, "--key", key]
        for user, password in (users or {}).items():
            argv += ["--user", "%s:%s" % (user, password)]
        if mechanisms:
            argv += ["--mechanisms", ",".join(mechanisms)]
        argv += list(extra)
        log = open(self.log_path, "ab")
        self.proc = start_process(argv, stdout=log, stderr=log)
        log.close()
        wait_port(port, proc=self.proc, log=self.log_path)

    def stop(self):
        stop_process(self.proc)

    def auth_attempts(self):
        path = os.path.join(self.store_dir, "auth-attempts")
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return f.read().splitlines()

    def messages(self):
        out = []
        for name in sorted(os.listdir(self.store_dir)):
            if not name.endswith(".json"):
                continue
            with open(os.path.join(self.store_dir, name)) as f:
                meta = json.load(f)
            with open(os.path.join(self.store_dir, name[:-5] + ".eml"), "rb") as f:
                meta["content"] = f.read()
            out.append(meta)
        return out


class MailhopSink:
    """`mailhop sink --listen 127.0.0.1:PORT --maildir DIR`."""

    def __init__(self, port, maildir, log_path):
        self.port = port
        self.maildir = maildir
        self.log_path = log_path
        log = open(log_path, "ab")
        self.proc = start_process([MAILHOP_BIN, "sink", "--listen", "127.0.0.1:%d" % port,
                                   "--maildir", maildir], stdout=log, stderr=log)
        log.close()
        wait_port(port, proc=self.proc, log=log_path)

    def stop(self):
        return stop_process(self.proc)

    @staticmethod
    def without_delivery_headers(content):
        """The message as the sink received it: without the Return-Path: and X-Mailhop-Sink-*
        fields it puts first, as a local delivery agent does."""
        while True:
            m = re.match(rb"(?i)(Return-Path|X-Mailhop-Sink-[A-Za-z-]+):[^\r]*\r\n", content)
            if not m:
                return content
            content = content[m.end():]

    def messages(self):
        new = os.path.join(self.maildir, "new")
        if not os.path.isdir(new):
            return []
        out = []
        for name in sorted(os.listdir(new)):
            with open(os.path.join(new, name), "rb") as f:
                out.append(f.read())
        return out


# ---------------------------------------------------------------------------------------------
# A test CA and server certificates, made with the openssl command.

def scripted_peer_records(store):
    """What tests/chaos/scripted_peer.py stored: one dict per transaction (its NAME.json, with
    the raw DATA bytes of NAME.raw as "raw"), in arrival order; [] before the first."""
    out = []
    if not os.path.isdir(store):
        return out
    for name in sorted(os.listdir(store)):
        if name.endswith(".json"):
            with open(os.path.join(store, name)) as f:
                meta = json.load(f)
            with open(os.path.join(store, name[:-5] + ".raw"), "rb") as f:
                meta["raw"] = f.read()
            out.append(meta)
    return out


def _openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, timeout=COMMAND_DEADLINE)


def make_ca(directory):
    """Returns dict(ca=..., localhost=(cert, key), other=(cert, key)): a CA, a server
    certificate for DNS:localhost + IP:127.0.0.1, and one for DNS:other.example only."""
    os.makedirs(directory, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=mailhop e2e test CA", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)
    out = {"ca": os.path.join(directory, "ca.pem")}
    for name, cn, san in (("localhost", "localhost", "DNS:localhost,IP:127.0.0.1"),
                          ("other", "other.example", "DNS:other.example")):
        _openssl("req", "-new", *ec, "-keyout", name + ".key", "-out", name + ".csr",
                 "-subj", "/CN=" + cn, cwd=directory)
        ext = os.path.join(directory, name + ".ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=%s\nbasicConstraints=CA:FALSE\n"
                    "extendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\n" % san)
        _openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", name + ".pem", "-days", "2", "-extfile", ext,
                 cwd=directory)
        out[name] = (os.path.join(directory, name + ".pem"), os.path.join(directory, name + ".key"))
    return out


# ---------------------------------------------------------------------------------------------
# Messages

def crlf(text):
    """Text with LF or CRLF line ends as bytes with CRLF line ends."""
    if isinstance(text, str):
        text = text.encode()
    return text.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


_HEADER_LINE = re.compile(rb"^[!-9;-~]+:")


def check_added_headers(case, sent, stored, context=""):
    """Asserts that `stored` is `sent` (bytes, CRLF) plus what mailhop adds: a Received: field
    first, and Date:/Message-ID: in the header section when `sent` lacks them. Also asserts
    canonical CRLF line ends in `stored`."""
    msg = context
    case.assertNotRegex(stored, rb"(?<!\r)\n", "bare LF in stored message " + msg)
    case.assertNotRegex(stored, rb"\r(?!\n)", "bare CR in stored message " + msg)
    case.assertTrue(stored.startswith(b"Received: "),
                    "stored message does not start with Received: %r %s" % (stored[:80], msg))
    # The Received: field with its continuation lines.
    lines = stored.split(b"\r\n")
    n = 1
    while n < len(lines) and lines[n][:1] in (b" ", b"\t"):
        n += 1
    received = b"\r\n".join(lines[:n]) + b"\r\n"
    case.assertRegex(received, rb"(?s)^Received: from .*by mailhop\.test.*;",
                     "Received: names neither client nor mailhop's hostname " + msg)
    rest = lines[n:]
    # Header section of what remains: the lines up to the first that is empty or not a field.
    want = {b"date": b"date:" not in _fields_lower(sent), b"message-id": b"message-id:" not in _fields_lower(sent)}
    kept, i, added = [], 0, {}
    in_headers = True
    while i < len(rest):
        line = rest[i]
        if in_headers and (line == b"" or not (_HEADER_LINE.match(line) or line[:1] in (b" ", b"\t"))):
            in_headers = False
        if in_headers:
            name = line.split(b":", 1)[0].lower()
            if want.get(name) and name not in added and _HEADER_LINE.match(line):
                field = [line]
                while i + 1 < len(rest) and rest[i + 1][:1] in (b" ", b"\t"):
                    i += 1
                    field.append(rest[i])
                added[name] = b"\r\n".join(field)
                i += 1
                continue
        kept.append(line)
        i += 1
    for name, needed in want.items():
        if needed:
            case.assertIn(name, added, "%s: not added to a message without one %s"
                          % (name.decode(), msg))
    if b"date" in added:
        case.assertRegex(added[b"date"], rb"^Date: \w{3}, \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}",
                         "Date: is not RFC 5322 " + msg)
    if b"message-id" in added:
        case.assertRegex(added[b"message-id"], rb"(?i)^Message-ID: <[^<>@\s]+@[^<>@\s]+>",
                         "Message-ID: is not <left@right> " + msg)
    remaining = b"\r\n".join(kept)
    case.assertEqual(remaining, sent, "stored message differs from what was sent (minus the added "
                     "Received:/Date:/Message-ID:) %s" % msg)


def _fields_lower(content):
    end = content.find(b"\r\n\r\n")
    head = content if end < 0 else content[:end + 2]
    return b"\n".join(l.lower() for l in head.split(b"\r\n"))


def queue_list(case, config):
    r = mailhop("queue", "list", "--json", config=config)
    case.assertEqual(r.returncode, 0, "mailhop queue list --json failed: %r" % r.stderr)
    try:
        return json.loads(r.stdout)
    except ValueError:
        raise AssertionError("queue list --json printed no JSON: %r" % r.stdout[:500])


def queue_list_or_none(config):
    """For polling: the queue, or None when the command fails."""
    r = mailhop("queue", "list", "--json", config=config)
    if r.returncode != 0:
        return None
    try:
        return json.loads(r.stdout)
    except ValueError:
        return None


def queue_cat(case, config, queue_id):
    r = mailhop("queue", "cat", queue_id, config=config)
    case.assertEqual(r.returncode, 0, "mailhop queue cat %s failed: %r" % (queue_id, r.stderr))
    return r.stdout


def queued_id_from_reply(text):
    m = re.search(r"queued as ([A-Za-z0-9._-]+)", text)
    return m.group(1) if m else None


def swaks(*args, timeout=COMMAND_DEADLINE):
    r = subprocess.run([SWAKS, "--hide-informational", "--timeout", "20"] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    return r.returncode, r.stdout.decode("utf-8", "replace")


# ---------------------------------------------------------------------------------------------
# Test case base

class E2ETest(unittest.TestCase):
    """A temp dir per test, a config, a daemon; everything stopped in cleanup."""

    maxDiff = 4000

    def setUp(self):
        if not os.access(MAILHOP_BIN, os.X_OK):
            self.fail("MAILHOP_BIN %s is not an executable" % MAILHOP_BIN)
        self.dir = tempfile.mkdtemp(prefix="mailhop-e2e-%s-" % self._testMethodName)
        os.chmod(self.dir, 0o755)  # smtp-sink runs as nobody and writes below it
        self.addCleanup(self._remove_dir)
        self.smtp_port = free_port()
        self.relay_port = free_port()  # nobody listens there unless a test starts a peer
        self.config_path = os.path.join(self.dir, "mailhop.yaml")
        self.daemon = None

    def _remove_dir(self):
        outcome = getattr(self, "_outcome", None)
        failed = False
        if outcome is not None and getattr(outcome, "result", None) is not None:
            result = outcome.result
            failed = any(t is self for t, _ in result.failures + result.errors)
        if KEEP or failed:
            sys.stderr.write("\n(kept %s)\n" % self.dir)
            return
        shutil.rmtree(self.dir, ignore_errors=True)

    def write_config(self, overrides=None, text=None):
        if text is None:
            cfg = deep_merge(default_config(self.dir, self.smtp_port, self.relay_port),
                             overrides or {})
            text = "# written by tests/e2e/mailhop_e2e.py\n" + to_yaml(cfg) + "\n"
        with open(self.config_path, "w") as f:
            f.write(text)
        return self.config_path

    def start_daemon(self, overrides=None, wait=True, env=None):
        if not os.path.exists(self.config_path) or overrides is not None:
            self.write_config(overrides)
        self.daemon = Daemon(self.config_path, self.smtp_port, os.path.join(self.dir, "mailhop.log"),
                             env=env)
        self.addCleanup(self.daemon.stop)
        return self.daemon.start(wait=wait)

    def queue(self):
        return queue_list(self, self.config_path)

    def cat(self, queue_id):
        return queue_cat(self, self.config_path, queue_id)

    def wait_queue(self, predicate, what, deadline=DELIVERY_DEADLINE):
        """Polls `queue list --json` until predicate(queue) holds; returns the queue."""
        last = [None]

        def check():
            q = queue_list_or_none(self.config_path)
            last[0] = q
            return (q,) if q is not None and predicate(q) else None  # truthy even when empty
        try:
            return wait_for(check, deadline, what, interval=0.2)[0]
        except AssertionError as e:
            raise AssertionError("%s\nlast queue: %s%s" % (e, json.dumps(last[0], indent=1)[:3000],
                                                           self.daemon.tail() if self.daemon else ""))

    def log(self):
        return self.daemon.log() if self.daemon else ""

    def ctx(self):
        """Context for failure messages: the daemon's log tail."""
        return self.daemon.tail() if self.daemon else ""


def main():
    """Runs the module's tests verbosely; prints a summary; exit 0 only when all passed."""
    # Arguments select tests as with unittest: test_x.py Class.test_method
    program = unittest.main(module="__main__", argv=sys.argv, exit=False, verbosity=2)
    result = program.result
    name = os.path.basename(sys.argv[0])
    print("\n%s: %d run, %d failed, %d errors, %d skipped" % (
        name, result.testsRun, len(result.failures), len(result.errors), len(result.skipped)))
    for test, _ in result.failures + result.errors:
        print("  FAILED: %s" % test.id())
    for test, why in result.skipped:
        print("  SKIPPED: %s (%s)" % (test.id(), why))
    sys.exit(0 if result.wasSuccessful() else 1)
