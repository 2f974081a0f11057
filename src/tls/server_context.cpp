// The server's TLS context and its reloadable holder (see mailhop/tls/server_context.hpp).
#include "mailhop/tls/server_context.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <boost/asio/ssl/context.hpp>
#include <stdexcept>

namespace mailhop::tls {

namespace ssl = boost::asio::ssl;

namespace {

// OpenSSL's reason for the last failure, and the error queue emptied.
std::string openssl_reason() {
  std::string reason;
  while (unsigned long e = ERR_get_error()) {
    char text[256];
    ERR_error_string_n(e, text, sizeof text);
    reason = text;  // the last one is the most specific
  }
  return reason.empty() ? "unknown error" : reason;
}

}  // namespace

std::shared_ptr<ssl::context> make_server_context(const std::string& cert_file, const std::string& key_file) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  // TLS 1.2 or newer (RFC 8996 retires 1.0 and 1.1); no compression (CRIME), no client-started
  // renegotiation; the server's cipher order.
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // No client certificates are asked for (Postfix: "No client certificate requested").
  SSL_CTX_set_verify(native, SSL_VERIFY_NONE, nullptr);
  ERR_clear_error();
  if (SSL_CTX_use_certificate_chain_file(native, cert_file.c_str()) != 1)
    throw std::runtime_error("tls.cert_file " + cert_file + ": cannot load: " + openssl_reason());
  if (SSL_CTX_use_PrivateKey_file(native, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    // OpenSSL checks the pair here already; say so in words.
    const bool mismatch = ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH;
    throw std::runtime_error("tls.key_file " + key_file +
                             (mismatch ? " does not match the certificate in " + cert_file + ": "
                                       : std::string(": cannot load: ")) +
                             openssl_reason());
  }
  if (SSL_CTX_check_private_key(native) != 1)
    throw std::runtime_error("tls.key_file " + key_file + " does not match the certificate in " + cert_file + ": " +
                             openssl_reason());
  return ctx;
}

ServerContextHolder::ServerContextHolder(std::string cert_file, std::string key_file)
    : cert_file_(std::move(cert_file)), key_file_(std::move(key_file)) {
  current_.store(make_server_context(cert_file_, key_file_));
}

ServerContextHolder::ServerContextHolder(std::shared_ptr<ssl::context> context) { current_.store(std::move(context)); }

std::optional<std::string> ServerContextHolder::reload() {
  if (cert_file_.empty()) return std::string("no certificate files to reload");
  try {
    current_.store(make_server_context(cert_file_, key_file_));
  } catch (const std::exception& e) {
    return std::string(e.what());
  }
  return std::nullopt;
}

std::string describe_connection(ssl_st* ssl) {
  if (!ssl) return "";
  const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl);
  int alg_bits = 0;
  int bits = cipher ? SSL_CIPHER_get_bits(cipher, &alg_bits) : 0;
  return std::string(SSL_get_version(ssl)) + " with cipher " + (cipher ? SSL_CIPHER_get_name(cipher) : "unknown") +
         " (" + std::to_string(bits) + "/" + std::to_string(alg_bits) + " bits)";
}

}  // namespace mailhop::tls
