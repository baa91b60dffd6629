// JSON text that never fails on bytes that are not UTF-8. File names on Linux are bytes, and
// nlohmann::json refuses to dump a string that is not valid UTF-8 (type_error 316), which
// turned a photo named in Latin-1 into an internal error. Every JSON file fetafix writes goes
// through json_text().
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace fetafix {

// `s` itself when it is valid UTF-8; otherwise every byte that is not part of a valid UTF-8
// sequence is written as the four characters \xHH (uppercase hex), e.g. "caf\xE9.jpg".
std::string utf8_or_escaped(std::string_view s);

// j.dump(indent) + "\n", with every string and key passed through utf8_or_escaped first.
std::string json_text(const nlohmann::json& j, int indent = 2);

}  // namespace fetafix
