// Line splitting with a length bound, for commands (server) and replies (client).
//
// SECURITY: the peer decides what arrives. Memory held is bounded by max_line plus what the
// caller appended since its last pop_line(): an over-long line is dropped while it is still
// arriving and reported once (too_long) when its end comes.
#include "mailhop/smtp/line_buffer.hpp"

#include <algorithm>

namespace mailhop::smtp {

void LineBuffer::append(std::string_view bytes) {
  if (start_ > 0 && start_ >= buffer_.size() / 2) {  // reclaim what was already returned
    buffer_.erase(0, start_);
    start_ = 0;
  }
  buffer_.append(bytes);
}

std::optional<Line> LineBuffer::pop_line() {
  auto lf = buffer_.find('\n', start_);
  if (lf == std::string::npos) {
    // max_line + 1: a line of exactly max_line bytes may still be waiting for the LF after its CR.
    if (discarding_ || buffer_.size() - start_ > max_line_ + 1) {
      discarding_ = true;
      buffer_.clear();
      start_ = 0;
    }
    return std::nullopt;
  }
  std::string_view text(buffer_.data() + start_, lf - start_);
  start_ = lf + 1;
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  if (discarding_ || text.size() > max_line_) {
    discarding_ = false;
    return Line{{}, true};
  }
  return Line{std::string(text), false};
}

std::string_view LineBuffer::pending() const {
  return std::string_view(buffer_).substr(start_);
}

void LineBuffer::consume(std::size_t n) {
  start_ += std::min(n, buffer_.size() - start_);
  if (start_ == buffer_.size()) {
    buffer_.clear();
    start_ = 0;
  }
}

void LineBuffer::clear() {
  buffer_.clear();
  start_ = 0;
  discarding_ = false;
}

}  // namespace mailhop::smtp
