// OAuth2 access tokens for relay.auth xoauth2 / oauthbearer: fetched from the token endpoint
// (relay.oauth2.token_url, RFC 6749 §4.1/§4.4 grants over HTTPS, token_http.cpp) or from
// relay.oauth2.token_command, cached in memory, refreshed ahead of expiry and shared by all
// connections: at most one request is in flight, every other caller waits for its result.
//
// Refresh ahead: a cached token is renewed once less than min(60 s, lifetime / 2) of it remains,
// so short-lived tokens do not cause a request storm. When that early refresh fails, the cached
// token is used until it expires. A failed request is remembered for a few seconds, so a queue of
// messages does not hammer a broken endpoint (each defers with the same reason).
//
// SECURITY: tokens, refresh tokens and client secrets never appear in log lines, errors or
// health text; errors name the cause (the endpoint, the HTTP status, the OAuth2 error code).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "mailhop/config/config.hpp"

namespace mailhop::delivery {

// What a token endpoint (or token_command) gave.
struct TokenResponse {
  std::string access_token;
  std::optional<std::chrono::seconds> expires_in;  // absent: kDefaultLifetime is assumed
  std::optional<std::string> refresh_token;        // a rotated refresh token, when returned
};

struct FetchResult {
  std::optional<TokenResponse> token;
  std::string error;  // when !token: "token endpoint https://login.example/token: HTTP 400: invalid_grant"
};

// One request for a token. Runs on the executor it is given.
using TokenFetcher = std::function<boost::asio::awaitable<FetchResult>(boost::asio::any_io_executor)>;

struct TokenResult {
  std::optional<std::string> token;  // the access token; nullopt on failure
  bool cached = false;               // true when it came from the cache (a 535 may mean revoked)
  std::chrono::steady_clock::time_point expires{};
  std::string error;                 // when !token
};

class TokenProvider {
 public:
  using Clock = std::chrono::steady_clock;
  using Now = std::function<Clock::time_point()>;

  static constexpr std::chrono::seconds kDefaultLifetime{3600};      // no expires_in in the answer
  static constexpr std::chrono::seconds kCommandLifetime{300};       // a plain token from token_command
  static constexpr std::chrono::seconds kFailureHoldDown{5};         // a failure answers this long
  static constexpr std::chrono::seconds kRequestTimeout{30};         // one request, end to end

  // The built-in provider for relay.oauth2 (HTTPS token endpoint or token_command).
  explicit TokenProvider(const config::Relay& relay);
  // Any fetcher (tests); `now` is the clock the cache uses.
  explicit TokenProvider(TokenFetcher fetcher, Now now = &Clock::now);
  ~TokenProvider();
  TokenProvider(const TokenProvider&) = delete;
  TokenProvider& operator=(const TokenProvider&) = delete;

  // A valid access token: the cached one, or a fresh one (joining a request in flight).
  // Safe to call from any thread and any executor at once.
  boost::asio::awaitable<TokenResult> token();

  // The next hop refused `token` (535, or a 334 error challenge): forget it if it is still the
  // cached one, so the next token() fetches a new one at once.
  void invalidate(const std::string& token);

  // false after the last request failed (until one succeeds); last_error() says why. For /readyz.
  bool healthy() const;
  std::string last_error() const;
  // Requests made (tests, `mailhop oauth2 token`).
  unsigned requests() const;

  // The provider shared by every connection for these settings (one per relay.oauth2 and
  // token-endpoint CA): the cache survives connections and configuration reloads.
  static std::shared_ptr<TokenProvider> shared(const config::Relay& relay);

 private:
  struct State;
  std::shared_ptr<State> state_;
};

// The built-in fetcher for relay.oauth2: token_command when set, else the token endpoint.
TokenFetcher make_fetcher(const config::Relay& relay);

// ---- token_http.cpp ----

// The form body for the token request (application/x-www-form-urlencoded): grant_type,
// client_id, client_secret (when a file is set), scope, refresh_token. Reads the secret files
// (one trailing newline stripped); nullopt with `error` naming the file on failure.
std::optional<std::string> token_request_body(const config::OAuth2& oauth2, std::string& error);

// Parses a token endpoint's answer (RFC 6749 §5.1 success, §5.2 error). `status` is the HTTP
// status; `where` names the endpoint for errors.
FetchResult parse_token_response(unsigned status, const std::string& body, const std::string& where);

// POSTs to relay.oauth2.token_url over HTTPS (certificate and host name verified against
// oauth2.ca_file, else relay.ca_file, else the system store) and parses the answer. A rotated
// refresh token is written back to refresh_token_file.
boost::asio::awaitable<FetchResult> fetch_from_endpoint(boost::asio::any_io_executor ex, config::Relay relay);

// Runs relay.oauth2.token_command (/bin/sh -c) and reads a token from its stdout: either the
// token alone on one line, or a JSON token response ({"access_token": …, "expires_in": …}).
boost::asio::awaitable<FetchResult> fetch_from_command(boost::asio::any_io_executor ex, std::string command);

// Reads a secret file with one trailing newline (LF or CRLF) stripped.
std::optional<std::string> read_secret_file(const std::string& path, std::string& error);

// Replaces `path` with `content` atomically: a temporary file in the same directory with the
// old file's mode (0600 when new), fsync, rename, fsync of the directory. Empty on success, else
// why not.
std::string write_secret_file(const std::string& path, const std::string& content);

}  // namespace mailhop::delivery
