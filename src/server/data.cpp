// Receiving a message: the bytes after 354 go through the DataReader (line ends, dot
// unstuffing, bare CR, size bound) and the HeaderCompleter (Date:, Message-ID:), behind the
// Received: field, and are appended to the spool in chunks as they come. 250 is sent only
// after Spool::commit() said the message and its envelope are durable (DESIGN.md).
//
// SECURITY: a message is never held whole: at most one chunk (kChunkSize) plus the part of the
// header section still being looked at. An oversized message, or one with a bare CR, is read to
// its end and dropped, and refused after the final dot; nothing of it stays in the spool.
#include <algorithm>

#include <spdlog/spdlog.h>

#include "mailhop/server/trace.hpp"
#include "mailhop/smtp/data_reader.hpp"
#include "mailhop/util/metrics.hpp"
#include "session_impl.hpp"

namespace mailhop::server {

namespace asio = boost::asio;

namespace {

constexpr std::size_t kDataReadSize = 64 * 1024;
constexpr std::size_t kChunkSize = 256 * 1024;  // what one Spool::append() writes

}  // namespace

asio::awaitable<Session::Next> Session::receive_data() {
  // One deadline for the whole transfer (limits.data_timeout), not one per read: a client
  // trickling a byte at a time cannot hold the session open (Postfix: "never extend the time
  // budget mid-command").
  const auto deadline = std::min(Clock::now() + config_.limits.data_timeout, session_deadline_);
  const auto now = std::chrono::system_clock::now();
  const std::string id = incoming_->id().str();
  read_buffer_.resize(kDataReadSize);

  TraceInfo trace;
  trace.helo = helo_;
  trace.client_ip = client_ip_;
  trace.hostname = config_.hostname;
  trace.protocol = trace_protocol(esmtp_, transaction_.smtputf8, tls_ != nullptr, !auth_user_.empty());
  trace.tls = tls_info_;
  trace.auth_user = auth_user_;
  trace.queue_id = id;
  if (transaction_.recipients.size() == 1) trace.recipient = transaction_.recipients.front();
  trace.when = now;

  smtp::DataReader reader(max_message_size());
  HeaderCompleter completer("Date: " + util::rfc5322_date(now) + "\r\n",
                            "Message-ID: <" + id + "@" + config_.hostname + ">\r\n");
  std::string chunk = received_header(trace);  // what goes to the spool next
  std::string content;                          // what the reader made of the last input
  std::error_code store_error;

  for (;;) {
    auto pending = lines_.pending();
    if (pending.empty()) {
      // Everything buffered is consumed: send the 354 (and replies before it), then read.
      if (!co_await flush(deadline)) {
        reply_for_end(Clock::now() >= deadline ? Wait::timeout : Wait::closed, "DATA");
        co_return Next::close;
      }
      auto wait = co_await read_more(deadline, false);
      if (wait != Wait::data) {
        reply_for_end(wait, "DATA");
        co_return Next::close;
      }
      continue;
    }
    content.clear();
    lines_.consume(reader.feed(pending, content));
    const bool refused = reader.too_big() || reader.bare_cr() || store_error;
    if (refused) {
      incoming_.reset();  // drop what was written; keep reading to the end of the data
      chunk.clear();
    } else {
      completer.feed(content, chunk);
    }
    if (reader.done()) break;
    if (!refused && chunk.size() >= kChunkSize) {
      store_error = co_await env_.spool->append(*incoming_, std::move(chunk));
      chunk.clear();
    }
  }

  last_command_ = "END-OF-MESSAGE";
  read_buffer_.resize(kCommandReadSize);
  read_buffer_.shrink_to_fit();

  Response response;
  if (reader.bare_cr()) {
    spdlog::info("{}: reject: bare CR in message content from {}", id, client_label());
    response = {554, "5.6.0", "Message refused: it contains a bare CR; line ends must be CRLF"};
  } else if (reader.too_big()) {
    spdlog::info("{}: reject: message of {} bytes or more from {} exceeds the limit", id, reader.size(), client_label());
    response = {552, "5.3.4", "Message too big: limit is " + std::to_string(config_.limits.max_message_size) + " bytes"};
  } else {
    spool::Envelope envelope;
    if (!store_error) {
      completer.finish(chunk);  // the rest of the content: written by the commit below
      envelope.sender = transaction_.sender;
      for (const auto& address : transaction_.recipients) {
        spool::Recipient recipient;
        recipient.address = address;
        envelope.recipients.push_back(std::move(recipient));
      }
      envelope.arrival = std::chrono::system_clock::now();
      envelope.next_attempt = envelope.arrival;
      envelope.eight_bit = reader.eight_bit() || transaction_.body_8bitmime;
      envelope.smtputf8 = transaction_.smtputf8;
      envelope.client_host = helo_;
      envelope.client_ip = client_ip_;
      if (!auth_user_.empty()) envelope.auth_user = auth_user_;
      store_error = co_await env_.spool->commit(*incoming_, std::move(chunk), envelope);
    }
    if (store_error) {
      spdlog::error("{}: cannot store message from {}: {}", id, client_label(), store_error.message());
      response = {452, "4.3.1", "Insufficient system storage: message not queued, try again later"};
    } else {
      // Durable from here on: the client may hear 250, delivery may start.
      util::metrics::registry().messages_received.inc();
      if (auth_user_.empty()) {
        spdlog::info("{}: from=<{}> size={} nrcpt={} client={}", envelope.id.str(), envelope.sender, envelope.size,
                     envelope.recipients.size(), client_label());
      } else {
        spdlog::info("{}: from=<{}> size={} nrcpt={} client={} sasl_method={} sasl_username={}", envelope.id.str(),
                     envelope.sender, envelope.size, envelope.recipients.size(), client_label(), auth_method_,
                     auth_user_);
      }
      if (env_.on_queued) {
        try {
          env_.on_queued(envelope);
        } catch (const std::exception& e) {
          spdlog::error("{}: queued, but could not be scheduled now: {}", envelope.id.str(), e.what());
        }
      }
      ++messages_;
      errors_ = 0;  // as Postfix: the error limit is for clients that deliver nothing
      response = {250, "2.0.0", "Ok: queued as " + envelope.id.str()};
    }
  }
  incoming_.reset();
  reset_transaction();
  reply(response);
  co_return Next::proceed;
}

}  // namespace mailhop::server
