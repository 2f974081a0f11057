"""The admin HTTP API and queue management (issue 5, "Admin HTTP" and "Command line"): each
endpoint's status codes and JSON shape, a held message not delivered until released, a deleted
one gone, metrics moving when mail flows, `mailhop queue ...` against a running and a stopped
daemon, `mailhop health`, the bearer token, and the spool lock (a second daemon refused, a
restart after kill -9 not).
"""

import http.client
import json
import os
import smtplib
import time

from mailhop_e2e import (AioPeer, E2ETest, free_port, mailhop, main, queued_id_from_reply,
                         start_process, stop_process, wait_for, wait_port)


class Admin(E2ETest):

    def setUp(self):
        super().setUp()
        self.admin_port = free_port()
        self.token = None

    def start(self, overrides=None):
        cfg = {"admin": {"listen": "127.0.0.1:%d" % self.admin_port},
               "delivery": {"retry": {"initial": "2s", "max": "4s", "give_up_after": "1d"}}}
        for key, value in (overrides or {}).items():
            cfg.setdefault(key, {}).update(value)
        self.start_daemon(cfg)
        wait_port(self.admin_port, proc=self.daemon.proc, log=self.daemon.log_path)

    def http(self, method, path, token=None):
        """(status, headers, body) of one request to the admin port."""
        c = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=30)
        headers = {}
        token = token if token is not None else self.token
        if token:
            headers["Authorization"] = "Bearer " + token
        c.request(method, path, headers=headers)
        r = c.getresponse()
        body = r.read()
        c.close()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), body

    def json(self, method, path, expect):
        status, headers, body = self.http(method, path)
        self.assertEqual(status, expect, "%s %s: %s%s" % (method, path, body[:500], self.ctx()))
        self.assertTrue(headers.get("content-type", "").startswith("application/json"), headers)
        return json.loads(body)

    def send(self, rcpt="bob@example.com"):
        with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=30) as s:
            s.ehlo("client.test")
            s.mail("alice@example.org")
            s.rcpt(rcpt)
            code, reply = s.data(b"Subject: admin test\r\n\r\nhello\r\n")
            self.assertEqual(code, 250, reply)
        return queued_id_from_reply(reply.decode())

    def wait_attempted(self, queue_id):
        def attempted():
            q = self.json("GET", "/api/queue", 200)
            return any(m["id"] == queue_id and m["attempts"] >= 1 for m in q)
        wait_for(attempted, 30, "%s tried once" % queue_id)

    def metric(self, name):
        status, _, body = self.http("GET", "/metrics")
        self.assertEqual(status, 200)
        for line in body.decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        self.fail("no metric %s in:\n%s" % (name, body.decode()[:2000]))

    # ---------------------------------------------------------------------------------------

    def test_status_codes_and_json_shape(self):
        self.start()
        alive = self.json("GET", "/healthz", 200)
        self.assertTrue(alive["alive"])
        # Nobody listens at the next hop: not ready, and the body names the check.
        ready = self.json("GET", "/readyz", 503)
        self.assertFalse(ready["ready"])
        self.assertEqual(ready["failed"], ["next_hop"], ready)
        self.assertTrue(ready["checks"]["listeners"]["ok"], ready)
        self.assertTrue(ready["checks"]["spool"]["ok"], ready)
        r = mailhop("health", config=self.config_path)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(b"next_hop", r.stdout)

        self.assertEqual(self.json("GET", "/api/queue", 200), [])
        self.assertIn("error", self.json("GET", "/nowhere", 404))
        self.assertIn("error", self.json("GET", "/api/queue/NOT-AN-ID", 400))
        self.assertIn("error", self.json("GET", "/api/queue/0660D559B5529C000000005F12", 404))
        self.assertIn("error", self.json("POST", "/api/queue/0660D559B5529C000000005F12/hold", 404))
        status, headers, body = self.http("PUT", "/api/queue/flush")
        self.assertEqual(status, 405, body)
        self.assertEqual(headers.get("allow"), "POST")
        self.assertIn("error", json.loads(body))
        status, headers, _ = self.http("POST", "/metrics")
        self.assertEqual(status, 405)

        queue_id = self.send()
        self.wait_attempted(queue_id)
        listing = self.json("GET", "/api/queue", 200)
        self.assertEqual(len(listing), 1)
        cli = json.loads(mailhop("queue", "list", "--json", config=self.config_path).stdout)
        self.assertEqual(set(listing[0]), set(cli[0]), "API and CLI objects differ")
        for key in ("id", "sender", "recipients", "size", "arrival", "attempts", "next_attempt",
                    "last_error", "held"):
            self.assertIn(key, listing[0])
        one = self.json("GET", "/api/queue/" + queue_id, 200)
        self.assertEqual(one["id"], queue_id)
        self.assertEqual(one["recipients"][0]["state"], "pending")

        status, headers, body = self.http("GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(headers["content-type"].startswith("text/plain"), headers)
        text = body.decode()
        for name in ("mailhop_messages_received_total", "mailhop_messages_relayed_total",
                     "mailhop_messages_deferred_total", "mailhop_messages_bounced_total",
                     "mailhop_queue_size", "mailhop_queue_oldest_message_age_seconds",
                     "mailhop_delivery_attempt_duration_seconds_bucket",
                     "mailhop_sessions_open", "mailhop_relay_connections_open",
                     "mailhop_spool_commit_duration_seconds_bucket", "mailhop_tls_failures_total",
                     "mailhop_auth_failures_total"):
            self.assertIn(name, text)
        self.assertEqual(self.metric("mailhop_queue_size"), 1)

    def test_held_not_delivered_deleted_gone_metrics_move(self):
        self.start()
        held_id = self.send("held@example.com")
        gone_id = self.send("gone@example.com")
        self.wait_attempted(held_id)
        self.wait_attempted(gone_id)
        received = self.metric("mailhop_messages_received_total")
        self.assertGreaterEqual(received, 2)
        self.assertGreaterEqual(self.metric("mailhop_messages_deferred_total"), 2)

        r = mailhop("queue", "hold", held_id, config=self.config_path)  # through the API
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertTrue(self.json("GET", "/api/queue/" + held_id, 200)["held"])
        self.json("DELETE", "/api/queue/" + gone_id, 200)
        self.json("GET", "/api/queue/" + gone_id, 404)
        self.assertNotIn(gone_id, [m["id"] for m in self.json("GET", "/api/queue", 200)])
        self.assertEqual(self.json("POST", "/api/queue/%s/retry" % held_id, 409).keys(), {"error"})

        # The next hop comes up; a flush sends what is due, never the held message.
        peer = AioPeer(self.relay_port, os.path.join(self.dir, "peer"))
        self.addCleanup(peer.stop)
        relayed = self.metric("mailhop_messages_relayed_total")
        flushed = self.json("POST", "/api/queue/flush", 200)
        self.assertEqual(flushed["due_now"], 0)  # the only message left is held
        fresh_id = self.send("fresh@example.com")
        wait_for(lambda: any("fresh@example.com" in m["rcpt_tos"] for m in peer.messages()), 30,
                 "the fresh message relayed")
        wait_for(lambda: self.metric("mailhop_messages_relayed_total") > relayed, 10, "relayed counter")
        self.assertGreaterEqual(self.metric("mailhop_messages_received_total"), received + 1)
        rcpts = [r for m in peer.messages() for r in m["rcpt_tos"]]
        self.assertNotIn("held@example.com", rcpts)
        self.assertNotIn("gone@example.com", rcpts)
        self.assertTrue(self.json("GET", "/api/queue/" + held_id, 200)["held"])
        self.assertNotIn(fresh_id, [m["id"] for m in self.json("GET", "/api/queue", 200)])

        # Released: delivered at once.
        self.json("POST", "/api/queue/%s/release" % held_id, 200)
        wait_for(lambda: any("held@example.com" in m["rcpt_tos"] for m in peer.messages()), 30,
                 "the released message relayed")
        wait_for(lambda: self.json("GET", "/api/queue", 200) == [], 30, "an empty queue")
        self.json("GET", "/readyz", 200)  # the next hop answers now
        r = mailhop("health", config=self.config_path)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_cli_running_and_stopped(self):
        self.start()
        queue_id = self.send()
        self.wait_attempted(queue_id)
        r = mailhop("queue", "show", queue_id, config=self.config_path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["id"], queue_id)
        r = mailhop("queue", "flush", config=self.config_path)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = mailhop("queue", "hold", "0660D559B5529C000000005F12", config=self.config_path)
        self.assertEqual(r.returncode, 66, r.stderr)
        self.assertEqual(self.daemon.stop(), 0)

        # Stopped: the spool is edited directly.
        r = mailhop("queue", "hold", queue_id, config=self.config_path)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn(b"not running", r.stdout)
        listing = json.loads(mailhop("queue", "list", "--json", config=self.config_path).stdout)
        self.assertTrue(listing[0]["held"])
        self.assertIn(queue_id + "!", mailhop("queue", "list", config=self.config_path).stdout.decode())
        r = mailhop("queue", "flush", config=self.config_path)
        self.assertEqual(r.returncode, 0)
        self.assertIn(b"nothing to flush", r.stdout)
        r = mailhop("health", config=self.config_path)
        self.assertEqual(r.returncode, 1)

        # Held across the restart, with the next hop up: still not delivered.
        peer = AioPeer(self.relay_port, os.path.join(self.dir, "peer"))
        self.addCleanup(peer.stop)
        self.start()
        other = self.send("other@example.com")
        wait_for(lambda: any("other@example.com" in m["rcpt_tos"] for m in peer.messages()), 30,
                 "the other message relayed")
        self.assertEqual([m["id"] for m in self.json("GET", "/api/queue", 200)], [queue_id])
        self.assertNotEqual(other, queue_id)
        self.assertEqual(self.daemon.stop(), 0)
        r = mailhop("queue", "delete", queue_id, config=self.config_path)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(json.loads(mailhop("queue", "list", "--json", config=self.config_path).stdout), [])

    def test_token_required(self):
        token_file = os.path.join(self.dir, "admin-token")
        with open(token_file, "w") as f:
            f.write("correct-horse-battery\n")
        os.chmod(token_file, 0o600)
        self.start({"admin": {"listen": "127.0.0.1:%d" % self.admin_port, "token_file": token_file}})
        status, headers, body = self.http("GET", "/api/queue")
        self.assertEqual(status, 401, body)
        self.assertIn("error", json.loads(body))
        status, _, _ = self.http("GET", "/api/queue", token="correct-horse-batterY")
        self.assertEqual(status, 401)
        self.token = "correct-horse-battery"
        self.json("GET", "/api/queue", 200)
        r = mailhop("queue", "list", "--json", config=self.config_path)  # the CLI reads the file
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_second_daemon_refused_restart_after_kill9(self):
        self.start()
        second_cfg = os.path.join(self.dir, "second.yaml")
        with open(self.config_path) as f:
            text = f.read()
        text = text.replace("127.0.0.1:%d" % self.smtp_port, "127.0.0.1:%d" % free_port())
        text = text.replace("127.0.0.1:%d" % self.admin_port, "127.0.0.1:%d" % free_port())
        with open(second_cfg, "w") as f:
            f.write(text)
        r = mailhop("run", config=second_cfg, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(str(self.daemon.proc.pid).encode(), r.stderr, r.stderr)
        self.assertIn(b"spool", r.stderr)
        self.daemon.kill9()
        self.start()  # the lock died with its process
        self.json("GET", "/healthz", 200)


if __name__ == "__main__":
    main()
