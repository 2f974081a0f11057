// Base64 (RFC 4648 §4) through OpenSSL's EVP encoder: for SASL exchanges (RFC 4954).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mailhop::util {

std::string base64_encode(std::string_view data);
// nullopt when the text is not valid base64 (wrong length, bad characters, bad padding).
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace mailhop::util
