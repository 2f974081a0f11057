// Outcome classification: replies to sent / deferred / failed with their enhanced codes, and
// the last_reply text kept in the envelope.
#include <catch2/catch.hpp>

#include "mailhop/delivery/outcome.hpp"

using namespace mailhop;
using namespace mailhop::delivery;

namespace {
smtp::Reply reply(int code, std::vector<std::string> lines) { return smtp::Reply{code, std::move(lines)}; }
}  // namespace

TEST_CASE("outcome: reply classes", "[outcome]") {
  auto sent = classify(reply(250, {"2.0.0 Ok: queued as 4F2"}));
  CHECK(sent.outcome == Outcome::sent);
  CHECK(sent.dsn == "2.0.0");
  CHECK(sent.remote);
  CHECK(sent.text == "250 2.0.0 Ok: queued as 4F2");

  auto deferred = classify(reply(451, {"4.3.0 Temporary lookup failure"}));
  CHECK(deferred.outcome == Outcome::deferred);
  CHECK(deferred.dsn == "4.3.0");

  auto failed = classify(reply(550, {"5.1.1 <x@example.net>: Recipient address rejected"}));
  CHECK(failed.outcome == Outcome::failed);
  CHECK(failed.dsn == "5.1.1");
}

TEST_CASE("outcome: codes without or with a mismatched enhanced code", "[outcome]") {
  CHECK(classify(reply(550, {"No such user"})).dsn == "5.0.0");
  CHECK(classify(reply(421, {"closing"})).dsn == "4.0.0");
  CHECK(classify(reply(550, {"4.1.1 odd"})).dsn == "5.1.1");  // the reply code decides the class
  // Anything that is not a final 2xx/4xx/5xx never bounces.
  CHECK(classify(reply(354, {"go ahead"})).outcome == Outcome::deferred);
  CHECK(classify(reply(354, {"go ahead"})).dsn == "4.0.0");
}

TEST_CASE("outcome: stored last_reply keeps code and origin", "[outcome]") {
  auto remote = classify(reply(550, {"5.7.1 Relaying denied"}));
  CHECK(stored_text(remote) == "550 5.7.1 Relaying denied");
  auto parsed = parse_stored_text(stored_text(remote), '5');
  CHECK(parsed.remote);
  CHECK(parsed.dsn == "5.7.1");

  auto local = local_result(Outcome::failed, "5.6.7", "SMTPUTF8 is required");
  CHECK(stored_text(local) == "5.6.7 SMTPUTF8 is required");
  parsed = parse_stored_text(stored_text(local), '5');
  CHECK(!parsed.remote);
  CHECK(parsed.dsn == "5.6.7");

  parsed = parse_stored_text("4.4.7 Message expired after 9 attempts: connect to x:25: Connection refused", '5');
  CHECK(!parsed.remote);
  CHECK(parsed.dsn == "5.4.7");
  CHECK(parse_stored_text("something odd", '5').dsn == "5.0.0");
  CHECK(parse_stored_text("554 Rejected", '5').remote);
}
