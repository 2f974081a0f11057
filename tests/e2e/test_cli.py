"""The command line contract (issue 2, Command line): `mailhop check` on the documented default
and on broken files (exit 78, `FILE:LINE: key.path: what is wrong`), `$MAILHOP_CONFIG`,
`--version`, `--help` on every subcommand, and `queue list` / `queue cat` with the daemon
stopped.
"""

import json
import os
import re
import smtplib

from mailhop_e2e import (EX_CONFIG, SOURCE_DIR, E2ETest, check_added_headers, crlf, mailhop, main,
                         queued_id_from_reply)

DEFAULT_CONFIG = os.path.join(SOURCE_DIR, "config", "mailhop.yaml")


class Check(E2ETest):

    def check(self, text=None, path=None, env=None):
        if path is None:
            path = self.write_config(text=text) if text is not None else self.write_config()
        r = mailhop("check", config=path, env=env)
        return r.returncode, (r.stdout + r.stderr).decode("utf-8", "replace")

    def test_documented_default_is_valid(self):
        self.assertTrue(os.path.exists(DEFAULT_CONFIG), "config/mailhop.yaml is missing")
        r = mailhop("check", config=DEFAULT_CONFIG)
        self.assertEqual(r.returncode, 0, (r.stdout + r.stderr).decode())
        out = r.stdout.decode()
        # It prints the effective configuration.
        for key in ("hostname", "listen", "spool", "relay", "delivery"):
            self.assertIn(key, out, "effective configuration lacks %s:\n%s" % (key, out))

    def test_test_config_is_valid(self):
        code, out = self.check()
        self.assertEqual(code, 0, out)

    def test_whole_schema_accepted(self):
        code, out = self.check(text="""\
hostname: relay.example.org
listen:
  - address: "127.0.0.1:2525"
    tls: none
    auth: none
  - address: "[::1]:2525"
allowed_networks: ["127.0.0.0/8", "::1/128"]
limits:
  max_message_size: 25MiB
  max_recipients: 100
  max_connections: 1000
  max_connections_per_ip: 50
  command_timeout: 5m
  data_timeout: 10m
spool:
  path: %s/spool
relay:
  host: smtp.example.com
  port: 587
  tls: starttls
  verify: true
  ca_file: null
  username: null
  password_file: null
delivery:
  workers: 16
  max_connections: 4
  retry: { initial: 1m, max: 1h, give_up_after: 5d }
admin:
  listen: "127.0.0.1:8025"
log:
  level: info
  format: text
""" % self.dir)
        self.assertEqual(code, 0, out)

    def test_secrets_redacted(self):
        pw = os.path.join(self.dir, "pw")
        with open(pw, "w") as f:
            f.write("hunter2-e2e\n")
        code, out = self.check(text="""\
hostname: relay.example.org
spool:
  path: %s/spool
relay:
  host: smtp.example.com
  username: someone
  password_file: %s
""" % (self.dir, pw))
        self.assertEqual(code, 0, out)
        self.assertNotIn("hunter2-e2e", out)

    def assert_error(self, text, line, key):
        code, out = self.check(text=text)
        self.assertEqual(code, EX_CONFIG, "exit %d, want 78; output:\n%s" % (code, out))
        want = "%s:%d: %s: " % (self.config_path, line, key)
        self.assertIn(want, out, "no %r in:\n%s" % (want, out))
        return out

    def test_unknown_key(self):
        self.assert_error("hostname: a.example\nlimits:\n  max_recipients: 5\n  max_recipientz: 5\n",
                          4, "limits.max_recipientz")

    def test_bad_size(self):
        self.assert_error("hostname: a.example\nlimits:\n  max_message_size: 12 parsecs\n",
                          3, "limits.max_message_size")

    def test_bad_duration_and_enum_both_reported(self):
        out = self.assert_error("hostname: a.example\n"
                                "relay:\n"
                                "  tls: sometimes\n"
                                "delivery:\n"
                                "  retry: { initial: soon }\n",
                                3, "relay.tls")
        self.assertRegex(out, re.escape(self.config_path) + r":5: delivery\.retry\.initial: ")

    def test_bad_listen_address(self):
        code, out = self.check(text="listen:\n  - address: \"not an address\"\n")
        self.assertEqual(code, EX_CONFIG, out)
        # The key path of a list element may be written listen[0].address or listen.0.address.
        self.assertRegex(out, re.escape(self.config_path) + r":2: listen\S*address: ")

    def test_yaml_syntax_error(self):
        code, out = self.check(text="hostname: a.example\nlimits: [unclosed\n")
        self.assertEqual(code, EX_CONFIG, out)
        self.assertIn(self.config_path + ":", out)

    def test_missing_file(self):
        r = mailhop("check", config=os.path.join(self.dir, "nope.yaml"))
        self.assertNotEqual(r.returncode, 0)

    def test_mailhop_config_env(self):
        path = self.write_config(text="hostname: a.example\nbogus_key: 1\n")
        env = dict(os.environ, MAILHOP_CONFIG=path)
        r = mailhop("check", env=env)
        out = (r.stdout + r.stderr).decode()
        self.assertEqual(r.returncode, EX_CONFIG, out)
        self.assertIn("%s:2: bogus_key: " % path, out)


class Usage(E2ETest):

    def test_version(self):
        r = mailhop("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex((r.stdout + r.stderr).decode(), r"^mailhop \d+\.\d+")

    def test_help_on_every_subcommand(self):
        for args in (["--help"], ["run", "--help"], ["check", "--help"], ["queue", "--help"],
                     ["queue", "list", "--help"], ["queue", "cat", "--help"], ["sink", "--help"]):
            r = mailhop(*args)
            out = (r.stdout + r.stderr).decode()
            self.assertEqual(r.returncode, 0, "%s: exit %d\n%s" % (args, r.returncode, out))
            self.assertIn("Usage", out, args)
            if args[0] in ("run", "check", "queue"):
                self.assertIn("-c", out, "%s does not document -c" % args)
            if args[0] == "sink":
                self.assertIn("--listen", out)
                self.assertIn("--maildir", out)

    def test_unknown_subcommand_is_usage_error(self):
        r = mailhop("frobnicate")
        self.assertEqual(r.returncode, 64, (r.stdout + r.stderr).decode())  # EX_USAGE


class QueueWithDaemonStopped(E2ETest):

    def test_list_and_cat_read_the_disk(self):
        self.start_daemon()
        sent = crlf("Subject: offline\n\nread me with the daemon stopped\n")
        with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=20) as s:
            s.ehlo("app.example")
            s.mail("s@app.example")
            s.rcpt("r@example.net")
            code, msg = s.data(sent)
        self.assertEqual(code, 250, msg)
        qid = queued_id_from_reply(msg.decode())
        self.assertEqual(self.daemon.stop(), 0)
        queue = self.queue()
        self.assertEqual([e["id"] for e in queue], [qid])
        self.assertEqual(queue[0]["sender"], "s@app.example")
        self.assertEqual(queue[0]["recipients"][0]["address"], "r@example.net")
        self.assertEqual(queue[0]["recipients"][0]["state"], "pending")
        check_added_headers(self, sent, self.cat(qid))
        # Plain listing mentions the ID too.
        r = mailhop("queue", "list", config=self.config_path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(qid, r.stdout.decode())
        # An unknown ID is an error, not an empty message.
        r = mailhop("queue", "cat", "NOSUCHID", config=self.config_path)
        self.assertNotEqual(r.returncode, 0)

    def test_empty_queue_is_empty_array(self):
        self.start_daemon()
        self.daemon.stop()
        r = mailhop("queue", "list", "--json", config=self.config_path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout), [])


if __name__ == "__main__":
    main()
