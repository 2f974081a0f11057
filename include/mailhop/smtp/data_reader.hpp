// The DATA phase on the receiving side (RFC 5321 §4.1.1.4, §4.5.2): turns the bytes a client
// sends after "354" into canonical message content.
//
// - CRLF ends a line; a bare LF is accepted as a line end too. Output lines always end in CRLF.
// - A line holding only "." ends the data; "..x" is unstuffed to ".x".
// - A CR not followed by LF is refused (bare_cr()): it is the raw material of SMTP smuggling,
//   and what mailhop stores must never be able to carry an end-of-data marker onward. It is not
//   a line end either, so "\r.\r\n" does not end the data; "\n.\n", "\r\n.\n" and "\n.\r\n" do,
//   since a bare LF is a line end (what follows is the next command of the same session).
// - Past max_size the content is dropped while reading (too_big()), so an oversized message is
//   never held; the data is still read to its end so the session stays in step.
//
// SECURITY: input is untrusted; memory use is bounded by what is appended to `out`, which
// stops at max_size.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mailhop::smtp {

class DataReader {
 public:
  explicit DataReader(std::uint64_t max_size);

  // Reads from `input`, appending canonical content to `out`: at most its first max_size bytes
  // (however the input is chunked), and never a bare CR (it is counted, flagged, not stored).
  // Returns how many bytes of `input` it consumed: it stops right after the end-of-data line,
  // and what follows belongs to the next command (pipelining).
  std::size_t feed(std::string_view input, std::string& out);

  bool done() const { return done_; }
  bool too_big() const { return size_ > max_size_; }
  bool bare_cr() const { return bare_cr_; }
  // Bytes of canonical content seen so far (counted even after too_big()).
  std::uint64_t size() const { return size_; }
  // true when a byte >= 0x80 was seen (the message needs 8BITMIME to be relayed).
  bool eight_bit() const { return eight_bit_; }

 private:
  std::uint64_t max_size_;
  std::uint64_t size_ = 0;
  void emit(std::string_view bytes, std::string& out);
  void end_line(std::string& out);

  bool at_line_start_ = true;
  bool dot_pending_ = false;  // the line so far is "." (end of data, or a stuffed dot)
  bool pending_cr_ = false;   // the last byte was CR; the next one says whether it ends a line
  bool done_ = false;
  bool bare_cr_ = false;
  bool eight_bit_ = false;
};

}  // namespace mailhop::smtp
