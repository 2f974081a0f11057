// The admin API end to end inside one process: a real spool, a DeliveryService whose next hop
// does not answer (so messages stay deferred), the AdminServer on a free loopback port, and the
// command line's synchronous client. Also the spool lock and the metrics text.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json.hpp>

#include "mailhop/admin/client.hpp"
#include "mailhop/admin/server.hpp"
#include "mailhop/delivery/delivery.hpp"
#include "mailhop/spool/lock.hpp"
#include "mailhop/util/metrics.hpp"

using namespace mailhop;
namespace asio = boost::asio;
namespace json = boost::json;

namespace {

std::filesystem::path scratch() {
  std::random_device rd;
  auto p = std::filesystem::temp_directory_path() /
           ("mailhop-admin-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
  std::filesystem::create_directories(p);
  return p;
}

// A port nobody listens on: bound, then closed.
std::uint16_t closed_port() {
  asio::io_context io;
  asio::ip::tcp::acceptor a(io, {asio::ip::address_v4::loopback(), 0});
  return a.local_endpoint().port();
}

struct Harness {
  std::filesystem::path dir = scratch();
  std::shared_ptr<config::Config> config = std::make_shared<config::Config>();
  asio::io_context io;
  std::unique_ptr<spool::Spool> spool;
  std::unique_ptr<delivery::DeliveryService> delivery;
  std::unique_ptr<admin::AdminServer> server;
  asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(io);
  std::thread thread;

  explicit Harness(std::optional<std::string> token = std::nullopt) {
    config->spool_path = (dir / "spool").string();
    config->relay.host = "127.0.0.1";
    config->relay.port = closed_port();
    config->relay.tls = config::RelayTls::none;
    config->delivery.workers = 1;
    config->delivery.retry.initial = std::chrono::hours(1);  // deferred messages wait
    config->admin.listen = "127.0.0.1:" + std::to_string(closed_port());  // free a moment ago
    if (token) {
      std::ofstream(dir / "token") << *token << "\n";
      config->admin.token_file = (dir / "token").string();
    }
    spool = std::make_unique<spool::Spool>(spool::Spool::Options{dir / "spool", false});
    spool->open();
    delivery = std::make_unique<delivery::DeliveryService>(io, config, *spool);
    server = std::make_unique<admin::AdminServer>(io, admin::AdminDeps{config, spool.get(), delivery.get(), {}});
    server->start();
    REQUIRE(server->local_endpoint().port() != 0);
    delivery->start({});
    thread = std::thread([this] { io.run(); });
  }
  ~Harness() {
    server->stop();
    delivery->stop();
    work.reset();
    thread.join();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }

  admin::ClientResponse call(const std::string& method, const std::string& target) {
    return admin::request(*config, method, target, std::chrono::seconds(20));
  }

  // A message stored and handed to delivery, like the server does.
  spool::QueueId store(bool held = false) {
    spool::Envelope e;
    e.sender = "alice@example.org";
    e.recipients.push_back({"bob@example.com", spool::RecipientState::pending, {}});
    e.arrival = e.next_attempt = std::chrono::system_clock::now();
    e.held = held;
    auto stored = asio::co_spawn(io, spool->store(e, "Subject: x\r\n\r\nhi\r\n"), asio::use_future).get();
    REQUIRE(!stored);
    delivery->enqueue(e);
    return e.id;
  }

  json::value queue() {
    auto r = call("GET", "/api/queue");
    REQUIRE(r.status == 200);
    return json::parse(r.body);
  }

  // Waits until the message was tried once (the next hop refuses connections: deferred).
  void wait_attempted(const spool::QueueId& id) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    for (;;) {
      auto e = spool->load(id);
      if (e && e->attempts > 0) return;
      REQUIRE(std::chrono::steady_clock::now() < deadline);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling a condition, with a deadline
    }
  }
};

}  // namespace

TEST_CASE("admin: health, unknown paths, methods and ids answer with JSON") {
  Harness h;
  auto r = h.call("GET", "/healthz");
  CHECK(r.status == 200);
  CHECK(json::parse(r.body).as_object().at("alive").as_bool());
  CHECK(h.call("GET", "/nope").status == 404);
  CHECK(h.call("GET", "/api/queue/1/2/3").status == 404);
  r = h.call("POST", "/healthz");
  CHECK(r.status == 405);
  CHECK(json::parse(r.body).as_object().contains("error"));
  CHECK(h.call("GET", "/api/queue/not-an-id").status == 400);
  CHECK(h.call("POST", "/api/queue/../../etc/hold").status == 404);
  CHECK(h.call("DELETE", "/api/queue/flush").status == 405);
  CHECK(h.call("GET", "/api/queue/0660D559B5529C000000005F12").status == 404);
  CHECK(h.call("POST", "/api/queue/0660D559B5529C000000005F12/hold").status == 404);
  CHECK(h.call("POST", "/api/queue/0660D559B5529C000000005F12/explode").status == 404);
}

TEST_CASE("admin: the queue list, hold, release, delete") {
  Harness h;
  auto id = h.store();
  h.wait_attempted(id);
  auto q = h.queue();
  REQUIRE(q.as_array().size() == 1);
  auto& o = q.as_array()[0].as_object();
  CHECK(o.at("id").as_string() == id.str());
  CHECK(o.at("held").as_bool() == false);
  CHECK(o.at("recipients").as_array()[0].as_object().at("state").as_string() == "pending");

  auto r = h.call("POST", "/api/queue/" + id.str() + "/hold");
  CHECK(r.status == 200);
  CHECK(h.spool->load(id)->held);  // on disk before the answer
  CHECK(h.call("GET", "/api/queue/" + id.str()).body.find("\"held\":true") != std::string::npos);
  CHECK(h.call("POST", "/api/queue/" + id.str() + "/retry").status == 409);

  r = h.call("POST", "/api/queue/" + id.str() + "/release");
  CHECK(r.status == 200);
  CHECK_FALSE(h.spool->load(id)->held);

  r = h.call("DELETE", "/api/queue/" + id.str());
  CHECK((r.status == 200 || r.status == 202));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (h.spool->contains(id)) {
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(h.call("GET", "/api/queue/" + id.str()).status == 404);
  CHECK(h.queue().as_array().empty());
}

TEST_CASE("admin: a held message is not tried, flush skips it") {
  Harness h;
  auto id = h.store(true);
  auto r = h.call("POST", "/api/queue/flush");
  CHECK(r.status == 200);
  CHECK(json::parse(r.body).as_object().at("due_now").to_number<int>() == 0);
  auto e = h.spool->load(id);
  REQUIRE(e);
  CHECK(e->attempts == 0);
  CHECK(e->held);
}

TEST_CASE("admin: readyz names the failed check; metrics are Prometheus text") {
  util::metrics::registry().forget_next_hop();
  Harness h;
  auto r = h.call("GET", "/readyz");
  CHECK(r.status == 503);
  auto body = json::parse(r.body).as_object();
  CHECK_FALSE(body.at("ready").as_bool());
  CHECK(body.at("failed").as_array().size() == 1);
  CHECK(body.at("failed").as_array()[0].as_string() == "next_hop");
  CHECK(body.at("checks").as_object().at("spool").as_object().at("ok").as_bool());

  h.store();
  r = h.call("GET", "/metrics");
  CHECK(r.status == 200);
  CHECK(r.body.find("# TYPE mailhop_messages_relayed_total counter") != std::string::npos);
  CHECK(r.body.find("mailhop_queue_size 1") != std::string::npos);
  CHECK(r.body.find("mailhop_spool_commit_duration_seconds_count") != std::string::npos);
  CHECK(r.body.find("mailhop_auth_failures_total{cause=\"outbound_rejected\"}") != std::string::npos);
}

TEST_CASE("admin: with a token file every request needs the bearer token") {
  Harness h("s3cret-token");
  auto r = h.call("GET", "/healthz");  // the client sends the token from admin.token_file
  CHECK(r.status == 200);
  auto without = *h.config;
  without.admin.token_file.reset();
  CHECK(admin::request(without, "GET", "/healthz").status == 401);
  std::ofstream(h.dir / "wrong") << "s3cret-tokeN\n";
  without.admin.token_file = (h.dir / "wrong").string();
  CHECK(admin::request(without, "GET", "/api/queue").status == 401);
}

TEST_CASE("spool lock: one holder; free again when released") {
  auto dir = scratch();
  {
    auto first = spool::SpoolLock::try_acquire(dir);
    REQUIRE(first.status == spool::SpoolLock::Status::acquired);
    CHECK(spool::SpoolLock::held_elsewhere(dir));
    // flock locks belong to the open file description: a second open in this process conflicts too.
    auto second = spool::SpoolLock::try_acquire(dir);
    CHECK(second.status == spool::SpoolLock::Status::held_elsewhere);
    CHECK(second.holder == std::to_string(::getpid()));
  }
  CHECK_FALSE(spool::SpoolLock::held_elsewhere(dir));
  CHECK(spool::SpoolLock::try_acquire(dir).status == spool::SpoolLock::Status::acquired);
  std::filesystem::remove_all(dir);
}
