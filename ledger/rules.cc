#include "ledger/rules.h"

#include <fmt/format.h>

#include <atomic>
#include <thread>

#include "ledger/bytes.h"
#include "ledger/crypto.h"
#include "ledger/partitioner.h"

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
    case EventType::EVENT_TYPE_CATALOG_PUBLISHED:
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
// Each rule cites the measure it comes from; docs/policy.md explains them.
class Rules {
 public:
  Rules(StateView& state, const v1::Event& event, uint64_t sequence)
      : state_(state), e_(event), seq_(sequence) {}

  // Loads the catalogue in force; business events need one.
  Result<std::optional<Decision>> LoadCatalog() {
    auto c = state_.Catalog();
    if (!c) return Fail(c.error());
    catalog_ = *c;
    if (!catalog_) {
      return Reject(Reason::REASON_NO_CATALOG,
                    "no policy catalogue has been published in this partition yet");
    }
    return std::optional<Decision>{};
  }
  const std::shared_ptr<const CatalogIndex>& catalog() const { return catalog_; }

  // The state key of an event of this event's applicant (events name one another by id
  // within one applicant: docs/formats.md, "Event identity").
  std::string StateKey(std::string_view event_id) const {
    return EventKey(event_id, e_.applicant_id());
  }

  Result<Decision> Application() {
    const auto& a = e_.application();
    const v1::Programme* prog = catalog_->Find(e_.programme());
    if (!prog) {
      return Reject(Reason::REASON_UNKNOWN_PROGRAMME,
                    fmt::format("programme {} is not in catalogue {}", e_.programme(),
                                catalog_->catalog.version()));
    }
    if (auto r = OutsideValidity()) return std::move(*r);
    ApplicationState st;
    st.set_applicant_id(e_.applicant_id());
    st.set_programme(e_.programme());
    st.set_project_id(e_.project_id());
    st.set_declared_base_fen(a.declared_base_fen());
    st.set_requested_fen(a.requested_fen());
    st.set_seq(seq_);
    st.set_occurred_at_ms(e_.occurred_at_ms());
    Decision d = Accept(
        e_.programme(), a.requested_fen(),
        fmt::format("application for {} under {}", FormatFen(a.requested_fen()), e_.programme()));
    d.effects.push_back(Put(Effect::Kind::kPutApplication, StateKey(e_.event_id()), st));
    return d;
  }

  Result<Decision> Approval() {
    const auto& a = e_.approval();
    auto app_or = state_.Application(e_.applicant_id(), a.application_event_id());
    if (!app_or) return Fail(app_or.error());
    if (!*app_or) {
      return Reject(Reason::REASON_NO_APPLICATION,
                    fmt::format("approval names application {}, which applicant {} does not have "
                                "on the record",
                                a.application_event_id(), e_.applicant_id()));
    }
    ApplicationState app = **app_or;
    // From here a rejection is counted under the application's programme.
    return WithProgramme(Approval(a, app), app.programme());
  }

  // A rejection of an event that names an application, approval or payment is counted
  // under that one's programme (utilisation, histories).
  static Result<Decision> WithProgramme(Result<Decision> r, const std::string& programme) {
    if (r && r->verdict == ledger::v1::VERDICT_REJECTED && r->programme.empty()) {
      r->programme = programme;
    }
    return r;
  }

  Result<Decision> Approval(const v1::Approval& a, ApplicationState& app) {
    if (!e_.programme().empty() && e_.programme() != app.programme()) {
      return Reject(Reason::REASON_INVALID_FIELD,
                    fmt::format("approval is for programme {}, application {} for {}",
                                e_.programme(), a.application_event_id(), app.programme()));
    }
    if (e_.occurred_at_ms() < app.occurred_at_ms()) {
      return Reject(Reason::REASON_DATED_BEFORE_APPLICATION,
                    fmt::format("approval {} is dated {}, before application {} it approves, "
                                "dated {}",
                                e_.event_id(), FormatCstTime(e_.occurred_at_ms()),
                                a.application_event_id(), FormatCstTime(app.occurred_at_ms())));
    }
    if (!app.approval_event_id().empty()) {
      return Reject(Reason::REASON_ALREADY_APPROVED,
                    fmt::format("application {} was already approved by {}",
                                a.application_event_id(), app.approval_event_id()));
    }
    const v1::Programme* prog = catalog_->Find(app.programme());
    if (!prog) {
      return Reject(
          Reason::REASON_UNKNOWN_PROGRAMME,
          fmt::format("programme {} of application {} is not in catalogue {}", app.programme(),
                      a.application_event_id(), catalog_->catalog.version()));
    }
    if (auto r = OutsideValidity()) return std::move(*r);
    if (a.level() != prog->level()) {
      return Reject(Reason::REASON_LEVEL_NOT_PROGRAMME,
                    fmt::format("{} is a {} programme; this approval is at {} level", prog->id(),
                                LevelName(prog->level()), LevelName(a.level())));
    }
    if (!prog->staged() && a.stages_size() > 1) {
      return Reject(Reason::REASON_NOT_STAGED,
                    fmt::format("{} is paid in one payment; the approval has {} stages", prog->id(),
                                a.stages_size()));
    }
    if (auto r = Entitlement(*prog, app, a.approved_fen())) return std::move(*r);
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
    st.set_occurred_at_ms(e_.occurred_at_ms());
    for (const auto& s : a.stages()) {
      auto* ss = st.add_stages();
      ss->set_number(s.number());
      ss->set_amount_fen(s.amount_fen());
    }
    Decision d = Accept(app.programme(), a.approved_fen(), "");

    // Caps that span approvals: once-only, yearly, window (measures 8b/8c/10/11/17b/17d,
    // 17c and 11, and 6).
    if (auto r = OnceOnly(*prog, d)) return std::move(*r);
    if (auto r = RunningCap(*prog, app, a.approved_fen(), d)) return std::move(*r);
    // 从优、就高、不重复, or co-funding (measure 1).
    auto overlap = Overlap(*prog, app, st, d);
    if (!overlap) return Fail(overlap.error());
    if (*overlap) return std::move(**overlap);

    app.set_approval_event_id(e_.event_id());
    d.detail = fmt::format("approved {} under {} in {} stage(s){}", FormatFen(a.approved_fen()),
                           prog->id(), a.stages_size(),
                           st.carried_over_fen()
                               ? fmt::format(", {} carried over from {}",
                                             FormatFen(st.carried_over_fen()), st.supersedes())
                               : std::string());
    d.effects.push_back(Put(Effect::Kind::kPutApproval, StateKey(e_.event_id()), st));
    d.effects.push_back(
        Put(Effect::Kind::kPutApplication, StateKey(a.application_event_id()), app));
    return d;
  }

  Result<Decision> StagePayment() {
    const auto& p = e_.stage_payment();
    auto ap_or = state_.Approval(e_.applicant_id(), p.approval_event_id());
    if (!ap_or) return Fail(ap_or.error());
    if (!*ap_or) {
      return Reject(Reason::REASON_NO_APPROVAL,
                    fmt::format("payment names approval {}, which applicant {} does not have on "
                                "the record",
                                p.approval_event_id(), e_.applicant_id()));
    }
    ApprovalState ap = **ap_or;
    return WithProgramme(StagePayment(p, ap), ap.programme());
  }

  Result<Decision> StagePayment(const v1::StagePayment& p, ApprovalState& ap) {
    if (e_.occurred_at_ms() < ap.occurred_at_ms()) {
      return Reject(Reason::REASON_DATED_BEFORE_APPROVAL,
                    fmt::format("payment {} is dated {}, before approval {} it pays, dated {}",
                                e_.event_id(), FormatCstTime(e_.occurred_at_ms()),
                                p.approval_event_id(), FormatCstTime(ap.occurred_at_ms())));
    }
    if (!ap.superseded_by().empty()) {
      return Reject(Reason::REASON_SUPERSEDED,
                    fmt::format("approval {} was superseded by {} (从优、就高、不重复); its unpaid "
                                "stages are void",
                                p.approval_event_id(), ap.superseded_by()));
    }
    if (auto r = OutsideValidity()) return std::move(*r);
    if (p.stage() > static_cast<uint32_t>(ap.stages_size())) {
      return Reject(Reason::REASON_UNKNOWN_STAGE,
                    fmt::format("approval {} has {} stage(s); payment is for stage {}",
                                p.approval_event_id(), ap.stages_size(), p.stage()));
    }
    auto* stage = ap.mutable_stages(static_cast<int>(p.stage() - 1));
    if (!stage->payment_event_id().empty()) {
      return Reject(Reason::REASON_STAGE_ALREADY_PAID,
                    fmt::format("stage {} of approval {} was already paid by {}", p.stage(),
                                p.approval_event_id(), stage->payment_event_id()));
    }
    int64_t after = 0, paid = 0;
    if (__builtin_add_overflow(ap.paid_fen(), ap.carried_over_fen(), &after) ||
        __builtin_sub_overflow(after, ap.clawed_back_fen(), &after) ||
        __builtin_add_overflow(after, p.amount_fen(), &after) ||
        __builtin_add_overflow(ap.paid_fen(), p.amount_fen(), &paid)) {
      return Reject(Reason::REASON_AMOUNT_OVERFLOW, "paid total would overflow int64 fen");
    }
    if (after > ap.approved_fen()) {
      return Reject(
          Reason::REASON_EXCEEDS_APPROVAL,
          fmt::format("paying {} would bring paid - clawed back to {}, above the {} "
                      "approved by {} (paid {}, carried over {}, clawed back {})",
                      FormatFen(p.amount_fen()), FormatFen(after), FormatFen(ap.approved_fen()),
                      p.approval_event_id(), FormatFen(ap.paid_fen()),
                      FormatFen(ap.carried_over_fen()), FormatFen(ap.clawed_back_fen())));
    }
    if (p.amount_fen() != stage->amount_fen()) {
      return Reject(Reason::REASON_STAGE_AMOUNT,
                    fmt::format("stage {} of approval {} is {}, payment is {}", p.stage(),
                                p.approval_event_id(), FormatFen(stage->amount_fen()),
                                FormatFen(p.amount_fen())));
    }
    stage->set_payment_event_id(e_.event_id());
    ap.set_paid_fen(paid);
    ap.set_last_paid_at_ms(std::max(ap.last_paid_at_ms(), e_.occurred_at_ms()));
    PaymentState pay;
    pay.set_applicant_id(e_.applicant_id());
    pay.set_approval_event_id(p.approval_event_id());
    pay.set_stage(p.stage());
    pay.set_amount_fen(p.amount_fen());
    pay.set_source(p.source());
    pay.set_seq(seq_);
    pay.set_occurred_at_ms(e_.occurred_at_ms());
    Decision d = Accept(ap.programme(), p.amount_fen(),
                        fmt::format("paid stage {} of {}: {}", p.stage(), p.approval_event_id(),
                                    FormatFen(p.amount_fen())));
    d.effects.push_back(Put(Effect::Kind::kPutPayment, StateKey(e_.event_id()), pay));
    d.effects.push_back(Put(Effect::Kind::kPutApproval, StateKey(p.approval_event_id()), ap));
    return d;
  }

  // Clawbacks stay possible outside the validity window and after a supersession: money
  // paid wrongly is recovered whenever it is found.
  Result<Decision> Clawback() {
    const auto& c = e_.clawback();
    std::vector<PaymentState> payments;
    int64_t recoverable = 0;
    // The approval of the first payment named: rejections from then on count under its
    // programme.
    std::optional<ApprovalState> approval;
    auto reject = [&](Reason reason, std::string detail) {
      Decision d = Reject(reason, std::move(detail));
      if (approval) d.programme = approval->programme();
      return d;
    };
    for (const auto& id : c.payment_event_ids()) {
      auto pay_or = state_.Payment(e_.applicant_id(), id);
      if (!pay_or) return Fail(pay_or.error());
      if (!*pay_or) {
        return reject(Reason::REASON_NO_PAYMENT,
                      fmt::format("clawback names payment {}, which applicant {} does not have on "
                                  "the record",
                                  id, e_.applicant_id()));
      }
      const PaymentState& pay = **pay_or;
      if (!approval) {
        auto ap_or = state_.Approval(e_.applicant_id(), pay.approval_event_id());
        if (!ap_or) return Fail(ap_or.error());
        G60_ASSERT(ap_or->has_value());  // a payment exists only for a recorded approval
        approval = **ap_or;
      }
      if (e_.occurred_at_ms() < pay.occurred_at_ms()) {
        return reject(Reason::REASON_DATED_BEFORE_PAYMENT,
                      fmt::format("clawback {} is dated {}, before payment {} it reverses, "
                                  "dated {}",
                                  e_.event_id(), FormatCstTime(e_.occurred_at_ms()), id,
                                  FormatCstTime(pay.occurred_at_ms())));
      }
      if (!payments.empty() && pay.approval_event_id() != payments.front().approval_event_id()) {
        return reject(Reason::REASON_INVALID_FIELD,
                      fmt::format("clawback mixes payments of approvals {} and {}",
                                  payments.front().approval_event_id(), pay.approval_event_id()));
      }
      recoverable += pay.amount_fen() - pay.clawed_back_fen();  // each <= approved: no overflow
      payments.push_back(pay);
    }
    if (c.amount_fen() > recoverable) {
      return reject(
          Reason::REASON_EXCEEDS_PAID,
          fmt::format("clawback of {} exceeds the {} still recoverable from the {} "
                      "payment(s) named",
                      FormatFen(c.amount_fen()), FormatFen(recoverable), payments.size()));
    }
    const std::string approval_id = payments.front().approval_event_id();
    ApprovalState ap = *approval;
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
      d.effects.push_back(Put(Effect::Kind::kPutPayment, StateKey(c.payment_event_ids(i)), pay));
    }
    ap.set_clawed_back_fen(ap.clawed_back_fen() + c.amount_fen());
    d.effects.push_back(Put(Effect::Kind::kPutApproval, StateKey(approval_id), ap));
    // Money carried into a superseding approval is recovered there too, so that its
    // paid + carried - clawed back stays the project's true net.
    std::string next = ap.superseded_by();
    for (int hops = 0; !next.empty() && hops < 64; ++hops) {
      auto w_or = state_.Approval(e_.applicant_id(), next);
      if (!w_or) return Fail(w_or.error());
      G60_ASSERT(w_or->has_value());
      ApprovalState w = **w_or;
      w.set_clawed_back_fen(w.clawed_back_fen() + c.amount_fen());
      d.effects.push_back(Put(Effect::Kind::kPutApproval, StateKey(next), w));
      d.notes.push_back(fmt::format("recovered {} from the amount {} carried over",
                                    FormatFen(c.amount_fen()), next));
      next = w.superseded_by();
    }
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

  Result<Decision> CatalogPublished() {
    const std::string& bytes = e_.catalog_published().catalog();
    auto idx = IndexCatalog(bytes);
    if (!idx) return Reject(Reason::REASON_INVALID_FIELD, idx.error().message());
    // 从优、就高、不重复 and once-only rewards are judged against what earlier approvals of a
    // programme recorded under its overlap group (or none) and its once-only flag. A new
    // catalogue that moved a programme to another group, changed its group's mode or its
    // once-only flag would judge later approvals against an empty record: a reward paid at
    // the district level under the old catalogue could be paid again at the municipal level
    // under the new. The scope of every programme ever published is kept (policy key
    // "scope", programme), so that leaving a programme out of one catalogue and adding it
    // back changed does not get round this either. Such a change needs a new programme id.
    std::vector<Effect> scopes;
    for (const auto& p : (*idx)->catalog.programmes()) {
      const v1::OverlapGroup* g = (*idx)->GroupOf(p.id());
      std::string now =
          fmt::format("{} ({}), {}", g ? "overlap group " + g->id() : "no overlap group",
                      !g                                              ? "-"
                      : g->mode() == v1::OverlapGroup::MODE_CO_FUNDED ? "co-funded"
                                                                      : "exclusive",
                      p.once_per_applicant() ? "once per applicant" : "not once-only");
      std::string key = PolicyKey({"scope", p.id()});
      auto rec = Policy(key);
      if (!rec) return Fail(rec.error());
      // PolicyRecord.approval_event_id holds the scope text here.
      if (!rec->approval_event_id().empty() && rec->approval_event_id() != now) {
        return Reject(
            Reason::REASON_INVALID_FIELD,
            fmt::format("catalogue {} changes how programme {} is judged against "
                        "earlier approvals: {} when first published, {} now; publish "
                        "the change under a new programme id",
                        (*idx)->catalog.version(), p.id(), rec->approval_event_id(), now));
      }
      if (rec->approval_event_id().empty()) {
        rec->set_approval_event_id(now);
        scopes.push_back(Put(Effect::Kind::kPutPolicy, key, *rec));
      }
    }
    Decision d =
        Accept("", 0,
               fmt::format("catalogue {} published: {} programme(s), {} overlap "
                           "group(s), valid from {} for {} year(s)",
                           (*idx)->catalog.version(), (*idx)->catalog.programmes_size(),
                           (*idx)->catalog.overlap_groups_size(), (*idx)->catalog.effective_from(),
                           (*idx)->catalog.validity_years()));
    d.effects.push_back(
        Effect{Effect::Kind::kPublishCatalog, std::string(AsBytes((*idx)->hash)), bytes});
    for (auto& e : scopes)
      d.effects.push_back(std::move(e));
    d.catalog_hash = std::string(AsBytes((*idx)->hash));
    return d;
  }

 private:
  static const char* LevelName(v1::Level level) {
    return level == v1::LEVEL_MUNICIPAL  ? "municipal"
           : level == v1::LEVEL_DISTRICT ? "district"
                                         : "unspecified";
  }

  std::optional<Decision> OutsideValidity() const {
    int64_t t = e_.occurred_at_ms();
    if (t >= catalog_->valid_from_ms && t < catalog_->valid_until_ms) return std::nullopt;
    return Reject(Reason::REASON_OUTSIDE_VALIDITY,
                  fmt::format("the event occurred at {}, outside the policy's validity from {} "
                              "for {} year(s) (catalogue {})",
                              FormatCstTime(t), catalog_->catalog.effective_from(),
                              catalog_->catalog.validity_years(), catalog_->catalog.version()));
  }

  // approved against the programme's own entitlement (measures' ratio and amount caps,
  // fixed and tiered rewards).
  std::optional<Decision> Entitlement(const v1::Programme& prog, const ApplicationState& app,
                                      int64_t approved) const {
    switch (prog.kind()) {
      case v1::PROGRAMME_KIND_FIXED_REWARD:
        if (approved == prog.fixed_fen()) return std::nullopt;
        return Reject(Reason::REASON_WRONG_REWARD,
                      fmt::format("{} is a fixed reward of {}; approved {}", prog.id(),
                                  FormatFen(prog.fixed_fen()), FormatFen(approved)));
      case v1::PROGRAMME_KIND_TIERED_REWARD: {
        const v1::Tier* reached = nullptr;
        for (const auto& t : prog.tiers()) {
          if (app.declared_base_fen() >= t.threshold_fen()) reached = &t;
        }
        if (!reached) {
          return Reject(Reason::REASON_WRONG_REWARD,
                        fmt::format("declared {} of {} reaches no tier of {} (lowest {})",
                                    prog.base(), FormatFen(app.declared_base_fen()), prog.id(),
                                    FormatFen(prog.tiers(0).threshold_fen())));
        }
        if (approved == reached->amount_fen()) return std::nullopt;
        return Reject(Reason::REASON_WRONG_REWARD,
                      fmt::format("declared {} of {} reaches the tier from {} of {}, whose reward "
                                  "is {}; approved {}",
                                  prog.base(), FormatFen(app.declared_base_fen()),
                                  FormatFen(reached->threshold_fen()), prog.id(),
                                  FormatFen(reached->amount_fen()), FormatFen(approved)));
      }
      default:
        break;
    }
    if (prog.ratio_bp() > 0) {
      auto limit = ApplyRatio(app.declared_base_fen(), prog.ratio_bp());
      if (!limit) return Reject(Reason::REASON_AMOUNT_OVERFLOW, "ratio x base overflows int64 fen");
      if (approved > *limit && (prog.cap_fen() == 0 || *limit <= prog.cap_fen())) {
        return Reject(
            Reason::REASON_EXCEEDS_CAP,
            fmt::format("approved {} exceeds the ratio cap of {}: {}.{:02d}% of the "
                        "declared {} of {} = {} (absolute cap {})",
                        FormatFen(approved), prog.id(), prog.ratio_bp() / 100,
                        prog.ratio_bp() % 100, prog.base(), FormatFen(app.declared_base_fen()),
                        FormatFen(*limit), FormatFen(prog.cap_fen())));
      }
    }
    if (prog.cap_fen() > 0 && approved > prog.cap_fen()) {
      return Reject(Reason::REASON_EXCEEDS_CAP,
                    fmt::format("approved {} exceeds the absolute cap of {}: {}",
                                FormatFen(approved), prog.id(), FormatFen(prog.cap_fen())));
    }
    return std::nullopt;
  }

  // Reads a policy record; a missing one is empty.
  Result<ledger::v1::PolicyRecord> Policy(const std::string& key) {
    auto r = state_.Policy(key);
    if (!r) return Fail(r.error());
    return r->value_or(ledger::v1::PolicyRecord{});
  }

  // One approval per applicant for once-only rewards ("首次达标", "一次性").
  std::optional<Decision> OnceOnly(const v1::Programme& prog, Decision& d) {
    if (!prog.once_per_applicant()) return std::nullopt;
    std::string key = PolicyKey({"once", prog.id(), e_.applicant_id()});
    auto rec = Policy(key);
    if (!rec) return StateError(rec.error());
    if (!rec->approval_event_id().empty()) {
      return Reject(Reason::REASON_ALREADY_REWARDED,
                    fmt::format("{} is paid once per applicant; {} already has it by approval {}",
                                prog.id(), e_.applicant_id(), rec->approval_event_id()));
    }
    rec->set_approval_event_id(e_.event_id());
    d.effects.push_back(Put(Effect::Kind::kPutPolicy, key, *rec));
    return std::nullopt;
  }

  // Yearly caps (17c: per calendar year) and cumulative caps over a window (6).
  std::optional<Decision> RunningCap(const v1::Programme& prog, const ApplicationState& app,
                                     int64_t approved, Decision& d) {
    std::string key;
    int64_t cap = 0;
    Reason reason;
    std::string what;
    if (prog.kind() == v1::PROGRAMME_KIND_YEARLY_OPERATING) {
      int year = CstYear(app.occurred_at_ms());
      key = PolicyKey({"year", prog.id(), e_.applicant_id(), std::to_string(year)});
      cap = prog.yearly_cap_fen();
      reason = Reason::REASON_YEARLY_CAP;
      what = fmt::format("the yearly cap of {} for {}", prog.id(), year);
    } else if (prog.kind() == v1::PROGRAMME_KIND_CUMULATIVE) {
      int window = (CstYear(app.occurred_at_ms()) - CstYear(catalog_->valid_from_ms)) /
                   static_cast<int>(prog.window_years());
      key = PolicyKey({"window", prog.id(), e_.applicant_id(), std::to_string(window)});
      cap = prog.window_cap_fen();
      reason = Reason::REASON_WINDOW_CAP;
      what = fmt::format("the {}-year cumulative cap of {}", prog.window_years(), prog.id());
    } else {
      return std::nullopt;
    }
    auto rec = Policy(key);
    if (!rec) return StateError(rec.error());
    int64_t sum = 0;
    if (__builtin_add_overflow(rec->sum_fen(), approved, &sum)) {
      return Reject(Reason::REASON_AMOUNT_OVERFLOW, "running total overflows int64 fen");
    }
    if (sum > cap) {
      return Reject(reason, fmt::format("approving {} would bring {} to {}, above {}: {} (already "
                                        "approved {})",
                                        FormatFen(approved), e_.applicant_id(), FormatFen(sum),
                                        what, FormatFen(cap), FormatFen(rec->sum_fen())));
    }
    rec->set_sum_fen(sum);
    d.effects.push_back(Put(Effect::Kind::kPutPolicy, key, *rec));
    return std::nullopt;
  }

  // 从优、就高、不重复 in exclusive groups (and for a programme in no group: one project
  // is supported once by it), co-funding caps in co-funded groups (measure 1).
  Result<std::optional<Decision>> Overlap(const v1::Programme& prog, const ApplicationState& app,
                                          ApprovalState& st, Decision& d) {
    const v1::OverlapGroup* group = catalog_->GroupOf(prog.id());
    int64_t carried_declared = e_.approval().carried_over_fen();
    if (group && group->mode() == v1::OverlapGroup::MODE_CO_FUNDED) {
      if (carried_declared != 0) {
        return Reject(Reason::REASON_CARRY_MISMATCH,
                      fmt::format("{} is co-funded: approvals add up, nothing is carried over; "
                                  "carried_over_fen must be 0",
                                  group->id()));
      }
      std::string key = PolicyKey({"cofund", group->id(), e_.applicant_id(), app.project_id()});
      auto rec = Policy(key);
      if (!rec) return Fail(rec.error());
      // The co-funders' applications may declare different bases; the smallest binds.
      int64_t base = rec->approval_event_id().empty()
                         ? app.declared_base_fen()
                         : std::min(rec->base_fen(), app.declared_base_fen());
      auto ratio_limit = ApplyRatio(base, group->ratio_bp());
      int64_t sum = 0;
      if (!ratio_limit || __builtin_add_overflow(rec->sum_fen(), st.approved_fen(), &sum)) {
        return Reject(Reason::REASON_AMOUNT_OVERFLOW, "co-funding total overflows int64 fen");
      }
      int64_t limit = std::min(*ratio_limit, group->cap_fen());
      if (sum > limit) {
        return Reject(
            Reason::REASON_CO_FUNDING_CAP,
            fmt::format("{} is co-funded by {}: all sources together may give project {} "
                        "at most {} ({}.{:02d}% of {} capped at {}); already approved {}, "
                        "this approval {}",
                        prog.id(), group->id(), app.project_id(), FormatFen(limit),
                        group->ratio_bp() / 100, group->ratio_bp() % 100, FormatFen(base),
                        FormatFen(group->cap_fen()), FormatFen(rec->sum_fen()),
                        FormatFen(st.approved_fen())));
      }
      rec->set_sum_fen(sum);
      rec->set_base_fen(base);
      if (rec->approval_event_id().empty()) rec->set_approval_event_id(e_.event_id());
      d.effects.push_back(Put(Effect::Kind::kPutPolicy, key, *rec));
      return std::optional<Decision>{};
    }
    std::string scope = group ? group->id() : "programme:" + prog.id();
    // Yearly support is a new entitlement each calendar year: the same project may be
    // supported once per year (the yearly cap bounds the sum).
    std::string year = prog.kind() == v1::PROGRAMME_KIND_YEARLY_OPERATING
                           ? std::to_string(CstYear(app.occurred_at_ms()))
                           : std::string();
    // A once-per-applicant reward (a first recognition, 首次达标) is one achievement of the
    // enterprise, whatever project ids the portals file it under: it is judged per
    // enterprise (the catalogue keeps such rewards in groups of their own). Project ids are
    // never empty, so the empty part cannot meet a project's key.
    const bool per_enterprise = prog.once_per_applicant();
    std::string key = PolicyKey({"overlap", scope, e_.applicant_id(),
                                 per_enterprise ? std::string() : app.project_id(), year});
    auto rec = Policy(key);
    if (!rec) return Fail(rec.error());
    int64_t carried = 0;
    if (!rec->approval_event_id().empty()) {
      auto w_or = state_.Approval(e_.applicant_id(), rec->approval_event_id());
      if (!w_or) return Fail(w_or.error());
      G60_ASSERT(w_or->has_value());
      ApprovalState winner = **w_or;
      if (st.approved_fen() <= winner.approved_fen()) {
        std::string what = per_enterprise
                               ? fmt::format("{} already has this once-only reward (project {})",
                                             e_.applicant_id(), winner.project_id())
                               : fmt::format("project {} of {} is already supported",
                                             app.project_id(), e_.applicant_id());
        Decision dup = Reject(
            Reason::REASON_DUPLICATE_SUPPORT,
            fmt::format("不重复: {} by approval {} under {} with {}, at least this approval's {}{}",
                        what, rec->approval_event_id(), winner.programme(),
                        FormatFen(winner.approved_fen()), FormatFen(st.approved_fen()),
                        group ? fmt::format(" (overlap group {})", group->id()) : ""));
        dup.notes.push_back(std::string(kDuplicateOfNote) + rec->approval_event_id());
        return dup;
      }
      // The money carried over was paid before this approval was given: it cannot be dated
      // before the approval it replaces or before any payment of it.
      if (int64_t latest = std::max(winner.occurred_at_ms(), winner.last_paid_at_ms());
          e_.occurred_at_ms() < latest) {
        bool paid_later = winner.last_paid_at_ms() > winner.occurred_at_ms();
        return Reject(Reason::REASON_DATED_BEFORE_SUPERSEDED,
                      fmt::format("approval {} is dated {}, before {} of approval {} it would "
                                  "supersede, dated {}",
                                  e_.event_id(), FormatCstTime(e_.occurred_at_ms()),
                                  paid_later ? "the last payment" : "the date",
                                  rec->approval_event_id(), FormatCstTime(latest)));
      }
      // 就高: the higher approval supersedes; what was paid counts towards it.
      if (__builtin_add_overflow(winner.paid_fen(), winner.carried_over_fen(), &carried) ||
          __builtin_sub_overflow(carried, winner.clawed_back_fen(), &carried)) {
        return Reject(Reason::REASON_AMOUNT_OVERFLOW, "carried amount overflows int64 fen");
      }
      if (carried_declared != carried) {
        return Reject(
            Reason::REASON_CARRY_MISMATCH,
            fmt::format("this approval supersedes {} ({} under {}), which paid {} net; "
                        "carried_over_fen says {}",
                        rec->approval_event_id(), FormatFen(winner.approved_fen()),
                        winner.programme(), FormatFen(carried), FormatFen(carried_declared)));
      }
      winner.set_superseded_by(e_.event_id());
      st.set_supersedes(rec->approval_event_id());
      st.set_carried_over_fen(carried);
      d.effects.push_back(
          Put(Effect::Kind::kPutApproval, StateKey(rec->approval_event_id()), winner));
      d.notes.push_back(
          fmt::format("superseded {} ({} under {}); its unpaid stages are void and "
                      "the {} it paid counts towards this approval",
                      rec->approval_event_id(), FormatFen(winner.approved_fen()),
                      winner.programme(), FormatFen(carried)));
    } else if (carried_declared != 0) {
      return Reject(Reason::REASON_CARRY_MISMATCH,
                    fmt::format("no earlier approval of project {} to supersede; carried_over_fen "
                                "must be 0, not {}",
                                app.project_id(), FormatFen(carried_declared)));
    }
    rec->set_approval_event_id(e_.event_id());
    rec->set_sum_fen(st.approved_fen());
    d.effects.push_back(Put(Effect::Kind::kPutPolicy, key, *rec));
    return std::optional<Decision>{};
  }

  // A state read that failed inside a rule that returns an optional decision: stop with
  // the error (the caller turns it into an operating failure).
  std::optional<Decision> StateError(const Error& e) {
    state_error_ = e;
    return Decision{};
  }

 public:
  std::optional<Error> state_error_;

 private:
  Decision Accept(std::string programme, int64_t amount, std::string detail) {
    Decision d;
    d.verdict = ledger::v1::VERDICT_ACCEPTED;
    d.programme = std::move(programme);
    d.amount_fen = amount;
    d.detail = std::move(detail);
    if (catalog_) d.catalog_hash = std::string(AsBytes(catalog_->hash));
    return d;
  }

  StateView& state_;
  const v1::Event& e_;
  uint64_t seq_;
  std::shared_ptr<const CatalogIndex> catalog_;
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
                  fmt::format("key {} is valid from {} until {}; the record's Kafka timestamp "
                              "is {}",
                              key_id, FormatCstTime(key.valid_from_ms()),
                              key.valid_until_ms() == 0 ? std::string("no end")
                                                        : FormatCstTime(key.valid_until_ms()),
                              FormatCstTime(record.timestamp_ms)));
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

void PrecheckAll(const std::vector<Record>& records, std::vector<Prechecked>& out,
                 const PublicKeyLookup& lookup, unsigned threads) {
  out.resize(records.size());
  std::atomic<size_t> next{0};
  constexpr size_t kChunk = 64;
  auto work = [&] {
    while (true) {
      size_t begin = next.fetch_add(kChunk);
      if (begin >= records.size()) return;
      size_t end = std::min(records.size(), begin + kChunk);
      for (size_t i = begin; i < end; ++i)
        out[i] = Precheck(records[i].value, lookup);
    }
  };
  std::vector<std::thread> pool;
  unsigned extra = records.size() > kChunk && threads > 1 ? threads - 1 : 0;
  for (unsigned t = 0; t < extra; ++t)
    pool.emplace_back(work);
  work();
  for (auto& t : pool)
    t.join();
}

void SeenKeys::Learn(const DecodedMessage& d) {
  if (!d.ok() || d.type != EventType::EVENT_TYPE_KEY_GRANT) return;
  const std::string& pk = d.event.key_grant().public_key();
  std::string id = KeyIdOf(pk);
  std::unique_lock lock(mu_);
  keys_.emplace(std::move(id), pk);
}

std::string SeenKeys::Find(std::string_view key_id) const {
  std::shared_lock lock(mu_);
  auto it = keys_.find(std::string(key_id));
  return it == keys_.end() ? std::string() : it->second;
}

std::string PolicyKey(std::initializer_list<std::string_view> parts) {
  std::string k;
  for (std::string_view p : parts) {
    if (!k.empty()) k.push_back('\0');
    k.append(p);
  }
  return k;
}

namespace {

// The programme of what an event names on the record: its application's (an approval),
// its approval's (a payment), or the approval of the first of its payments on the record
// (a clawback); "" when it names nothing on the record, or names it with ids that are not
// well formed (they are never looked up: LMDB keys are at most 511 bytes).
Result<std::string> NamedProgramme(StateView& state, const DecodedMessage& d) {
  const v1::Event& e = d.event;
  const std::string& who = e.applicant_id();
  if (!ValidEventId(who)) return std::string();
  switch (d.type) {
    case EventType::EVENT_TYPE_APPROVAL: {
      if (!ValidEventId(e.approval().application_event_id())) break;
      auto app = state.Application(who, e.approval().application_event_id());
      if (!app) return Fail(app.error());
      return *app ? (*app)->programme() : std::string();
    }
    case EventType::EVENT_TYPE_STAGE_PAYMENT: {
      if (!ValidEventId(e.stage_payment().approval_event_id())) break;
      auto ap = state.Approval(who, e.stage_payment().approval_event_id());
      if (!ap) return Fail(ap.error());
      return *ap ? (*ap)->programme() : std::string();
    }
    case EventType::EVENT_TYPE_CLAWBACK:
      for (const auto& id : e.clawback().payment_event_ids()) {
        if (!ValidEventId(id)) continue;
        auto pay = state.Payment(who, id);
        if (!pay) return Fail(pay.error());
        if (!*pay) continue;
        auto ap = state.Approval(who, (*pay)->approval_event_id());
        if (!ap) return Fail(ap.error());
        return *ap ? (*ap)->programme() : std::string();
      }
      break;
    default:
      break;
  }
  return std::string();
}

Result<Decision> DecideRecord(StateView& state, const Record& record, const Prechecked& pre,
                              uint64_t sequence);

}  // namespace

Result<Decision> Decide(StateView& state, const Record& record, const Prechecked& pre,
                        uint64_t sequence) {
  auto decided = DecideRecord(state, record, pre, sequence);
  // Every rejected event that names an application, approval or payment on the record is
  // counted under its programme, whatever rule rejected it (utilisation, histories).
  if (decided && decided->verdict == ledger::v1::VERDICT_REJECTED && decided->programme.empty() &&
      !pre.decoded.event.applicant_id().empty()) {
    auto named = NamedProgramme(state, pre.decoded);
    if (!named) return Fail(named.error());
    decided->programme = std::move(*named);
  }
  return decided;
}

namespace {

Result<Decision> DecideRecord(StateView& state, const Record& record, const Prechecked& pre,
                              uint64_t sequence) {
  const auto& d = pre.decoded;
  if (d.reason == Reason::REASON_MALFORMED_MESSAGE || d.reason == Reason::REASON_MALFORMED_EVENT) {
    return Reject(d.reason, d.detail);
  }
  auto signer = CheckSigner(state, record, pre);
  if (!signer) return Fail(signer.error());
  if (*signer) return std::move(**signer);

  const v1::Event& e = d.event;
  // The Kafka key and partition are not signed: anyone who may write to the topic can set
  // them. A record they make wrong is rejected *before* it claims its event id, so that a
  // copy sent first with another key, or to another partition, cannot make the genuine
  // record (a key revocation, say) a duplicate.
  if (record.key != e.applicant_id()) {
    return Reject(Reason::REASON_KAFKA_KEY_MISMATCH,
                  fmt::format("Kafka key \"{}\" differs from the event's applicant \"{}\"",
                              PrintableBytes(record.key), PrintableBytes(e.applicant_id())));
  }
  const bool business =
      d.type == EventType::EVENT_TYPE_APPLICATION || d.type == EventType::EVENT_TYPE_APPROVAL ||
      d.type == EventType::EVENT_TYPE_STAGE_PAYMENT || d.type == EventType::EVENT_TYPE_CLAWBACK;
  // One applicant, one chain: a genuine record copied to another partition must not count
  // twice (DESIGN.md). The key equals the applicant here. Control events belong in every
  // partition.
  if (uint32_t count = state.PartitionCount(),
      home = business ? KafkaPartitionForKey(record.key, count) : record.partition;
      home != record.partition) {
    return Reject(Reason::REASON_WRONG_PARTITION,
                  fmt::format("applicant \"{}\" belongs in partition {} of {} (murmur2 of the "
                              "Kafka key), not in partition {}: a copy of an applicant's event "
                              "in another partition is never counted",
                              PrintableBytes(record.key), home, count, record.partition));
  }

  // An event claims (event id, applicant) only when both are well formed and agree with
  // its kind: a business event names an applicant, a control event none. Otherwise a
  // malformed business event with no applicant could take a control event's id (a key
  // revocation's, say) in its partition, or an id holding a NUL could read as another
  // applicant's. Such an event is recorded, rejected, and claims nothing.
  if (!ValidEventId(e.event_id())) {
    return Reject(Reason::REASON_INVALID_FIELD,
                  fmt::format("event_id \"{}\" is not 1..128 printable ASCII characters; the "
                              "event claims no id",
                              PrintableBytes(e.event_id())));
  }
  if (business ? !ValidEventId(e.applicant_id()) : !e.applicant_id().empty()) {
    return Reject(Reason::REASON_INVALID_FIELD,
                  business ? fmt::format("applicant_id \"{}\" is not 1..128 printable ASCII "
                                         "characters; the event claims no id",
                                         PrintableBytes(e.applicant_id()))
                           : std::string("control events carry no applicant_id; the event "
                                         "claims no id"));
  }

  // From here the event is authentic, its signer authorised and its record where it
  // belongs: it claims its id.
  auto claimed = state.EventClaimedAt(e.applicant_id(), e.event_id());
  if (!claimed) return Fail(claimed.error());
  if (*claimed) {
    return Reject(Reason::REASON_DUPLICATE_EVENT,
                  e.applicant_id().empty()
                      ? fmt::format("control event {} is already on the record at entry {} of "
                                    "partition {}",
                                    e.event_id(), **claimed, record.partition)
                      : fmt::format("applicant {} already used event id {}: it is on the record "
                                    "at entry {} of partition {}",
                                    e.applicant_id(), e.event_id(), **claimed, record.partition));
  }
  auto decided = [&]() -> Result<Decision> {
    Rules rules(state, e, sequence);
    std::string catalog_hash;
    if (business) {
      auto missing = rules.LoadCatalog();
      if (!missing) return Fail(missing.error());
      if (*missing) return std::move(**missing);
      catalog_hash = std::string(AsBytes(rules.catalog()->hash));
    }
    auto with_hash = [&](Decision dec) {
      if (dec.catalog_hash.empty()) dec.catalog_hash = catalog_hash;
      return dec;
    };
    if (!d.ok()) return with_hash(Reject(d.reason, d.detail));
    Result<Decision> out = Reject(Reason::REASON_MALFORMED_EVENT, "event has no payload");
    switch (d.type) {
      case EventType::EVENT_TYPE_APPLICATION:
        out = rules.Application();
        break;
      case EventType::EVENT_TYPE_APPROVAL:
        out = rules.Approval();
        break;
      case EventType::EVENT_TYPE_STAGE_PAYMENT:
        out = rules.StagePayment();
        break;
      case EventType::EVENT_TYPE_CLAWBACK:
        out = rules.Clawback();
        break;
      case EventType::EVENT_TYPE_KEY_GRANT:
        out = rules.KeyGrant();
        break;
      case EventType::EVENT_TYPE_KEY_REVOKE:
        out = rules.KeyRevoke();
        break;
      case EventType::EVENT_TYPE_CATALOG_PUBLISHED:
        out = rules.CatalogPublished();
        break;
      default:
        break;
    }
    if (rules.state_error_) return Fail(*rules.state_error_);
    if (!out) return out;
    return with_hash(std::move(*out));
  }();
  if (!decided) return decided;
  // Accepted or rejected on its merits, the id is now taken.
  decided->effects.insert(
      decided->effects.begin(),
      Effect{Effect::Kind::kClaimEventId, EventKey(e.event_id(), e.applicant_id()), {}});
  return decided;
}

}  // namespace

}  // namespace g60
