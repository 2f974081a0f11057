// The JSON form of a queued message: one object per message, the same in `mailhop queue list
// --json`, GET /api/queue (a bare array of them) and GET /api/queue/{id}.
//
//   {"id", "sender", "recipients": [{"address", "state", "last_reply"}], "size", "arrival",
//    "attempts", "next_attempt", "last_error", "held", "body", "smtputf8", "client_host",
//    "client_ip", "auth_user"}
//
// SECURITY: envelopes hold text from the network (replies, HELO names): every string is made
// valid UTF-8 (a byte that starts no well-formed sequence becomes U+FFFD).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include "mailhop/spool/envelope.hpp"

namespace mailhop::admin {

boost::json::object to_json(const spool::Envelope& envelope);
boost::json::array to_json(const std::vector<spool::Envelope>& queue);
// `s` with each ill-formed UTF-8 byte replaced by U+FFFD.
std::string valid_utf8(std::string_view s);

}  // namespace mailhop::admin
