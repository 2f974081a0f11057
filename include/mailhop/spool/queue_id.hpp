// Queue IDs: unique, ordered by arrival time, safe as file names ([0-9A-F] only).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mailhop::spool {

class QueueId {
 public:
  // A new ID: microseconds since the epoch, then a per-process sequence and the process id, so
  // two IDs made in the same microsecond, or by two processes, still differ.
  static QueueId generate();
  // nullopt unless `text` has the exact form generate() makes. A malformed ID reaching a path
  // builder is a bug, so paths are only ever built from a QueueId.
  static std::optional<QueueId> parse(std::string_view text);

  const std::string& str() const { return text_; }
  auto operator<=>(const QueueId&) const = default;

 private:
  explicit QueueId(std::string text) : text_(std::move(text)) {}
  std::string text_;
};

}  // namespace mailhop::spool
