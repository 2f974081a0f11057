// Queue IDs: 14 hex digits of microseconds since the epoch, 4 of a per-process sequence, 8 of
// the process id: "0005F3A1B2C3D4" "0001" "000004D2" (26 characters, [0-9A-F] only).
//
// Fixed length and upper case, so the lexical order of IDs is their order of creation within a
// process (and their order of arrival across processes, to the microsecond). Safe as a file name:
// no path can be built from anything but a QueueId, and parse() accepts nothing else.
#include "mailhop/spool/queue_id.hpp"

#include <pthread.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <atomic>
#include <mutex>

namespace mailhop::spool {

namespace {

constexpr std::size_t kTimeDigits = 14;
constexpr std::size_t kSequenceDigits = 4;
constexpr std::size_t kPidDigits = 8;
constexpr std::size_t kLength = kTimeDigits + kSequenceDigits + kPidDigits;

void put_hex(std::string& out, std::uint64_t value, std::size_t digits) {
  static constexpr char hex[] = "0123456789ABCDEF";
  for (std::size_t i = digits; i-- > 0;) out.push_back(hex[(value >> (4 * i)) & 0xF]);
}

// The process id, asked once instead of once per ID (a getpid() per message showed in strace);
// a forked child asks again, so two processes never share it.
std::atomic<std::uint32_t> cached_pid{0};

std::uint32_t process_id() {
  auto pid = cached_pid.load(std::memory_order_relaxed);
  if (pid != 0) return pid;
  static const int registered = ::pthread_atfork(nullptr, nullptr, [] { cached_pid.store(0); });
  (void)registered;
  pid = static_cast<std::uint32_t>(::getpid());
  cached_pid.store(pid, std::memory_order_relaxed);
  return pid;
}

bool is_upper_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); }

}  // namespace

QueueId QueueId::generate() {
  // The time part never goes backwards within a process (a clock step back reuses the last
  // value), and the sequence tells apart IDs of the same microsecond; when it runs out, the
  // time part moves one microsecond ahead. So IDs from one process are strictly increasing.
  static std::mutex mutex;
  static std::uint64_t last_micros = 0;
  static std::uint64_t sequence = 0;

  auto now = std::chrono::duration_cast<std::chrono::microseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  std::uint64_t micros = now > 0 ? static_cast<std::uint64_t>(now) : 0;
  std::uint64_t seq = 0;
  {
    std::lock_guard lock(mutex);
    if (micros > last_micros) {
      last_micros = micros;
      sequence = 0;
    } else if (++sequence > 0xFFFF) {
      ++last_micros;
      sequence = 0;
    }
    micros = last_micros;
    seq = sequence;
  }

  std::string text;
  text.reserve(kLength);
  put_hex(text, micros, kTimeDigits);
  put_hex(text, seq, kSequenceDigits);
  put_hex(text, process_id(), kPidDigits);
  return QueueId(std::move(text));
}

std::optional<QueueId> QueueId::parse(std::string_view text) {
  if (text.size() != kLength) return std::nullopt;
  for (char c : text)
    if (!is_upper_hex(c)) return std::nullopt;
  return QueueId(std::string(text));
}

}  // namespace mailhop::spool
