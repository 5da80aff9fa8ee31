// JSON files handed to us (proof bundles, consistency proofs, key files), read under the
// one rule docs/audit.md ("One rule for every file an auditor hands us") states, which
// tests/tools/verify_bundle.py applies the same way:
//   - the text is UTF-8 JSON (RFC 8259) with no byte order mark, and no member name twice
//     in one object (RFC 8259 section 4 leaves duplicates to the reader; two readers could
//     then see two different files);
//   - an object holds exactly the members its format lists: an unknown or a missing member
//     is refused, by name;
//   - values compare by JSON type: an integer member is a JSON integer (not 1.0, not "1",
//     not true), so a file equals what it repeats from signed data only when it says the
//     same thing the same way.
#pragma once

#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "ledger/status.h"

namespace g60 {

// Parses `text`; `what` names it in errors ("bundle.json"). InvalidArgument when the text
// is not strict JSON, saying where and why.
Result<nlohmann::json> ParseStrictJson(std::string_view text, std::string_view what);

// `j` is an object holding every member of `required`, and no member outside `required`
// and `optional`. The error names `what` and the member.
Status RequireMembers(const nlohmann::json& j, std::initializer_list<std::string_view> required,
                      std::initializer_list<std::string_view> optional, std::string_view what);

// Equal as JSON values of the same type: integers compare by value whether stored signed
// or unsigned, a floating-point number never equals an integer, a boolean never a number;
// objects by members, arrays element by element.
bool SameJson(const nlohmann::json& a, const nlohmann::json& b);

// The member as an unsigned integer (a JSON integer >= 0), or an error naming it.
Result<uint64_t> UnsignedMember(const nlohmann::json& j, std::string_view member,
                                std::string_view what);

}  // namespace g60
