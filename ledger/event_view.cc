#include "ledger/event_view.h"

#include "ledger/catalog.h"

#include <fmt/format.h>

#include <set>

#include "ledger/bytes.h"
#include "ledger/crypto.h"

namespace g60 {

namespace {

constexpr size_t kIdMaxBytes = 128;

bool PrintableId(std::string_view s) {
  if (s.empty() || s.size() > kIdMaxBytes) return false;
  for (unsigned char c : s) {
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return true;
}

// Returns an empty string when the payload's fields follow their rules, else why not;
// `reason` is INVALID_FIELD unless a rule has its own code.
std::string CheckFields(const v1::Event& e, EventType type, Reason& reason) {
  reason = Reason::REASON_INVALID_FIELD;
  bool control = type == EventType::EVENT_TYPE_KEY_GRANT ||
                 type == EventType::EVENT_TYPE_KEY_REVOKE ||
                 type == EventType::EVENT_TYPE_CATALOG_PUBLISHED;
  if (!ValidEventId(e.event_id())) return "event_id must be 1..128 printable ASCII characters";
  if (e.occurred_at_ms() <= 0) return "occurred_at_ms must be > 0";
  if (e.occurred_at_ms() > kTimeMaxMs) {
    return fmt::format("occurred_at_ms {} is after 9999-12-31 23:59:59.999 CST (at most {})",
                       e.occurred_at_ms(), kTimeMaxMs);
  }
  if (control) {
    if (!e.applicant_id().empty()) return "control events carry no applicant_id";
  } else if (!PrintableId(e.applicant_id())) {
    return "applicant_id must be 1..128 printable ASCII characters";
  }
  switch (type) {
    case EventType::EVENT_TYPE_APPLICATION: {
      const auto& a = e.application();
      if (e.programme().empty()) return "application needs a programme";
      if (!PrintableId(e.project_id())) return "application needs a project_id";
      if (a.declared_base_fen() < 0) return "declared_base_fen must be >= 0";
      if (a.requested_fen() <= 0) return "requested_fen must be > 0";
      return "";
    }
    case EventType::EVENT_TYPE_APPROVAL: {
      const auto& a = e.approval();
      if (!ValidEventId(a.application_event_id())) return "approval needs application_event_id";
      if (a.approved_fen() <= 0) return "approved_fen must be > 0";
      if (a.level() != v1::LEVEL_DISTRICT && a.level() != v1::LEVEL_MUNICIPAL) {
        return "approval level must be LEVEL_DISTRICT or LEVEL_MUNICIPAL";
      }
      if (a.stages().empty()) return "approval needs at least one stage";
      int64_t sum = 0;
      for (int i = 0; i < a.stages_size(); ++i) {
        const auto& s = a.stages(i);
        if (s.number() != static_cast<uint32_t>(i + 1)) {
          return fmt::format("stage {} is numbered {}: stages are numbered 1, 2, ... in order",
                             i + 1, s.number());
        }
        if (s.amount_fen() <= 0) return fmt::format("stage {} amount must be > 0", s.number());
        if (__builtin_add_overflow(sum, s.amount_fen(), &sum))
          return "stage amounts overflow int64";
      }
      if (a.carried_over_fen() < 0 || a.carried_over_fen() >= a.approved_fen()) {
        return "carried_over_fen must be >= 0 and below approved_fen";
      }
      if (sum != a.approved_fen() - a.carried_over_fen()) {
        reason = Reason::REASON_STAGE_PLAN_MISMATCH;
        return a.carried_over_fen() == 0
                   ? fmt::format("the stages sum to {}, the approval is for {}", FormatFen(sum),
                                 FormatFen(a.approved_fen()))
                   : fmt::format(
                         "the stages sum to {}, the approval is for {} of which {} is "
                         "carried over, leaving {} to pay in stages",
                         FormatFen(sum), FormatFen(a.approved_fen()),
                         FormatFen(a.carried_over_fen()),
                         FormatFen(a.approved_fen() - a.carried_over_fen()));
      }
      return "";
    }
    case EventType::EVENT_TYPE_STAGE_PAYMENT: {
      const auto& p = e.stage_payment();
      if (!ValidEventId(p.approval_event_id())) return "payment needs approval_event_id";
      if (p.stage() == 0) return "payment stage must be >= 1";
      if (p.amount_fen() <= 0) return "payment amount_fen must be > 0";
      if (p.source() == v1::FUNDING_SOURCE_UNSPECIFIED || !v1::FundingSource_IsValid(p.source())) {
        return "payment needs a funding source";
      }
      return "";
    }
    case EventType::EVENT_TYPE_CLAWBACK: {
      const auto& c = e.clawback();
      if (c.payment_event_ids().empty()) return "clawback must name the payments it reverses";
      std::set<std::string_view> seen;
      for (const auto& id : c.payment_event_ids()) {
        if (!ValidEventId(id)) return "clawback payment_event_ids must be valid event ids";
        if (!seen.insert(id).second) return "clawback names payment " + id + " twice";
      }
      if (c.amount_fen() <= 0) return "clawback amount_fen must be > 0";
      if (c.reason().empty()) return "clawback needs a reason";
      return "";
    }
    case EventType::EVENT_TYPE_KEY_GRANT: {
      const auto& g = e.key_grant();
      if (g.public_key().size() != kPublicKeySize) return "key_grant public_key must be 32 bytes";
      if (g.role() == v1::ROLE_UNSPECIFIED || !v1::Role_IsValid(g.role())) {
        return "key_grant needs a role";
      }
      if (g.role() == v1::ROLE_LEDGER) {
        return "the ledger role signs checkpoints only and is never granted";
      }
      if (g.valid_from_ms() < 0) return "valid_from_ms must be >= 0";
      if (g.valid_until_ms() != 0 && g.valid_until_ms() <= g.valid_from_ms()) {
        return "valid_until_ms must be 0 (no end) or after valid_from_ms";
      }
      return "";
    }
    case EventType::EVENT_TYPE_KEY_REVOKE:
      if (e.key_revoke().key_id().size() != 32) return "key_revoke key_id must be 32 hex digits";
      return "";
    case EventType::EVENT_TYPE_CATALOG_PUBLISHED:
      if (e.catalog_published().catalog().empty()) return "catalog_published carries no catalogue";
      return "";
    case EventType::EVENT_TYPE_UNSPECIFIED:
    default:
      return "event has no payload";
  }
}

}  // namespace

bool ValidEventId(std::string_view id) {
  return PrintableId(id);
}

std::string EventKey(std::string_view event_id, std::string_view applicant_id) {
  std::string k = EventKeyPrefix(event_id);
  k.append(applicant_id);
  return k;
}

std::string EventKeyPrefix(std::string_view event_id) {
  std::string k(event_id);
  k.push_back('\0');
  return k;
}

std::string_view EventKeyId(std::string_view key) {
  return key.substr(0, key.find('\0'));
}

std::string_view EventKeyApplicant(std::string_view key) {
  size_t nul = key.find('\0');
  return nul == std::string_view::npos ? std::string_view() : key.substr(nul + 1);
}

bool IsControlEvent(const v1::Event& event) {
  return event.has_key_grant() || event.has_key_revoke() || event.has_catalog_published();
}

EventType TypeOf(const v1::Event& event) {
  switch (event.payload_case()) {
    case v1::Event::kApplication:
      return EventType::EVENT_TYPE_APPLICATION;
    case v1::Event::kApproval:
      return EventType::EVENT_TYPE_APPROVAL;
    case v1::Event::kStagePayment:
      return EventType::EVENT_TYPE_STAGE_PAYMENT;
    case v1::Event::kClawback:
      return EventType::EVENT_TYPE_CLAWBACK;
    case v1::Event::kKeyGrant:
      return EventType::EVENT_TYPE_KEY_GRANT;
    case v1::Event::kKeyRevoke:
      return EventType::EVENT_TYPE_KEY_REVOKE;
    case v1::Event::kCatalogPublished:
      return EventType::EVENT_TYPE_CATALOG_PUBLISHED;
    case v1::Event::PAYLOAD_NOT_SET:
      break;
  }
  return EventType::EVENT_TYPE_UNSPECIFIED;
}

DecodedMessage DecodeMessage(std::string_view value) {
  DecodedMessage d;
  // A failed parse leaves what it read so far in the message, possibly a string that is
  // not UTF-8; nothing of it may reach an entry, so it is cleared.
  if (!d.signed_event.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    d.signed_event.Clear();
    d.reason = Reason::REASON_MALFORMED_MESSAGE;
    d.detail = fmt::format("the {}-byte Kafka value is not a SignedEvent", value.size());
    return d;
  }
  const auto& se = d.signed_event;
  if (se.event().empty() || se.signature().size() != kSignatureSize || se.key_id().size() != 32) {
    d.reason = Reason::REASON_MALFORMED_MESSAGE;
    d.detail = fmt::format(
        "SignedEvent needs event bytes, a 32-hex-digit key_id and a 64-byte signature "
        "(got {} event bytes, key_id of {} characters, signature of {} bytes)",
        se.event().size(), se.key_id().size(), se.signature().size());
    return d;
  }
  if (!d.event.ParseFromString(se.event())) {
    d.event.Clear();
    d.reason = Reason::REASON_MALFORMED_EVENT;
    d.detail = "the signed bytes are not an Event";
    return d;
  }
  d.type = TypeOf(d.event);
  Reason field_reason = Reason::REASON_INVALID_FIELD;
  if (std::string why = CheckFields(d.event, d.type, field_reason); !why.empty()) {
    d.reason =
        d.type == EventType::EVENT_TYPE_UNSPECIFIED ? Reason::REASON_MALFORMED_EVENT : field_reason;
    d.detail = std::move(why);
  }
  return d;
}

const char* EventTypeName(EventType type) {
  switch (type) {
    case EventType::EVENT_TYPE_APPLICATION:
      return "application";
    case EventType::EVENT_TYPE_APPROVAL:
      return "approval";
    case EventType::EVENT_TYPE_STAGE_PAYMENT:
      return "stage-payment";
    case EventType::EVENT_TYPE_CLAWBACK:
      return "clawback";
    case EventType::EVENT_TYPE_KEY_GRANT:
      return "key-grant";
    case EventType::EVENT_TYPE_KEY_REVOKE:
      return "key-revoke";
    case EventType::EVENT_TYPE_CATALOG_PUBLISHED:
      return "catalog-published";
    default:
      return "undecodable";
  }
}

const char* ReasonName(Reason reason) {
  // The proto enum names without their REASON_ prefix.
  const std::string& full = ledger::v1::Reason_Name(reason);
  return full.size() > 7 ? full.c_str() + 7 : full.c_str();
}

const char* RoleName(v1::Role role) {
  switch (role) {
    case v1::ROLE_ADMIN:
      return "admin";
    case v1::ROLE_APPLICANT_PORTAL:
      return "applicant-portal";
    case v1::ROLE_DISTRICT_APPROVER:
      return "district-approver";
    case v1::ROLE_MUNICIPAL_APPROVER:
      return "municipal-approver";
    case v1::ROLE_TREASURY:
      return "treasury";
    case v1::ROLE_LEDGER:
      return "ledger";
    default:
      return "unspecified";
  }
}

v1::Role RoleFromName(std::string_view name) {
  for (v1::Role r : {v1::ROLE_ADMIN, v1::ROLE_APPLICANT_PORTAL, v1::ROLE_DISTRICT_APPROVER,
                     v1::ROLE_MUNICIPAL_APPROVER, v1::ROLE_TREASURY, v1::ROLE_LEDGER}) {
    if (name == RoleName(r)) return r;
  }
  return v1::ROLE_UNSPECIFIED;
}

}  // namespace g60
