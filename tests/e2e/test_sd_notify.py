"""systemd's notify protocol (issue 5, systemd/mailhop.service is Type=notify): the daemon, started
with NOTIFY_SOCKET pointing at a datagram socket this test holds, sends READY=1 only once its
port accepts, RELOADING=1 then READY=1 around SIGHUP, and STOPPING=1 on SIGTERM.
"""

import os
import signal
import socket

from mailhop_e2e import E2ETest, main, port_accepts, wait_for, START_DEADLINE


class SdNotify(E2ETest):

    def setUp(self):
        super().setUp()
        self.sock_path = os.path.join(self.dir, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.sock_path)
        self.sock.settimeout(START_DEADLINE)
        self.addCleanup(self.sock.close)

    def receive(self):
        """The next datagram, as a dict of its KEY=VALUE lines."""
        data = self.sock.recv(4096).decode()
        return dict(line.split("=", 1) for line in data.splitlines() if "=" in line)

    def test_ready_reloading_stopping(self):
        env = dict(os.environ, NOTIFY_SOCKET=self.sock_path)
        daemon = self.start_daemon(wait=False, env=env)
        ready = self.receive()
        self.assertEqual(ready.get("READY"), "1", ready)
        # READY=1 is a promise that the listener accepts: checked right when it arrives.
        self.assertTrue(port_accepts(self.smtp_port), "READY=1 came before the port accepted")
        self.assertIn("listening on 127.0.0.1:%d" % self.smtp_port, ready.get("STATUS", ""))

        daemon.proc.send_signal(signal.SIGHUP)
        self.assertEqual(self.receive().get("RELOADING"), "1")
        self.assertEqual(self.receive().get("READY"), "1")

        daemon.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.receive().get("STOPPING"), "1")
        wait_for(lambda: daemon.proc.poll() is not None, START_DEADLINE, "the daemon to exit")
        self.assertEqual(daemon.proc.returncode, 0, daemon.tail())


if __name__ == "__main__":
    main()
