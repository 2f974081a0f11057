// Mailbox syntax (RFC 5321 §4.1.2, RFC 6531).
#include <catch2/catch.hpp>

#include <string>

#include "mailhop/smtp/address.hpp"

using namespace mailhop::smtp;

TEST_CASE("valid mailboxes", "[address]") {
  for (const char* a : {"user@example.org", "a@b", "first.last@sub.example.co.uk", "user+tag@example.org",
                        "o'brien@example.ie", "x_y-z@mail_host.example", "\"john doe\"@example.org",
                        "\"a\\\"b\"@example.org", "\"a@b\"@example.org", "user@[192.0.2.1]",
                        "user@[IPv6:2001:db8::1]", "user@[ipv6:::1]", "user@[x-tag:something]",
                        "first..last@example.org", "name.@docomo.ne.jp", "!#$%&'*+-/=?^_`{|}~@example.org",
                        "\xd0\xbf\xd0\xbe\xd1\x87\xd1\x82\xd0\xb0@\xd0\xbf\xd1\x80\xd0\xb8\xd0\xbc\xd0\xb5\xd1\x80.\xd1\x80\xd1\x84",
                        "\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a"}) {
    INFO(a);
    CHECK(is_valid_mailbox(a));
  }
}

TEST_CASE("invalid mailboxes", "[address]") {
  for (const char* a : {"", "user", "@example.org", "user@", "user@@example.org", "us er@example.org",
                        "<user@example.org>", "user@example.org>", "user@exa mple.org", "user@.example.org",
                        "user@example.org.", "user@example..org", "user@-", "user@-a.example", "user@a-.example", "user@[192.0.2.300]",
                        "user@[IPv6:zz::1]", "user@[192.0.2.1", "user@[]", "\"unterminated@example.org",
                        "\"a\"b@example.org", "...@example.org", "user@exa\tmple.org", "us\ter@example.org",
                        "user\r\n@example.org", "user@example.org\r\nRCPT TO:<x@y>", "user@ex(ample).org",
                        "\xc3@example.org", "\xc0\xaf@example.org", "\xed\xa0\x80@example.org",
                        "user@\xff.example",
                        // angle brackets and quotes inside a general address literal (found by fuzz_command)
                        "postmaster@[IPv3:200SMTP1<db8::1]", "user@[x-tag:a>b]", "user@[x-tag:a\"b]"}) {
    INFO(a);
    CHECK_FALSE(is_valid_mailbox(a));
  }
  CHECK_FALSE(is_valid_mailbox(std::string_view("us\0er@example.org", 17)));
  // A NUL must not end inet_pton's view of a literal early (found by fuzz_command).
  CHECK_FALSE(is_valid_mailbox(std::string_view("a@[192.0.2.1\0\rQUIT]", 20)));
  CHECK_FALSE(is_valid_mailbox(std::string_view("a@[IPv6:::1\0x]", 14)));
}

TEST_CASE("length limits", "[address]") {
  std::string label(63, 'a');
  CHECK(is_valid_mailbox("u@" + label + ".example"));
  CHECK_FALSE(is_valid_mailbox("u@" + label + "a.example"));
  std::string local(240, 'x');
  CHECK(is_valid_mailbox(local + "@example.org"));           // 252
  CHECK_FALSE(is_valid_mailbox(local + "@example.org.ab"));  // 255 > 254
}

TEST_CASE("has_non_ascii and domain_of", "[address]") {
  CHECK_FALSE(has_non_ascii("plain ascii \x7f"));
  CHECK(has_non_ascii("caf\xc3\xa9"));
  CHECK(has_non_ascii("\x80"));
  CHECK(domain_of("user@example.org") == "example.org");
  CHECK(domain_of("\"a@b\"@example.org") == "example.org");
  CHECK(domain_of("user@[192.0.2.1]") == "[192.0.2.1]");
  CHECK(domain_of("user").empty());
  CHECK(domain_of("").empty());
}
