// TLS for the inbound side: the server's OpenSSL context (TLS 1.2 or newer, certificate chain
// and key from PEM files) and the holder that lets SIGHUP swap in a new certificate for the
// handshakes that follow, while sessions already in TLS keep the context they started with.
//
// OpenSSL and asio::ssl stay out of this header (compile cost), as in tls/client.hpp.
//
// SECURITY: a certificate that does not load, or whose key does not match, never replaces a
// working one: reload() keeps the old context and says why.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>

struct ssl_st;  // OpenSSL's SSL

namespace boost::asio::ssl {
class context;
}

namespace mailhop::tls {

// A server context from `cert_file` (PEM: the certificate, then its chain) and `key_file` (PEM
// private key). Throws std::runtime_error naming the file and OpenSSL's reason when either
// cannot be loaded or the key does not belong to the certificate.
std::shared_ptr<boost::asio::ssl::context> make_server_context(const std::string& cert_file,
                                                               const std::string& key_file);

// The context new handshakes use. Thread-safe: sessions read it on any io_context thread while
// the signal handler replaces it.
class ServerContextHolder {
 public:
  // Loads the files once; throws as make_server_context() does (a start-up failure).
  ServerContextHolder(std::string cert_file, std::string key_file);
  explicit ServerContextHolder(std::shared_ptr<boost::asio::ssl::context> context);

  std::shared_ptr<boost::asio::ssl::context> current() const { return current_.load(); }

  // Loads the files again. On success the new context serves every later handshake and
  // nullopt is returned; on failure the old one stays and the reason is returned.
  std::optional<std::string> reload();

 private:
  std::string cert_file_;
  std::string key_file_;
  std::atomic<std::shared_ptr<boost::asio::ssl::context>> current_;
};

// "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)": the connection's protocol and
// cipher as Postfix writes them in Received: and its logs.
std::string describe_connection(ssl_st* ssl);

}  // namespace mailhop::tls
