"""PROXY protocol (issue 5) end to end: a raw-socket client plays the load balancer and sends
HAProxy PROXY v1 (TCP4, TCP6, UNKNOWN) and v2 (PROXY over IPv4/IPv6, LOCAL) headers to a
listener with proxy_protocol: true, from 127.0.0.1 (the only trusted proxy). The address the
header claims decides relaying (allowed_networks: 192.0.2.0/24 and 2001:db8:1::/48 only, so the
proxy's own 127.0.0.1 may not relay) and shows in the logs and in the Received: field that
smtp-sink, the next hop, stores. Python's smtplib speaks SMTP on the socket after the header.

Refusals: a header from 127.0.0.2 (not trusted), no header, garbage, a bad v2 version and a
header cut short are all closed without a greeting. A listener without proxy_protocol treats
a PROXY line as an unknown command, as before. TLS: the header comes before the implicit-TLS
handshake, and before the plaintext greeting on a STARTTLS listener.
"""

import os
import smtplib
import socket
import ssl
import struct

from mailhop_e2e import (COMMAND_DEADLINE, E2ETest, SmtpSink, crlf, free_port, main, make_ca, wait_for)

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
INSIDE_V4 = "192.0.2.10"
OUTSIDE_V4 = "198.51.100.7"
INSIDE_V6 = "2001:db8:1::25"
OUTSIDE_V6 = "2001:db8:ffff::1"


def v1(family, source, destination="127.0.0.1", sport=40000, dport=25):
    return ("PROXY %s %s %s %d %d\r\n" % (family, source, destination, sport, dport)).encode()


def v2_proxy(source, destination, sport=40000, dport=25, tlvs=b""):
    if ":" in source:
        family, addresses = 0x21, socket.inet_pton(socket.AF_INET6, source) + socket.inet_pton(socket.AF_INET6, destination)
    else:
        family, addresses = 0x11, socket.inet_aton(source) + socket.inet_aton(destination)
    block = addresses + struct.pack("!HH", sport, dport) + tlvs
    return V2_SIGNATURE + bytes([0x21, family]) + struct.pack("!H", len(block)) + block


def v2_local():
    return V2_SIGNATURE + bytes([0x20, 0x00]) + struct.pack("!H", 0)


def message(subject):
    return crlf("From: app@app.example\nTo: r@example.net\nSubject: %s\n\nbehind a balancer\n" % subject)


class ProxyProtocol(E2ETest):

    def setUp(self):
        super().setUp()
        self.plain_port = free_port()

    def start(self, **extra):
        overrides = {
            "listen": [
                {"address": "127.0.0.1:%d" % self.smtp_port, "tls": "none", "auth": "none", "proxy_protocol": True},
                {"address": "127.0.0.1:%d" % self.plain_port, "tls": "none", "auth": "none"},
            ],
            "trusted_proxies": ["127.0.0.1/32"],
            "allowed_networks": ["192.0.2.0/24", "2001:db8:1::/48"],
        }
        overrides.update(extra)
        self.start_daemon(overrides)

    def sink(self):
        s = SmtpSink(self.relay_port, os.path.join(self.dir, "sink"))
        self.addCleanup(s.stop)
        return s

    def proxied(self, header, source="127.0.0.1", port=None):
        """A connection from `source` that has sent `header` and nothing else."""
        sock = socket.create_connection(("127.0.0.1", port or self.smtp_port), timeout=COMMAND_DEADLINE,
                                        source_address=(source, 0))
        self.addCleanup(sock.close)
        sock.sendall(header)
        return sock

    def smtp_over(self, sock):
        """smtplib on a connected socket whose header is sent: reads the greeting as connect() does."""
        client = smtplib.SMTP(timeout=COMMAND_DEADLINE)
        client.sock = sock
        client._host = "127.0.0.1"
        code, banner = client.getreply()
        self.assertEqual(code, 220, banner.decode() + self.ctx())
        self.addCleanup(client.close)
        return client

    def assert_closed_silently(self, sock, why_in_log):
        """The server closes without sending one byte (no 220, no reply), and logs why."""
        sock.settimeout(COMMAND_DEADLINE)
        try:
            data = sock.recv(4096)
        except ConnectionResetError:
            data = b""
        self.assertEqual(data, b"", "expected a close without a greeting" + self.ctx())
        wait_for(lambda: why_in_log in self.log(), COMMAND_DEADLINE, "log line %r" % why_in_log)

    def rcpt_code(self, header):
        client = self.smtp_over(self.proxied(header))
        client.ehlo("app.example")
        self.assertEqual(client.mail("app@app.example")[0], 250)
        return client.rcpt("r@example.net")

    def relay_through(self, header, subject):
        client = self.smtp_over(self.proxied(header))
        client.ehlo("app.example")
        refused = client.sendmail("app@app.example", ["r@example.net"], message(subject))
        self.assertEqual(refused, {})
        client.quit()

    def delivered(self, sink, subject):
        def arrived():
            for m in sink.messages():
                if ("Subject: %s\r\n" % subject).encode() in m["content"]:
                    return m
            return None
        return wait_for(arrived, 60, "message %r at the sink" % subject)

    def received_field(self, content):
        first = content.split(b"\r\n\r\n", 1)[0]
        start = first.index(b"Received: from app.example")
        end = first.index(b"\r\n", first.index(b"\tby ", start))
        return first[start:end].decode()

    # ---- the real client's address decides, and shows ----

    def test_v1_tcp4_outside_allowed_networks_is_refused_relay(self):
        self.start()
        code, text = self.rcpt_code(v1("TCP4", OUTSIDE_V4))
        self.assertEqual(code, 554, text)
        self.assertIn(b"5.7.1", text)
        log = self.log()
        self.assertIn("connect from unknown[%s] via proxy [127.0.0.1] (PROXY v1" % OUTSIDE_V4, log)
        self.assertIn("reject: RCPT from app.example[%s]" % OUTSIDE_V4, log)

    def test_v1_tcp4_inside_is_relayed_with_the_client_in_received(self):
        sink = self.sink()
        self.start()
        self.relay_through(v1("TCP4", INSIDE_V4, sport=51515), "v1 tcp4")
        received = self.received_field(self.delivered(sink, "v1 tcp4")["content"])
        self.assertIn("(%s [%s])" % (INSIDE_V4, INSIDE_V4), received)
        self.assertNotIn("127.0.0.1", received)
        self.assertIn("disconnect from app.example[%s]" % INSIDE_V4, self.log())

    def test_v1_tcp6_inside_relayed_outside_refused(self):
        sink = self.sink()
        self.start()
        self.relay_through(v1("TCP6", INSIDE_V6, "::1"), "v1 tcp6")
        received = self.received_field(self.delivered(sink, "v1 tcp6")["content"])
        self.assertIn("(%s [IPv6:%s])" % (INSIDE_V6, INSIDE_V6), received)
        code, text = self.rcpt_code(v1("TCP6", OUTSIDE_V6, "::1"))
        self.assertEqual(code, 554, text)

    def test_v2_ipv4_with_tlvs_relayed(self):
        sink = self.sink()
        self.start()
        # PP2_TYPE_AUTHORITY and PP2_TYPE_NOOP: skipped.
        tlvs = b"\x02" + struct.pack("!H", 10) + b"mx.example" + b"\x04\x00\x00"
        self.relay_through(v2_proxy(INSIDE_V4, "127.0.0.1", tlvs=tlvs), "v2 ipv4")
        received = self.received_field(self.delivered(sink, "v2 ipv4")["content"])
        self.assertIn("(%s [%s])" % (INSIDE_V4, INSIDE_V4), received)
        self.assertIn("via proxy [127.0.0.1] (PROXY v2", self.log())

    def test_v2_ipv6_outside_refused_and_inside_relayed(self):
        sink = self.sink()
        self.start()
        code, text = self.rcpt_code(v2_proxy(OUTSIDE_V6, "::1"))
        self.assertEqual(code, 554, text)
        self.relay_through(v2_proxy(INSIDE_V6, "::1"), "v2 ipv6")
        received = self.received_field(self.delivered(sink, "v2 ipv6")["content"])
        self.assertIn("[IPv6:%s]" % INSIDE_V6, received)

    def test_v2_local_and_v1_unknown_keep_the_proxy_address(self):
        # The balancer's health checks: its own connection, so 127.0.0.1 (not in
        # allowed_networks here) is the client, and it may not relay.
        self.start()
        for header, kind in ((v2_local(), "PROXY v2 LOCAL"), (b"PROXY UNKNOWN\r\n", "PROXY v1 UNKNOWN")):
            code, text = self.rcpt_code(header)
            self.assertEqual(code, 554, text)
            self.assertIn("connect from unknown[127.0.0.1] (%s" % kind, self.log())
        self.assertIn("reject: RCPT from app.example[127.0.0.1]", self.log())

    # ---- refusals: closed without a greeting ----

    def test_untrusted_source_closed_without_greeting(self):
        self.start()
        sock = self.proxied(v1("TCP4", INSIDE_V4), source="127.0.0.2")
        self.assert_closed_silently(sock, "connection from [127.0.0.2] refused without a greeting: not in trusted_proxies")
        self.assertNotIn("unknown[%s]" % INSIDE_V4, self.log())

    def test_garbage_and_bad_headers_closed_without_greeting(self):
        self.start()
        cases = (
            (b"EHLO client.example\r\n", "invalid header from [127.0.0.1], closed without a greeting: not a PROXY"),
            (b"PROXY TCP4 192.0.2.010 127.0.0.1 1 25\r\n", "source address is not an IPv4 address"),
            (b"PROXY TCP4 2001:db8:1::25 127.0.0.1 1 25\r\n", "source address is not an IPv4 address"),
            (b"PROXY TCP4 192.0.2.10 127.0.0.1 1 25\n", "bare LF"),
            (V2_SIGNATURE + b"\x11\x11\x00\x0c" + bytes(12), "version 1, not 2"),
            (V2_SIGNATURE + b"\x21\x11\xff\xff", "exceeds the limit"),
        )
        for header, why in cases:
            with self.subTest(header=header):
                self.assert_closed_silently(self.proxied(header), why)

    def test_header_cut_short_times_out_without_greeting(self):
        self.start(limits={"command_timeout": "2s"})
        sock = self.proxied(b"PROXY TCP4 192.0.2.10 ")
        self.assert_closed_silently(sock, "no complete header from [127.0.0.1] before the deadline")

    def test_listener_without_proxy_protocol_treats_proxy_as_a_bad_command(self):
        self.start()
        with smtplib.SMTP("127.0.0.1", self.plain_port, timeout=COMMAND_DEADLINE) as client:
            code, text = client.docmd("PROXY", "TCP4 %s 127.0.0.1 1 25" % INSIDE_V4)
            self.assertEqual(code, 500, text)
            client.ehlo("app.example")
            self.assertEqual(client.mail("app@app.example")[0], 250)
            # The client is 127.0.0.1, whatever the line claimed.
            self.assertEqual(client.rcpt("r@example.net")[0], 554)

    # ---- TLS: the header before the handshake ----

    def test_tls_header_before_implicit_handshake_and_before_starttls(self):
        sink = self.sink()
        certs = make_ca(os.path.join(self.dir, "ca"))
        cert, key = certs["localhost"]
        implicit_port = free_port()
        starttls_port = free_port()
        self.start(listen=[
            {"address": "127.0.0.1:%d" % self.smtp_port, "tls": "none", "auth": "none", "proxy_protocol": True},
            {"address": "127.0.0.1:%d" % implicit_port, "tls": "implicit", "auth": "none", "proxy_protocol": True},
            {"address": "127.0.0.1:%d" % starttls_port, "tls": "starttls", "auth": "none", "proxy_protocol": True},
        ], tls={"cert_file": cert, "key_file": key})
        ctx = ssl.create_default_context(cafile=certs["ca"])

        # Implicit TLS (RFC 8314): the header in plaintext, then the handshake.
        sock = self.proxied(v2_proxy(INSIDE_V4, "127.0.0.1"), port=implicit_port)
        client = self.smtp_over(ctx.wrap_socket(sock, server_hostname="localhost"))
        client.ehlo("app.example")
        self.assertEqual(client.sendmail("app@app.example", ["r@example.net"], message("implicit tls")), {})
        client.quit()

        # STARTTLS: the header, the plaintext greeting and EHLO, then TLS; the client stays the proxied one.
        client = self.smtp_over(self.proxied(v1("TCP4", "192.0.2.11"), port=starttls_port))
        client.ehlo("app.example")
        code, text = client.starttls(context=ctx)
        self.assertEqual(code, 220, text)
        client.ehlo("app.example")
        self.assertEqual(client.sendmail("app@app.example", ["r@example.net"], message("starttls")), {})
        client.quit()

        for subject, address in (("implicit tls", INSIDE_V4), ("starttls", "192.0.2.11")):
            received = self.delivered(sink, subject)["content"]
            self.assertIn(("(%s [%s])" % (address, address)).encode(), received)
            self.assertIn(b"(using TLS", received)


if __name__ == "__main__":
    main()
