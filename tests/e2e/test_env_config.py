"""Configuration from the environment (issue 5): `mailhop check` with MAILHOP_* overrides (the
value and where it came from), a broken value (exit 78 naming the variable), a typo'd
variable, `_FILE` secrets, and the daemon started with no configuration file at all, only the
environment, accepting a message from swaks and relaying it into `mailhop sink`.
"""

import os
import re

from mailhop_e2e import (EX_CONFIG, MAILHOP_BIN, Daemon, E2ETest, MailhopSink, free_port, mailhop,
                         main, swaks, wait_for, DELIVERY_DEADLINE)


def clean_env(**overrides):
    """The test process's environment without MAILHOP_* variables, plus `overrides`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILHOP_")}
    env.update(overrides)
    return env


class EnvCheck(E2ETest):

    def check(self, env, config=True):
        path = self.write_config() if config else None
        r = mailhop("check", config=path, env=env)
        return r.returncode, r.stdout.decode(), r.stderr.decode()

    def test_override_shows_value_and_source(self):
        code, out, err = self.check(clean_env(MAILHOP_RELAY_HOST="smarthost.example.org",
                                              MAILHOP_DELIVERY_RETRY_INITIAL="2s",
                                              MAILHOP_ALLOWED_NETWORKS="127.0.0.0/8, 10.1.0.0/16"))
        self.assertEqual(code, 0, err)
        self.assertRegex(out, r"host: smarthost\.example\.org  # MAILHOP_RELAY_HOST\n")
        self.assertRegex(out, r"initial: 2s  # MAILHOP_DELIVERY_RETRY_INITIAL\n")
        self.assertRegex(out, r"allowed_networks: \[127\.0\.0\.0/8, 10\.1\.0\.0/16\]  # MAILHOP_ALLOWED_NETWORKS\n")
        # Values from the file say FILE:LINE; defaults say nothing.
        self.assertRegex(out, r"hostname: mailhop\.test  # %s:\d+\n" % re.escape(self.config_path))
        self.assertRegex(out, r"\n    idle: 1m\n")

    def test_broken_value_names_the_variable(self):
        code, out, err = self.check(clean_env(MAILHOP_LIMITS_MAX_MESSAGE_SIZE="25XB"))
        self.assertEqual(code, EX_CONFIG, out + err)
        self.assertIn('MAILHOP_LIMITS_MAX_MESSAGE_SIZE: "25XB" is not a size (use e.g. 25MiB)', err)
        self.assertEqual(out, "")

    def test_unknown_variable_is_an_error(self):
        code, out, err = self.check(clean_env(MAILHOP_RELAY_HOTS="x.example.org"))
        self.assertEqual(code, EX_CONFIG, out + err)
        self.assertIn("MAILHOP_RELAY_HOTS: is not a configuration key (did you mean MAILHOP_RELAY_HOST?)", err)

    def test_password_from_env_and_file_are_secret(self):
        secret = "s3cret-from-env-%d" % os.getpid()
        code, out, err = self.check(clean_env(MAILHOP_RELAY_USERNAME="relayuser",
                                              MAILHOP_RELAY_PASSWORD=secret))
        self.assertEqual(code, 0, err)
        self.assertNotIn(secret, out + err)
        self.assertIn("password: <redacted>  # MAILHOP_RELAY_PASSWORD", out)
        path = os.path.join(self.dir, "relay-password")
        with open(path, "w") as f:
            f.write(secret + "\n")
        code, out, err = self.check(clean_env(MAILHOP_RELAY_USERNAME="relayuser",
                                              MAILHOP_RELAY_PASSWORD_FILE=path))
        self.assertEqual(code, 0, err)
        self.assertIn("password_file: %s  # MAILHOP_RELAY_PASSWORD_FILE" % path, out)
        self.assertNotIn(secret, out + err)
        # Both at once: one source of the password only.
        code, out, err = self.check(clean_env(MAILHOP_RELAY_USERNAME="relayuser", MAILHOP_RELAY_PASSWORD=secret,
                                              MAILHOP_RELAY_PASSWORD_FILE=path))
        self.assertEqual(code, EX_CONFIG, out + err)
        self.assertNotIn(secret, out + err)

    def test_password_in_the_file_is_refused(self):
        self.write_config({"relay": {"username": "u", "password_file": None}})
        with open(self.config_path) as f:
            text = f.read()
        text, n = re.subn(r"\n  username: [^\n]*\n", "\n  username: u\n  password: hunter2\n", text, count=1)
        self.assertEqual(n, 1, text)
        with open(self.config_path, "w") as f:
            f.write(text)
        r = mailhop("check", config=self.config_path, env=clean_env())
        self.assertEqual(r.returncode, EX_CONFIG)
        err = r.stderr.decode()
        self.assertIn("relay.password: a password is never written in the configuration file", err)
        self.assertIn("MAILHOP_RELAY_PASSWORD", err)
        self.assertNotIn("hunter2", err + r.stdout.decode())


class EnvOnlyDaemon(E2ETest):

    def test_no_config_file_only_environment(self):
        if os.path.exists("/etc/mailhop/mailhop.yaml"):
            self.skipTest("/etc/mailhop/mailhop.yaml exists here; the no-file mode needs it absent")
        sink_port = free_port()
        sink = MailhopSink(sink_port, os.path.join(self.dir, "maildir"), os.path.join(self.dir, "sink.log"))
        self.addCleanup(sink.stop)
        env = clean_env(
            MAILHOP_RELAY_HOST="127.0.0.1",
            MAILHOP_RELAY_PORT=str(sink_port),
            MAILHOP_RELAY_TLS="none",
            MAILHOP_HOSTNAME="mailhop.test",
            MAILHOP_LISTEN="127.0.0.1:%d" % self.smtp_port,
            MAILHOP_SPOOL_PATH=os.path.join(self.dir, "spool"),
            MAILHOP_ADMIN_LISTEN="127.0.0.1:%d" % free_port(),
            MAILHOP_DELIVERY_RETRY_INITIAL="1s",
            MAILHOP_DELIVERY_RETRY_MAX="2s",
            MAILHOP_LOG_LEVEL="debug")
        # `check` without -c: no file, the environment's configuration.
        r = mailhop("check", env=env)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertIn("No configuration file", r.stdout.decode())
        self.assertIn("port: %d  # MAILHOP_RELAY_PORT" % sink_port, r.stdout.decode())

        log_path = os.path.join(self.dir, "mailhop.log")
        log = open(log_path, "ab")
        from mailhop_e2e import start_process, wait_port, stop_process
        proc = start_process([MAILHOP_BIN, "run"], stdout=log, stderr=log, env=env)
        log.close()
        self.addCleanup(stop_process, proc)
        wait_port(self.smtp_port, proc=proc, log=log_path)

        code, out = swaks("--server", "127.0.0.1:%d" % self.smtp_port, "--from", "app@example.org",
                          "--to", "ops@example.org", "--header", "Subject: from the environment",
                          "--body", "no config file")
        self.assertEqual(code, 0, out)
        messages = wait_for(lambda: sink.messages() or None, DELIVERY_DEADLINE, "the message in the sink")
        self.assertEqual(len(messages), 1)
        self.assertIn(b"X-Mailhop-Sink-Rcpt: <ops@example.org>", messages[0])
        self.assertIn(b"Subject: from the environment", messages[0])
        self.assertEqual(stop_process(proc), 0)


if __name__ == "__main__":
    main()
