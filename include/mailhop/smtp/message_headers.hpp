// The header section of a message (RFC 5322 §2.2), as the server needs it to add missing
// Date: and Message-ID: fields the way Postfix does for local submissions.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace mailhop::smtp {

// Where the header section of canonical `content` ends: the offset of the first line that is
// empty or not a header field ("Name: value" or a continuation line starting with white space).
// nullopt when `content` ends inside the header section (more content may follow); callers with
// the whole content (or a bounded prefix they will not extend) pass `complete = true` and then
// get the end of `content` when every line is a header field.
std::optional<std::size_t> header_section_end(std::string_view content, bool complete = false);

// true when the header section has a field of this name (case-insensitive).
bool has_header_field(std::string_view header_section, std::string_view name);

}  // namespace mailhop::smtp
