#include "producers/ndjson.h"

#include <fmt/format.h>
#include <google/protobuf/util/json_util.h>

#include <nlohmann/json.hpp>

#include <set>
#include <vector>

namespace g60 {

namespace {

// The name protobuf's JSON parser gives a key: a proto field name ("requested_fen") and
// its JSON name ("requestedFen") are the same field (protobuf's ToJsonName).
std::string FieldKey(const std::string& key) {
  std::string out;
  bool upper = false;
  for (char c : key) {
    if (c == '_') {
      upper = true;
    } else {
      out += upper && c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
      upper = false;
    }
  }
  return out;
}

// RFC 8259 section 4 leaves the meaning of an object with repeated names to each parser;
// protobuf keeps the last, so {"requestedFen":"100","requestedFen":"99999999"} would be
// signed as 99,999,999 although a reviewer may read 100. Such a line is refused, under
// either spelling of the field. protobuf's JSON parser is also lenient where a reviewer's
// tools are not (single-quoted strings, bare names), which would hide a repeat from
// this check; so a line must first be strict JSON (RFC 8259), as nlohmann's parser reads
// it. Returns why the line is refused, or nothing.
std::optional<std::string> AmbiguousLine(std::string_view line) {
  std::vector<std::set<std::string>> objects;
  std::optional<std::string> repeated;
  using Event = nlohmann::json::parse_event_t;
  auto callback = [&](int /*depth*/, Event event, nlohmann::json& parsed) {
    if (event == Event::object_start) {
      objects.emplace_back();
    } else if (event == Event::object_end) {
      if (!objects.empty()) objects.pop_back();
    } else if (event == Event::key && !objects.empty() && !repeated) {
      const auto& key = parsed.get_ref<const std::string&>();
      if (!objects.back().insert(FieldKey(key)).second) repeated = key;
    }
    return true;
  };
  try {
    nlohmann::json scanned = nlohmann::json::parse(line.begin(), line.end(), callback);
    (void)scanned;
  } catch (const nlohmann::json::exception& e) {
    std::string why = e.what();
    if (auto at = why.find("parse error"); at != std::string::npos) why = why.substr(at);
    return fmt::format(
        "the line is not strict JSON (RFC 8259: names and strings in double quotes, no "
        "comments): {}; nothing was signed",
        why);
  }
  if (repeated) {
    return fmt::format(
        "the field \"{}\" is given more than once in one object, so the line can be read two "
        "ways; nothing was signed: keep exactly one value for it",
        *repeated);
  }
  return std::nullopt;
}

template <typename Msg>
Result<Msg> Parse(std::string_view line, const char* what) {
  if (auto why = AmbiguousLine(line)) return Fail(Error::InvalidArgument(*why));
  Msg m;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(line.data(), line.size()), &m, options);
  if (!status.ok()) {
    return Fail(Error::InvalidArgument(
        fmt::format("not a {} in JSON: {}", what, std::string(status.message()))));
  }
  return m;
}
}  // namespace

Result<v1::Event> ParseEventJson(std::string_view line) {
  return Parse<v1::Event>(line, "g60.v1.Event");
}

Result<v1::SignedEvent> ParseSignedEventJson(std::string_view line) {
  return Parse<v1::SignedEvent>(line, "g60.v1.SignedEvent");
}

std::string ToJsonLine(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = false;
  options.preserve_proto_field_names = false;
  auto status = google::protobuf::util::MessageToJsonString(message, &out, options);
  G60_ASSERT(status.ok());
  return out;
}

}  // namespace g60
