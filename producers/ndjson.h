// NDJSON input of `g60ledger produce`: one JSON object per line.
//
// Events to sign: protobuf's standard JSON mapping of g60.v1.Event, e.g.
//   {"eventId":"app-1","applicantId":"91310117MA1J3XXXX1","programme":"G60-07b",
//    "projectId":"6g-testbed","occurredAtMs":"1767225600000",
//    "application":{"declaredBaseFen":"2000000000","requestedFen":"600000000"}}
// (int64 fields may be written as JSON numbers or strings; bytes as base64).
//
// Events signed elsewhere (an HSM, another system): the JSON mapping of
// g60.v1.SignedEvent, {"event":"<base64>","keyId":"<hex>","signature":"<base64>"},
// sent exactly as given.
#pragma once

#include <string>
#include <string_view>

#include "ledger/status.h"
#include "schemas/events.pb.h"

namespace g60 {

// Parses one line into an Event; unknown fields are errors. Blank lines are not events.
Result<v1::Event> ParseEventJson(std::string_view line);
Result<v1::SignedEvent> ParseSignedEventJson(std::string_view line);

// The JSON mapping of a message, on one line (for writing NDJSON).
std::string ToJsonLine(const google::protobuf::Message& message);

}  // namespace g60
