// TLS client contexts for the relay client (see mailhop/tls/client.hpp).
#include "mailhop/tls/client.hpp"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/system/error_code.hpp>
#include <stdexcept>

namespace mailhop::tls {

namespace ssl = boost::asio::ssl;

std::shared_ptr<ssl::context> make_client_context(const config::Relay& relay) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  // TLS 1.2 or newer; no compression (CRIME), no renegotiation.
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_compression);
  SSL_CTX_set_options(ctx->native_handle(), SSL_OP_NO_RENEGOTIATION);
  if (!relay.verify) {
    ctx->set_verify_mode(ssl::verify_none);
    return ctx;
  }
  boost::system::error_code ec;
  if (relay.ca_file) {
    ctx->load_verify_file(*relay.ca_file, ec);
    if (ec) throw std::runtime_error("relay.ca_file " + *relay.ca_file + ": cannot load: " + ec.message());
  } else {
    ctx->set_default_verify_paths(ec);
    if (ec) throw std::runtime_error("cannot load the system CA store: " + ec.message());
  }
  ctx->set_verify_mode(ssl::verify_peer);
  return ctx;
}

bool is_ip_literal(const std::string& host) {
  boost::system::error_code ec;
  boost::asio::ip::make_address(host, ec);
  return !ec;
}

bool prepare_client_connection(ssl_st* ssl, const std::string& host, bool verify) {
  const bool ip = is_ip_literal(host);
  if (!ip && SSL_set_tlsext_host_name(ssl, host.c_str()) != 1) return false;
  if (!verify) {
    SSL_set_verify(ssl, SSL_VERIFY_NONE, nullptr);
    return true;
  }
  SSL_set_verify(ssl, SSL_VERIFY_PEER, nullptr);
  if (ip) {
    // Checked against the certificate's iPAddress SANs only (RFC 6125 §6.2.1 leaves the CN out).
    return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str()) == 1;
  }
  // No partial wildcards ("f*.example.com"), as RFC 6125 §7.2 advises.
  SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  return SSL_set1_host(ssl, host.c_str()) == 1;
}

std::string describe_handshake_error(ssl_st* ssl, const std::string& reason) {
  if (ssl) {
    long result = SSL_get_verify_result(ssl);
    if (result != X509_V_OK) return std::string("certificate verify failed: ") + X509_verify_cert_error_string(result);
  }
  return "TLS handshake failed: " + reason;
}

}  // namespace mailhop::tls
