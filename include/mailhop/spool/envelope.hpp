// The envelope of a queued message: who sent it, to whom, and where each recipient stands.
// Serialised as versioned, human-readable text ending in an explicit end record, so a
// truncated file is recognisably incomplete (docs/spool.md).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mailhop/spool/queue_id.hpp"
#include "mailhop/util/time.hpp"

namespace mailhop::spool {

enum class RecipientState { pending, sent, failed };
std::string_view to_string(RecipientState s);  // "pending", "sent", "failed"

struct Recipient {
  std::string address;  // without angle brackets
  RecipientState state = RecipientState::pending;
  std::string last_reply;  // the next hop's reply or the local reason, once there was an attempt
};

struct Envelope {
  QueueId id = QueueId::generate();
  std::string sender;  // without angle brackets; "" is the null sender
  std::vector<Recipient> recipients;
  util::SystemTime arrival{};
  util::SystemTime next_attempt{};
  unsigned attempts = 0;
  std::optional<std::string> last_error;
  std::uint64_t size = 0;  // bytes of stored content (what `queue cat` prints)
  bool eight_bit = false;  // content has bytes >= 0x80 (relay with BODY=8BITMIME)
  bool smtputf8 = false;   // submitted with SMTPUTF8 (needs it from the next hop)
  bool held = false;       // never delivered until released
  std::string client_host;  // as the client named itself in HELO/EHLO
  std::string client_ip;
  std::optional<std::string> auth_user;

  bool has_pending() const;
};

std::string serialize(const Envelope& envelope);

struct EnvelopeParse {
  std::optional<Envelope> envelope;
  std::string error;  // why it could not be read: "line 4: unknown record 'foo'", "no end record"
};
EnvelopeParse parse_envelope(std::string_view text);

}  // namespace mailhop::spool
