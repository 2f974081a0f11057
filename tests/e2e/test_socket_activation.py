"""Socket activation (issue 5, "systemd": systemd/mailhop.socket): started the way systemd starts a
socket-activated service (a listening socket as fd 3, LISTEN_FDS=1, LISTEN_PID its own pid,
LISTEN_FDNAMES), `mailhop run` adopts the socket for the listen entry with its address, binds
the other entries itself, and relays what smtplib sends through the passed socket to a sink; a
passed socket whose address no listen entry names is a configuration error (exit 78) that names
the address.

This test plays systemd: it binds and listens itself, and keeps its own copy of the socket open,
so a daemon that tried to bind the address instead of adopting it would fail (address in use).
"""

import os
import smtplib
import socket
import subprocess

from mailhop_e2e import (COMMAND_DEADLINE, DELIVERY_DEADLINE, EX_CONFIG, MAILHOP_BIN, START_DEADLINE, E2ETest,
                         MailhopSink, crlf, free_port, main, port_accepts, stop_process, wait_for)

# `sh` sets LISTEN_PID to its own pid ($$), then becomes mailhop (exec keeps the pid).
WRAPPER = 'LISTEN_PID=$$ exec "$0" "$@"'


class SocketActivation(E2ETest):

    def passed_socket(self, port):
        """A listening socket on 127.0.0.1:port, as a .socket unit would hold it."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen(16)
        self.addCleanup(s.close)
        return s

    def activate(self, sock):
        """`mailhop run` with `sock` as fd 3 and the LISTEN_* variables; its log in self.log_path."""
        fd = sock.fileno()

        def as_fd_3():  # in the child, before exec
            if fd == 3:
                os.set_inheritable(3, True)
            else:
                os.dup2(fd, 3, inheritable=True)

        env = dict(os.environ, LISTEN_FDS="1", LISTEN_FDNAMES="mailhop.socket")
        env.pop("LISTEN_PID", None)
        self.log_path = os.path.join(self.dir, "mailhop.log")
        log = open(self.log_path, "ab")
        self.addCleanup(log.close)
        proc = subprocess.Popen(["/bin/sh", "-c", WRAPPER, MAILHOP_BIN, "run", "-c", self.config_path],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                                close_fds=False, preexec_fn=as_fd_3)
        self.addCleanup(stop_process, proc)
        return proc

    def daemon_log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def test_adopts_the_passed_socket_and_relays_through_it(self):
        sink = MailhopSink(self.relay_port, os.path.join(self.dir, "sink"), os.path.join(self.dir, "sink.log"))
        self.addCleanup(sink.stop)
        other_port = free_port()  # a second listen entry, not passed: bound by mailhop itself
        self.write_config({"listen": [
            {"address": "127.0.0.1:%d" % self.smtp_port, "tls": "none", "auth": "none"},
            {"address": "127.0.0.1:%d" % other_port, "tls": "none", "auth": "none"}]})
        passed = self.passed_socket(self.smtp_port)
        proc = self.activate(passed)
        wait_for(lambda: proc.poll() is not None or "started; listening on" in self.daemon_log(), START_DEADLINE,
                 "the daemon started")
        self.assertIsNone(proc.poll(), self.daemon_log())
        log = self.daemon_log()
        self.assertIn("listen 127.0.0.1:%d: the socket passed by the service manager (fd 3, mailhop.socket)"
                      % self.smtp_port, log)
        self.assertIn("listening on 127.0.0.1:%d, 127.0.0.1:%d" % (self.smtp_port, other_port), log)
        self.assertTrue(port_accepts(other_port), log)

        content = crlf("From: app@app.example\nTo: r@example.net\nSubject: activated\n"
                       "Message-ID: <activated@client.test>\n\nthrough the passed socket\n")
        with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=COMMAND_DEADLINE) as s:
            self.assertEqual(s.sendmail("app@app.example", ["r@example.net"], content), {})
        wait_for(lambda: len(sink.messages()) == 1, DELIVERY_DEADLINE, "the message at the sink")
        self.assertIn(b"Message-ID: <activated@client.test>", sink.messages()[0])
        self.assertEqual(stop_process(proc), 0, self.daemon_log())

    def test_a_passed_socket_no_listen_entry_names_is_a_configuration_error(self):
        self.write_config()  # listens on self.smtp_port only
        stray_port = free_port()
        proc = self.activate(self.passed_socket(stray_port))
        try:
            status = proc.wait(timeout=START_DEADLINE)
        except subprocess.TimeoutExpired:
            self.fail("the daemon did not exit:\n" + self.daemon_log())
        log = self.daemon_log()
        self.assertEqual(status, EX_CONFIG, log)
        self.assertIn("the socket passed by the service manager on 127.0.0.1:%d (fd 3) matches no listen entry"
                      % stray_port, log)
        self.assertFalse(port_accepts(self.smtp_port), "a listener was bound despite the error")


if __name__ == "__main__":
    main()
