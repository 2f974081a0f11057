// STARTTLS in a real Session with an OpenSSL client over the same socket: the injection test
// (CVE-2011-0411: a command sent with STARTTLS, before the handshake, is never executed), the
// session starting over after TLS (EHLO again, STARTTLS no longer offered, 503 if asked), and
// implicit TLS and the certificate reload are covered end to end (tests/e2e/test_trust.py).
#include <openssl/ssl.h>

#include <cstdlib>

#include "harness.hpp"

using namespace mailhop;
using namespace mailhop::server::test;

namespace {

struct CertFiles {
  TempDir dir;
  std::string cert, key;
  CertFiles() {
    cert = (dir.path / "c.pem").string();
    key = (dir.path / "c.key").string();
    auto cmd = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=mx.test "
               "-keyout " + key + " -out " + cert + " 2>/dev/null";
    REQUIRE(std::system(cmd.c_str()) == 0);
  }
};

// A blocking TLS client on a connected socket; reads have the socket's receive timeout.
struct TlsClient {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL* ssl = nullptr;
  int fd;
  explicit TlsClient(int fd_) : fd(fd_) {
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
  }
  ~TlsClient() {
    SSL_free(ssl);
    SSL_CTX_free(ctx);
  }
  bool handshake() { return SSL_connect(ssl) == 1; }
  void send(const std::string& s) { REQUIRE(SSL_write(ssl, s.data(), static_cast<int>(s.size())) > 0); }
  std::string line() {
    std::string out;
    char c;
    while (SSL_read(ssl, &c, 1) == 1) {
      if (c == '\n') return out;
      if (c != '\r') out += c;
    }
    return out + "<eof>";
  }
};

// Raw plaintext helpers on the fd (the harness Client buffers, so it is not used here).
std::string raw_line(int fd) {
  std::string out;
  char c;
  while (::recv(fd, &c, 1, 0) == 1) {
    if (c == '\n') return out;
    if (c != '\r') out += c;
  }
  return out + "<eof>";
}

}  // namespace

TEST_CASE("STARTTLS: pipelined plaintext after it is discarded, and the session starts over", "[tls]") {
  CertFiles files;
  SessionHarness h;
  h.listener.tls = config::ListenerTls::starttls;
  h.tls = std::make_shared<tls::ServerContextHolder>(files.cert, files.key);
  auto c = h.connect();
  const int fd = c.fd();
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  CHECK(raw_line(fd) == "220 mx.test ESMTP mailhop");
  c.send("EHLO client.test\r\n");
  std::string ehlo;
  for (std::string l = raw_line(fd);; l = raw_line(fd)) {
    ehlo += l + "\n";
    if (l.size() < 4 || l[3] != '-') break;
  }
  CHECK(ehlo.find("250-STARTTLS") != std::string::npos);
  c.send("STARTTLS\r\nRSET\r\n");  // one write: the RSET must not run
  CHECK(raw_line(fd) == "220 2.0.0 Ready to start TLS");

  TlsClient t(fd);
  REQUIRE(t.handshake());
  t.send("MAIL FROM:<a@example.org>\r\n");  // the session started over: EHLO first
  CHECK(t.line() == "503 5.5.1 Bad sequence of commands: send HELO or EHLO first");
  t.send("EHLO client.test\r\n");
  std::string again;
  for (std::string l = t.line();; l = t.line()) {
    again += l + "\n";
    if (l.size() < 4 || l[3] != '-') break;
  }
  CHECK(again.rfind("250-mx.test\n", 0) == 0);
  CHECK(again.find("STARTTLS") == std::string::npos);
  t.send("STARTTLS\r\n");
  CHECK(t.line() == "503 5.5.1 Bad sequence of commands: TLS already active");
  t.send("QUIT\r\n");
  CHECK(t.line() == "221 2.0.0 Bye");
}

TEST_CASE("STARTTLS is refused where it is not configured", "[tls]") {
  SessionHarness h;
  auto c = h.greeted();
  c.send("STARTTLS\r\n");
  CHECK(c.reply() == "502 5.5.1 STARTTLS not available on this port");
  c.send("STARTTLS now\r\n");
  CHECK(c.reply() == "501 5.5.4 Syntax: STARTTLS takes no argument");
}
