"""The README's run command end to end: `scripts/run` starts `mailhop sink` on 127.0.0.1:2526 and
the daemon with config/mailhop.yaml on 127.0.0.1:2525; the README's swaks command then sends a
message that must land in the sink's Maildir (var/sink/new/). SIGTERM to the script stops both.

The script and the default configuration are copied into a temporary tree laid out like the
repository, so var/ is created there and not in the developer's checkout; the build step is
skipped (MAILHOP_RUN_SKIP_BUILD=1 with MAILHOP_BIN, the binary CTest built). The ports are the
fixed ones the README names, so they must be free.
"""

import os
import shutil
import signal

from mailhop_e2e import (MAILHOP_BIN, SOURCE_DIR, E2ETest, main, port_accepts, start_process,
                         stop_process, swaks, wait_for, wait_port, log_tail)

README_SWAKS = "swaks --server 127.0.0.1:2525 --to you@example.org"


class ReadmeRun(E2ETest):

    def setUp(self):
        super().setUp()
        for port in (2525, 2526):
            if port_accepts(port):
                self.fail("port %d is in use on 127.0.0.1: stop whatever listens there "
                          "(a mailhop started by scripts/run?) and run this test again" % port)
        self.tree = os.path.join(self.dir, "repo")
        os.makedirs(os.path.join(self.tree, "scripts"))
        shutil.copy2(os.path.join(SOURCE_DIR, "scripts", "run"), os.path.join(self.tree, "scripts"))
        shutil.copytree(os.path.join(SOURCE_DIR, "config"), os.path.join(self.tree, "config"))
        self.out = os.path.join(self.dir, "run.out")

    def test_run_then_swaks_lands_in_the_sink(self):
        env = dict(os.environ, MAILHOP_RUN_SKIP_BUILD="1", MAILHOP_BIN=MAILHOP_BIN)
        with open(self.out, "wb") as out:
            proc = start_process([os.path.join(self.tree, "scripts", "run")], stdout=out,
                                 stderr=out, cwd=self.tree, env=env)
        self.addCleanup(stop_process, proc)
        wait_port(2526, proc=proc, log=self.out)
        wait_port(2525, proc=proc, log=self.out)

        rc, transcript = swaks(*README_SWAKS.split()[1:])
        self.assertEqual(rc, 0, transcript + log_tail(self.out))
        self.assertRegex(transcript, r"<-  250 2\.0\.0 .*queued as ")

        new = os.path.join(self.tree, "var", "sink", "new")
        files = wait_for(lambda: os.path.isdir(new) and os.listdir(new), 30,
                         lambda: "a message in var/sink/new/" + log_tail(self.out))
        self.assertEqual(len(files), 1, files)
        with open(os.path.join(new, files[0]), "rb") as f:
            delivered = f.read()
        self.assertIn(b"Received: ", delivered)
        self.assertIn(b"To: you@example.org", delivered)
        self.assertIn(b"This is a test mailing", delivered)  # swaks's default body

        with open(self.out, "rb") as f:
            printed = f.read().decode("utf-8", "replace")
        self.assertIn(README_SWAKS, printed, "scripts/run does not print how to send a message")
        self.assertIn("var/sink/new/", printed)

        # SIGTERM to the script stops the daemon and the sink.
        self.assertIn(stop_process(proc, sig=signal.SIGTERM), (0, 143), log_tail(self.out))
        wait_for(lambda: not port_accepts(2525) and not port_accepts(2526), 10,
                 lambda: "the daemon and the sink to stop with scripts/run" + log_tail(self.out))

    def test_readme_shows_the_commands(self):
        with open(os.path.join(SOURCE_DIR, "README.md")) as f:
            readme = f.read()
        for text in ("scripts/run", "scripts/test", README_SWAKS, "mailhop queue list",
                     "mailhop check", "var/sink/new/"):
            self.assertIn(text, readme)


if __name__ == "__main__":
    main()
