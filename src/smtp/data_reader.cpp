// The DATA phase on the receiving side (RFC 5321 §4.1.1.4, §4.5.2): end-of-data detection,
// dot-unstuffing, line-end canonicalisation, bare-CR detection and the size bound.
//
// SECURITY: this is where SMTP smuggling is stopped. Only CRLF and a bare LF end a line; a CR
// alone never does, and it marks the message as refused. So every "." line that ends the data
// here is a line end for every later reader too, and nothing stored can contain a bare CR or LF.
#include "mailhop/smtp/data_reader.hpp"

#include <algorithm>

namespace mailhop::smtp {

DataReader::DataReader(std::uint64_t max_size) : max_size_(max_size) {}

void DataReader::emit(std::string_view bytes, std::string& out) {
  at_line_start_ = false;
  dot_pending_ = false;  // a "." followed by more on its line was a stuffed dot: it is dropped
  // The first max_size bytes are kept, whatever the chunking; nothing after them.
  if (size_ < max_size_) out.append(bytes.substr(0, std::min<std::uint64_t>(bytes.size(), max_size_ - size_)));
  size_ += bytes.size();
  if (!eight_bit_)
    for (char c : bytes)
      if (static_cast<unsigned char>(c) >= 0x80) {
        eight_bit_ = true;
        break;
      }
}

void DataReader::end_line(std::string& out) {
  if (dot_pending_) {  // the line was "." alone
    done_ = true;
    return;
  }
  emit("\r\n", out);
  at_line_start_ = true;
}

std::size_t DataReader::feed(std::string_view input, std::string& out) {
  if (done_) return 0;
  std::size_t i = 0;
  while (i < input.size()) {
    // Fast path: the middle of a line is copied up to the next CR or LF.
    if (!pending_cr_ && !at_line_start_ && !dot_pending_) {
      auto j = input.find_first_of("\r\n", i);
      if (j == std::string_view::npos) j = input.size();
      if (j > i) emit(input.substr(i, j - i), out);
      i = j;
      if (i == input.size()) break;
    }
    char c = input[i++];
    if (pending_cr_) {
      pending_cr_ = false;
      if (c == '\n') {
        end_line(out);
        if (done_) return i;
        continue;
      }
      // Refused after the final dot. The CR is counted but not stored, so even a caller that
      // forgot to check bare_cr() holds no bare CR (and no new line boundary).
      bare_cr_ = true;
      emit({}, out);
      ++size_;
    }
    if (c == '\r') {
      pending_cr_ = true;
    } else if (c == '\n') {  // a bare LF: a line end too (lenient, as Postfix)
      end_line(out);
      if (done_) return i;
    } else if (at_line_start_ && c == '.') {
      at_line_start_ = false;
      dot_pending_ = true;
    } else {
      emit(std::string_view(&c, 1), out);
    }
  }
  return i;
}

}  // namespace mailhop::smtp
