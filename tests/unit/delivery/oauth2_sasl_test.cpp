// OAuth2 SASL initial responses (XOAUTH2, OAUTHBEARER RFC 7628) and the mechanism choice.
#include <catch2/catch.hpp>

#include "mailhop/delivery/auth.hpp"
#include "mailhop/util/base64.hpp"

using namespace mailhop;
using namespace mailhop::delivery;
using namespace std::string_literals;

TEST_CASE("oauth2: the XOAUTH2 initial response, byte for byte", "[oauth2]") {
  CHECK(xoauth2_response("someuser@example.com", "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg") ==
        "user=someuser@example.com\x01"s "auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01"s);
  // Google's documented example (developers.google.com/gmail/imap/xoauth2-protocol).
  CHECK(oauth_command(AuthMechanism::xoauth2,
                      xoauth2_response("someuser@example.com", "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg")) ==
        "AUTH XOAUTH2 dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ==");
}

TEST_CASE("oauth2: the OAUTHBEARER initial response (RFC 7628 §4.1) with the authzid", "[oauth2]") {
  CHECK(oauthbearer_response("user@example.com", "server.example.com", 143, "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==") ==
        "n,a=user@example.com,\x01"s "host=server.example.com\x01"s "port=143\x01"s
        "auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01"s);
  // RFC 5801 saslname: ',' and '=' escaped.
  CHECK(oauthbearer_response("a,b=c", "h", 587, "t").starts_with("n,a=a=2Cb=3Dc,\x01"s));
  auto command = oauth_command(AuthMechanism::oauthbearer, oauthbearer_response("u@x", "smtp.gmail.com", 587, "tok"));
  REQUIRE(command.starts_with("AUTH OAUTHBEARER "));
  CHECK(util::base64_decode(command.substr(17)) ==
        "n,a=u@x,\x01"s "host=smtp.gmail.com\x01"s "port=587\x01"s "auth=Bearer tok\x01\x01"s);
}

TEST_CASE("oauth2: the answer to the 334 error challenge", "[oauth2]") {
  CHECK(oauth_error_ack(AuthMechanism::xoauth2).empty());          // an empty line
  CHECK(oauth_error_ack(AuthMechanism::oauthbearer) == "AQ==");     // base64 of ^A (RFC 7628 §3.2.3)
}

TEST_CASE("oauth2: xoauth2 / oauthbearer are chosen only when offered", "[oauth2]") {
  smtp::Capabilities microsoft;
  microsoft.auth = {"LOGIN", "XOAUTH2"};
  smtp::Capabilities google;
  google.auth = {"LOGIN", "PLAIN", "XOAUTH2", "PLAIN-CLIENTTOKEN", "OAUTHBEARER", "XOAUTH"};
  CHECK(choose_mechanism(config::RelayAuth::xoauth2, microsoft).mechanism == AuthMechanism::xoauth2);
  CHECK(choose_mechanism(config::RelayAuth::oauthbearer, google).mechanism == AuthMechanism::oauthbearer);
  auto none = choose_mechanism(config::RelayAuth::oauthbearer, microsoft);
  CHECK(!none.mechanism);
  CHECK(none.error.find("offered: LOGIN XOAUTH2") != std::string::npos);
  // auto never picks an OAuth mechanism: it needs relay.oauth2.
  CHECK(choose_mechanism(config::RelayAuth::automatic, google).mechanism == AuthMechanism::plain);
}
