// The users file and password hashes for inbound AUTH (server/credentials.hpp): the KDFs
// against published test vectors, PHC strings made elsewhere, parsing with line numbers, the
// sender restriction, and unknown users.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "mailhop/server/credentials.hpp"

using namespace mailhop::server;

namespace {

std::string hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

// Made with Python's hashlib (scrypt and pbkdf2_hmac), salt "mailhop-salt-16b", password
// "correct horse": the format is what other tools write.
constexpr const char* kScryptHorse =
    "$scrypt$ln=10,r=8,p=1$bWFpbGhvcC1zYWx0LTE2Yg$A/0C5RUDdkX3l+kdQr2SEqjqv9otOrgBsgEF/pDC//E";
constexpr const char* kPbkdf2Horse =
    "$pbkdf2-sha256$i=100000$bWFpbGhvcC1zYWx0LTE2Yg$bCAYHdbSL2LW3PJsGE1lpRM107Ht6P8HQa8UBn9tu4s";

UsersFile load_ok(std::string_view text) {
  auto r = UsersFile::parse(text, "users");
  for (const auto& e : r.errors) UNSCOPED_INFO(e.to_string());
  REQUIRE(r.errors.empty());
  REQUIRE(r.users);
  return std::move(*r.users);
}

std::vector<std::string> errors_of(std::string_view text) {
  auto r = UsersFile::parse(text, "users");
  CHECK_FALSE(r.users);
  std::vector<std::string> out;
  for (const auto& e : r.errors) out.push_back(e.to_string());
  return out;
}

}  // namespace

TEST_CASE("scrypt: the test vectors of RFC 7914 section 12", "[credentials][kdf]") {
  CHECK(hex(derive_scrypt("", "", 16, 1, 1, 64)) ==
        "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442"
        "fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906");
  CHECK(hex(derive_scrypt("password", "NaCl", 1024, 8, 16, 64)) ==
        "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162"
        "2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640");
  CHECK(hex(derive_scrypt("pleaseletmein", "SodiumChloride", 16384, 8, 1, 64)) ==
        "7023bdcb3afd7348461c06cd81fd38ebfda8fbba904f8e3ea9b543f6545da1f2"
        "d5432955613f0fcf62d49705242a9af9e61e85dc0d651e40dfcf017b45575887");
}

TEST_CASE("PBKDF2-HMAC-SHA256: RFC 7914 section 11 and the RFC 6070 inputs", "[credentials][kdf]") {
  CHECK(hex(derive_pbkdf2_sha256("passwd", "salt", 1, 64)) ==
        "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
        "49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783");
  CHECK(hex(derive_pbkdf2_sha256("Password", "NaCl", 80000, 64)) ==
        "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56"
        "a1d425a1225833549adb841b51c9b3176a272bdebba1d078478f62b397f33c8d");
  CHECK(hex(derive_pbkdf2_sha256("password", "salt", 1, 32)) ==
        "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b");
  CHECK(hex(derive_pbkdf2_sha256("password", "salt", 2, 32)) ==
        "ae4d0c95af6b46d32d0adff928f06dd02a303f8ef3c251dfd6e2d85a95474c43");
  CHECK(hex(derive_pbkdf2_sha256("password", "salt", 4096, 32)) ==
        "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a");
}

TEST_CASE("PHC strings made by another tool verify", "[credentials][phc]") {
  CHECK(check_hash(kScryptHorse).empty());
  CHECK(check_hash(kPbkdf2Horse).empty());
  CHECK(verify_hash(kScryptHorse, "correct horse"));
  CHECK(verify_hash(kPbkdf2Horse, "correct horse"));
  CHECK_FALSE(verify_hash(kScryptHorse, "correct horsE"));
  CHECK_FALSE(verify_hash(kPbkdf2Horse, "correct hors"));
  CHECK_FALSE(verify_hash(kScryptHorse, ""));
}

TEST_CASE("make_hash: a salted PHC string that verifies; a wrong password does not", "[credentials][phc]") {
  auto a = make_hash("s3cret pass");
  CHECK(a.starts_with("$scrypt$ln=15,r=8,p=1$"));
  CHECK(check_hash(a).empty());
  CHECK(a.find("s3cret") == std::string::npos);
  CHECK(verify_hash(a, "s3cret pass"));
  CHECK_FALSE(verify_hash(a, "s3cret pasS"));
  CHECK_FALSE(verify_hash(a, "s3cret pass "));
  // A fresh salt each time: the same password never gives the same string.
  auto b = make_hash("s3cret pass");
  CHECK(a != b);
  CHECK(verify_hash(b, "s3cret pass"));

  HashParams pbkdf2;
  pbkdf2.kdf = Kdf::pbkdf2_sha256;
  auto c = make_hash("s3cret pass", pbkdf2);
  CHECK(c.starts_with("$pbkdf2-sha256$i=600000$"));
  CHECK(verify_hash(c, "s3cret pass"));
  CHECK_FALSE(verify_hash(c, "wrong"));
}

TEST_CASE("check_hash: malformed or unbounded hashes are refused, without quoting them", "[credentials][phc]") {
  const std::string salt = "bWFpbGhvcC1zYWx0LTE2Yg", hash = "A/0C5RUDdkX3l+kdQr2SEqjqv9otOrgBsgEF/pDC//E";
  for (std::string bad : {
           std::string("plaintext"),
           std::string("$scrypt$ln=10,r=8,p=1$") + salt,                        // no hash
           "$bcrypt$ln=10,r=8,p=1$" + salt + "$" + hash,                         // unknown algorithm
           "$scrypt$r=8,ln=10,p=1$" + salt + "$" + hash,                         // parameter order
           "$scrypt$ln=30,r=8,p=1$" + salt + "$" + hash,                         // 2^30: too much memory
           "$scrypt$ln=9,r=8,p=1$" + salt + "$" + hash,                          // too cheap
           "$scrypt$ln=10,r=8,p=0$" + salt + "$" + hash,
           "$scrypt$ln=010,r=8,p=1$" + salt + "$" + hash,                        // leading zero
           "$pbkdf2-sha256$i=1000$" + salt + "$" + hash,                         // too few iterations
           "$pbkdf2-sha256$i=4294967296$" + salt + "$" + hash,                   // overflow
           "$scrypt$ln=10,r=8,p=1$" + salt + "==$" + hash,                       // padding
           "$scrypt$ln=10,r=8,p=1$" + salt + "$" + hash + "!",                   // not base64
           "$scrypt$ln=10,r=8,p=1$YWJj$" + hash,                                 // 3-byte salt
           "$scrypt$ln=10,r=8,p=1$" + salt + "$YWJjZGVm",                        // 6-byte hash
       }) {
    INFO(bad);
    auto why = check_hash(bad);
    CHECK_FALSE(why.empty());
    CHECK(why.find(salt) == std::string::npos);
    CHECK_FALSE(verify_hash(bad, "correct horse"));
  }
}

TEST_CASE("users file: comments, blank lines, CRLF, senders; verify and unknown users", "[credentials][file]") {
  auto users = load_ok(std::string("# mailhop users\n\n") + "alice:" + kScryptHorse + "\r\n" +
                       "  # indented comment\n" + "app@example.org:" + kPbkdf2Horse +
                       ":billing@example.org, @Example.NET ,<>\n" + "bob:" + kScryptHorse + ":\n");
  CHECK(users.size() == 3);
  CHECK(users.contains("alice"));
  CHECK(users.contains("app@example.org"));
  CHECK_FALSE(users.contains("Alice"));  // user names are exact
  CHECK(users.verify("alice", "correct horse"));
  CHECK(users.verify("app@example.org", "correct horse"));
  CHECK_FALSE(users.verify("alice", "wrong horse"));
  CHECK_FALSE(users.verify("Alice", "correct horse"));
  CHECK_FALSE(users.verify("mallory", "correct horse"));
  CHECK_FALSE(users.verify("", ""));
}

TEST_CASE("users file: an unknown user costs a derivation too", "[credentials][file]") {
  // Both paths derive a key with the same parameters (ln=10 here, to keep the test fast); an
  // early return for unknown users would be orders of magnitude faster than a derivation.
  auto users = load_ok(std::string("alice:") + kScryptHorse + "\n");
  using clock = std::chrono::steady_clock;
  auto time = [&](std::string_view user) {
    auto best = clock::duration::max();
    for (int i = 0; i < 9; ++i) {  // the fastest of 9: scheduling noise only adds time
      auto t0 = clock::now();
      CHECK_FALSE(users.verify(user, "wrong"));
      best = std::min(best, clock::now() - t0);
    }
    return best;
  };
  auto known = time("alice"), unknown = time("nobody");
  using ms = std::chrono::duration<double, std::milli>;
  INFO("known " << ms(known).count() << " ms, unknown " << ms(unknown).count() << " ms");
  // A loose bound (a loaded machine is noisy); an early return would be ~1000 times faster.
  CHECK(unknown * 5 > known);
  CHECK(known * 5 > unknown);
}

TEST_CASE("users file: the senders field", "[credentials][senders]") {
  auto users = load_ok(std::string("any:") + kScryptHorse + "\n" + "empty:" + kScryptHorse + ":\n" +
                       "app:" + kScryptHorse + ":billing@example.org,@Example.NET\n" + "bounces:" +
                       kScryptHorse + ":<>,noreply@example.org\n");
  // No field or an empty one: any sender.
  CHECK(users.may_send_as("any", "whoever@anywhere.example"));
  CHECK(users.may_send_as("any", ""));
  CHECK(users.may_send_as("empty", "ceo@example.org"));
  // One address: the local part exactly, the domain in any case.
  CHECK(users.may_send_as("app", "billing@example.org"));
  CHECK(users.may_send_as("app", "billing@EXAMPLE.org"));
  CHECK_FALSE(users.may_send_as("app", "Billing@example.org"));
  CHECK_FALSE(users.may_send_as("app", "ceo@example.org"));
  CHECK_FALSE(users.may_send_as("app", "billing@example.org.evil.example"));
  // A whole domain, not its subdomains, not a lookalike.
  CHECK(users.may_send_as("app", "anyone@example.net"));
  CHECK(users.may_send_as("app", "x@EXAMPLE.NET"));
  CHECK_FALSE(users.may_send_as("app", "x@sub.example.net"));
  CHECK_FALSE(users.may_send_as("app", "x@badexample.net"));
  CHECK_FALSE(users.may_send_as("app", "example.net"));
  // The null sender only when listed as <>.
  CHECK_FALSE(users.may_send_as("app", ""));
  CHECK(users.may_send_as("bounces", ""));
  CHECK(users.may_send_as("bounces", "noreply@example.org"));
  CHECK_FALSE(users.may_send_as("bounces", "billing@example.org"));
  // Unknown users send as nobody.
  CHECK_FALSE(users.may_send_as("mallory", "billing@example.org"));
}

TEST_CASE("users file: every error with its line, never a hash or the line's text", "[credentials][file]") {
  const std::string h = kScryptHorse;
  auto errors = errors_of("# users\n"                                    // 1
                          "alice:" + h + "\n" +                          // 2
                          "just one field secretpassword\n" +            // 3
                          "alice:" + h + "\n" +                          // 4
                          "bad user:" + h + "\n" +                       // 5
                          "carol:" + h.substr(0, h.size() - 6) + "\n" +  // 6 (hash too short)
                          "dave:$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA\n" +  // 7
                          "erin:" + h + ":not-an-address\n" +            // 8
                          "frank:" + h + ":a@example.org,,b@example.org\n" +  // 9
                          "gina:" + h + ":x:y\n" +                       // 10
                          "\n"
                          "harry:" + h + "\n");                          // 12 fine
  REQUIRE(errors.size() == 8);
  CHECK(errors[0] == "users:3: expected user:hash or user:hash:senders");
  CHECK(errors[1] == "users:4: user alice listed twice (first on line 2)");
  CHECK(errors[2].starts_with("users:5: bad user name"));
  CHECK(errors[3].starts_with("users:6: user carol: "));
  CHECK(errors[4] == "users:7: user dave: unknown hash algorithm (scrypt or pbkdf2-sha256 expected)");
  CHECK(errors[5].starts_with("users:8: user erin: bad address in the senders list"));
  CHECK(errors[6] == "users:9: user frank: empty entry in the senders list");
  CHECK(errors[7] == "users:10: expected user:hash or user:hash:senders");
  for (const auto& e : errors) {
    INFO(e);
    CHECK(e.find("secretpassword") == std::string::npos);
    CHECK(e.find("bWFpbGhvcC1zYWx0LTE2Yg") == std::string::npos);  // the salt
    CHECK(e.find("A/0C5RUD") == std::string::npos);                // the hash
    CHECK(e.find("c2FsdA") == std::string::npos);
  }
}

TEST_CASE("users file: an empty file is valid and admits nobody", "[credentials][file]") {
  auto users = load_ok("# nobody yet\n");
  CHECK(users.size() == 0);
  CHECK_FALSE(users.verify("alice", "correct horse"));
  CHECK_FALSE(users.may_send_as("alice", "a@example.org"));
}

TEST_CASE("users file: load() names a missing file and warns about one every user can read", "[credentials][file]") {
  auto missing = UsersFile::load("/nonexistent/mailhop-users");
  CHECK_FALSE(missing.users);
  REQUIRE(missing.errors.size() == 1);
  CHECK(missing.errors[0].to_string() == "/nonexistent/mailhop-users: cannot read the users file");

  auto path = std::filesystem::temp_directory_path() / ("mailhop-users-" + std::to_string(::getpid()));
  {
    std::ofstream out(path);
    out << "alice:" << kScryptHorse << "\n";
  }
  std::filesystem::permissions(path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
                                         std::filesystem::perms::others_read);
  auto loaded = UsersFile::load(path.string());
  REQUIRE(loaded.users);
  CHECK(loaded.users->verify("alice", "correct horse"));
  REQUIRE(loaded.warnings.size() == 1);
  CHECK(loaded.warnings[0].message.find("readable by every user") != std::string::npos);

  std::filesystem::permissions(path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  CHECK(UsersFile::load(path.string()).warnings.empty());
  std::filesystem::remove(path);
}
