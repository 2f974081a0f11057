"""Container image (issue 5), without a Docker engine: every step of the Dockerfile is a script,
and this test runs those scripts and the staged binary the way the image would.

  - scripts/stage-image (the build stage) into a scratch DESTDIR, with the build tree of
    MAILHOP_BIN as it is (no release build, no rebuild here): the stripped /usr/sbin/mailhop
    and the sendmail interface's links, nothing else;
  - scripts/install-deps --list --runtime (the runtime stage's packages) holds the package of
    every shared library the binary needs (readelf NEEDED, resolved by ldd, owned per dpkg -S);
  - scripts/add-mailhop-user (the runtime stage's user) into a scratch /etc;
  - the Dockerfile's RUN lines name only scripts that exist, are executable and were copied in
    that stage; its ENV, EXPOSE, VOLUME, USER, HEALTHCHECK and ENTRYPOINT agree;
  - the MAILHOP_* variables of the README's and docs/operations.md's `docker run` and Compose
    examples pass `mailhop check` on top of the Dockerfile's ENV;
  - the staged binary with exactly the Dockerfile's ENV (addresses swapped for free loopback
    ports, the spool in a scratch directory, the next hop a smtp-sink) as an unprivileged user:
    `mailhop check` exits 0, `mailhop run` relays a message from smtplib, the HEALTHCHECK
    command exits 0 once ready, STOPSIGNAL stops it with exit 0; logs only on stderr, and with
    MAILHOP_LOG_FORMAT=json every line is a JSON object.
"""

import json
import os
import pwd
import re
import shlex
import shutil
import signal
import smtplib
import subprocess
import tempfile
import unittest

from mailhop_e2e import (COMMAND_DEADLINE, DELIVERY_DEADLINE, MAILHOP_BIN, SOURCE_DIR, STOP_DEADLINE,
                         E2ETest, SmtpSink, free_port, log_tail, main, start_process, stop_process,
                         wait_for, wait_port)

BUILD_DIR = os.path.dirname(os.path.abspath(MAILHOP_BIN))
DOCKERFILE = os.path.join(SOURCE_DIR, "Dockerfile")
SCRIPTS = os.path.join(SOURCE_DIR, "scripts")
# The links the image needs: sendmail for the applications of the container, mailq for people.
LINKS = ("usr/sbin/sendmail", "usr/lib/sendmail", "usr/bin/mailq")
# In every Debian image, debian:12-slim included (Priority: required, or pulled in by apt):
# the C library, the C++ runtime and libgcc's unwinder need no line in the runtime list.
BASE_IMAGE_PACKAGES = {"libc6", "libstdc++6", "libgcc-s1"}
# The sanitizer runtimes a test build may link (CI runs the suite under ASan+UBSan and TSan);
# the image's release build links none of them.
SANITIZER_RUNTIMES = re.compile(r"^lib(asan|ubsan|tsan|lsan)\.so")
# Passed through to the staged binary besides the image's environment: the test build's
# sanitizer settings, not the image's.
SANITIZER_OPTIONS = ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "TSAN_OPTIONS")
# What debian:12-slim's own ENV gives every process of the image.
BASE_IMAGE_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
# The image's user here: any unprivileged one (the image's mailhop user does not exist here).
RUN_AS, RUN_AS_GROUP = "nobody", "nogroup"


def run(argv, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120, **kw)


def dockerfile_instructions():
    """[(stage_index, KEYWORD, arguments)] with continuation lines joined, comments dropped."""
    with open(DOCKERFILE) as f:
        text = f.read()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    out, stage = [], -1
    for line in joined.splitlines():
        if not line.strip():
            continue
        keyword, _, args = line.strip().partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        out.append((stage, keyword, args.strip()))
    return out


def dockerfile_env():
    env = {}
    for _, keyword, args in dockerfile_instructions():
        if keyword == "ENV":
            for token in shlex.split(args):
                name, sep, value = token.partition("=")
                assert sep, "ENV without '=': %r" % token
                env[name] = value
    return env


def cache_value(name):
    with open(os.path.join(BUILD_DIR, "CMakeCache.txt")) as f:
        for line in f:
            m = re.match(r"%s:[A-Z]+=(.*)$" % re.escape(name), line.strip())
            if m:
                return m.group(1)
    return None


def port_of(address):
    return int(re.match(r"\S*:(\d+)", address).group(1))


def runtime_packages():
    r = run([os.path.join(SCRIPTS, "install-deps"), "--list", "--runtime"])
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout.decode().split()


def needed_libraries(binary):
    r = run(["readelf", "-d", binary])
    assert r.returncode == 0, r.stderr.decode()
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", r.stdout.decode())


def library_paths(binary):
    """soname -> path, as the dynamic loader resolves them (ldd)."""
    r = run(["ldd", binary])
    assert r.returncode == 0, r.stderr.decode()
    return dict(re.findall(r"^\s*(\S+) => (/\S+)", r.stdout.decode(), re.M))


def owning_package(path):
    """The Debian package owning a library file. dpkg knows the path its package shipped: with
    Debian 12's merged /usr that may be /lib/… or /usr/lib/…, and the soname link or the file
    it points to; each is tried."""
    directory = os.path.dirname(path)
    names = {os.path.basename(path), os.path.basename(os.path.realpath(path))}
    dirs = {directory, directory[len("/usr"):] if directory.startswith("/usr/") else "/usr" + directory}
    for d in sorted(dirs):
        for n in sorted(names):
            r = run(["dpkg-query", "-S", os.path.join(d, n)])
            if r.returncode == 0:
                return r.stdout.decode().split(":")[0]  # "libssl3:amd64: /usr/lib/…"
    return None


def documented_container_variables(path):
    """{example: {MAILHOP_*: value}} from the "## Container" section of a Markdown file: each
    `docker run` command's -e options, each Compose file's environment."""
    with open(os.path.join(SOURCE_DIR, path)) as f:
        text = f.read()
    section = re.search(r"^## Container\n(.*?)(?=^## |\Z)", text, re.M | re.S).group(1)
    examples = {}
    for kind, block in re.findall(r"```(sh|yaml)\n(.*?)```", section, re.S):
        if kind == "sh":
            for command in re.sub(r"\\\n", " ", block).splitlines():
                words = shlex.split(command, comments=True)
                if words[:2] == ["docker", "run"]:
                    pairs = [words[i + 1] for i, w in enumerate(words) if w == "-e"]
                    examples["%s: docker run" % path] = dict(p.split("=", 1) for p in pairs)
        else:
            pairs = re.findall(r"^\s+(MAILHOP_\w+): (.*?)\s*(?:#.*)?$", block, re.M)
            examples["%s: compose" % path] = {k: v.strip('"') for k, v in pairs}
    return examples


class Container(E2ETest):

    @classmethod
    def setUpClass(cls):
        if not os.path.exists(os.path.join(BUILD_DIR, "CMakeCache.txt")):
            raise unittest.SkipTest("MAILHOP_BIN is not in a CMake build tree")
        cls.stage_root = tempfile.mkdtemp(prefix="mailhop-e2e-image-")
        os.chmod(cls.stage_root, 0o755)  # the unprivileged user runs the staged binary
        cls.staged = os.path.join(cls.stage_root, "stage")
        # The binary CTest built, as it is: a rebuild would change it under the other tests.
        r = run([os.path.join(SCRIPTS, "stage-image"), cls.staged, BUILD_DIR],
                env=dict(os.environ, MAILHOP_STAGE_SKIP_BUILD="1"))
        if r.returncode != 0:
            shutil.rmtree(cls.stage_root, ignore_errors=True)
            raise AssertionError("scripts/stage-image failed: %s%s" % (r.stdout.decode(), r.stderr.decode()))
        cls.binary = os.path.join(cls.staged, "usr/sbin/mailhop")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.stage_root, ignore_errors=True)

    # --- the build stage --------------------------------------------------------------------

    def test_staged_tree_is_the_binary_and_its_links(self):
        found = set()
        for top, dirs, files in os.walk(self.staged):
            for name in dirs + files:
                path = os.path.join(top, name)
                if not os.path.isdir(path) or os.path.islink(path):
                    found.add(os.path.relpath(path, self.staged))
        # Only usr/: Debian 12's /sbin and /lib are links into /usr, which a COPY must not replace.
        self.assertEqual(found, {"usr/sbin/mailhop"} | set(LINKS))
        self.assertTrue(os.access(self.binary, os.X_OK))
        for link in LINKS:
            path = os.path.join(self.staged, link)
            self.assertTrue(os.path.islink(path), link)
            self.assertFalse(os.path.isabs(os.readlink(path)), "%s: relative, so it works in the image" % link)
            self.assertEqual(os.path.realpath(path), os.path.realpath(self.binary), link)
        # Stripped: no symbol table (the build tree's binary has one).
        sections = run(["readelf", "-S", "-W", self.binary]).stdout.decode()
        self.assertFalse(".symtab" in sections, "the staged binary is not stripped")
        self.assertTrue(".symtab" in run(["readelf", "-S", "-W", MAILHOP_BIN]).stdout.decode())
        r = run([self.binary, "--version"])
        self.assertEqual(r.returncode, 0, r.stderr.decode())

    def test_stage_image_refuses_a_directory_that_is_no_build_tree(self):
        r = run([os.path.join(SCRIPTS, "stage-image"), os.path.join(self.dir, "out"), self.dir])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("not a configured build tree", r.stderr.decode())
        self.assertFalse(os.path.exists(os.path.join(self.dir, "out")))

    # --- the runtime stage ------------------------------------------------------------------

    def test_runtime_packages_cover_every_needed_library(self):
        needed = needed_libraries(self.binary)
        self.assertIn("libssl.so.3", needed)
        paths = library_paths(self.binary)
        runtime = set(runtime_packages())
        self.assertFalse([p for p in runtime if p.endswith("-dev")], runtime)
        sanitized = bool(cache_value("MAILHOP_SANITIZER"))
        for soname in needed:
            if sanitized and SANITIZER_RUNTIMES.match(soname):
                continue
            self.assertIn(soname, paths, "ldd does not resolve %s" % soname)
            package = owning_package(paths[soname])
            self.assertIsNotNone(package, "no package owns %s (%s)" % (soname, paths[soname]))
            if package not in BASE_IMAGE_PACKAGES:
                self.assertIn(package, runtime, "%s (%s) is missing from install-deps --runtime" % (package, soname))
        # The CA store, for verifying the next hop (relay.verify defaults to true).
        self.assertIn("ca-certificates", runtime)

    @unittest.skipUnless(os.geteuid() == 0 and shutil.which("useradd"), "needs root and useradd")
    def test_add_mailhop_user_into_a_scratch_root(self):
        root = os.path.join(self.dir, "root")
        os.makedirs(os.path.join(root, "etc"))
        for name, line in (("passwd", "root:x:0:0:root:/root:/bin/bash"), ("group", "root:x:0:"),
                           ("shadow", "root:*:19000:0:99999:7:::"), ("gshadow", "root:*::")):
            with open(os.path.join(root, "etc", name), "w") as f:
                f.write(line + "\n")
        script = os.path.join(SCRIPTS, "add-mailhop-user")
        for _ in range(2):  # a second run changes nothing
            r = run([script, root])
            self.assertEqual(r.returncode, 0, r.stderr.decode())
        with open(os.path.join(root, "etc/passwd")) as f:
            users = [line.split(":") for line in f.read().splitlines() if line.startswith("mailhop:")]
        self.assertEqual(len(users), 1, users)
        _, _, uid, gid, _, home, shell = users[0]
        self.assertLess(int(uid), 1000, "a system user")
        self.assertNotEqual(int(uid), 0)
        self.assertEqual((home, shell), ("/var/lib/mailhop", "/usr/sbin/nologin"))
        with open(os.path.join(root, "etc/group")) as f:
            self.assertIn("mailhop:x:%s:" % gid, f.read())
        spool = os.stat(os.path.join(root, "var/lib/mailhop"))
        self.assertEqual((spool.st_uid, spool.st_gid, spool.st_mode & 0o7777), (int(uid), int(gid), 0o750))
        self.assertEqual(dockerfile_env()["MAILHOP_SPOOL_PATH"], "/var/lib/mailhop")

    # --- the Dockerfile ---------------------------------------------------------------------

    def test_dockerfile_runs_only_scripts_it_copied(self):
        instructions = dockerfile_instructions()
        stages = {stage for stage, _, _ in instructions}
        self.assertGreaterEqual(len(stages), 2, "multi-stage")
        used = set()
        for stage in sorted(stages):
            copied, copied_all = set(), False
            for s, keyword, args in instructions:
                if s != stage:
                    continue
                if keyword == "COPY" and "--from=" not in args:
                    sources = shlex.split(args)[:-1]
                    copied_all = copied_all or "." in sources
                    copied |= {os.path.basename(p) for p in sources if p.startswith("scripts/")}
                if keyword == "RUN":
                    for name in re.findall(r"(?:^|[\s/])scripts/([\w.-]+)", args):
                        path = os.path.join(SCRIPTS, name)
                        self.assertTrue(os.path.isfile(path), "RUN uses scripts/%s, which does not exist" % name)
                        self.assertTrue(os.access(path, os.X_OK), "scripts/%s is not executable" % name)
                        self.assertTrue(copied_all or name in copied,
                                        "stage %d runs scripts/%s before copying it" % (stage, name))
                        used.add(name)
                    # Every step is a script: no package lists or build commands inline.
                    self.assertNotRegex(args, r"\b(apt-get|cmake|strip|useradd|groupadd)\b", args)
        self.assertEqual(used, {"install-deps", "stage-image", "add-mailhop-user"})
        # The runtime stage takes what stage-image staged, from where the build stage staged it.
        destdir = re.search(r"scripts/stage-image (\S+)",
                            " ".join(a for _, k, a in instructions if k == "RUN")).group(1)
        self.assertIn("--from=build %s/ /" % destdir.rstrip("/"),
                      [a for s, k, a in instructions if k == "COPY" and s == max(stages)])

    def test_dockerfile_runtime_settings_agree(self):
        runtime = [(k, a) for s, k, a in dockerfile_instructions() if s == max(s for s, _, _ in dockerfile_instructions())]
        settings = {k: a for k, a in runtime}
        env = dockerfile_env()
        self.assertIn("debian:12-slim", settings["FROM"])
        self.assertNotIn(settings["USER"], ("root", "0"))
        self.assertEqual(json.loads(settings["VOLUME"]), [env["MAILHOP_SPOOL_PATH"]])
        exposed = sorted(int(p) for p in settings["EXPOSE"].split())
        self.assertEqual(exposed, sorted([port_of(env["MAILHOP_LISTEN"]), port_of(env["MAILHOP_ADMIN_LISTEN"])]))
        # A non-root user binds no port below 1024 (the image grants no capability).
        self.assertTrue(all(p >= 1024 for p in exposed), exposed)
        self.assertEqual(settings["STOPSIGNAL"], "SIGTERM")
        entrypoint = json.loads(settings["ENTRYPOINT"])
        self.assertEqual(entrypoint, ["/usr/sbin/mailhop"])
        self.assertTrue(os.path.isfile(os.path.join(self.staged, entrypoint[0].lstrip("/"))))
        self.assertEqual(json.loads(settings["CMD"]), ["run"])
        health = re.search(r"CMD (\[.*\])$", settings["HEALTHCHECK"]).group(1)
        self.assertEqual(json.loads(health), ["/usr/sbin/mailhop", "health"])

    def test_documented_examples_pass_check(self):
        examples = {}
        for path in ("README.md", "docs/operations.md"):
            found = documented_container_variables(path)
            self.assertEqual(len(found), 2, "%s: a docker run and a Compose example" % path)
            examples.update(found)
        secret = os.path.join(self.dir, "relay_password")
        with open(secret, "w") as f:
            f.write("not-a-real-password\n")
        for example, variables in examples.items():
            self.assertIn("MAILHOP_RELAY_HOST", variables, example)
            env = dict(BASE_IMAGE_ENV, **dockerfile_env())
            env.update(variables)
            env["MAILHOP_SPOOL_PATH"] = os.path.join(self.dir, "spool")
            if "MAILHOP_RELAY_PASSWORD_FILE" in variables:  # the Docker secret
                env["MAILHOP_RELAY_PASSWORD_FILE"] = secret
            r = run([self.binary, "check"], env=env)
            self.assertEqual(r.returncode, 0, "%s: %s" % (example, r.stderr.decode()))
            out = r.stdout.decode()
            for name in variables:
                self.assertIn("# " + name, out, "%s: %s not applied" % (example, name))

    # --- the staged binary, run as in the image ----------------------------------------------

    def image_env(self, sink_port, **overrides):
        """The Dockerfile's ENV, the addresses moved to free loopback ports, the spool into the
        test's directory, the next hop a local smtp-sink (plaintext: relay.tls none)."""
        env = dockerfile_env()
        for key in ("MAILHOP_LISTEN", "MAILHOP_ADMIN_LISTEN", "MAILHOP_SPOOL_PATH"):
            self.assertIn(key, env)
        self.admin_port = free_port()
        env = dict(BASE_IMAGE_ENV, **env)
        env.update({k: v for k, v in os.environ.items() if k in SANITIZER_OPTIONS})
        # One listen entry: its address replaced, its options (tls=, auth=) kept.
        self.assertNotIn(",", env["MAILHOP_LISTEN"])
        env["MAILHOP_LISTEN"] = re.sub(r"^\S+:\d+", "127.0.0.1:%d" % self.smtp_port, env["MAILHOP_LISTEN"])
        env["MAILHOP_ADMIN_LISTEN"] = "127.0.0.1:%d" % self.admin_port
        env["MAILHOP_SPOOL_PATH"] = os.path.join(self.dir, "spool")
        env.update(MAILHOP_RELAY_HOST="127.0.0.1", MAILHOP_RELAY_PORT=str(sink_port), MAILHOP_RELAY_TLS="none")
        env.update(overrides)
        return env

    def as_image_user(self, argv):
        if os.geteuid() != 0:
            return argv  # already unprivileged
        # setpriv execs the command: the PID is mailhop's, and SIGTERM reaches it directly.
        return ["setpriv", "--reuid=" + RUN_AS, "--regid=" + RUN_AS_GROUP, "--clear-groups", "--"] + argv

    def mailhop_as_image(self, env, *args):
        return subprocess.run(self.as_image_user([self.binary] + list(args)), env=env, timeout=COMMAND_DEADLINE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def run_like_the_image(self, log_format=None):
        if os.path.exists("/etc/mailhop/mailhop.yaml"):
            self.skipTest("/etc/mailhop/mailhop.yaml exists here; the image has none")
        sink_port = free_port()
        sink = SmtpSink(sink_port, os.path.join(self.dir, "sink"))
        self.addCleanup(sink.stop)
        env = self.image_env(sink_port, **({"MAILHOP_LOG_FORMAT": log_format} if log_format else {}))
        os.makedirs(env["MAILHOP_SPOOL_PATH"], mode=0o750)
        if os.geteuid() == 0:
            shutil.chown(env["MAILHOP_SPOOL_PATH"], user=RUN_AS, group=RUN_AS_GROUP)

        r = self.mailhop_as_image(env, "check")
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertIn("127.0.0.1:%d" % self.smtp_port, r.stdout.decode())

        stdout_path = os.path.join(self.dir, "stdout")
        stderr_path = os.path.join(self.dir, "stderr")
        with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
            proc = start_process(self.as_image_user([self.binary, "run"]), stdout=out, stderr=err, env=env)
        self.addCleanup(stop_process, proc)
        wait_port(self.smtp_port, proc=proc, log=stderr_path)
        if os.geteuid() == 0:
            with open("/proc/%d/status" % proc.pid) as f:
                uids = re.search(r"^Uid:\s+(.*)$", f.read(), re.M).group(1).split()
            self.assertEqual(set(uids), {str(pwd.getpwnam(RUN_AS).pw_uid)}, "runs as %s" % RUN_AS)

        message = ("From: app@container.test\r\nTo: ops@example.org\r\nSubject: from a container\r\n"
                   "Message-ID: <container-%d@container.test>\r\n\r\nrelayed by the image's binary\r\n" % os.getpid())
        with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=COMMAND_DEADLINE) as client:
            client.sendmail("app@container.test", ["ops@example.org"], message)
        delivered = wait_for(sink.messages, DELIVERY_DEADLINE,
                             lambda: "the message at the sink" + log_tail(stderr_path))
        self.assertEqual(len(delivered), 1)
        self.assertIn(b"relayed by the image's binary", delivered[0]["content"])

        # The HEALTHCHECK command: ready once the next hop was reached (the probe, or the delivery).
        last = {}

        def healthy():
            r = self.mailhop_as_image(env, "health")
            last["r"] = r
            return r.returncode == 0
        wait_for(healthy, COMMAND_DEADLINE,
                 lambda: "mailhop health to exit 0: %r" % (last["r"].stdout + last["r"].stderr))

        status = stop_process(proc, deadline=STOP_DEADLINE, sig=signal.SIGTERM)
        self.assertEqual(status, 0, "STOPSIGNAL SIGTERM: exit 0 within %ss%s" % (STOP_DEADLINE, log_tail(stderr_path)))
        with open(stdout_path, "rb") as f:
            self.assertEqual(f.read(), b"", "logs go to stderr")
        with open(stderr_path, "rb") as f:
            lines = f.read().decode().splitlines()
        self.assertTrue(lines, "nothing logged")
        return lines

    def test_runs_with_the_image_environment(self):
        lines = self.run_like_the_image()
        self.assertEqual(dockerfile_env()["MAILHOP_LOG_FORMAT"], "text")
        self.assertTrue(all(re.match(r"\d{4}-\d\d-\d\dT\S+Z \w+ ", line) for line in lines), lines[:5])

    def test_json_logs(self):
        lines = self.run_like_the_image(log_format="json")
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                self.fail("not JSON: %r" % line)
            self.assertEqual(sorted(record), ["level", "message", "time"], line)


if __name__ == "__main__":
    main()
