#include "ledger/rules.h"

#include <fmt/format.h>

#include "ledger/bytes.h"
#include "ledger/crypto.h"

namespace g60 {

using ledger::v1::ApplicationState;
using ledger::v1::ApprovalState;
using ledger::v1::KeyState;
using ledger::v1::PaymentState;

Prechecked Precheck(std::string_view value, const PublicKeyLookup& lookup) {
  Prechecked p{DecodeMessage(value), SignatureCheck::kUnchecked};
  const auto& d = p.decoded;
  if (d.reason == Reason::REASON_MALFORMED_MESSAGE || d.reason == Reason::REASON_MALFORMED_EVENT) {
    return p;
  }
  std::string public_key = lookup ? lookup(d.signed_event.key_id()) : std::string();
  if (!public_key.empty()) {
    p.signature = VerifyDetached(public_key, d.signed_event.signature(), kEventSignaturePrefix,
                                 d.signed_event.event())
                      ? SignatureCheck::kValid
                      : SignatureCheck::kInvalid;
  }
  return p;
}

v1::Role RequiredRole(EventType type, v1::Level level) {
  switch (type) {
    case EventType::EVENT_TYPE_APPLICATION:
      return v1::ROLE_APPLICANT_PORTAL;
    case EventType::EVENT_TYPE_APPROVAL:
      return level == v1::LEVEL_MUNICIPAL ? v1::ROLE_MUNICIPAL_APPROVER
                                          : v1::ROLE_DISTRICT_APPROVER;
    case EventType::EVENT_TYPE_STAGE_PAYMENT:
    case EventType::EVENT_TYPE_CLAWBACK:
      return v1::ROLE_TREASURY;
    case EventType::EVENT_TYPE_KEY_GRANT:
    case EventType::EVENT_TYPE_KEY_REVOKE:
      return v1::ROLE_ADMIN;
    default:
      return v1::ROLE_UNSPECIFIED;
  }
}

namespace {

// Builds decisions; a rejection names its rule and figures.
Decision Reject(Reason reason, std::string detail) {
  Decision d;
  d.verdict = ledger::v1::VERDICT_REJECTED;
  d.reason = reason;
  d.detail = std::move(detail);
  return d;
}

template <typename Msg>
Effect Put(Effect::Kind kind, std::string id, const Msg& msg) {
  std::string bytes;
  G60_ASSERT(msg.SerializeToString(&bytes));
  return Effect{kind, std::move(id), std::move(bytes)};
}

// The business rules of each event type; the event is authentic and authorised here.
class Rules {
 public:
  Rules(StateView& state, const v1::Event& event, uint64_t sequence)
      : state_(state), e_(event), seq_(sequence) {}

  Result<Decision> Application() {
    const auto& a = e_.application();
    ApplicationState st;
    st.set_applicant_id(e_.applicant_id());
    st.set_programme(e_.programme());
    st.set_project_id(e_.project_id());
    st.set_declared_base_fen(a.declared_base_fen());
    st.set_requested_fen(a.requested_fen());
    st.set_seq(seq_);
    Decision d = Accept(
        e_.programme(), a.requested_fen(),
        fmt::format("application for {} under {}", FormatFen(a.requested_fen()), e_.programme()));
    d.effects.push_back(Put(Effect::Kind::kPutApplication, e_.event_id(), st));
    return d;
  }

  Result<Decision> Approval() {
    const auto& a = e_.approval();
    auto app_or = state_.Application(a.application_event_id());
    if (!app_or) return Fail(app_or.error());
    if (!*app_or) {
      return Reject(Reason::REASON_NO_APPLICATION,
                    fmt::format("approval names application {}, which is not on the record",
                                a.application_event_id()));
    }
    ApplicationState app = **app_or;
    if (app.applicant_id() != e_.applicant_id()) {
      return Reject(Reason::REASON_APPLICANT_MISMATCH,
                    fmt::format("application {} belongs to applicant {}, not {}",
                                a.application_event_id(), app.applicant_id(), e_.applicant_id()));
    }
    if (!e_.programme().empty() && e_.programme() != app.programme()) {
      return Reject(Reason::REASON_INVALID_FIELD,
                    fmt::format("approval is for programme {}, application {} for {}",
                                e_.programme(), a.application_event_id(), app.programme()));
    }
    if (!app.approval_event_id().empty()) {
      return Reject(Reason::REASON_ALREADY_APPROVED,
                    fmt::format("application {} was already approved by {}",
                                a.application_event_id(), app.approval_event_id()));
    }
    if (a.approved_fen() > app.requested_fen()) {
      return Reject(Reason::REASON_EXCEEDS_REQUESTED,
                    fmt::format("approved {} exceeds the {} requested by application {}",
                                FormatFen(a.approved_fen()), FormatFen(app.requested_fen()),
                                a.application_event_id()));
    }
    ApprovalState st;
    st.set_applicant_id(e_.applicant_id());
    st.set_programme(app.programme());
    st.set_project_id(app.project_id());
    st.set_application_event_id(a.application_event_id());
    st.set_level(a.level());
    st.set_approved_fen(a.approved_fen());
    st.set_seq(seq_);
    for (const auto& s : a.stages()) {
      auto* ss = st.add_stages();
      ss->set_number(s.number());
      ss->set_amount_fen(s.amount_fen());
    }
    app.set_approval_event_id(e_.event_id());
    Decision d = Accept(
        app.programme(), a.approved_fen(),
        fmt::format("approved {} in {} stage(s)", FormatFen(a.approved_fen()), a.stages_size()));
    d.effects.push_back(Put(Effect::Kind::kPutApproval, e_.event_id(), st));
    d.effects.push_back(Put(Effect::Kind::kPutApplication, a.application_event_id(), app));
    return d;
  }

  Result<Decision> StagePayment() {
    const auto& p = e_.stage_payment();
    auto ap_or = state_.Approval(p.approval_event_id());
    if (!ap_or) return Fail(ap_or.error());
    if (!*ap_or) {
      return Reject(Reason::REASON_NO_APPROVAL,
                    fmt::format("payment names approval {}, which is not on the record",
                                p.approval_event_id()));
    }
    ApprovalState ap = **ap_or;
    if (ap.applicant_id() != e_.applicant_id()) {
      return Reject(Reason::REASON_APPLICANT_MISMATCH,
                    fmt::format("approval {} belongs to applicant {}, not {}",
                                p.approval_event_id(), ap.applicant_id(), e_.applicant_id()));
    }
    if (p.stage() > static_cast<uint32_t>(ap.stages_size())) {
      return Reject(Reason::REASON_STAGE_MISMATCH,
                    fmt::format("approval {} has {} stage(s); payment is for stage {}",
                                p.approval_event_id(), ap.stages_size(), p.stage()));
    }
    auto* stage = ap.mutable_stages(static_cast<int>(p.stage() - 1));
    if (!stage->payment_event_id().empty()) {
      return Reject(Reason::REASON_STAGE_MISMATCH,
                    fmt::format("stage {} of approval {} was already paid by {}", p.stage(),
                                p.approval_event_id(), stage->payment_event_id()));
    }
    int64_t after = 0, paid = 0;
    if (__builtin_sub_overflow(ap.paid_fen(), ap.clawed_back_fen(), &after) ||
        __builtin_add_overflow(after, p.amount_fen(), &after) ||
        __builtin_add_overflow(ap.paid_fen(), p.amount_fen(), &paid)) {
      return Reject(Reason::REASON_AMOUNT_OVERFLOW, "paid total would overflow int64 fen");
    }
    if (after > ap.approved_fen()) {
      return Reject(Reason::REASON_EXCEEDS_APPROVAL,
                    fmt::format("paying {} would bring paid - clawed back to {}, above the {} "
                                "approved by {} (paid {}, clawed back {})",
                                FormatFen(p.amount_fen()), FormatFen(after),
                                FormatFen(ap.approved_fen()), p.approval_event_id(),
                                FormatFen(ap.paid_fen()), FormatFen(ap.clawed_back_fen())));
    }
    if (p.amount_fen() != stage->amount_fen()) {
      return Reject(Reason::REASON_STAGE_MISMATCH,
                    fmt::format("stage {} of approval {} is {}, payment is {}", p.stage(),
                                p.approval_event_id(), FormatFen(stage->amount_fen()),
                                FormatFen(p.amount_fen())));
    }
    stage->set_payment_event_id(e_.event_id());
    ap.set_paid_fen(paid);
    PaymentState pay;
    pay.set_applicant_id(e_.applicant_id());
    pay.set_approval_event_id(p.approval_event_id());
    pay.set_stage(p.stage());
    pay.set_amount_fen(p.amount_fen());
    pay.set_source(p.source());
    pay.set_seq(seq_);
    Decision d = Accept(ap.programme(), p.amount_fen(),
                        fmt::format("paid stage {} of {}: {}", p.stage(), p.approval_event_id(),
                                    FormatFen(p.amount_fen())));
    d.effects.push_back(Put(Effect::Kind::kPutPayment, e_.event_id(), pay));
    d.effects.push_back(Put(Effect::Kind::kPutApproval, p.approval_event_id(), ap));
    return d;
  }

  Result<Decision> Clawback() {
    const auto& c = e_.clawback();
    std::vector<PaymentState> payments;
    int64_t recoverable = 0;
    for (const auto& id : c.payment_event_ids()) {
      auto pay_or = state_.Payment(id);
      if (!pay_or) return Fail(pay_or.error());
      if (!*pay_or) {
        return Reject(Reason::REASON_NO_PAYMENT,
                      fmt::format("clawback names payment {}, which is not on the record", id));
      }
      const PaymentState& pay = **pay_or;
      if (pay.applicant_id() != e_.applicant_id()) {
        return Reject(Reason::REASON_APPLICANT_MISMATCH,
                      fmt::format("payment {} belongs to applicant {}, not {}", id,
                                  pay.applicant_id(), e_.applicant_id()));
      }
      if (!payments.empty() && pay.approval_event_id() != payments.front().approval_event_id()) {
        return Reject(Reason::REASON_INVALID_FIELD,
                      fmt::format("clawback mixes payments of approvals {} and {}",
                                  payments.front().approval_event_id(), pay.approval_event_id()));
      }
      recoverable += pay.amount_fen() - pay.clawed_back_fen();  // each <= approved: no overflow
      payments.push_back(pay);
    }
    if (c.amount_fen() > recoverable) {
      return Reject(
          Reason::REASON_EXCEEDS_PAID,
          fmt::format("clawback of {} exceeds the {} still recoverable from the {} "
                      "payment(s) named",
                      FormatFen(c.amount_fen()), FormatFen(recoverable), payments.size()));
    }
    const std::string approval_id = payments.front().approval_event_id();
    auto ap_or = state_.Approval(approval_id);
    if (!ap_or) return Fail(ap_or.error());
    G60_ASSERT(ap_or->has_value());  // a payment exists only for a recorded approval
    ApprovalState ap = **ap_or;
    Decision d = Accept(
        ap.programme(), c.amount_fen(),
        fmt::format("clawed back {} of approval {}", FormatFen(c.amount_fen()), approval_id));
    // Recover from the payments in the order named, each up to what it still holds.
    int64_t left = c.amount_fen();
    for (int i = 0; i < c.payment_event_ids_size() && left > 0; ++i) {
      PaymentState& pay = payments[static_cast<size_t>(i)];
      int64_t take = std::min(left, pay.amount_fen() - pay.clawed_back_fen());
      pay.set_clawed_back_fen(pay.clawed_back_fen() + take);
      left -= take;
      d.effects.push_back(Put(Effect::Kind::kPutPayment, c.payment_event_ids(i), pay));
    }
    ap.set_clawed_back_fen(ap.clawed_back_fen() + c.amount_fen());
    d.effects.push_back(Put(Effect::Kind::kPutApproval, approval_id, ap));
    return d;
  }

  Result<Decision> KeyGrant() {
    const auto& g = e_.key_grant();
    std::string key_id = KeyIdOf(g.public_key());
    auto existing = state_.Key(key_id);
    if (!existing) return Fail(existing.error());
    if (*existing) {
      return Reject(
          Reason::REASON_KEY_STATE,
          fmt::format("key {} was already granted (role {}) at entry {}; a key holds "
                      "one role for life",
                      key_id, RoleName((*existing)->role()), (*existing)->granted_at_seq()));
    }
    KeyState ks;
    ks.set_public_key(g.public_key());
    ks.set_role(g.role());
    ks.set_valid_from_ms(g.valid_from_ms());
    ks.set_valid_until_ms(g.valid_until_ms());
    ks.set_granted_at_seq(seq_);
    Decision d = Accept(
        "", 0,
        fmt::format("granted role {} to key {} ({})", RoleName(g.role()), key_id, g.holder()));
    d.effects.push_back(Put(Effect::Kind::kPutKey, key_id, ks));
    return d;
  }

  Result<Decision> KeyRevoke() {
    const std::string& key_id = e_.key_revoke().key_id();
    auto existing = state_.Key(key_id);
    if (!existing) return Fail(existing.error());
    if (!*existing || (*existing)->granted_at_seq() == kAnchorGrantSeq) {
      return Reject(Reason::REASON_KEY_STATE,
                    !*existing ? fmt::format("key {} was never granted here", key_id)
                               : fmt::format("key {} is a trust anchor; anchors change only in "
                                             "the ledger's configuration",
                                             key_id));
    }
    KeyState ks = **existing;
    if (ks.revoked()) {
      return Reject(Reason::REASON_KEY_STATE, fmt::format("key {} was already revoked at entry {}",
                                                          key_id, ks.revoked_at_seq()));
    }
    ks.set_revoked(true);
    ks.set_revoked_at_seq(seq_);
    Decision d = Accept("", 0, fmt::format("revoked key {}: {}", key_id, e_.key_revoke().reason()));
    d.effects.push_back(Put(Effect::Kind::kPutKey, key_id, ks));
    return d;
  }

 private:
  Decision Accept(std::string programme, int64_t amount, std::string detail) {
    Decision d;
    d.verdict = ledger::v1::VERDICT_ACCEPTED;
    d.programme = std::move(programme);
    d.amount_fen = amount;
    d.detail = std::move(detail);
    return d;
  }

  StateView& state_;
  const v1::Event& e_;
  uint64_t seq_;
};

// Checks the signer: known, signature valid, not revoked, valid at the record's
// timestamp, role allowed. Returns a rejection, or nullopt when all is well.
Result<std::optional<Decision>> CheckSigner(StateView& state, const Record& record,
                                            const Prechecked& pre) {
  const auto& d = pre.decoded;
  const std::string& key_id = d.signed_event.key_id();
  auto key_or = state.Key(key_id);
  if (!key_or) return Fail(key_or.error());
  if (!*key_or) {
    return Reject(
        Reason::REASON_UNKNOWN_KEY,
        fmt::format("key {} has not been granted in partition {}", key_id, record.partition));
  }
  const KeyState& key = **key_or;
  bool valid_sig = pre.signature == SignatureCheck::kValid;
  if (pre.signature == SignatureCheck::kUnchecked) {
    valid_sig = VerifyDetached(key.public_key(), d.signed_event.signature(), kEventSignaturePrefix,
                               d.signed_event.event());
  }
  if (!valid_sig) {
    return Reject(Reason::REASON_BAD_SIGNATURE,
                  fmt::format("the Ed25519 signature does not verify with key {}", key_id));
  }
  if (key.revoked()) {
    return Reject(Reason::REASON_KEY_REVOKED,
                  fmt::format("key {} was revoked at entry {}", key_id, key.revoked_at_seq()));
  }
  if (record.timestamp_ms < key.valid_from_ms() ||
      (key.valid_until_ms() != 0 && record.timestamp_ms >= key.valid_until_ms())) {
    return Reject(Reason::REASON_KEY_NOT_VALID,
                  fmt::format("key {} is valid from {} until {} (ms); the record's timestamp is {}",
                              key_id, key.valid_from_ms(),
                              key.valid_until_ms() == 0 ? std::string("no end")
                                                        : std::to_string(key.valid_until_ms()),
                              record.timestamp_ms));
  }
  v1::Level level =
      d.type == EventType::EVENT_TYPE_APPROVAL ? d.event.approval().level() : v1::LEVEL_UNSPECIFIED;
  v1::Role needed = RequiredRole(d.type, level);
  if (key.role() != needed) {
    bool approver =
        key.role() == v1::ROLE_DISTRICT_APPROVER || key.role() == v1::ROLE_MUNICIPAL_APPROVER;
    if (d.type == EventType::EVENT_TYPE_APPROVAL && approver) {
      return Reject(Reason::REASON_LEVEL_MISMATCH,
                    fmt::format("a {} key may not sign a {} approval", RoleName(key.role()),
                                level == v1::LEVEL_MUNICIPAL ? "municipal" : "district"));
    }
    return Reject(Reason::REASON_ROLE_NOT_ALLOWED,
                  fmt::format("a {} key may not sign a {} event (needs {})", RoleName(key.role()),
                              EventTypeName(d.type), RoleName(needed)));
  }
  return std::optional<Decision>{};
}

}  // namespace

Result<Decision> Decide(StateView& state, const Record& record, const Prechecked& pre,
                        uint64_t sequence) {
  const auto& d = pre.decoded;
  if (d.reason == Reason::REASON_MALFORMED_MESSAGE || d.reason == Reason::REASON_MALFORMED_EVENT) {
    return Reject(d.reason, d.detail);
  }
  auto signer = CheckSigner(state, record, pre);
  if (!signer) return Fail(signer.error());
  if (*signer) return std::move(**signer);

  // From here the event is authentic and its signer authorised: it claims its id.
  const v1::Event& e = d.event;
  auto claimed = state.EventClaimedAt(e.event_id());
  if (!claimed) return Fail(claimed.error());
  if (*claimed) {
    return Reject(Reason::REASON_DUPLICATE_EVENT,
                  fmt::format("event {} is already on the record at entry {} of partition {}",
                              e.event_id(), **claimed, record.partition));
  }
  auto decided = [&]() -> Result<Decision> {
    if (record.key != e.applicant_id()) {
      return Reject(Reason::REASON_KAFKA_KEY_MISMATCH,
                    fmt::format("Kafka key \"{}\" differs from the event's applicant \"{}\"",
                                record.key, e.applicant_id()));
    }
    if (!d.ok()) return Reject(d.reason, d.detail);
    Rules rules(state, e, sequence);
    switch (d.type) {
      case EventType::EVENT_TYPE_APPLICATION:
        return rules.Application();
      case EventType::EVENT_TYPE_APPROVAL:
        return rules.Approval();
      case EventType::EVENT_TYPE_STAGE_PAYMENT:
        return rules.StagePayment();
      case EventType::EVENT_TYPE_CLAWBACK:
        return rules.Clawback();
      case EventType::EVENT_TYPE_KEY_GRANT:
        return rules.KeyGrant();
      case EventType::EVENT_TYPE_KEY_REVOKE:
        return rules.KeyRevoke();
      default:
        return Reject(Reason::REASON_MALFORMED_EVENT, "event has no payload");
    }
  }();
  if (!decided) return decided;
  // Accepted or rejected on its merits, the id is now taken.
  decided->effects.insert(decided->effects.begin(),
                          Effect{Effect::Kind::kClaimEventId, e.event_id(), {}});
  return decided;
}

}  // namespace g60
