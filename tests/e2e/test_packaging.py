"""Packaging (issue 5): `cmake --install` into a staging root gives the binary, the sendmail and
mailq links, the units, the configuration and the docs; `systemd-analyze verify` passes on the
installed units (the service's ExecStart rewritten to the staged binary; mailhop.socket, whose
ListenStream is the installed configuration's listen address); `systemd-analyze security`
scores it "OK" or better; `cpack -G DEB` builds a package whose contents (dpkg -x) are the same.

Uses the build tree of MAILHOP_BIN (no rebuild): the paths follow its CMAKE_INSTALL_PREFIX
(/usr for a package build, /usr/local by default).
"""

import os
import re
import shutil
import subprocess
import unittest

from mailhop_e2e import MAILHOP_BIN, SOURCE_DIR, E2ETest, main

BUILD_DIR = os.path.dirname(os.path.abspath(MAILHOP_BIN))
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


def cache_value(name):
    with open(os.path.join(BUILD_DIR, "CMakeCache.txt")) as f:
        for line in f:
            m = re.match(r"%s:[A-Z]+=(.*)$" % re.escape(name), line.strip())
            if m:
                return m.group(1)
    return None


def read(path):
    with open(path) as f:
        return f.read()


def run(argv, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120, **kw)


class Packaging(E2ETest):

    def setUp(self):
        super().setUp()
        if not os.path.exists(os.path.join(BUILD_DIR, "CMakeCache.txt")):
            self.skipTest("MAILHOP_BIN is not in a CMake build tree")
        self.prefix = cache_value("CMAKE_INSTALL_PREFIX") or "/usr/local"
        self.sysconfdir = "/etc" if self.prefix == "/usr" else self.prefix + "/etc"

    def expected(self, root):
        p = root + self.prefix
        return {
            "binary": p + "/sbin/mailhop",
            "sendmail": p + "/sbin/sendmail",
            "lib_sendmail": p + "/lib/sendmail",
            "mailq": p + "/bin/mailq",
            "unit": p + "/lib/systemd/system/mailhop.service",
            "socket": p + "/lib/systemd/system/mailhop.socket",
            "config": root + self.sysconfdir + "/mailhop/mailhop.yaml",
            "readme": p + "/share/doc/mailhop/README.md",
            "operations": p + "/share/doc/mailhop/operations.md",
        }

    def check_tree(self, root):
        files = self.expected(root)
        for what, path in files.items():
            self.assertTrue(os.path.lexists(path), "%s missing: %s" % (what, path))
        self.assertTrue(os.access(files["binary"], os.X_OK))
        for link in ("sendmail", "lib_sendmail", "mailq"):
            self.assertTrue(os.path.islink(files[link]), files[link])
            self.assertEqual(os.path.realpath(files[link]), os.path.realpath(files["binary"]))
        unit = read(files["unit"])
        self.assertIn("ExecStart=%s/sbin/mailhop run -c %s/mailhop/mailhop.yaml" % (self.prefix, self.sysconfdir),
                      unit)
        self.assertIn("Type=notify", unit)
        config = read(files["config"])
        self.assertRegex(config, r"\nspool:\n(  #[^\n]*\n)*  path: /var/lib/mailhop\n")
        self.assertIn("StateDirectory=mailhop", unit)
        # The socket unit listens where the installed configuration's listen entry does (an
        # address no entry names would stop the activated service with exit 78).
        listen = re.search(r'\nlisten:\n(?:  #[^\n]*\n)*  - address: "([^"]+)"', config).group(1)
        self.assertEqual(re.findall(r"^ListenStream=(.*)$", read(files["socket"]), re.M), [listen])
        return files

    def stage(self):
        root = os.path.join(self.dir, "stage")
        r = run(["cmake", "--install", BUILD_DIR], env=dict(os.environ, DESTDIR=root))
        self.assertEqual(r.returncode, 0, r.stdout.decode())
        return root

    def test_install_tree(self):
        files = self.check_tree(self.stage())
        # The installed configuration is valid as installed (spool.path aside, nothing to fix).
        r = run([files["binary"], "check", "-c", files["config"]],
                env={k: v for k, v in os.environ.items() if not k.startswith("MAILHOP_")})
        self.assertEqual(r.returncode, 0, r.stdout.decode())

    @unittest.skipUnless(SYSTEMD_ANALYZE, "systemd-analyze is not installed")
    def test_unit_verifies_and_scores_ok(self):
        root = self.stage()
        files = self.expected(root)
        # The unit as installed, ExecStart pointing at the staged binary and configuration.
        unit = read(files["unit"])
        unit = unit.replace("%s/sbin/mailhop" % self.prefix, files["binary"])
        unit = unit.replace("-c %s/mailhop/mailhop.yaml" % self.sysconfdir, "-c " + files["config"])
        path = os.path.join(self.dir, "mailhop.service")
        with open(path, "w") as f:
            f.write(unit)
        # The socket unit as installed, next to the service it activates.
        socket_path = os.path.join(self.dir, "mailhop.socket")
        shutil.copyfile(files["socket"], socket_path)
        r = run([SYSTEMD_ANALYZE, "verify", "--man=no", path, socket_path])
        out = r.stdout.decode()
        self.assertEqual(r.returncode, 0, out)
        self.assertNotIn("mailhop.service:", out, out)  # no complaint about our units
        self.assertNotIn("mailhop.socket:", out, out)
        r = run([SYSTEMD_ANALYZE, "security", "--offline=true", path])
        out = r.stdout.decode()
        m = re.search(r"Overall exposure level for mailhop\.service: ([0-9.]+) (\w+)", out)
        self.assertIsNotNone(m, out)
        print("\nsystemd-analyze security: %s %s" % (m.group(1), m.group(2)))
        self.assertIn(m.group(2), ("OK", "SAFE", "PERFECT"), out[-2000:])
        self.assertLessEqual(float(m.group(1)), 2.0, "exposure rose above the documented 1.6")

    @unittest.skipUnless(shutil.which("cpack") and shutil.which("dpkg-deb"), "cpack or dpkg-deb missing")
    def test_deb_contents(self):
        out_dir = os.path.join(self.dir, "deb")
        os.makedirs(out_dir)
        r = run(["cpack", "-G", "DEB", "--config", os.path.join(BUILD_DIR, "CPackConfig.cmake"), "-B", out_dir])
        self.assertEqual(r.returncode, 0, r.stdout.decode())
        debs = [n for n in os.listdir(out_dir) if n.endswith(".deb")]
        self.assertEqual(len(debs), 1, os.listdir(out_dir))
        deb = os.path.join(out_dir, debs[0])
        root = os.path.join(self.dir, "unpacked")
        r = run(["dpkg-deb", "-x", deb, root])
        self.assertEqual(r.returncode, 0, r.stdout.decode())
        self.check_tree(root)
        # Control: runtime libraries from the binary, a conffile, the maintainer scripts.
        control = run(["dpkg-deb", "-I", deb]).stdout.decode()
        depends = re.search(r"Depends: ([^\n]*)", control).group(1)
        for lib in ("libssl3", "libspdlog1.10", "libyaml-cpp0.7", "adduser"):
            self.assertIn(lib, depends)
        ctrl = os.path.join(self.dir, "control")
        run(["dpkg-deb", "-e", deb, ctrl])
        self.assertIn(self.sysconfdir + "/mailhop/mailhop.yaml", read(os.path.join(ctrl, "conffiles")).split())
        postinst = read(os.path.join(ctrl, "postinst"))
        self.assertIn("adduser --system", postinst)
        self.assertIn("install -d -o mailhop -g mailhop -m 0750 /var/lib/mailhop", postinst)
        code = "\n".join(line for line in postinst.splitlines() if not line.lstrip().startswith("#"))
        self.assertNotRegex(code, r"systemctl (start|enable|restart)|deb-systemd-invoke")  # nothing started unasked


if __name__ == "__main__":
    main()
