// The server's TLS context: loading a certificate and key made at test time with the openssl
// command, the errors for a missing file or a key that does not match, and reload() keeping
// the old context when the new files are broken.
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <boost/asio/ssl/context.hpp>
#include <catch2/catch.hpp>

#include "mailhop/tls/server_context.hpp"

using mailhop::tls::ServerContextHolder;
using mailhop::tls::make_server_context;

namespace {

struct Files {
  std::filesystem::path dir;
  Files() {
    char name[] = "/tmp/mailhop-tls-server-XXXXXX";
    REQUIRE(::mkdtemp(name) != nullptr);
    dir = name;
  }
  ~Files() {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }
  // A self-signed EC certificate `name`.pem with its key `name`.key.
  void make(const std::string& name) {
    auto cmd = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=" +
               name + " -keyout " + (dir / (name + ".key")).string() + " -out " + (dir / (name + ".pem")).string() +
               " 2>/dev/null";
    REQUIRE(std::system(cmd.c_str()) == 0);
  }
  std::string path(const std::string& file) const { return (dir / file).string(); }
};

}  // namespace

TEST_CASE("a certificate and its key load", "[server_context]") {
  Files f;
  f.make("a");
  auto ctx = make_server_context(f.path("a.pem"), f.path("a.key"));
  REQUIRE(ctx);
  CHECK(SSL_CTX_get_min_proto_version(ctx->native_handle()) == TLS1_2_VERSION);
}

TEST_CASE("missing files and a foreign key are refused with the file named", "[server_context]") {
  Files f;
  f.make("a");
  f.make("b");
  CHECK_THROWS_WITH(make_server_context(f.path("none.pem"), f.path("a.key")),
                    Catch::Contains("tls.cert_file") && Catch::Contains("none.pem"));
  CHECK_THROWS_WITH(make_server_context(f.path("a.pem"), f.path("none.key")), Catch::Contains("tls.key_file"));
  CHECK_THROWS_WITH(make_server_context(f.path("a.pem"), f.path("b.key")), Catch::Contains("does not match"));
}

TEST_CASE("reload swaps in new files and keeps the old context when they are broken", "[server_context]") {
  Files f;
  f.make("a");
  f.make("b");
  std::filesystem::copy_file(f.path("a.pem"), f.path("cur.pem"));
  std::filesystem::copy_file(f.path("a.key"), f.path("cur.key"));
  ServerContextHolder holder(f.path("cur.pem"), f.path("cur.key"));
  auto first = holder.current();

  std::filesystem::copy_file(f.path("b.pem"), f.path("cur.pem"), std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(f.path("b.key"), f.path("cur.key"), std::filesystem::copy_options::overwrite_existing);
  CHECK_FALSE(holder.reload());
  auto second = holder.current();
  CHECK(second != first);
  CHECK(first);  // a session holding the old context keeps it

  std::ofstream(f.path("cur.pem")) << "-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n";
  auto why = holder.reload();
  REQUIRE(why);
  CHECK(why->find("tls.cert_file") != std::string::npos);
  CHECK(holder.current() == second);
}
