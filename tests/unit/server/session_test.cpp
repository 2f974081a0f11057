// Scripted dialogues with a real Session over a loopback socket: the replies, their codes and
// order, what ends up in the spool, and the limits and deadlines.
#include <chrono>
#include <fstream>
#include <regex>
#include <sstream>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "harness.hpp"
#include "mailhop/spool/queue_id.hpp"

using namespace mailhop;
using namespace mailhop::server::test;

namespace {

std::string stored(SessionHarness& h, const std::string& id) {
  auto qid = spool::QueueId::parse(id);
  REQUIRE(qid);
  auto content = h.spool.read_content_sync(*qid);
  REQUIRE(content);
  return *content;
}

// The content after the three header fields the server adds (Received: is three lines).
std::string after_received(const std::string& content) {
  REQUIRE(content.rfind("Received: from ", 0) == 0);
  auto pos = content.find("\r\n", content.find("\r\n", content.find("\r\n") + 2) + 2);
  REQUIRE(pos != std::string::npos);
  return content.substr(pos + 2);
}

}  // namespace

TEST_CASE("a full transaction is queued with trace headers", "[session]") {
  SessionHarness h;
  auto c = h.connect();
  CHECK(c.reply() == "220 mx.test ESMTP mailhop");
  c.send("EHLO client.test\r\n");
  CHECK(c.reply() ==
        "250-mx.test\n250-PIPELINING\n250-SIZE 1048576\n250-ENHANCEDSTATUSCODES\n250-8BITMIME\n250 SMTPUTF8");
  c.send("MAIL FROM:<alice@example.org>\r\n");
  CHECK(c.reply() == "250 2.1.0 Ok");
  c.send("RCPT TO:<bob@example.net>\r\n");
  CHECK(c.reply() == "250 2.1.5 Ok");
  c.send("DATA\r\n");
  CHECK(c.reply() == "354 End data with <CR><LF>.<CR><LF>");
  c.send("Subject: hello\r\n\r\nline one\r\n..leading dot\r\n.\r\n");
  auto queued = c.reply();
  REQUIRE(queued.rfind("250 2.0.0 Ok: queued as ", 0) == 0);
  c.send("QUIT\r\n");
  CHECK(c.reply() == "221 2.0.0 Bye");
  CHECK(c.closed());

  auto id = queue_id_of(queued);
  auto envelopes = h.spool.list();
  REQUIRE(envelopes.size() == 1);
  const auto& e = envelopes.front();
  CHECK(e.id.str() == id);
  CHECK(e.sender == "alice@example.org");
  REQUIRE(e.recipients.size() == 1);
  CHECK(e.recipients[0].address == "bob@example.net");
  CHECK(e.recipients[0].state == spool::RecipientState::pending);
  CHECK(e.client_ip == "127.0.0.1");
  CHECK(e.client_host == "client.test");
  CHECK_FALSE(e.eight_bit);
  CHECK_FALSE(e.smtputf8);
  CHECK(e.next_attempt == e.arrival);

  auto content = stored(h, id);
  CHECK(content.rfind("Received: from client.test (127.0.0.1 [127.0.0.1])\r\n\tby mx.test (mailhop) with ESMTP id " +
                          id + "\r\n\tfor <bob@example.net>; ",
                      0) == 0);
  auto rest = after_received(content);
  // Date: and Message-ID: go at the end of the header section, before the empty line.
  REQUIRE(rest.rfind("Subject: hello\r\nDate: ", 0) == 0);
  CHECK(rest.find("\r\nMessage-ID: <" + id + "@mx.test>\r\n\r\nline one\r\n.leading dot\r\n") != std::string::npos);
  CHECK(e.size == content.size());

  auto announced = h.queued();
  REQUIRE(announced.size() == 1);
  CHECK(announced[0].id.str() == id);
}

TEST_CASE("250 comes only after the message is on disk", "[session]") {
  SessionHarness h(test_config(), /*durable=*/true);
  auto c = h.greeted();
  for (int i = 0; i < 3; ++i) {
    c.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n");
    CHECK(c.reply() == "250 2.1.0 Ok");
    CHECK(c.reply() == "250 2.1.5 Ok");
    CHECK(c.reply() == "354 End data with <CR><LF>.<CR><LF>");
    c.send("Subject: " + std::to_string(i) + "\r\n\r\nbody\r\n.\r\n");
    auto reply = c.reply();
    REQUIRE(reply.rfind("250 2.0.0 Ok: queued as ", 0) == 0);
    // The moment the client has its 250, envelope and content are there to be loaded.
    auto id = spool::QueueId::parse(queue_id_of(reply));
    REQUIRE(id);
    CHECK(h.spool.load(*id));
    CHECK(h.spool.read_content_sync(*id));
  }
  auto durable = h.durable_at_announcement();
  CHECK(durable == std::vector<bool>{true, true, true});
}

TEST_CASE("a pipelined group gets every reply, in order", "[session][pipelining]") {
  SessionHarness h;
  auto c = h.greeted();
  c.send("MAIL FROM:<a@example.org> SIZE=100\r\nRCPT TO:<b@example.net>\r\nRCPT TO:<nobody>\r\nRCPT TO:<c@example.net>\r\nDATA\r\n");
  CHECK(c.reply() == "250 2.1.0 Ok");
  CHECK(c.reply() == "250 2.1.5 Ok");
  CHECK(c.reply().rfind("501 5.5.4 ", 0) == 0);
  CHECK(c.reply() == "250 2.1.5 Ok");
  CHECK(c.reply() == "354 End data with <CR><LF>.<CR><LF>");
  // Content, end of data and the next commands in one write, as impatient clients do.
  c.send("Subject: x\r\n\r\nhi\r\n.\r\nMAIL FROM:<>\r\nRCPT TO:<d@example.net>\r\nDATA\r\nbody only\r\n.\r\nQUIT\r\n");
  auto first = c.reply();
  CHECK(first.rfind("250 2.0.0 Ok: queued as ", 0) == 0);
  CHECK(c.reply() == "250 2.1.0 Ok");
  CHECK(c.reply() == "250 2.1.5 Ok");
  CHECK(c.reply() == "354 End data with <CR><LF>.<CR><LF>");
  auto second = c.reply();
  CHECK(second.rfind("250 2.0.0 Ok: queued as ", 0) == 0);
  CHECK(c.reply() == "221 2.0.0 Bye");
  CHECK(c.closed());

  auto queued = h.queued();
  REQUIRE(queued.size() == 2);
  CHECK(queued[0].recipients.size() == 2);
  CHECK(queued[1].sender == "");
  // A message without a header section gets the fields before its first line.
  auto rest = after_received(stored(h, queue_id_of(second)));
  CHECK(rest.rfind("Date: ", 0) == 0);
  CHECK(rest.find("\r\nMessage-ID: <") != std::string::npos);
  CHECK(rest.substr(rest.size() - 11) == "body only\r\n");
}

TEST_CASE("a bare-LF client as in the origin notes (Java PrintStream.println)", "[session]") {
  SessionHarness h;
  auto c = h.connect();
  CHECK(c.reply() == "220 mx.test ESMTP mailhop");
  c.send("HELO gazprom.ru\n");
  CHECK(c.reply() == "250 mx.test");
  c.send("MAIL FROM: user@gazprom.ru \n");
  CHECK(c.reply() == "250 2.1.0 Ok");
  c.send("RCPT TO: pikselnsk@yandex.ru \n");
  CHECK(c.reply() == "250 2.1.5 Ok");
  c.send("DATA\n");
  CHECK(c.reply() == "354 End data with <CR><LF>.<CR><LF>");
  c.send("from: user@gazprom.ru\nsubject: tema \nHello my friend! Java sent this!\n.\n");
  auto reply = c.reply();
  REQUIRE(reply.rfind("250 2.0.0 Ok: queued as ", 0) == 0);
  c.close();  // no QUIT, as that client does

  auto content = stored(h, queue_id_of(reply));
  CHECK(content.find("with SMTP id") != std::string::npos);
  auto rest = after_received(content);
  CHECK(rest.rfind("from: user@gazprom.ru\r\nsubject: tema \r\nDate: ", 0) == 0);
  CHECK(rest.find("\r\nMessage-ID: <") != std::string::npos);
  CHECK(rest.substr(rest.size() - 34) == "Hello my friend! Java sent this!\r\n");
  // Every line end stored is CRLF.
  for (std::size_t i = 0; i < content.size(); ++i) {
    if (content[i] == '\n') REQUIRE((i > 0 && content[i - 1] == '\r'));
  }
}

TEST_CASE("submitted Date: and Message-ID: are kept, not doubled", "[session]") {
  SessionHarness h;
  auto c = h.greeted();
  c.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n");
  c.reply(), c.reply(), c.reply();
  c.send("date: Sun, 22 Nov 2026 03:11:47 +0000\r\nMESSAGE-ID: <x@y>\r\n\r\nbody\r\n.\r\n");
  auto reply = c.reply();
  REQUIRE(reply.rfind("250 2.0.0", 0) == 0);
  CHECK(after_received(stored(h, queue_id_of(reply))) ==
        "date: Sun, 22 Nov 2026 03:11:47 +0000\r\nMESSAGE-ID: <x@y>\r\n\r\nbody\r\n");
}

TEST_CASE("error replies carry their codes", "[session][errors]") {
  auto config = test_config();
  config.limits.max_errors = 100;
  SessionHarness h(config);
  auto c = h.connect();
  CHECK(c.reply() == "220 mx.test ESMTP mailhop");

  auto says = [&c](const std::string& command, const std::string& prefix) {
    c.send(command + "\r\n");
    auto reply = c.reply();
    INFO(command << " -> " << reply);
    CHECK(reply.rfind(prefix, 0) == 0);
  };
  says("MAIL FROM:<a@example.org>", "503 5.5.1 ");  // HELO first
  says("HELO", "501 5.5.4 ");
  says("EHLO bad\x01name", "501 5.5.4 ");
  says("FOO bar", "500 5.5.1 ");
  says("", "500 5.5.1 ");
  says("helo client.test", "250 mx.test");
  says("RCPT TO:<b@example.net>", "503 5.5.1 ");
  says("DATA", "503 5.5.1 ");
  says("MAIL TO:<a@example.org>", "501 5.5.4 ");
  says("MAIL FROM:<a@example.org> FROB=1", "555 5.5.4 ");
  says("MAIL FROM:<\xc3\xa9@example.org>", "553 5.6.7 ");
  says("mail from:<a@example.org>", "250 2.1.0 ");
  says("MAIL FROM:<a@example.org>", "503 5.5.1 ");  // nested
  says("DATA", "503 5.5.1 ");                       // no RCPT yet
  says("RCPT TO:<not an address>", "501 5.5.4 ");
  says("DATA", "554 5.5.1 ");                       // RCPTs tried, none valid
  says("RCPT TO:<b@example.net> NOTIFY=NEVER", "555 5.5.4 ");
  says("RCPT TO:<b@example.net>", "250 2.1.5 ");
  says("DATA now", "501 5.5.4 ");
  says("RSET", "250 2.0.0 ");
  says("DATA", "503 5.5.1 ");  // RSET dropped the transaction
  says("NOOP", "250 2.0.0 ");
  says("VRFY bob", "252 2.5.2 ");
  says("VRFY", "501 5.5.4 ");
  says("EXPN staff", "502 5.5.1 ");
  says("STARTTLS", "502 5.5.1 ");
  says("AUTH PLAIN", "502 5.5.1 ");
  says("NOOP " + std::string(3000, 'x'), "500 5.5.6 ");
  says("NOOP", "250 2.0.0 ");  // still in step after the long line
  c.send("HELP\r\n");
  auto help = c.reply();
  CHECK(help.rfind("214-2.0.0 ", 0) == 0);
  CHECK(help.find("\n214 2.0.0 ") != std::string::npos);
  says("QUIT", "221 2.0.0 ");
  CHECK(c.closed());
  CHECK(h.spool.list().empty());
}

TEST_CASE("SMTPUTF8 and 8BITMIME reach the envelope", "[session]") {
  SessionHarness h;
  auto c = h.greeted();
  c.send("MAIL FROM:<\xc3\xa9t\xc3\xa9@example.org> SMTPUTF8 BODY=8BITMIME\r\n");
  CHECK(c.reply() == "250 2.1.0 Ok");
  c.send("RCPT TO:<b@example.net>\r\nDATA\r\n");
  CHECK(c.reply() == "250 2.1.5 Ok");
  CHECK(c.reply().rfind("354 ", 0) == 0);
  c.send("Subject: caf\xc3\xa9\r\n\r\n.\r\n");
  auto reply = c.reply();
  REQUIRE(reply.rfind("250 2.0.0", 0) == 0);
  auto queued = h.queued();
  REQUIRE(queued.size() == 1);
  CHECK(queued[0].smtputf8);
  CHECK(queued[0].eight_bit);
  CHECK(stored(h, queue_id_of(reply)).find("with UTF8SMTP id") != std::string::npos);
}

TEST_CASE("relaying is for allowed networks only", "[session][policy]") {
  auto config = test_config();
  config.allowed_networks = {network("10.0.0.0/8")};
  SessionHarness h(config);
  auto c = h.greeted();
  c.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n");
  CHECK(c.reply() == "250 2.1.0 Ok");
  CHECK(c.reply() == "554 5.7.1 Relay access denied");
  CHECK(c.reply().rfind("554 5.5.1 ", 0) == 0);
}

TEST_CASE("too many recipients: 452 4.5.3, and the others are kept", "[session][limits]") {
  auto config = test_config();
  config.limits.max_recipients = 2;
  SessionHarness h(config);
  auto c = h.greeted();
  c.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<r1@example.net>\r\nRCPT TO:<r2@example.net>\r\n"
         "RCPT TO:<r1@example.net>\r\nRCPT TO:<r3@example.net>\r\nDATA\r\n");
  CHECK(c.reply() == "250 2.1.0 Ok");
  CHECK(c.reply() == "250 2.1.5 Ok");
  CHECK(c.reply() == "250 2.1.5 Ok");
  CHECK(c.reply() == "250 2.1.5 Ok");  // a repeat is not one more
  CHECK(c.reply() == "452 4.5.3 Too many recipients: limit is 2");
  CHECK(c.reply().rfind("354 ", 0) == 0);
  c.send("\r\n.\r\n");
  CHECK(c.reply().rfind("250 2.0.0", 0) == 0);
  auto queued = h.queued();
  REQUIRE(queued.size() == 1);
  REQUIRE(queued[0].recipients.size() == 2);
  CHECK(queued[0].recipients[0].address == "r1@example.net");
  CHECK(queued[0].recipients[1].address == "r2@example.net");
}

TEST_CASE("size limit: announced and actual", "[session][limits]") {
  auto config = test_config();
  config.limits.max_message_size = 1000;
  SessionHarness h(config);
  auto c = h.greeted();
  c.send("MAIL FROM:<a@example.org> SIZE=1001\r\n");
  CHECK(c.reply() == "552 5.3.4 Message too big: limit is 1000 bytes");
  c.send("MAIL FROM:<a@example.org> SIZE=1000\r\nRCPT TO:<b@example.net>\r\nDATA\r\n");
  CHECK(c.reply() == "250 2.1.0 Ok");
  CHECK(c.reply() == "250 2.1.5 Ok");
  CHECK(c.reply().rfind("354 ", 0) == 0);
  std::string line(98, 'x');
  for (int i = 0; i < 20; ++i) c.send(line + "\r\n");
  c.send(".\r\n");
  CHECK(c.reply() == "552 5.3.4 Message too big: limit is 1000 bytes");
  CHECK(h.spool.list().empty());
  CHECK(h.queued().empty());
  // The session is in step and the transaction gone.
  c.send("RCPT TO:<b@example.net>\r\n");
  CHECK(c.reply().rfind("503 5.5.1 ", 0) == 0);
}

TEST_CASE("a bare CR in content is refused and nothing is stored", "[session]") {
  SessionHarness h;
  auto c = h.greeted();
  c.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n");
  c.reply(), c.reply(), c.reply();
  c.send("Subject: x\r\n\r\nsmuggled\r.\rMAIL FROM:<x@y>\r\n.\r\n");
  CHECK(c.reply().rfind("554 5.6.0 ", 0) == 0);
  c.send("NOOP\r\n");
  CHECK(c.reply() == "250 2.0.0 Ok");
  CHECK(h.spool.list().empty());
}

TEST_CASE("an HTTP request gets one reply and the connection closes", "[session][hostile]") {
  SessionHarness h;
  auto c = h.connect();
  CHECK(c.reply() == "220 mx.test ESMTP mailhop");
  // A body the server never reads as commands; it must not turn the close into a reset that
  // destroys the reply.
  const std::string body(256 * 1024, 'x');
  c.send("POST / HTTP/1.1\r\nHost: mx.test\r\nContent-Length: " + std::to_string(body.size() + 6) +
         "\r\n\r\nQUIT\r\n" + body);
  CHECK(c.reply() == "554 5.7.0 This is an SMTP server, not HTTP");
  CHECK(c.closed());
}

TEST_CASE("too many errors: 421 4.7.0 and close", "[session][hostile]") {
  auto config = test_config();
  config.limits.max_errors = 3;
  SessionHarness h(config);
  auto c = h.greeted();
  c.send("FOO\r\nBAR\r\nBAZ\r\nNOOP\r\n");
  CHECK(c.reply().rfind("500 5.5.1 ", 0) == 0);
  CHECK(c.reply().rfind("500 5.5.1 ", 0) == 0);
  CHECK(c.reply().rfind("500 5.5.1 ", 0) == 0);
  CHECK(c.reply() == "421 4.7.0 mx.test Too many errors, closing connection");
  CHECK(c.closed());
}

TEST_CASE("a silent client: 421 4.4.2 after the command timeout", "[session][deadline]") {
  auto config = test_config();
  config.limits.command_timeout = 300ms;
  SessionHarness h(config);
  auto c = h.connect();
  CHECK(c.reply() == "220 mx.test ESMTP mailhop");
  const auto start = std::chrono::steady_clock::now();
  CHECK(c.reply().rfind("421 4.4.2 ", 0) == 0);
  CHECK(std::chrono::steady_clock::now() - start >= 250ms);
  CHECK(c.closed());
}

TEST_CASE("bytes trickling in do not extend the command deadline", "[session][deadline]") {
  auto config = test_config();
  config.limits.command_timeout = 500ms;
  SessionHarness h(config);
  auto c = h.connect();
  CHECK(c.reply() == "220 mx.test ESMTP mailhop");
  // One byte of a never-ending NOOP line every 100 ms (the wait for a reply paces it): a
  // deadline restarted by each byte would never expire while this goes on for 10 s.
  const auto start = std::chrono::steady_clock::now();
  bool answered = false;
  c.send("NOOP ");
  while (std::chrono::steady_clock::now() - start < 10s) {
    if (c.wait_readable(100ms)) {
      answered = true;
      break;
    }
    c.send("x");
  }
  REQUIRE(answered);
  CHECK(c.reply().rfind("421 4.4.2 ", 0) == 0);
  CHECK(std::chrono::steady_clock::now() - start < 5s);
}

TEST_CASE("a busy session still ends at the session deadline", "[session][deadline]") {
  auto config = test_config();
  config.limits.session_timeout = 500ms;
  SessionHarness h(config);
  auto c = h.greeted();
  const auto start = std::chrono::steady_clock::now();
  std::string reply;
  while (std::chrono::steady_clock::now() - start < 10s) {
    c.send("NOOP\r\n");
    reply = c.reply();
    if (reply != "250 2.0.0 Ok") break;
  }
  CHECK(reply.rfind("421 4.4.2 ", 0) == 0);
  CHECK(c.closed());
}

TEST_CASE("the data timeout ends a stalled DATA and nothing is queued", "[session][deadline]") {
  auto config = test_config();
  config.limits.data_timeout = 300ms;
  SessionHarness h(config);
  auto c = h.greeted();
  c.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n");
  c.reply(), c.reply();
  CHECK(c.reply().rfind("354 ", 0) == 0);
  c.send("Subject: half a message\r\n");
  CHECK(c.reply().rfind("421 4.4.2 ", 0) == 0);
  CHECK(c.closed());
  CHECK(h.spool.list().empty());
}

TEST_CASE("a stop request closes idle sessions with 421 4.3.2", "[session][shutdown]") {
  SessionHarness h;
  auto idle = h.greeted();
  auto busy = h.greeted();
  busy.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\n");
  CHECK(busy.reply() == "250 2.1.0 Ok");
  CHECK(busy.reply() == "250 2.1.5 Ok");
  h.shutdown.request();
  CHECK(idle.reply().rfind("421 4.3.2 ", 0) == 0);
  CHECK(idle.closed());
  // A session inside a transaction may finish it, then hears 421 at its next wait.
  busy.send("DATA\r\n");
  CHECK(busy.reply().rfind("354 ", 0) == 0);
  busy.send("\r\nlast words\r\n.\r\n");
  CHECK(busy.reply().rfind("250 2.0.0 ", 0) == 0);
  CHECK(busy.reply().rfind("421 4.3.2 ", 0) == 0);
  CHECK(busy.closed());
  CHECK(h.queued().size() == 1);
}

TEST_CASE("a message at the size limit streams in chunks", "[session][limits]") {
  auto config = test_config();
  config.limits.max_message_size = 3 * 1024 * 1024;
  SessionHarness h(config);
  auto c = h.greeted();
  c.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n");
  c.reply(), c.reply();
  CHECK(c.reply().rfind("354 ", 0) == 0);
  std::string body;
  std::string line(1022, 'a');
  const std::string header = "Subject: big\r\n\r\n";
  while (header.size() + body.size() + 1024 <= config.limits.max_message_size) body += line + "\r\n";
  c.send(header);
  c.send(body);
  c.send(".\r\n");
  auto reply = c.reply();
  REQUIRE(reply.rfind("250 2.0.0", 0) == 0);
  auto content = stored(h, queue_id_of(reply));
  CHECK(content.size() > body.size());
  CHECK(content.substr(content.size() - body.size()) == body);
}

TEST_CASE("a store that fails answers 452 4.3.1 and queues nothing", "[session][spool]") {
  SessionHarness h;
  // Content is written under tmp/ first: a file in place of that directory makes it fail.
  auto tmp = h.spool.root() / "tmp";
  std::filesystem::remove_all(tmp);
  { std::ofstream blocker(tmp); }
  auto c = h.greeted();
  c.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n");
  CHECK(c.reply() == "250 2.1.0 Ok");
  CHECK(c.reply() == "250 2.1.5 Ok");
  CHECK(c.reply().rfind("354 ", 0) == 0);
  c.send("Subject: x\r\n\r\nbody\r\n.\r\n");
  CHECK(c.reply() == "452 4.3.1 Insufficient system storage: message not queued, try again later");
  CHECK(h.queued().empty());
  CHECK(h.spool.list().empty());
  // The session goes on; the client may try again later.
  c.send("NOOP\r\n");
  CHECK(c.reply() == "250 2.0.0 Ok");
}

TEST_CASE("a client sending one byte at a time is served", "[session]") {
  SessionHarness h;
  auto c = h.connect();
  CHECK(c.reply() == "220 mx.test ESMTP mailhop");
  const std::string dialogue =
      "EHLO slow.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n"
      "Subject: slow\r\n\r\n..dot\r\n.\r\nQUIT\r\n";
  for (char ch : dialogue) c.send(std::string_view(&ch, 1));
  CHECK(c.reply().rfind("250-mx.test", 0) == 0);
  CHECK(c.reply() == "250 2.1.0 Ok");
  CHECK(c.reply() == "250 2.1.5 Ok");
  CHECK(c.reply().rfind("354 ", 0) == 0);
  auto queued = c.reply();
  REQUIRE(queued.rfind("250 2.0.0 Ok: queued as ", 0) == 0);
  CHECK(c.reply() == "221 2.0.0 Bye");
  CHECK(after_received(stored(h, queue_id_of(queued))).find("\r\n\r\n.dot\r\n") != std::string::npos);
}

TEST_CASE("log lines: connect, one per message, disconnect with counts", "[session][log]") {
  std::ostringstream captured;
  auto previous = spdlog::default_logger();
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(captured);
  sink->set_pattern("%v");
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("test", sink));
  std::string id;
  {
    SessionHarness h;
    auto c = h.greeted();
    c.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n");
    c.reply(), c.reply(), c.reply();
    c.send("Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n");
    id = queue_id_of(c.reply());
    CHECK(c.reply() == "221 2.0.0 Bye");
    CHECK(c.closed());
    c.close();
    const auto deadline = std::chrono::steady_clock::now() + kPatience;
    while (h.sessions_ended == 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(1ms);  // polling a condition, not timing
    CHECK(h.sessions_ended == 1);
  }
  spdlog::set_default_logger(previous);
  auto log = captured.str();
  INFO(log);
  CHECK(log.find("connect from unknown[127.0.0.1]\n") != std::string::npos);
  std::regex message(id + R"(: from=<a@example.org> size=\d+ nrcpt=1 client=client\.test\[127\.0\.0\.1\]\n)");
  CHECK(std::regex_search(log, message));
  CHECK(log.find("disconnect from client.test[127.0.0.1] commands=5 messages=1\n") != std::string::npos);
}

TEST_CASE("RCPT TO:<Postmaster> is accepted and goes to postmaster@<hostname> (RFC 5321 §4.5.1)", "[session]") {
  SessionHarness h;
  auto c = h.greeted();
  c.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<Postmaster>\r\nRCPT TO:<postmaster@mx.test>\r\nDATA\r\n");
  CHECK(c.reply() == "250 2.1.0 Ok");
  CHECK(c.reply() == "250 2.1.5 Ok");
  CHECK(c.reply() == "250 2.1.5 Ok");
  CHECK(c.reply().rfind("354 ", 0) == 0);
  c.send("Subject: x\r\n\r\nhello\r\n.\r\n");
  CHECK(c.reply().rfind("250 2.0.0 ", 0) == 0);
  auto envelopes = h.spool.list();
  REQUIRE(envelopes.size() == 1);
  // Both name the same mailbox: kept once.
  REQUIRE(envelopes[0].recipients.size() == 1);
  CHECK(envelopes[0].recipients[0].address == "postmaster@mx.test");
}

TEST_CASE("RCPT TO:<Postmaster> is still subject to the relay rules", "[session][policy]") {
  auto config = test_config();
  config.allowed_networks = {network("10.0.0.0/8")};
  SessionHarness h(config);
  auto c = h.greeted();
  c.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<Postmaster>\r\n");
  CHECK(c.reply() == "250 2.1.0 Ok");
  CHECK(c.reply() == "554 5.7.1 Relay access denied");
}
