// The users who may AUTH to mailhop's listeners (RFC 4954): the users file named by
// `auth.users_file`, password hashes in PHC string format, and the per-user sender restriction.
//
// The users file: one user per line, `#` comments and blank lines allowed,
//
//     user:hash[:senders]
//
// - user: 1 to 255 bytes, no ':', no white space, no control character; compared exactly
//   (case-sensitive), as the AUTH identity is sent.
// - hash: a PHC string (https://github.com/P-H-C/phc-string-format) made by `mailhop passwd`:
//       $scrypt$ln=15,r=8,p=1$SALT$HASH             scrypt (RFC 7914), N = 2^ln   (the default)
//       $pbkdf2-sha256$i=600000$SALT$HASH           PBKDF2-HMAC-SHA256 (RFC 8018)
//   SALT and HASH in the PHC "B64" encoding: standard base64 (RFC 4648 §4, '+' and '/') without
//   '=' padding. The salt is 16 random bytes, the hash 32 bytes. Accepted parameters: scrypt
//   ln 10..22, r 1..32, p 1..16 and at most 1 GiB of memory (128 · r · 2^ln bytes); PBKDF2
//   i 100000..100000000. Salt 8..64 bytes, hash 16..64 bytes.
// - senders (optional): comma-separated envelope senders the user may use at MAIL FROM:
//   `alice@example.org` (that address: local part exact, domain in any letter case),
//   `@example.org` (any address in that domain, not its subdomains), `<>` (the null sender).
//   No field, or an empty one: any sender.
//
// SECURITY: the file holds password hashes: errors name the file, the line and the user, never a
// hash or the text of a line (a password pasted by mistake must not reach a log). verify()
// compares in constant time (CRYPTO_memcmp) and, for a user that does not exist, still derives
// a key with the parameters of the file's first user, so its timing does not tell which users
// exist. Salts come from RAND_bytes.
//
// COST: verify() and make_hash() are slow on purpose (tens of milliseconds of CPU, 32 MiB of
// memory for the default scrypt): callers must run them off the network threads (on a thread
// pool, awaited), never on the io_context. A loaded UsersFile is immutable: verify() and
// may_send_as() are safe to call from several threads at once.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mailhop::server {

enum class Kdf { scrypt, pbkdf2_sha256 };

// Parameters for make_hash(). The defaults are what `mailhop passwd` writes.
struct HashParams {
  Kdf kdf = Kdf::scrypt;
  unsigned scrypt_ln = 15;  // N = 32768
  unsigned scrypt_r = 8;
  unsigned scrypt_p = 1;
  unsigned pbkdf2_iterations = 600000;  // OWASP's 2023 figure for PBKDF2-HMAC-SHA256
};

// A new PHC string for `password`, with a fresh random salt. Throws std::runtime_error only when
// OpenSSL fails (no randomness, out of memory).
std::string make_hash(std::string_view password, const HashParams& params = {});

// Why `phc` is not a hash this file format accepts ("" when it is one). Never quotes the hash.
std::string check_hash(std::string_view phc);

// true when `user` may appear in the users file (the rules above).
bool valid_user_name(std::string_view user);

// true when `password` matches the PHC string `phc` (false for a malformed one).
bool verify_hash(std::string_view phc, std::string_view password);

// The raw KDFs, for the test vectors of RFC 7914 §12 and RFC 6070 (SHA-256 variant). Throw
// std::runtime_error when OpenSSL refuses the parameters.
std::string derive_scrypt(std::string_view password, std::string_view salt, std::uint64_t n, std::uint32_t r,
                          std::uint32_t p, std::size_t length);
std::string derive_pbkdf2_sha256(std::string_view password, std::string_view salt, unsigned iterations,
                                 std::size_t length);

struct UsersFileError {
  std::string file;
  int line = 0;  // 0 when the error concerns the whole file (cannot be read)
  std::string message;
  std::string to_string() const;  // "FILE:LINE: message" or "FILE: message"
};

class UsersFile {
 public:
  struct Entry {
    std::string user;
    std::string hash;                  // PHC string
    std::vector<std::string> senders;  // as written ("alice@example.org", "@example.org", "<>"); empty: any
  };

  struct LoadResult;
  // Reads the file at `path`; `path` is repeated as given in errors.
  static LoadResult load(const std::string& path);
  // For tests: `text` as the file's content, `name` standing for the file in errors.
  static LoadResult parse(std::string_view text, const std::string& name);

  // true when `user` exists and `password` is theirs. Constant time in what matters: see above.
  bool verify(std::string_view user, std::string_view password) const;
  // true when `user` may use `sender` ("" the null sender) as the envelope sender. false for an
  // unknown user.
  bool may_send_as(std::string_view user, std::string_view sender) const;

  bool contains(std::string_view user) const { return find(user) != nullptr; }
  std::size_t size() const { return entries_.size(); }

 private:
  const Entry* find(std::string_view user) const;
  std::vector<Entry> entries_;
  std::string dummy_hash_;  // for unknown users: the first user's parameters, random salt and hash
};

struct UsersFile::LoadResult {
  std::optional<UsersFile> users;         // set when there are no errors
  std::vector<UsersFileError> errors;     // in line order
  std::vector<UsersFileError> warnings;   // e.g. the file is readable by other users
};

}  // namespace mailhop::server
