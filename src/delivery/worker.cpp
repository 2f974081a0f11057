// Delivery workers (see mailhop/delivery/worker.hpp).
//
// The order of things after a transaction is what makes a restart safe: the envelope with
// every recipient's new state goes to disk first (a recipient the next hop accepted is never
// sent again), then the log lines, then the bounce, and only then is the message removed (a
// crash before the removal finds the message with nothing pending and finishes the job).
#include "mailhop/delivery/worker.hpp"

#include <chrono>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "mailhop/delivery/dsn.hpp"
#include "mailhop/delivery/outcome.hpp"
#include "mailhop/delivery/retry.hpp"
#include "mailhop/util/metrics.hpp"

namespace mailhop::delivery {

namespace asio = boost::asio;
using spool::RecipientState;

namespace {

constexpr std::size_t kHeaderReadLimit = 256 * 1024;  // enough for any sane header section

double seconds_since(util::SystemTime t, util::SystemTime now) {
  return std::chrono::duration<double>(now - t).count();
}

void log_line(const spool::Envelope& env, const std::string& rcpt, const std::string& relay, util::SystemTime now,
              const std::string& dsn, std::string_view status, const std::string& text) {
  spdlog::info("{}: to=<{}> relay={} delay={:.1f} attempts={} dsn={} status={} ({})", env.id.str(), rcpt, relay,
               std::max(0.0, seconds_since(env.arrival, now)), env.attempts, dsn, status, text);
}

// The header section of the queued message, for the DSN's text/rfc822-headers part.
asio::awaitable<std::string> original_headers(spool::Spool& spool, const spool::QueueId& id) {
  std::string content;
  while (content.size() < kHeaderReadLimit) {
    auto [ec, chunk] = co_await spool.read_content(id, content.size(), 64 * 1024);
    if (ec || chunk.empty()) break;
    content += chunk;
    if (content.find("\r\n\r\n") != std::string::npos) break;
  }
  co_return header_section(content);
}

// Nothing is pending any more: bounce the failed recipients (unless the sender is null), then
// remove the message. Returns false (keep the message) when the bounce could not be stored.
asio::awaitable<bool> finish(WorkerContext& ctx, const spool::Envelope& env, const std::string& remote_host,
                             const std::vector<bool>& failed_now) {
  std::vector<FailedRecipient> failed;
  for (std::size_t i = 0; i < env.recipients.size(); ++i) {
    const auto& r = env.recipients[i];
    if (r.state != RecipientState::failed) continue;
    auto stored = parse_stored_text(r.last_reply, '5');
    std::string remote;
    if (stored.remote) remote = (i < failed_now.size() && failed_now[i] && !remote_host.empty()) ? remote_host : ctx.config->relay.host;
    failed.push_back(FailedRecipient{r.address, stored.dsn, r.last_reply, remote});
  }
  if (!failed.empty()) {
    if (env.sender.empty()) {
      spdlog::info("{}: {} recipient(s) failed; no bounce for a message with the null sender, dropped", env.id.str(),
                   failed.size());
    } else {
      // (No co_await inside a braced initializer: GCC 12 destroys its temporaries twice.)
      std::string headers = co_await original_headers(ctx.spool, env.id);
      DsnInput input;
      input.hostname = ctx.config->hostname;
      input.original = env;
      input.failed = std::move(failed);
      input.original_headers = std::move(headers);
      input.now = std::chrono::system_clock::now();
      Dsn dsn = make_dsn(input);
      if (auto ec = co_await ctx.spool.store(dsn.envelope, std::move(dsn.content))) {
        spdlog::error("{}: cannot queue the bounce to <{}>: {}; keeping the message", env.id.str(), env.sender,
                      ec.message());
        co_return false;
      }
      spdlog::info("{}: sender non-delivery notification: {}", env.id.str(), dsn.envelope.id.str());
      ctx.scheduler.add(dsn.envelope);
    }
  }
  if (auto ec = co_await ctx.spool.remove(env.id)) {
    spdlog::error("{}: cannot remove from the queue: {}", env.id.str(), ec.message());
    co_return false;
  }
  spdlog::info("{}: removed", env.id.str());
  co_return true;
}

}  // namespace

asio::awaitable<std::optional<spool::Envelope>> deliver(WorkerContext& ctx, spool::Envelope env) {
  // The attempt keeps the configuration it started with: a reload may replace ctx.config meanwhile.
  const std::shared_ptr<const config::Config> config = ctx.config;
  const auto& retry = config->delivery.retry;
  std::vector<std::size_t> pending;
  for (std::size_t i = 0; i < env.recipients.size(); ++i)
    if (env.recipients[i].state == RecipientState::pending) pending.push_back(i);

  if (pending.empty()) {  // found so after a restart: the last attempt finished but was not cleaned up
    if (co_await finish(ctx, env, {}, {})) co_return std::nullopt;
    env.next_attempt = next_attempt(retry, std::max(env.attempts, 1u), env.arrival, std::chrono::system_clock::now(),
                                    std::uniform_real_distribution<double>(0, 1)(ctx.random));
    co_return env;
  }

  // One transaction over a pooled connection, or one deferral for all when none can be had.
  std::vector<RecipientResult> results;
  std::string relay = "none";
  std::string remote_host;
  const auto attempt_started = std::chrono::steady_clock::now();
  {
    Lease lease = co_await ctx.pool.acquire();
    if (lease.stopping) co_return env;  // shutting down: not an attempt, the message stays as it was
    relay = lease.relay;
    if (!lease.client) {
      results.assign(pending.size(), lease.failure.failure);
    } else {
      OutgoingMessage message;
      message.sender = env.sender;
      for (auto i : pending) message.recipients.push_back(env.recipients[i].address);
      message.size = env.size;
      message.eight_bit = env.eight_bit;
      message.smtputf8 = env.smtputf8;
      spool::Spool& spool = ctx.spool;
      const spool::QueueId id = env.id;
      message.content = [&spool, id](std::uint64_t offset, std::size_t max)
          -> asio::awaitable<std::pair<std::error_code, std::string>> {
        auto value = co_await spool.read_content(id, offset, max);
        co_return value;
      };
      results = co_await lease.client->send(message);
      relay = lease.client->relay_name();
      remote_host = lease.client->relay_host();
      ctx.pool.release(std::move(lease.client));
    }
  }

  auto& metrics = util::metrics::registry();
  metrics.delivery_attempts.inc();
  metrics.delivery_attempt_seconds.observe(std::chrono::steady_clock::now() - attempt_started);

  // Record every outcome, then make it durable before anything else.
  const auto now = std::chrono::system_clock::now();
  ++env.attempts;
  std::vector<bool> failed_now(env.recipients.size(), false);
  std::optional<std::string> first_deferral;
  std::optional<std::string> first_failure;
  for (std::size_t k = 0; k < pending.size(); ++k) {
    auto& rcpt = env.recipients[pending[k]];
    const auto& r = results[k];
    rcpt.last_reply = stored_text(r);
    if (r.outcome == Outcome::sent) {
      rcpt.state = RecipientState::sent;
    } else if (r.outcome == Outcome::failed) {
      rcpt.state = RecipientState::failed;
      failed_now[pending[k]] = true;
      if (!first_failure) first_failure = rcpt.last_reply;
    } else if (!first_deferral) {
      first_deferral = rcpt.last_reply;
    }
  }
  // Past give_up_after, what is still pending fails (RFC 5321 §4.5.4.1: give up, then bounce).
  std::vector<bool> expired_now(env.recipients.size(), false);
  if (first_deferral && expired(retry, env.arrival, now)) {
    for (auto i : pending) {
      auto& rcpt = env.recipients[i];
      if (rcpt.state != RecipientState::pending) continue;
      rcpt.state = RecipientState::failed;
      rcpt.last_reply = fmt::format("4.4.7 Message expired after {} attempts: {}", env.attempts, *first_deferral);
      failed_now[i] = true;
      expired_now[i] = true;
    }
  }
  env.last_error = first_deferral ? first_deferral : first_failure ? first_failure : env.last_error;
  env.next_attempt =
      next_attempt(retry, env.attempts, env.arrival, now, std::uniform_real_distribution<double>(0, 1)(ctx.random));

  // A message whose every recipient was accepted needs no update: its removal is the record.
  bool all_sent = true;
  for (const auto& r : env.recipients) all_sent = all_sent && r.state == RecipientState::sent;
  bool recorded = true;
  if (!all_sent) {
    if (auto ec = co_await ctx.spool.update(env)) {
      spdlog::error("{}: cannot update the envelope: {}", env.id.str(), ec.message());
      recorded = false;
    }
  }

  for (std::size_t k = 0; k < pending.size(); ++k) {
    const std::size_t i = pending[k];
    const auto& rcpt = env.recipients[i];
    const auto& r = results[k];
    if (expired_now[i]) {
      metrics.messages_bounced.inc();
      log_line(env, rcpt.address, relay, now, "5.4.7", "bounced", rcpt.last_reply);
    } else {
      (r.outcome == Outcome::sent     ? metrics.messages_relayed
       : r.outcome == Outcome::failed ? metrics.messages_bounced
                                      : metrics.messages_deferred)
          .inc();
      std::string_view status = r.outcome == Outcome::sent ? "sent" : r.outcome == Outcome::failed ? "bounced" : "deferred";
      log_line(env, rcpt.address, relay, now, r.dsn, status, r.text);
    }
  }

  if (!env.has_pending() && recorded) {
    if (co_await finish(ctx, env, remote_host, failed_now)) co_return std::nullopt;
  }
  co_return env;
}

asio::awaitable<void> run_worker(std::shared_ptr<WorkerContext> ctx, unsigned number) {
  spdlog::debug("delivery worker {} started", number);
  while (auto envelope = co_await ctx->scheduler.next()) {
    const spool::QueueId id = envelope->id;
    auto kept = co_await deliver(*ctx, std::move(*envelope));
    // What the operator asked while the attempt ran (the attempt used the envelope as it was).
    auto marks = ctx->scheduler.take_marks(id);
    if (kept && marks.removed) {
      if (auto ec = co_await ctx->spool.remove(id)) {
        spdlog::error("{}: cannot remove from the queue: {}", id.str(), ec.message());
      } else {
        spdlog::info("{}: removed by the operator", id.str());
        kept.reset();
      }
    } else if (kept && marks.held && kept->held != *marks.held) {
      kept->held = *marks.held;
      if (auto ec = co_await ctx->spool.update(*kept))
        spdlog::error("{}: cannot record {}: {}", id.str(), kept->held ? "the hold" : "the release", ec.message());
    }
    ctx->scheduler.done(id, std::move(kept));
  }
  spdlog::debug("delivery worker {} stopped", number);
}

}  // namespace mailhop::delivery
