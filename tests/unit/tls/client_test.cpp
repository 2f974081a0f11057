// The relay client's TLS set-up against a real handshake on 127.0.0.1: a CA and a server
// certificate made here with OpenSSL (DNS:localhost, IP:127.0.0.1), then name checks for a DNS
// name and for an IP address, SNI only for names, verify: false, and an untrusted CA.
#include <catch2/catch.hpp>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "mailhop/tls/client.hpp"

using namespace mailhop;
namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using asio::awaitable;
using asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

struct Key {
  EVP_PKEY* p = EVP_EC_gen("P-256");
  ~Key() { EVP_PKEY_free(p); }
};

struct Cert {
  X509* x = X509_new();
  ~Cert() { X509_free(x); }
};

void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  REQUIRE(ext);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

void make_cert(Cert& c, Key& key, const char* cn, X509* issuer, EVP_PKEY* issuer_key, long serial, bool ca,
               const char* san) {
  X509_set_version(c.x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(c.x), serial);
  X509_gmtime_adj(X509_getm_notBefore(c.x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(c.x), 3600 * 24);
  X509_NAME* name = X509_get_subject_name(c.x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn), -1, -1, 0);
  X509_set_issuer_name(c.x, issuer ? X509_get_subject_name(issuer) : name);
  X509_set_pubkey(c.x, key.p);
  X509* signer = issuer ? issuer : c.x;
  if (ca) {
    add_ext(c.x, signer, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(c.x, signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_ext(c.x, signer, NID_basic_constraints, "CA:FALSE");
    add_ext(c.x, signer, NID_ext_key_usage, "serverAuth");
    add_ext(c.x, signer, NID_subject_alt_name, san);
  }
  REQUIRE(X509_sign(c.x, issuer_key ? issuer_key : key.p, EVP_sha256()) > 0);
}

// One CA, one server certificate for DNS:localhost and IP:127.0.0.1; the CA in a PEM file.
struct Pki {
  Key ca_key, server_key;
  Cert ca, server;
  std::filesystem::path ca_file =
      std::filesystem::temp_directory_path() / ("mailhop-tls-test-ca-" + std::to_string(::getpid()) + ".pem");
  Pki() {
    make_cert(ca, ca_key, "mailhop test CA", nullptr, nullptr, 1, true, nullptr);
    make_cert(server, server_key, "localhost", ca.x, ca_key.p, 2, false, "DNS:localhost,IP:127.0.0.1");
    FILE* f = std::fopen(ca_file.c_str(), "w");
    REQUIRE(f);
    PEM_write_X509(f, ca.x);
    std::fclose(f);
  }
  ~Pki() { std::filesystem::remove(ca_file); }
};

struct Outcome {
  bool client_ok = false;
  std::string client_error;   // describe_handshake_error() when it failed
  std::string sni;            // what the server saw ("" when none)
};

// One handshake: a TLS server on 127.0.0.1 with the test certificate, and the relay client's
// context and per-connection set-up for `host`.
Outcome handshake(Pki& pki, const config::Relay& relay, const std::string& host) {
  asio::io_context io;
  ssl::context server_ctx(ssl::context::tls_server);
  SSL_CTX_use_certificate(server_ctx.native_handle(), pki.server.x);
  SSL_CTX_use_PrivateKey(server_ctx.native_handle(), pki.server_key.p);
  tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  auto client_ctx = tls::make_client_context(relay);
  Outcome out;

  asio::co_spawn(io, [&]() -> awaitable<void> {
    auto [ec, socket] = co_await acceptor.async_accept(use_tuple);
    if (ec) co_return;
    ssl::stream<tcp::socket> stream(std::move(socket), server_ctx);
    auto [hec] = co_await stream.async_handshake(ssl::stream_base::server, use_tuple);
    const char* name = SSL_get_servername(stream.native_handle(), TLSEXT_NAMETYPE_host_name);
    out.sni = name ? name : "";
    (void)hec;
  }, asio::detached);

  asio::co_spawn(io, [&]() -> awaitable<void> {
    ssl::stream<tcp::socket> stream(io, *client_ctx);
    auto [cec] = co_await stream.next_layer().async_connect(acceptor.local_endpoint(), use_tuple);
    if (cec) co_return;
    if (!tls::prepare_client_connection(stream.native_handle(), host, relay.verify)) co_return;
    auto [hec] = co_await stream.async_handshake(ssl::stream_base::client, use_tuple);
    out.client_ok = !hec;
    if (hec) out.client_error = tls::describe_handshake_error(stream.native_handle(), hec.message());
  }, asio::detached);

  io.run_for(10s);
  return out;
}

}  // namespace

TEST_CASE("tls client: a DNS name is verified and sent as SNI", "[tls]") {
  Pki pki;
  config::Relay relay;
  relay.ca_file = pki.ca_file.string();
  auto ok = handshake(pki, relay, "localhost");
  CHECK(ok.client_ok);
  CHECK(ok.sni == "localhost");

  auto other = handshake(pki, relay, "other.example");
  CHECK(!other.client_ok);
  CHECK(other.client_error == "certificate verify failed: hostname mismatch");
}

TEST_CASE("tls client: an IP address is checked against the IP SANs, without SNI", "[tls]") {
  Pki pki;
  config::Relay relay;
  relay.ca_file = pki.ca_file.string();
  auto ok = handshake(pki, relay, "127.0.0.1");
  CHECK(ok.client_ok);
  CHECK(ok.sni.empty());  // RFC 6066 §3: no literal addresses in SNI

  auto wrong = handshake(pki, relay, "127.0.0.2");  // the handshake still goes to 127.0.0.1
  CHECK(!wrong.client_ok);
  CHECK(wrong.client_error == "certificate verify failed: IP address mismatch");
}

TEST_CASE("tls client: a CA that is not trusted is refused; verify: false accepts anything", "[tls]") {
  Pki pki;
  config::Relay system_store;  // no ca_file: the system store, which does not know the test CA
  auto refused = handshake(pki, system_store, "localhost");
  CHECK(!refused.client_ok);
  CHECK(refused.client_error.starts_with("certificate verify failed: "));

  config::Relay unverified;
  unverified.verify = false;
  auto accepted = handshake(pki, unverified, "other.example");
  CHECK(accepted.client_ok);
}

TEST_CASE("tls client: a missing ca_file is a start-up error naming it", "[tls]") {
  config::Relay relay;
  relay.ca_file = "/nonexistent/mailhop-ca.pem";
  try {
    tls::make_client_context(relay);
    FAIL("no exception");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find("/nonexistent/mailhop-ca.pem") != std::string::npos);
  }
}

TEST_CASE("tls client: IP literals", "[tls]") {
  CHECK(tls::is_ip_literal("127.0.0.1"));
  CHECK(tls::is_ip_literal("::1"));
  CHECK(!tls::is_ip_literal("localhost"));
  CHECK(!tls::is_ip_literal("smtp.example.com"));
}
