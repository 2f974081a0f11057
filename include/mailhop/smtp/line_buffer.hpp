// Splits a byte stream into lines with a length bound: CRLF ends a line, and so does a bare LF
// (simple clients such as Java's PrintStream.println send it). Used for commands on the server
// and for replies on the client.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace mailhop::smtp {

struct Line {
  std::string text;       // without the line end; empty when too_long
  bool too_long = false;  // longer than the bound: the bytes were dropped up to the line end
};

class LineBuffer {
 public:
  explicit LineBuffer(std::size_t max_line = 4096) : max_line_(max_line) {}

  void append(std::string_view bytes);
  // The next complete line, or nullopt when more bytes are needed.
  std::optional<Line> pop_line();
  // Bytes received but not yet returned as lines (pipelined data after DATA, for instance).
  std::string_view pending() const;
  // Drops `n` bytes from the front of pending() (after they were given to a DataReader).
  void consume(std::size_t n);
  // Drops everything buffered: after STARTTLS, plaintext sent ahead of the handshake must not
  // be executed (CVE-2011-0411 class).
  void clear();

 private:
  std::string buffer_;
  std::size_t start_ = 0;
  std::size_t max_line_;
  bool discarding_ = false;  // inside an over-long line, dropping bytes until its end
};

}  // namespace mailhop::smtp
