#include "ops/demo_stream.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <set>

#include "ledger/catalog.h"
#include "ledger/crypto.h"
#include "ops/splitmix.h"
#include "producers/signer.h"

namespace g60 {

namespace {

using Rng = SplitMix64;

constexpr int64_t kYuan = 100;           // fen per yuan
constexpr int64_t kWan = 10000 * kYuan;  // fen per 万元

std::string CreditCode(Rng& rng) {
  static constexpr char kAlphabet[] = "0123456789ABCDEFGHJKLMNPQRTUWXY";  // GB 32100 characters
  std::string code = "91310117";  // enterprise, Shanghai Songjiang
  for (int i = 0; i < 10; ++i)
    code.push_back(kAlphabet[rng.Next() % (sizeof kAlphabet - 1)]);
  return code;
}

using R = Reason;

// Builds the steps; one instance per stream.
class Generator {
 public:
  Generator(const DemoStreamOptions& o, const DemoKeys& keys)
      : o_(o), keys_(keys), rng_(o.seed), now_ms_(o.start_ms), serial_(o.first_serial) {
    for (const auto& p : o.catalog.programmes())
      programmes_.push_back(&p);
    G60_ASSERT(!programmes_.empty());  // the stream follows a catalogue
  }

  std::vector<DemoStep> Run() {
    Grants();
    v1::Event cat = Base("catalog-" + o_.catalog.version(), "");
    cat.mutable_catalog_published()->set_catalog(SerializeCatalog(o_.catalog));
    catalog_.events.push_back({cat, R::REASON_NONE});
    for (int a = 0; a < o_.applicants; ++a)
      Applicant();
    if (o_.scenarios) Scenarios();
    v1::Event rv = Base("revoke-treasury2", "");
    rv.mutable_key_revoke()->set_key_id(keys_.treasury2.key_id);
    rv.mutable_key_revoke()->set_reason("backup key retired");
    revoke_.events.push_back({rv, R::REASON_NONE});
    std::vector<DemoStep> steps;
    for (DemoStep* s : {&grants_, &catalog_, &apps_, &district_, &municipal_, &pays_, &pays2_,
                        &superseding_, &after_supersede_, &claws_, &revoke_, &after_revoke_,
                        &wrong_role_, &unknown_, &forged_}) {
      if (!s->events.empty()) steps.push_back(std::move(*s));
    }
    return steps;
  }

 private:
  v1::Event Base(std::string id, std::string applicant) {
    v1::Event e;
    e.set_event_id(std::move(id));
    e.set_applicant_id(std::move(applicant));
    now_ms_ += rng_.Range(1000, 60000);
    e.set_occurred_at_ms(now_ms_);
    return e;
  }

  void Grants() {
    auto grant = [&](const KeyFile& k, v1::Role role, const char* holder) {
      v1::Event e = Base(fmt::format("grant-{}", k.key_id), "");
      auto* g = e.mutable_key_grant();
      g->set_public_key(k.public_key);
      g->set_role(role);
      g->set_holder(holder);
      grants_.events.push_back({e, R::REASON_NONE});
    };
    grant(keys_.portal, v1::ROLE_APPLICANT_PORTAL, "G60 application portal");
    grant(keys_.district, v1::ROLE_DISTRICT_APPROVER,
          "Songjiang Science and Technology Commission");
    grant(keys_.municipal, v1::ROLE_MUNICIPAL_APPROVER,
          "Shanghai Science and Technology Commission");
    grant(keys_.treasury, v1::ROLE_TREASURY, "Songjiang Finance Bureau");
    grant(keys_.treasury2, v1::ROLE_TREASURY, "Songjiang Finance Bureau (backup key)");
  }

  std::string NextId() { return fmt::format("{:06d}", ++serial_); }

  v1::Event Application(const std::string& n, const std::string& applicant,
                        const v1::Programme& prog, const std::string& project, int64_t base,
                        int64_t requested, R expected = R::REASON_NONE) {
    v1::Event app = Base("app-" + n, applicant);
    app.set_programme(prog.id());
    app.set_project_id(project);
    app.mutable_application()->set_declared_base_fen(base);
    app.mutable_application()->set_requested_fen(requested);
    app.mutable_application()->set_title(fmt::format("{} {}", prog.name(), project));
    apps_.events.push_back({app, expected});
    return app;
  }

  // An approval of `app` in `stages` stages (amounts split evenly, the last absorbing
  // the remainder) of approved - carried.
  v1::Event Approval(const v1::Event& app, const v1::Programme& prog, int64_t approved, int stages,
                     R expected, DemoStep* step = nullptr, int64_t carried = 0,
                     v1::Level level = v1::LEVEL_UNSPECIFIED) {
    std::string n = app.event_id().substr(4);
    v1::Event apr = Base("apr-" + n, app.applicant_id());
    apr.set_programme(prog.id());
    auto* ap = apr.mutable_approval();
    ap->set_application_event_id(app.event_id());
    ap->set_level(level == v1::LEVEL_UNSPECIFIED ? prog.level() : level);
    ap->set_approved_fen(approved);
    ap->set_carried_over_fen(carried);
    int64_t payable = approved - carried, left = payable;
    for (int s = 1; s <= stages; ++s) {
      int64_t amount = s == stages ? left : payable / stages;
      left -= amount;
      auto* st = ap->add_stages();
      st->set_number(static_cast<uint32_t>(s));
      st->set_amount_fen(amount);
      st->set_milestone(s == 1        ? "contract signed"
                        : s == stages ? "acceptance"
                                      : "mid-term review");
    }
    if (!step) step = prog.level() == v1::LEVEL_MUNICIPAL ? &municipal_ : &district_;
    step->events.push_back({apr, expected});
    return apr;
  }

  v1::Event Payment(const v1::Event& apr, uint32_t stage, int64_t amount, DemoStep& step,
                    R expected, const std::string& suffix = "") {
    v1::Event pay = Base(fmt::format("pay-{}-{}{}", apr.event_id().substr(4), stage, suffix),
                         apr.applicant_id());
    auto* sp = pay.mutable_stage_payment();
    sp->set_approval_event_id(apr.event_id());
    sp->set_stage(stage);
    sp->set_amount_fen(amount);
    const std::string& prog = apr.programme();
    sp->set_source(prog.starts_with("SH-") ? v1::FUNDING_SOURCE_MUNICIPAL_FISCAL
                   : prog == "G60-01"      ? v1::FUNDING_SOURCE_DISTRICT_FISCAL
                                           : v1::FUNDING_SOURCE_DISTRICT_SPECIAL_FUND);
    step.events.push_back({pay, expected});
    return pay;
  }

  const v1::Programme& Prog(std::string_view id) const {
    for (const auto* p : programmes_) {
      if (p->id() == id) return *p;
    }
    G60_ASSERT(false && "demo scenario names a programme missing from the catalogue");
    return *programmes_.front();
  }

  // The largest approval the programme allows for a declared base (ratio and cap).
  static int64_t Entitled(const v1::Programme& prog, int64_t base) {
    int64_t limit = prog.cap_fen();
    if (prog.ratio_bp() > 0) limit = std::min(limit, *ApplyRatio(base, prog.ratio_bp()));
    return limit;
  }

  void Applicant() {
    std::string applicant = CreditCode(rng_);
    int projects = static_cast<int>(rng_.Range(1, 2));
    std::set<std::string> used;  // once-only and running-cap programmes: once each
    for (int p = 0; p < projects; ++p) {
      const v1::Programme& prog = *programmes_[rng_.Next() % programmes_.size()];
      bool limited = prog.once_per_applicant() ||
                     prog.kind() == v1::PROGRAMME_KIND_YEARLY_OPERATING ||
                     prog.kind() == v1::PROGRAMME_KIND_CUMULATIVE;
      // A once-only reward is once per enterprise across its overlap group too (不重复).
      std::string limit_key = prog.id();
      if (prog.once_per_applicant()) {
        for (const auto& g : o_.catalog.overlap_groups()) {
          for (const auto& id : g.programmes())
            if (id == prog.id()) limit_key = g.id();
        }
      }
      if (limited && !used.insert(limit_key).second) continue;
      std::string n = NextId();
      int64_t base = 0, requested = 0, approved = 0;
      R verdict = R::REASON_NONE;
      switch (prog.kind()) {
        case v1::PROGRAMME_KIND_FIXED_REWARD:
          requested = approved = prog.fixed_fen();
          break;
        case v1::PROGRAMME_KIND_TIERED_REWARD: {
          const auto& tier =
              prog.tiers(static_cast<int>(rng_.Next() % static_cast<uint64_t>(prog.tiers_size())));
          base = tier.threshold_fen() + rng_.Range(0, 100) * kWan;
          // The highest tier reached decides, so stay below the next one.
          for (const auto& t : prog.tiers()) {
            if (t.threshold_fen() > tier.threshold_fen())
              base = std::min(base, t.threshold_fen() - kWan);
          }
          requested = approved = tier.amount_fen();
          break;
        }
        default: {
          base = rng_.Range(50, 40000) * kWan;
          int64_t entitled = prog.ratio_bp() ? Entitled(prog, base) : prog.cap_fen();
          requested = std::max<int64_t>(kWan, entitled / 100 * rng_.Range(60, 100));
          approved = std::max<int64_t>(kYuan, requested / 100 * rng_.Range(80, 100));
          if (rng_.Chance(2)) {  // asks for more than the programme allows
            requested = entitled + 5 * kWan;
            approved = requested;
            verdict = R::REASON_EXCEEDS_CAP;
          } else if (rng_.Chance(2) && requested + kWan <= entitled) {
            approved = requested + kWan;
            verdict = R::REASON_EXCEEDS_REQUESTED;
          }
        }
      }
      v1::Event app = Application(n, applicant, prog, "proj-" + n, base, requested);
      if (rng_.Chance(10)) continue;  // still under review
      int stages = prog.staged() ? static_cast<int>(rng_.Range(1, 3)) : 1;
      v1::Event apr = Approval(app, prog, approved, stages, verdict);
      if (verdict != R::REASON_NONE) continue;
      Payments(apr, rng_.Chance(5));
    }
  }

  // Pays some stages of an accepted approval; plants payments beyond it, retries,
  // missing approvals, clawbacks, and signer errors around it.
  void Payments(const v1::Event& apr, bool by_backup) {
    const auto& ap = apr.approval();
    int stages = ap.stages_size();
    int paid_stages = static_cast<int>(rng_.Range(0, stages));
    bool beyond = !by_backup && paid_stages == stages && rng_.Chance(6);
    std::vector<std::pair<std::string, int64_t>> paid;
    const std::string applicant = apr.applicant_id();
    const std::string n = apr.event_id().substr(4);
    for (int s = 1; s <= paid_stages; ++s) {
      int64_t amount = ap.stages(s - 1).amount_fen();
      bool last_beyond = beyond && s == stages;
      v1::Event pay = Payment(
          apr, static_cast<uint32_t>(s), last_beyond ? amount + rng_.Range(1, 50) * kWan : amount,
          by_backup ? pays2_ : pays_, last_beyond ? R::REASON_EXCEEDS_APPROVAL : R::REASON_NONE);
      if (last_beyond) continue;
      paid.emplace_back(pay.event_id(), amount);
      if (!by_backup && rng_.Chance(2)) {
        pays_.events.push_back({pay, R::REASON_DUPLICATE_EVENT});  // a retry re-sends it
      }
    }
    if (!paid.empty() && rng_.Chance(8)) {
      bool too_much = rng_.Chance(25);
      v1::Event cb = Base("clb-" + n, applicant);
      auto* c = cb.mutable_clawback();
      int64_t total = 0;
      for (const auto& [id, amount] : paid) {
        c->add_payment_event_ids(id);
        total += amount;
      }
      c->set_amount_fen(too_much ? total + kYuan
                                 : std::max<int64_t>(kYuan, total / 100 * rng_.Range(5, 100)));
      c->set_reason(too_much ? "recovery claimed above the amount paid"
                             : "milestone not met on audit");
      claws_.events.push_back({cb, too_much ? R::REASON_EXCEEDS_PAID : R::REASON_NONE});
    }
    auto stray = [&](const std::string& id, DemoStep& step, R expected, uint32_t stage) {
      v1::Event e = Base(id, applicant);
      auto* sp = e.mutable_stage_payment();
      sp->set_approval_event_id(apr.event_id());
      sp->set_stage(stage);
      sp->set_amount_fen(ap.stages(static_cast<int>(stage) - 1).amount_fen());
      sp->set_source(v1::FUNDING_SOURCE_DISTRICT_SPECIAL_FUND);
      step.events.push_back({e, expected});
      return e;
    };
    if (rng_.Chance(3)) {
      v1::Event e = stray("pay-" + n + "-x", pays_, R::REASON_NO_APPROVAL, 1);
      e.mutable_stage_payment()->set_approval_event_id(apr.event_id() + "-missing");
      pays_.events.back().event = e;
    }
    if (rng_.Chance(3)) stray("bad-role-" + n, wrong_role_, R::REASON_ROLE_NOT_ALLOWED, 1);
    if (rng_.Chance(2)) {
      v1::Event e = stray("rogue-" + n, unknown_, R::REASON_UNKNOWN_KEY, 1);
      e.set_event_id("forged-" + n);
      forged_.events.push_back({e, R::REASON_BAD_SIGNATURE});
    }
    if (rng_.Chance(2))
      stray("late-" + n, after_revoke_, R::REASON_KEY_REVOKED, static_cast<uint32_t>(stages));
  }

  // One of each policy situation, on fresh applicants so nothing else interferes.
  void Scenarios() {
    const int64_t m = 100 * kWan;  // 1,000,000 CNY in fen
    // 就高: a district 6G approval, partly paid, superseded by a higher municipal one
    // that carries what was paid; the district one's unpaid stage is then void.
    {
      std::string a = CreditCode(rng_), n1 = NextId(), n2 = NextId();
      auto app1 = Application(n1, a, Prog("G60-07b"), "6g-testbed", 200 * m, 5 * m);
      auto apr1 = Approval(app1, Prog("G60-07b"), 5 * m, 2, R::REASON_NONE);
      Payment(apr1, 1, apr1.approval().stages(0).amount_fen(), pays_, R::REASON_NONE);
      auto app2 = Application(n2, a, Prog("SH-M-07b"), "6g-testbed", 200 * m, 12 * m);
      int64_t carried = apr1.approval().stages(0).amount_fen();
      auto apr2 =
          Approval(app2, Prog("SH-M-07b"), 12 * m, 2, R::REASON_NONE, &superseding_, carried);
      Payment(apr1, 2, apr1.approval().stages(1).amount_fen(), after_supersede_,
              R::REASON_SUPERSEDED);
      Payment(apr2, 1, apr2.approval().stages(0).amount_fen(), after_supersede_, R::REASON_NONE);
    }
    // 不重复: a lower municipal approval of a project the district already supports.
    {
      std::string a = CreditCode(rng_), n1 = NextId(), n2 = NextId();
      auto app1 = Application(n1, a, Prog("G60-09"), "mass-spectrometer", 50 * m, 8 * m);
      Approval(app1, Prog("G60-09"), 8 * m, 1, R::REASON_NONE);
      auto app2 = Application(n2, a, Prog("SH-M-09"), "mass-spectrometer", 50 * m, 6 * m);
      Approval(app2, Prog("SH-M-09"), 6 * m, 1, R::REASON_DUPLICATE_SUPPORT, &superseding_);
    }
    // A superseding approval that misstates what was carried over.
    {
      std::string a = CreditCode(rng_), n1 = NextId(), n2 = NextId();
      auto app1 = Application(n1, a, Prog("G60-08a"), "ground-terminal", 100 * m, 1 * m);
      auto apr1 = Approval(app1, Prog("G60-08a"), 1 * m, 1, R::REASON_NONE);
      Payment(apr1, 1, 1 * m, pays_, R::REASON_NONE);
      auto app2 = Application(n2, a, Prog("SH-M-08a"), "ground-terminal", 100 * m, 4 * m);
      Approval(app2, Prog("SH-M-08a"), 4 * m, 2, R::REASON_CARRY_MISMATCH, &superseding_, 0);
    }
    // Co-funding of measure 1: district and municipal together within 50% and the cap.
    {
      std::string a = CreditCode(rng_);
      std::string n1 = NextId(), n2 = NextId(), n3 = NextId(), n4 = NextId();
      auto d1 = Application(n1, a, Prog("G60-01"), "quantum-sensing", 40 * m, 12 * m);
      Approval(d1, Prog("G60-01"), 12 * m, 2, R::REASON_NONE);
      auto m1 = Application(n2, a, Prog("SH-M-01"), "quantum-sensing", 40 * m, 8 * m);
      Approval(m1, Prog("SH-M-01"), 8 * m, 2, R::REASON_NONE);  // 12 + 8 = 50% of 40
      auto d2 = Application(n3, a, Prog("G60-01"), "photonic-chip", 40 * m, 12 * m);
      Approval(d2, Prog("G60-01"), 12 * m, 2, R::REASON_NONE);
      auto m2 = Application(n4, a, Prog("SH-M-01"), "photonic-chip", 40 * m, 10 * m);
      Approval(m2, Prog("SH-M-01"), 10 * m, 2, R::REASON_CO_FUNDING_CAP);  // 22 > 20
    }
    // Once-only rewards, and the same achievement at the other level.
    {
      std::string a = CreditCode(rng_), n1 = NextId(), n2 = NextId(), n3 = NextId();
      auto u = Application(n1, a, Prog("G60-10a"), "unicorn", 0, 4 * m);
      Approval(u, Prog("G60-10a"), 4 * m, 1, R::REASON_NONE);
      auto again = Application(n2, a, Prog("G60-10a"), "unicorn-again", 0, 4 * m);
      Approval(again, Prog("G60-10a"), 4 * m, 1, R::REASON_ALREADY_REWARDED);
      auto sh = Application(n3, a, Prog("SH-M-10a"), "unicorn", 0, 3 * m);
      Approval(sh, Prog("SH-M-10a"), 3 * m, 1, R::REASON_DUPLICATE_SUPPORT, &superseding_);
    }
    // Fixed and tiered rewards of the wrong amount.
    {
      std::string n1 = NextId(), n2 = NextId(), n3 = NextId();
      auto g = Application(n1, CreditCode(rng_), Prog("G60-10b"), "gazelle", 0, 2 * m);
      Approval(g, Prog("G60-10b"), 15 * m / 10, 1, R::REASON_WRONG_REWARD);
      auto t = Application(n2, CreditCode(rng_), Prog("G60-08b"), "revenue-2026", 120 * m, 10 * m);
      Approval(t, Prog("G60-08b"), 10 * m, 1, R::REASON_WRONG_REWARD);  // reaches the 5M tier
      auto low = Application(n3, CreditCode(rng_), Prog("G60-08b"), "revenue-2026", 40 * m, 2 * m);
      Approval(low, Prog("G60-08b"), 2 * m, 1, R::REASON_WRONG_REWARD);  // below every tier
    }
    // Yearly operating support (17c) and the five-year cumulative cap (6).
    {
      std::string a = CreditCode(rng_), n1 = NextId(), n2 = NextId();
      auto y1 = Application(n1, a, Prog("G60-17c"), "operations-h1", 5 * m, 15 * m / 10);
      Approval(y1, Prog("G60-17c"), 15 * m / 10, 1, R::REASON_NONE);
      auto y2 = Application(n2, a, Prog("G60-17c"), "operations-h2", 5 * m, 15 * m / 10);
      Approval(y2, Prog("G60-17c"), 15 * m / 10, 1, R::REASON_YEARLY_CAP);
      std::string b = CreditCode(rng_), n3 = NextId(), n4 = NextId();
      auto w1 = Application(n3, b, Prog("G60-06"), "cluster-phase-1", 100 * m, 15 * m);
      Approval(w1, Prog("G60-06"), 15 * m, 1, R::REASON_NONE);
      auto w2 = Application(n4, b, Prog("G60-06"), "cluster-phase-2", 100 * m, 10 * m);
      Approval(w2, Prog("G60-06"), 10 * m, 1, R::REASON_WINDOW_CAP);
    }
    // Outside validity, unknown programme, wrong level, stages where none are paid,
    // an absolute cap.
    {
      v1::Event early = Base("app-" + NextId(), CreditCode(rng_));
      early.set_programme("G60-09");
      early.set_project_id("too-early");
      early.set_occurred_at_ms(1764518400000);  // 2025-12-01 CST: before the policy
      early.mutable_application()->set_declared_base_fen(10 * m);
      early.mutable_application()->set_requested_fen(1 * m);
      apps_.events.push_back({early, R::REASON_OUTSIDE_VALIDITY});
      v1::Event unknown = Base("app-" + NextId(), CreditCode(rng_));
      unknown.set_programme("G60-99");
      unknown.set_project_id("no-such-measure");
      unknown.mutable_application()->set_declared_base_fen(10 * m);
      unknown.mutable_application()->set_requested_fen(1 * m);
      apps_.events.push_back({unknown, R::REASON_UNKNOWN_PROGRAMME});
      auto lvl =
          Application(NextId(), CreditCode(rng_), Prog("G60-09"), "spectrometer", 10 * m, 2 * m);
      Approval(lvl, Prog("G60-09"), 2 * m, 1, R::REASON_LEVEL_NOT_PROGRAMME, &municipal_, 0,
               v1::LEVEL_MUNICIPAL);
      auto staged =
          Application(NextId(), CreditCode(rng_), Prog("G60-09"), "chromatograph", 10 * m, 2 * m);
      Approval(staged, Prog("G60-09"), 2 * m, 2, R::REASON_NOT_STAGED);
      auto cap = Application(NextId(), CreditCode(rng_), Prog("G60-07c"), "xinchuang-suite",
                             100 * m, 12 * m);
      Approval(cap, Prog("G60-07c"), 12 * m, 1, R::REASON_EXCEEDS_CAP);  // 30% = 30M, cap 10M
    }
  }

  const DemoStreamOptions& o_;
  const DemoKeys& keys_;
  Rng rng_;
  int64_t now_ms_;
  int serial_;
  std::vector<const v1::Programme*> programmes_;
  DemoStep grants_{"00-admin-grants", DemoSigner::kAdmin, true, {}};
  DemoStep catalog_{"01-admin-catalog", DemoSigner::kAdmin, true, {}};
  DemoStep apps_{"10-portal-applications", DemoSigner::kPortal, false, {}};
  DemoStep district_{"20-district-approvals", DemoSigner::kDistrict, false, {}};
  DemoStep municipal_{"21-municipal-approvals", DemoSigner::kMunicipal, false, {}};
  DemoStep pays_{"30-treasury-payments", DemoSigner::kTreasury, false, {}};
  DemoStep pays2_{"31-treasury2-payments", DemoSigner::kTreasury2, false, {}};
  DemoStep superseding_{"35-municipal-later-approvals", DemoSigner::kMunicipal, false, {}};
  DemoStep after_supersede_{"36-treasury-after-supersession", DemoSigner::kTreasury, false, {}};
  DemoStep claws_{"40-treasury-clawbacks", DemoSigner::kTreasury, false, {}};
  DemoStep revoke_{"50-admin-revoke", DemoSigner::kAdmin, true, {}};
  DemoStep after_revoke_{"60-treasury2-after-revoke", DemoSigner::kTreasury2, false, {}};
  DemoStep wrong_role_{"70-portal-wrong-role", DemoSigner::kPortal, false, {}};
  DemoStep unknown_{"80-rogue-unknown-key", DemoSigner::kRogue, false, {}};
  DemoStep forged_{"90-forged-signature", DemoSigner::kForged, false, {}};
};

}  // namespace

const char* DemoSignerName(DemoSigner s) {
  switch (s) {
    case DemoSigner::kAdmin:
      return "admin";
    case DemoSigner::kPortal:
      return "portal";
    case DemoSigner::kDistrict:
      return "district";
    case DemoSigner::kMunicipal:
      return "municipal";
    case DemoSigner::kTreasury:
      return "treasury";
    case DemoSigner::kTreasury2:
      return "treasury2";
    case DemoSigner::kRogue:
      return "rogue";
    case DemoSigner::kForged:
      return "forged";
  }
  return "?";
}

DemoKeys DemoKeys::FromSeed(uint64_t seed) {
  auto make = [seed](int n, v1::Role role) {
    KeyPair kp = KeyPairFromSeed(AsBytes(Sha256(fmt::format("g60ledger-demo-key/{}/{}", seed, n))));
    return KeyFile{role, KeyIdOf(kp.public_key), kp.public_key, kp.secret_key};
  };
  return DemoKeys{make(0, v1::ROLE_ADMIN),
                  make(1, v1::ROLE_APPLICANT_PORTAL),
                  make(2, v1::ROLE_DISTRICT_APPROVER),
                  make(3, v1::ROLE_MUNICIPAL_APPROVER),
                  make(4, v1::ROLE_TREASURY),
                  make(5, v1::ROLE_TREASURY),
                  make(6, v1::ROLE_TREASURY)};
}

const KeyFile& DemoKeys::For(DemoSigner s) const {
  switch (s) {
    case DemoSigner::kAdmin:
      return admin;
    case DemoSigner::kPortal:
      return portal;
    case DemoSigner::kDistrict:
      return district;
    case DemoSigner::kMunicipal:
      return municipal;
    case DemoSigner::kTreasury:
      return treasury;
    case DemoSigner::kTreasury2:
      return treasury2;
    case DemoSigner::kRogue:
    case DemoSigner::kForged:
      return rogue;
  }
  return rogue;
}

std::vector<DemoStep> GenerateDemoStream(const DemoStreamOptions& options, const DemoKeys& keys) {
  return Generator(options, keys).Run();
}

std::string SignDemoEvent(const DemoStep& step, const v1::Event& event, const DemoKeys& keys) {
  if (step.signer != DemoSigner::kForged) return SignEvent(event, keys.For(step.signer));
  std::string bytes;
  G60_ASSERT(event.SerializeToString(&bytes));
  v1::SignedEvent se = SignEventBytes(std::move(bytes), keys.rogue);
  se.set_key_id(keys.treasury.key_id);  // claims to be the treasury
  std::string out;
  G60_ASSERT(se.SerializeToString(&out));
  return out;
}

}  // namespace g60
