// What one delivery attempt means for one recipient: the next hop's reply (or a local reason)
// classified as sent, deferred or failed (RFC 5321 §4.2.1), with the enhanced status code
// (RFC 3463) that the log line and the DSN carry.
#pragma once

#include <string>
#include <string_view>

#include "mailhop/smtp/reply.hpp"

namespace mailhop::delivery {

enum class Outcome { sent, deferred, failed };
std::string_view to_string(Outcome o);  // "sent", "deferred", "failed"

struct RecipientResult {
  Outcome outcome = Outcome::deferred;
  std::string dsn;     // "2.0.0", "4.4.1", "5.1.1"
  std::string text;    // the next hop's reply ("550 5.1.1 No such user") or the local reason
  bool remote = false; // text is a reply from the next hop (a DSN's Diagnostic-Code)
};

// 2xx sent, 4xx deferred, 5xx failed; anything else (1xx, 3xx where a final reply was due) is
// a protocol error and defers. The enhanced code is the reply's own, or X.0.0 from its class.
RecipientResult classify(const smtp::Reply& reply);

// A local reason: deferred or failed, with the given enhanced code ("4.4.1") and words.
RecipientResult local_result(Outcome outcome, std::string dsn, std::string reason);

}  // namespace mailhop::delivery

namespace mailhop::delivery {

// What is kept in the envelope's per-recipient last_reply: the next hop's reply as it was
// ("550 5.1.1 No such user"), or for a local reason its enhanced code and the words
// ("5.6.7 SMTPUTF8 is required …"), so a DSN made after a restart still has both.
std::string stored_text(const RecipientResult& result);

// The enhanced code (forced to class `klass`, '4' or '5') and whether `text` (a stored
// last_reply) was the next hop's reply.
struct StoredReply {
  std::string dsn;
  bool remote = false;
};
StoredReply parse_stored_text(std::string_view text, char klass);

}  // namespace mailhop::delivery
