#include "producers/ndjson.h"

#include <fmt/format.h>
#include <google/protobuf/util/json_util.h>

namespace g60 {

namespace {
template <typename Msg>
Result<Msg> Parse(std::string_view line, const char* what) {
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
