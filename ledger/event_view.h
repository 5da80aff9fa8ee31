// Decoding a Kafka record value into a signed event, and the field rules of each event
// type (schemas/events.proto). Pure functions of bytes: the ingest runs them on all
// cores, and verify/audit run them again on the stored bytes.
#pragma once

#include <string>
#include <string_view>

#include "schemas/events.pb.h"
#include "schemas/ledger.pb.h"

namespace g60 {

using ledger::v1::EventType;
using ledger::v1::Reason;

struct DecodedMessage {
  Reason reason = Reason::REASON_NONE;  // MALFORMED_MESSAGE / MALFORMED_EVENT / INVALID_FIELD
  std::string detail;                   // why, when reason != NONE
  v1::SignedEvent signed_event;
  v1::Event event;
  EventType type = EventType::EVENT_TYPE_UNSPECIFIED;

  bool ok() const { return reason == Reason::REASON_NONE; }
};

// Parses value as SignedEvent, its event bytes as Event, and checks every field rule
// that needs no ledger state. A failure is reported in reason/detail, never thrown.
DecodedMessage DecodeMessage(std::string_view value);

EventType TypeOf(const v1::Event& event);
// Control events (key grants and revocations, catalogue publications) carry no applicant
// and are produced to every partition.
bool IsControlEvent(const v1::Event& event);
const char* EventTypeName(EventType type);  // "application", "approval", ...
const char* ReasonName(Reason reason);      // "MALFORMED_MESSAGE", ...
const char* RoleName(v1::Role role);        // "admin", "applicant-portal", ...
// Parses a role name as printed by RoleName; ROLE_UNSPECIFIED when unknown.
v1::Role RoleFromName(std::string_view name);

// Is an event id acceptable: 1..128 printable ASCII characters, no spaces?
bool ValidEventId(std::string_view id);

// An event's identity. Event ids are unique per applicant, not across the ledger
// (docs/formats.md, "Event identity"): two applicants may use the same id, one applicant
// never twice, and control events (applicant "") are one event recorded in every
// partition. The key of an event in the tables event_ids, applications, approvals and
// payments, after the partition, is
//   event id || 0x00 || applicant id
// Ids are printable ASCII, so the NUL separates, and every applicant's use of one id is
// one contiguous key range (EventKeyPrefix) that `trace` and `prove` list.
std::string EventKey(std::string_view event_id, std::string_view applicant_id);
std::string EventKeyPrefix(std::string_view event_id);
// The event id and the applicant id of an EventKey (before and after the first NUL).
std::string_view EventKeyId(std::string_view key);
std::string_view EventKeyApplicant(std::string_view key);

}  // namespace g60
