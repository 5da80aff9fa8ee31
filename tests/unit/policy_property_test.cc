// Property tests of the policy engine: thousands of seeded random event sequences
// (each in its own partition), with the invariants checked after every event, the
// state's totals recomputed from the entries after every sequence, and a replay of the
// whole ledger that must give identical tables.
//
// G60_PROPERTY_SEQUENCES sets the number of sequences (default 2000).
#include <fmt/format.h>
#include <catch2/catch.hpp>

#include <array>
#include <cstdlib>
#include <map>
#include <set>

#include "ledger/entry.h"
#include "ledger/lmdb.h"
#include "ledger/replay.h"
#include "ops/splitmix.h"
#include "support.h"

using namespace g60;
using namespace g60::testing;
using ledger::v1::ApprovalState;
using ledger::v1::PaymentState;

namespace {

using Rng = SplitMix64;

constexpr int64_t kWan = 1'000'000;  // 万元 in fen

// Programmes chosen to meet every kind of cross-approval rule.
// (17c twice: yearly caps need two approvals of one applicant in one year.)
const std::vector<std::string> kProgrammes = {"G60-07b", "SH-M-07b", "G60-01",  "SH-M-01",
                                              "G60-10a", "SH-M-10a", "G60-17c", "G60-17c",
                                              "G60-06",  "G60-09"};

struct Approval {
  std::string id, applicant, project, programme;
  std::vector<int64_t> stages;
  int64_t occurred_ms = 0;  // applications: when it happened (a yearly programme's year)
};

// All (event id, value) rows of a state table (keys are EventKeys) for one partition,
// through a transaction. The sequence's event ids are unique across its applicants.
std::vector<std::pair<std::string, std::string>> Rows(const lmdb::Txn& txn, MDB_dbi dbi,
                                                      uint32_t p) {
  std::vector<std::pair<std::string, std::string>> out;
  std::string prefix = PartitionKey(p, "");
  auto cur = lmdb::Cursor::Open(txn, dbi);
  REQUIRE(cur.has_value());
  for (auto ok = cur->Seek(prefix); *ok && cur->key().starts_with(prefix); ok = cur->Next()) {
    out.emplace_back(std::string(EventKeyId(cur->key().substr(prefix.size()))),
                     std::string(cur->value()));
  }
  return out;
}

class Sequence {
 public:
  Sequence(Ledger& ledger, uint32_t partition, uint64_t seed)
      : ledger_(ledger),
        p_(partition),
        applicants_{ApplicantIn("91310117PROPA", partition, ledger.partition_count()),
                    ApplicantIn("91310117PROPB", partition, ledger.partition_count())},
        rng_(seed),
        catalog_(*IndexCatalog(SerializeCatalog(TestCatalog()))) {}

  void Run(int events) {
    auto batch = ledger_.BeginBatch();
    REQUIRE(batch.has_value());
    batch_ = &*batch;
    for (const auto& r : GrantRecords(p_))
      Append(r.value, r.key);
    for (int i = 0; i < events; ++i) {
      Step();
      CheckInvariants();
    }
    REQUIRE(batch->Commit().has_value());
    batch_ = nullptr;
    CheckTotalsAgainstEntries();
  }

 private:
  AppendOutcome Append(const std::string& value, const std::string& key) {
    Record r = MakeRecord(p_, offset_++, key, value);
    auto out = batch_->Append(r, Precheck(r.value, nullptr));
    REQUIRE(out.has_value());
    return *out;
  }

  bool Send(v1::Event& e, const KeyFile& k) {
    e.set_event_id(fmt::format("e{}", ++serial_));
    // Events mostly follow one another in time (up to two days apart), as the rules of
    // order require; one in ten is dated back, to exercise those rules too.
    if (e.occurred_at_ms() == 0) {
      constexpr int64_t kDay = 86400000;
      if (clock_ == 0) clock_ = 1772294400000 + rng_.Range(0, kDay * 150);
      clock_ += rng_.Range(0, 2 * kDay);
      e.set_occurred_at_ms(rng_.Chance(10) ? clock_ - rng_.Range(1, 20 * kDay) : clock_);
    }
    return Append(SignEvent(e, k), e.applicant_id()).verdict == ledger::v1::VERDICT_ACCEPTED;
  }

  void Step() {
    const auto& k = Keys();
    std::string applicant = rng_.Chance(50) ? applicants_[0] : applicants_[1];
    int choice = static_cast<int>(rng_.Range(0, 99));
    if (choice < 30 || applications_.empty()) {
      const std::string& prog_id = rng_.Pick(kProgrammes);
      const v1::Programme& prog = *catalog_->Find(prog_id);
      v1::Event e;
      e.set_applicant_id(applicant);
      e.set_programme(prog_id);
      e.set_project_id(fmt::format("p{}", rng_.Range(1, 3)));
      int64_t base = rng_.Range(1, 1000) * kWan;
      e.mutable_application()->set_declared_base_fen(base);
      int64_t entitled = prog.kind() == v1::PROGRAMME_KIND_FIXED_REWARD ? prog.fixed_fen()
                         : prog.ratio_bp()
                             ? std::min(*ApplyRatio(base, prog.ratio_bp()), prog.cap_fen())
                             : prog.cap_fen();
      e.mutable_application()->set_requested_fen(
          std::max<int64_t>(1, entitled / 100 * rng_.Range(50, 130)));
      if (Send(e, k.portal)) {
        applications_.push_back(
            {e.event_id(), applicant, e.project_id(), prog_id, {}, e.occurred_at_ms()});
        requested_[e.event_id()] = e.application().requested_fen();
      }
    } else if (choice < 60) {
      const Approval& app = rng_.Pick(applications_);
      const v1::Programme& prog = *catalog_->Find(app.programme);
      int64_t requested = requested_[app.id];
      int64_t approved = prog.kind() == v1::PROGRAMME_KIND_FIXED_REWARD && rng_.Chance(80)
                             ? prog.fixed_fen()
                             : std::max<int64_t>(1, requested / 100 * rng_.Range(40, 110));
      // What a winning approval of this project has paid net, to carry over (usually right).
      int64_t carried = rng_.Chance(70) ? NetOfLiveWinner(app) : rng_.Range(0, 3) * kWan;
      if (carried >= approved) carried = 0;
      v1::Event e;
      e.set_applicant_id(app.applicant);
      auto* a = e.mutable_approval();
      a->set_application_event_id(app.id);
      a->set_approved_fen(approved);
      a->set_carried_over_fen(carried);
      a->set_level(rng_.Chance(95) ? prog.level()
                                   : (prog.level() == v1::LEVEL_DISTRICT ? v1::LEVEL_MUNICIPAL
                                                                         : v1::LEVEL_DISTRICT));
      int n = prog.staged() && rng_.Chance(50) ? 2 : 1;
      int64_t payable = approved - carried;
      std::vector<int64_t> stages;
      for (int s = 1; s <= n; ++s) {
        int64_t amount = s == n ? payable - (n - 1) * (payable / n) : payable / n;
        auto* st = a->add_stages();
        st->set_number(static_cast<uint32_t>(s));
        st->set_amount_fen(amount);
        stages.push_back(amount);
      }
      const KeyFile& signer = a->level() == v1::LEVEL_MUNICIPAL ? k.municipal : k.district;
      if (Send(e, signer)) {
        approvals_.push_back(
            {e.event_id(), app.applicant, app.project, app.programme, stages, app.occurred_ms});
        accepted_approvals_.push_back({app.applicant, app.programme});
      }
    } else if (choice < 85 && !approvals_.empty()) {
      const Approval& ap = rng_.Pick(approvals_);
      uint32_t stage = static_cast<uint32_t>(
          rng_.Range(1, static_cast<int64_t>(ap.stages.size()) + (rng_.Chance(10) ? 1 : 0)));
      int64_t amount = stage <= ap.stages.size() ? ap.stages[stage - 1] : kWan;
      if (rng_.Chance(10)) amount += rng_.Range(1, 1000);
      v1::Event e;
      e.set_applicant_id(ap.applicant);
      auto* sp = e.mutable_stage_payment();
      sp->set_approval_event_id(ap.id);
      sp->set_stage(stage);
      sp->set_amount_fen(amount);
      sp->set_source(v1::FUNDING_SOURCE_DISTRICT_SPECIAL_FUND);
      if (Send(e, k.treasury))
        payments_.push_back({e.event_id(), ap.applicant, ap.id, ap.programme, {amount}});
    } else if (!payments_.empty()) {
      const Approval& pay = rng_.Pick(payments_);  // id, applicant, project := approval id
      v1::Event e;
      e.set_applicant_id(pay.applicant);
      auto* c = e.mutable_clawback();
      c->add_payment_event_ids(pay.id);
      c->set_amount_fen(rng_.Range(1, pay.stages[0] + pay.stages[0] / 5));
      c->set_reason("property test");
      Send(e, k.treasury);
    }
  }

  // Net paid (paid + carried - clawed back) of the live approval of app's project in its
  // exclusive scope, if any.
  int64_t NetOfLiveWinner(const Approval& app) {
    std::string scope = Scope(app.programme, app.occurred_ms);
    for (const auto& [id, st] : ApprovalsNow()) {
      if (Scope(st.programme(), OccurredOf(st)) == scope && st.applicant_id() == app.applicant &&
          Achievement(st.programme(), st.project_id()) == Achievement(app.programme, app.project) &&
          st.superseded_by().empty()) {
        return st.paid_fen() + st.carried_over_fen() - st.clawed_back_fen();
      }
    }
    return 0;
  }

  // The exclusive scope of a project: its overlap group, or its programme, and for
  // yearly support the calendar year too.
  std::string Scope(const std::string& programme, int64_t occurred_ms) const {
    const v1::OverlapGroup* g = catalog_->GroupOf(programme);
    std::string scope = g ? g->id() : "programme:" + programme;
    if (catalog_->Find(programme)->kind() == v1::PROGRAMME_KIND_YEARLY_OPERATING) {
      scope += "|" + std::to_string(CstYear(occurred_ms));
    }
    return scope;
  }
  // What 不重复 supports once in a scope: a project, or for a once-per-applicant reward the
  // enterprise itself, whatever project ids its applications name.
  std::string Achievement(const std::string& programme, const std::string& project) const {
    return catalog_->Find(programme)->once_per_applicant() ? std::string("(enterprise)") : project;
  }
  int64_t OccurredOf(const ApprovalState& st) {
    auto v =
        batch_->txn().Get(ledger_.tables().applications,
                          PartitionKey(p_, EventKey(st.application_event_id(), st.applicant_id())));
    REQUIRE(v.has_value());
    REQUIRE(v->has_value());
    ledger::v1::ApplicationState app;
    REQUIRE(app.ParseFromArray((*v)->data(), static_cast<int>((*v)->size())));
    return app.occurred_at_ms();
  }

  std::map<std::string, ApprovalState> ApprovalsNow() {
    std::map<std::string, ApprovalState> out;
    for (auto& [id, v] : Rows(batch_->txn(), ledger_.tables().approvals, p_)) {
      REQUIRE(out[id].ParseFromString(v));
    }
    return out;
  }

  void CheckInvariants() {
    auto approvals = ApprovalsNow();
    std::map<std::string, PaymentState> payments;
    for (auto& [id, v] : Rows(batch_->txn(), ledger_.tables().payments, p_))
      REQUIRE(payments[id].ParseFromString(v));
    std::map<std::string, int64_t> net_paid_by_approval;  // from the payments themselves
    for (const auto& [id, pay] : payments) {
      REQUIRE(pay.clawed_back_fen() <= pay.amount_fen());
      net_paid_by_approval[pay.approval_event_id()] += pay.amount_fen() - pay.clawed_back_fen();
    }
    std::map<std::string, std::vector<const ApprovalState*>> by_project;  // scope|applicant|project
    std::map<std::string, int64_t> cofunded;
    for (const auto& [id, st] : approvals) {
      INFO("approval " << id);
      const v1::Programme& prog = *catalog_->Find(st.programme());
      // paid - clawed back <= approved <= cap
      REQUIRE(st.paid_fen() + st.carried_over_fen() - st.clawed_back_fen() <= st.approved_fen());
      REQUIRE(st.paid_fen() + st.carried_over_fen() - st.clawed_back_fen() >= 0);
      if (prog.kind() == v1::PROGRAMME_KIND_FIXED_REWARD) {
        REQUIRE(st.approved_fen() == prog.fixed_fen());
      } else {
        REQUIRE(st.approved_fen() <= prog.cap_fen());
      }
      const v1::OverlapGroup* g = catalog_->GroupOf(st.programme());
      if (g && g->mode() == v1::OverlapGroup::MODE_CO_FUNDED) {
        cofunded[st.applicant_id() + "|" + st.project_id()] += st.approved_fen();
        REQUIRE(cofunded[st.applicant_id() + "|" + st.project_id()] <= g->cap_fen());
      } else {
        by_project[Scope(st.programme(), OccurredOf(st)) + "|" + st.applicant_id() + "|" +
                   Achievement(st.programme(), st.project_id())]
            .push_back(&st);
      }
    }
    // 不重复: one live approval per project and scope, and all the money paid for the
    // project under any of its approvals stays within the live one.
    for (const auto& [key, list] : by_project) {
      INFO("project " << key);
      const ApprovalState* live = nullptr;
      int64_t net = 0;
      for (const ApprovalState* st : list) {
        if (st->superseded_by().empty()) {
          REQUIRE(live == nullptr);
          live = st;
        }
      }
      REQUIRE(live != nullptr);
      for (const auto& [id, st] : approvals) {
        if (Scope(st.programme(), OccurredOf(st)) + "|" + st.applicant_id() + "|" +
                Achievement(st.programme(), st.project_id()) ==
            key) {
          net += net_paid_by_approval[id];
        }
      }
      REQUIRE(net <= live->approved_fen());
      REQUIRE(net == live->paid_fen() + live->carried_over_fen() - live->clawed_back_fen());
    }
    // Once-only rewards: once per applicant.
    std::map<std::pair<std::string, std::string>, int> once;
    for (const auto& a : accepted_approvals_) {
      if (catalog_->Find(a.second)->once_per_applicant()) REQUIRE(++once[a] == 1);
    }
  }

  // The state's paid and clawed-back totals equal the sums of the accepted entries.
  void CheckTotalsAgainstEntries() {
    auto txn = lmdb::Txn::Begin(ledger_.env(), true);
    std::map<std::string, int64_t> paid;
    int64_t clawed = 0;
    {
      auto cur = lmdb::Cursor::Open(*txn, ledger_.tables().entries);
      std::string prefix = EntryKey(p_, 0).substr(0, 4);
      for (auto ok = cur->Seek(prefix); *ok && cur->key().starts_with(prefix); ok = cur->Next()) {
        auto e = DecodeEntry(cur->value());
        REQUIRE(e.has_value());
        if (e->body.verdict() != ledger::v1::VERDICT_ACCEPTED) continue;
        DecodedMessage d = DecodeMessage(e->body.value());
        if (d.event.has_stage_payment())
          paid[d.event.stage_payment().approval_event_id()] += e->body.amount_fen();
        if (d.event.has_clawback()) clawed += e->body.amount_fen();
      }
    }
    int64_t clawed_in_state = 0;
    for (auto& [id, v] : Rows(*txn, ledger_.tables().payments, p_)) {
      PaymentState pay;
      REQUIRE(pay.ParseFromString(v));
      clawed_in_state += pay.clawed_back_fen();
    }
    CHECK(clawed_in_state == clawed);
    for (auto& [id, v] : Rows(*txn, ledger_.tables().approvals, p_)) {
      ApprovalState st;
      REQUIRE(st.ParseFromString(v));
      INFO("approval " << id);
      CHECK(st.paid_fen() == paid[id]);
    }
  }

  Ledger& ledger_;
  uint32_t p_;
  std::array<std::string, 2> applicants_;  // two applicants that belong in partition p_
  Rng rng_;
  std::shared_ptr<const CatalogIndex> catalog_;
  Batch* batch_ = nullptr;
  int64_t offset_ = 0;
  int64_t clock_ = 0;  // the sequence's time, CST ms
  int serial_ = 0;
  std::vector<Approval> applications_, approvals_, payments_;
  std::map<std::string, int64_t> requested_;
  std::vector<std::pair<std::string, std::string>> accepted_approvals_;  // applicant, programme
};

}  // namespace

TEST_CASE("random event sequences keep every policy invariant, and replay gives the same ledger",
          "[rules][policy][property]") {
  int sequences = 2000;
  if (const char* env = std::getenv("G60_PROPERTY_SEQUENCES")) sequences = std::atoi(env);
  TempDir dir;
  // Each sequence has a partition of its own, and applicants that belong there.
  auto ledger = OpenTestLedger(dir.path(), size_t{1} << 30, static_cast<uint32_t>(sequences));
  std::map<std::string, uint64_t> verdicts;
  for (int s = 0; s < sequences; ++s) {
    INFO("sequence " << s << " (seed " << 1000 + s << ")");
    Sequence(*ledger, static_cast<uint32_t>(s), 1000 + static_cast<uint64_t>(s)).Run(40);
  }
  // Both verdicts occur in numbers: the sequences exercise the rules, not only one path.
  auto txn = lmdb::Txn::Begin(ledger->env(), true);
  {
    auto cur = lmdb::Cursor::Open(*txn, ledger->tables().entries);
    for (auto ok = cur->First(); *ok; ok = cur->Next()) {
      auto e = DecodeEntry(cur->value());
      ++verdicts[ReasonName(e->body.reason())];
    }
  }
  txn->Abort();
  for (const char* r :
       {"NONE", "EXCEEDS_CAP", "DUPLICATE_SUPPORT", "CARRY_MISMATCH", "SUPERSEDED",
        "CO_FUNDING_CAP", "ALREADY_REWARDED", "YEARLY_CAP", "WINDOW_CAP", "EXCEEDS_PAID",
        "STAGE_ALREADY_PAID", "LEVEL_NOT_PROGRAMME", "DATED_BEFORE_APPLICATION",
        "DATED_BEFORE_APPROVAL", "DATED_BEFORE_PAYMENT", "DATED_BEFORE_SUPERSEDED"}) {
    INFO("reason " << r);
    CHECK(verdicts[r] > 0);
  }
  // Replay: the same records through the same rules give byte-identical tables.
  TempDir copy;
  auto replica = OpenTestLedger(copy.path(), size_t{1} << 30, ledger->partition_count());
  REQUIRE(ReplayLedger(*ledger, *replica).has_value());
  auto diff = CompareLedgers(*ledger, *replica);
  REQUIRE(diff.has_value());
  INFO(diff->value_or(""));
  CHECK_FALSE(diff->has_value());
}
