#include "ledger/strict_json.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>
#include <vector>

namespace g60 {

using nlohmann::json;

Result<json> ParseStrictJson(std::string_view text, std::string_view what) {
  if (text.starts_with("\xEF\xBB\xBF")) {
    return Fail(Error::InvalidArgument(fmt::format(
        "{} begins with a byte order mark (U+FEFF); JSON files are UTF-8 without one (RFC 8259 "
        "section 8.1): save it again as plain UTF-8",
        what)));
  }
  // The member names of each object being read, innermost last.
  std::vector<std::set<std::string>> open;
  std::string duplicate;
  auto watch = [&](int, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) {
      open.emplace_back();
    } else if (event == json::parse_event_t::object_end) {
      open.pop_back();
    } else if (event == json::parse_event_t::key && !open.empty()) {
      if (!open.back().insert(parsed.get<std::string>()).second && duplicate.empty()) {
        duplicate = parsed.get<std::string>();
      }
    }
    return true;
  };
  json j;
  try {
    j = json::parse(text.begin(), text.end(), watch);
  } catch (const json::exception& e) {
    return Fail(Error::InvalidArgument(fmt::format("{} is not JSON: {}", what, e.what())));
  }
  if (!duplicate.empty()) {
    return Fail(Error::InvalidArgument(
        fmt::format("{} names the member \"{}\" twice in one object; a file that could be read "
                    "two ways is refused",
                    what, duplicate)));
  }
  return j;
}

Status RequireMembers(const json& j, std::initializer_list<std::string_view> required,
                      std::initializer_list<std::string_view> optional, std::string_view what) {
  if (!j.is_object())
    return Fail(Error::InvalidArgument(fmt::format("{} is not a JSON object", what)));
  for (std::string_view k : required) {
    if (!j.contains(k)) {
      return Fail(Error::InvalidArgument(fmt::format("{} has no \"{}\"", what, k)));
    }
  }
  for (const auto& [k, v] : j.items()) {
    auto known = [&](std::initializer_list<std::string_view> names) {
      return std::find(names.begin(), names.end(), k) != names.end();
    };
    if (!known(required) && !known(optional)) {
      return Fail(Error::InvalidArgument(
          fmt::format("{} has an unknown member \"{}\" (the format lists each member; an "
                      "unknown one is refused rather than ignored)",
                      what, k)));
    }
  }
  return {};
}

bool SameJson(const json& a, const json& b) {
  bool a_int = a.is_number_integer(), b_int = b.is_number_integer();  // signed or unsigned
  if (a_int || b_int) {
    if (!a_int || !b_int) return false;
    bool a_neg = !a.is_number_unsigned() && a.get<int64_t>() < 0;
    bool b_neg = !b.is_number_unsigned() && b.get<int64_t>() < 0;
    if (a_neg || b_neg) return a_neg && b_neg && a.get<int64_t>() == b.get<int64_t>();
    return a.get<uint64_t>() == b.get<uint64_t>();
  }
  if (a.type() != b.type()) return false;
  if (a.is_object()) {
    if (a.size() != b.size()) return false;
    for (const auto& [k, v] : a.items()) {
      auto it = b.find(k);
      if (it == b.end() || !SameJson(v, *it)) return false;
    }
    return true;
  }
  if (a.is_array()) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
      if (!SameJson(a[i], b[i])) return false;
    }
    return true;
  }
  return a == b;
}

Result<uint64_t> UnsignedMember(const json& j, std::string_view member, std::string_view what) {
  auto it = j.find(member);
  if (it == j.end())
    return Fail(Error::InvalidArgument(fmt::format("{} has no \"{}\"", what, member)));
  if (!it->is_number_unsigned()) {
    return Fail(Error::InvalidArgument(
        fmt::format("{}'s \"{}\" is {}, not a whole number written as a JSON integer", what, member,
                    it->dump())));
  }
  return it->get<uint64_t>();
}

}  // namespace g60
