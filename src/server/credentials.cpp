// The users file and password hashes for inbound AUTH (credentials.hpp has the format).
//
// SECURITY: the users file is trusted configuration, but it is bounded anyway (KDF parameters,
// salt and hash lengths), so a typo cannot make one AUTH attempt take a gigabyte or an hour.
// Nothing here logs; error texts never hold a hash or a line's text. Key material is compared
// with CRYPTO_memcmp and wiped with OPENSSL_cleanse.
#include "mailhop/server/credentials.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <sys/stat.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>

#include "mailhop/smtp/address.hpp"
#include "mailhop/util/base64.hpp"

namespace mailhop::server {
namespace {

constexpr std::size_t kSaltBytes = 16;
constexpr std::size_t kHashBytes = 32;
constexpr std::size_t kMaxUserBytes = 255;
constexpr std::uint64_t kMaxScryptMemory = std::uint64_t{1} << 30;

// A parsed PHC string: "$id$param=v,...$salt$hash".
struct Phc {
  Kdf kdf = Kdf::scrypt;
  unsigned ln = 0, r = 0, p = 0, iterations = 0;
  std::string salt, hash;  // raw bytes
};

// PHC "B64": standard base64 without padding.
std::string b64_encode(std::string_view bytes) {
  auto s = util::base64_encode(bytes);
  while (!s.empty() && s.back() == '=') s.pop_back();
  return s;
}

std::optional<std::string> b64_decode(std::string_view text) {
  if (text.empty() || text.size() % 4 == 1 || text.find('=') != std::string_view::npos) return std::nullopt;
  std::string padded(text);
  padded.append((4 - padded.size() % 4) % 4, '=');
  return util::base64_decode(padded);
}

std::optional<unsigned> number(std::string_view s) {
  unsigned v = 0;
  if (s.empty() || (s.size() > 1 && s[0] == '0')) return std::nullopt;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  for (;;) {
    auto pos = s.find(sep);
    parts.push_back(s.substr(0, pos));
    if (pos == std::string_view::npos) return parts;
    s.remove_prefix(pos + 1);
  }
}

// The parameter list of a PHC string, "ln=15,r=8,p=1", in exactly the order given by `names`
// (PHC: parameters appear in a fixed order; this reader accepts only mailhop's own).
bool read_params(std::string_view text, std::initializer_list<std::pair<std::string_view, unsigned*>> names) {
  auto parts = split(text, ',');
  if (parts.size() != names.size()) return false;
  std::size_t i = 0;
  for (auto [name, out] : names) {
    auto part = parts[i++];
    if (!part.starts_with(name) || part.size() <= name.size() || part[name.size()] != '=') return false;
    auto v = number(part.substr(name.size() + 1));
    if (!v) return false;
    *out = *v;
  }
  return true;
}

// Parses and bounds-checks; on failure `error` says why (without quoting the string).
std::optional<Phc> parse_phc(std::string_view s, std::string& error) {
  auto fields = split(s, '$');  // "", id, params, salt, hash
  const char* kForm = "the hash is not a PHC string ($scrypt$ln=15,r=8,p=1$SALT$HASH or $pbkdf2-sha256$i=600000$SALT$HASH)";
  if (fields.size() < 2 || !fields[0].empty()) {
    error = kForm;
    return std::nullopt;
  }
  if (fields[1] != "scrypt" && fields[1] != "pbkdf2-sha256") {
    error = "unknown hash algorithm (scrypt or pbkdf2-sha256 expected)";
    return std::nullopt;
  }
  if (fields.size() != 5) {
    error = kForm;
    return std::nullopt;
  }
  Phc phc;
  if (fields[1] == "scrypt") {
    phc.kdf = Kdf::scrypt;
    if (!read_params(fields[2], {{"ln", &phc.ln}, {"r", &phc.r}, {"p", &phc.p}})) {
      error = "bad scrypt parameters: expected ln=N,r=N,p=N";
      return std::nullopt;
    }
    if (phc.ln < 10 || phc.ln > 22 || phc.r < 1 || phc.r > 32 || phc.p < 1 || phc.p > 16 ||
        std::uint64_t{128} * phc.r << phc.ln > kMaxScryptMemory) {
      error = "scrypt parameters out of range (ln 10..22, r 1..32, p 1..16, at most 1 GiB)";
      return std::nullopt;
    }
  } else {
    phc.kdf = Kdf::pbkdf2_sha256;
    if (!read_params(fields[2], {{"i", &phc.iterations}})) {
      error = "bad pbkdf2-sha256 parameters: expected i=N";
      return std::nullopt;
    }
    if (phc.iterations < 100000 || phc.iterations > 100000000) {
      error = "pbkdf2-sha256 iterations out of range (100000..100000000)";
      return std::nullopt;
    }
  }
  auto salt = b64_decode(fields[3]);
  auto hash = b64_decode(fields[4]);
  if (!salt || !hash) {
    error = "the salt or the hash is not unpadded base64";
    return std::nullopt;
  }
  if (salt->size() < 8 || salt->size() > 64 || hash->size() < 16 || hash->size() > 64) {
    error = "salt (8..64 bytes) or hash (16..64 bytes) of the wrong length";
    return std::nullopt;
  }
  phc.salt = std::move(*salt);
  phc.hash = std::move(*hash);
  return phc;
}

std::string derive(const Phc& phc, std::string_view password, std::size_t length) {
  if (phc.kdf == Kdf::scrypt) return derive_scrypt(password, phc.salt, std::uint64_t{1} << phc.ln, phc.r, phc.p, length);
  return derive_pbkdf2_sha256(password, phc.salt, phc.iterations, length);
}

std::string format_phc(const Phc& phc) {
  std::string params = phc.kdf == Kdf::scrypt ? "$scrypt$ln=" + std::to_string(phc.ln) + ",r=" + std::to_string(phc.r) +
                                                    ",p=" + std::to_string(phc.p)
                                              : "$pbkdf2-sha256$i=" + std::to_string(phc.iterations);
  return params + "$" + b64_encode(phc.salt) + "$" + b64_encode(phc.hash);
}

std::string random_bytes(std::size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1)
    throw std::runtime_error("RAND_bytes failed: no randomness for a salt");
  return out;
}

bool verify_phc(const Phc& phc, std::string_view password) {
  auto key = derive(phc, password, phc.hash.size());
  bool equal = CRYPTO_memcmp(key.data(), phc.hash.data(), key.size()) == 0;
  OPENSSL_cleanse(key.data(), key.size());
  return equal;
}

}  // namespace

bool valid_user_name(std::string_view user) {
  if (user.empty() || user.size() > kMaxUserBytes) return false;
  return std::none_of(user.begin(), user.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u <= 0x20 || u == 0x7f || c == ':';
  });
}

namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// "alice@example.org", "@example.org" or "<>"; why not, or "".
std::string check_sender_entry(std::string_view entry) {
  if (entry.empty()) return "empty entry in the senders list";
  if (entry == "<>") return {};
  if (entry.front() == '@') {
    if (!smtp::is_valid_mailbox(std::string("x") + std::string(entry))) return "bad domain in the senders list";
    return {};
  }
  if (!smtp::is_valid_mailbox(entry)) return "bad address in the senders list (user@domain, @domain or <>)";
  return {};
}

// local part exact (RFC 5321 §2.4), domain in any case (§2.3.5).
bool sender_matches(std::string_view entry, std::string_view sender) {
  if (entry == "<>") return sender.empty();
  if (sender.empty()) return false;
  auto at = sender.rfind('@');
  if (at == std::string_view::npos) return false;
  auto domain = sender.substr(at + 1);
  if (entry.front() == '@') return iequals(entry.substr(1), domain);
  auto entry_at = entry.rfind('@');
  return entry.substr(0, entry_at) == sender.substr(0, at) && iequals(entry.substr(entry_at + 1), domain);
}

}  // namespace

std::string derive_scrypt(std::string_view password, std::string_view salt, std::uint64_t n, std::uint32_t r,
                          std::uint32_t p, std::size_t length) {
  std::unique_ptr<EVP_KDF, decltype(&EVP_KDF_free)> kdf(EVP_KDF_fetch(nullptr, OSSL_KDF_NAME_SCRYPT, nullptr),
                                                        &EVP_KDF_free);
  if (!kdf) throw std::runtime_error("OpenSSL has no scrypt");
  std::unique_ptr<EVP_KDF_CTX, decltype(&EVP_KDF_CTX_free)> ctx(EVP_KDF_CTX_new(kdf.get()), &EVP_KDF_CTX_free);
  if (!ctx) throw std::runtime_error("EVP_KDF_CTX_new failed");
  // OpenSSL's default memory bound (32 MiB) is below what N = 2^15, r = 8 needs.
  std::uint64_t maxmem = kMaxScryptMemory + (std::uint64_t{1} << 26);
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, const_cast<char*>(password.data()), password.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<char*>(salt.data()), salt.size()),
      OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
      OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r),
      OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p),
      OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem),
      OSSL_PARAM_construct_end(),
  };
  std::string out(length, '\0');
  if (EVP_KDF_derive(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), out.size(), params) != 1)
    throw std::runtime_error("scrypt failed (parameters refused or out of memory)");
  return out;
}

std::string derive_pbkdf2_sha256(std::string_view password, std::string_view salt, unsigned iterations,
                                 std::size_t length) {
  std::string out(length, '\0');
  if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                        reinterpret_cast<const unsigned char*>(salt.data()), static_cast<int>(salt.size()),
                        static_cast<int>(iterations), EVP_sha256(), static_cast<int>(out.size()),
                        reinterpret_cast<unsigned char*>(out.data())) != 1)
    throw std::runtime_error("PBKDF2 failed");
  return out;
}

std::string make_hash(std::string_view password, const HashParams& params) {
  Phc phc;
  phc.kdf = params.kdf;
  phc.ln = params.scrypt_ln;
  phc.r = params.scrypt_r;
  phc.p = params.scrypt_p;
  phc.iterations = params.pbkdf2_iterations;
  phc.salt = random_bytes(kSaltBytes);
  phc.hash = derive(phc, password, kHashBytes);
  auto s = format_phc(phc);
  OPENSSL_cleanse(phc.hash.data(), phc.hash.size());
  return s;
}

std::string check_hash(std::string_view phc) {
  std::string error;
  parse_phc(phc, error);
  return error;
}

bool verify_hash(std::string_view phc, std::string_view password) {
  std::string error;
  auto parsed = parse_phc(phc, error);
  return parsed && verify_phc(*parsed, password);
}

std::string UsersFileError::to_string() const {
  if (line == 0) return file + ": " + message;
  return file + ":" + std::to_string(line) + ": " + message;
}

UsersFile::LoadResult UsersFile::parse(std::string_view text, const std::string& name) {
  LoadResult result;
  UsersFile users;
  auto error = [&](int line, std::string message) { result.errors.push_back({name, line, std::move(message)}); };
  std::vector<int> lines;  // where each entry was, for "listed twice"
  int line_no = 0;
  for (auto raw : split(text, '\n')) {
    ++line_no;
    auto line = trim(raw);
    if (line.empty() || line.front() == '#') continue;
    auto fields = split(line, ':');
    if (fields.size() < 2 || fields.size() > 3) {
      error(line_no, "expected user:hash or user:hash:senders");
      continue;
    }
    Entry entry;
    if (!valid_user_name(fields[0])) {
      error(line_no, "bad user name (1 to 255 bytes, no ':', white space or control characters)");
      continue;
    }
    entry.user = std::string(fields[0]);
    if (const Entry* first = users.find(entry.user)) {
      auto first_line = lines[static_cast<std::size_t>(first - users.entries_.data())];
      error(line_no, "user " + entry.user + " listed twice (first on line " + std::to_string(first_line) + ")");
      continue;
    }
    std::string why;
    if (!parse_phc(fields[1], why)) {
      error(line_no, "user " + entry.user + ": " + why);
      continue;
    }
    entry.hash = std::string(fields[1]);
    if (fields.size() == 3) {
      auto list = trim(fields[2]);
      if (!list.empty()) {
        for (auto item : split(list, ',')) {
          auto sender = trim(item);
          if (auto e = check_sender_entry(sender); !e.empty()) {
            why = e;
            break;
          }
          entry.senders.emplace_back(sender);
        }
      }
      if (!why.empty()) {
        error(line_no, "user " + entry.user + ": " + why);
        continue;
      }
    }
    users.entries_.push_back(std::move(entry));
    lines.push_back(line_no);
  }
  if (!result.errors.empty()) return result;

  // The stand-in for unknown users costs what a real user costs (same KDF and parameters) and
  // matches no password: its "hash" is random.
  Phc dummy;
  if (!users.entries_.empty()) {
    std::string unused;
    dummy = *parse_phc(users.entries_.front().hash, unused);
  } else {
    HashParams defaults;
    dummy.kdf = defaults.kdf;
    dummy.ln = defaults.scrypt_ln;
    dummy.r = defaults.scrypt_r;
    dummy.p = defaults.scrypt_p;
    dummy.iterations = defaults.pbkdf2_iterations;
  }
  dummy.salt = random_bytes(kSaltBytes);
  dummy.hash = random_bytes(kHashBytes);
  users.dummy_hash_ = format_phc(dummy);
  result.users = std::move(users);
  return result;
}

UsersFile::LoadResult UsersFile::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    LoadResult result;
    result.errors.push_back({path, 0, "cannot read the users file"});
    return result;
  }
  std::ostringstream text;
  text << in.rdbuf();
  auto result = parse(text.str(), path);
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & S_IROTH))
    result.warnings.push_back({path, 0, "the users file is readable by every user (chmod o-r, e.g. 0640)"});
  return result;
}

const UsersFile::Entry* UsersFile::find(std::string_view user) const {
  for (const auto& e : entries_)
    if (e.user == user) return &e;
  return nullptr;
}

bool UsersFile::verify(std::string_view user, std::string_view password) const {
  const Entry* entry = find(user);
  // Always one derivation: the dummy for an unknown user, so the timing does not tell.
  bool match = verify_hash(entry ? std::string_view(entry->hash) : std::string_view(dummy_hash_), password);
  return entry != nullptr && match;
}

bool UsersFile::may_send_as(std::string_view user, std::string_view sender) const {
  const Entry* entry = find(user);
  if (!entry) return false;
  if (entry->senders.empty()) return true;
  return std::any_of(entry->senders.begin(), entry->senders.end(),
                     [&](const std::string& allowed) { return sender_matches(allowed, sender); });
}

}  // namespace mailhop::server
