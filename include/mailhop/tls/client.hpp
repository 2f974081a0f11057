// TLS for the relay client: one OpenSSL client context per configuration (TLS 1.2 or newer,
// peer verified against the system store or relay.ca_file), and the per-connection set-up that
// checks the next hop's name: a DNS name with SSL_set1_host (and SNI), an IP address against
// the certificate's IP SANs (no SNI, RFC 6066 §3 forbids literal addresses there).
//
// OpenSSL and asio::ssl stay out of this header (compile cost): the context is forward-declared
// and the connection is passed as OpenSSL's SSL*.
//
// SECURITY: with verify = false nothing about the peer is checked (the daemon warns at start);
// that is the only way to turn verification off.
#pragma once

#include <memory>
#include <string>

#include "mailhop/config/config.hpp"

struct ssl_st;  // OpenSSL's SSL

namespace boost::asio::ssl {
class context;
}

namespace mailhop::tls {

// A client context for the next hop. Throws std::runtime_error naming the file when ca_file
// cannot be loaded (a start-up failure).
std::shared_ptr<boost::asio::ssl::context> make_client_context(const config::Relay& relay);

// Prepares one connection to `host` (a DNS name or an IP address literal) before its handshake:
// name verification per `verify`, SNI for names. Returns false when OpenSSL refuses the name.
bool prepare_client_connection(ssl_st* ssl, const std::string& host, bool verify);

// Why a handshake failed, in words for last_error: "certificate verify failed: hostname
// mismatch" when the peer's certificate was refused, else "TLS handshake failed: <reason>".
std::string describe_handshake_error(ssl_st* ssl, const std::string& reason);

// true when `host` is an IPv4 or IPv6 address literal.
bool is_ip_literal(const std::string& host);

}  // namespace mailhop::tls
