#include "ops/demo_stream.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "ledger/crypto.h"
#include "producers/signer.h"

namespace g60 {

namespace {

// SplitMix64: a tiny generator whose output is fixed by the seed on every platform
// (std:: distributions are not), so a seed names one stream forever.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t Next() {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  int64_t Range(int64_t lo, int64_t hi) {  // inclusive
    return lo + static_cast<int64_t>(Next() % static_cast<uint64_t>(hi - lo + 1));
  }
  bool Chance(int percent) { return Range(1, 100) <= percent; }

 private:
  uint64_t s_;
};

constexpr int64_t kYuan = 100;           // fen per yuan
constexpr int64_t kWan = 10000 * kYuan;  // fen per 万元

// Ratio-capped project programmes of the G60 measures (POLICY-FACTS.md), and the
// municipal programmes the demo approves at municipal level.
struct DemoProgramme {
  const char* id;
  int ratio_bp;     // of the declared base
  int64_t cap_fen;  // absolute cap
  v1::Level level;
};
constexpr std::array<DemoProgramme, 13> kProgrammes = {{
    {"G60-01", 5000, 3000 * kWan, v1::LEVEL_DISTRICT},
    {"G60-02", 3000, 2000 * kWan, v1::LEVEL_DISTRICT},
    {"G60-04", 3000, 3000 * kWan, v1::LEVEL_DISTRICT},
    {"G60-07a", 1500, 5000 * kWan, v1::LEVEL_DISTRICT},
    {"G60-07b", 3000, 3000 * kWan, v1::LEVEL_DISTRICT},
    {"G60-07c", 3000, 1000 * kWan, v1::LEVEL_DISTRICT},
    {"G60-08a", 1500, 5000 * kWan, v1::LEVEL_DISTRICT},
    {"G60-09", 3000, 2000 * kWan, v1::LEVEL_DISTRICT},
    {"G60-13a", 3000, 300 * kWan, v1::LEVEL_DISTRICT},
    {"G60-17a", 5000, 300 * kWan, v1::LEVEL_DISTRICT},
    {"SH-M-BASIC", 4000, 2000 * kWan, v1::LEVEL_MUNICIPAL},
    {"SH-M-6G", 2000, 2000 * kWan, v1::LEVEL_MUNICIPAL},
    {"SH-M-SATNET", 1000, 3000 * kWan, v1::LEVEL_MUNICIPAL},
}};

std::string CreditCode(Rng& rng) {
  static constexpr char kAlphabet[] = "0123456789ABCDEFGHJKLMNPQRTUWXY";  // GB 32100 characters
  std::string code = "91310117";  // enterprise, Shanghai Songjiang
  for (int i = 0; i < 10; ++i)
    code.push_back(kAlphabet[rng.Next() % (sizeof kAlphabet - 1)]);
  return code;
}

class Builder {
 public:
  Builder(const DemoStreamOptions& o) : rng_(o.seed), now_ms_(o.start_ms) {}

  v1::Event Base(std::string id, std::string applicant) {
    v1::Event e;
    e.set_event_id(std::move(id));
    e.set_applicant_id(std::move(applicant));
    now_ms_ += rng_.Range(1000, 600000);
    e.set_occurred_at_ms(now_ms_);
    return e;
  }
  Rng& rng() { return rng_; }

 private:
  Rng rng_;
  int64_t now_ms_;
};

v1::Event Grant(Builder& b, const KeyFile& k, v1::Role role, const char* holder) {
  v1::Event e = b.Base(fmt::format("grant-{}", k.key_id), "");
  auto* g = e.mutable_key_grant();
  g->set_public_key(k.public_key);
  g->set_role(role);
  g->set_holder(holder);
  return e;
}

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
  Builder b(options);
  Rng& rng = b.rng();
  using R = Reason;
  DemoStep grants{"00-admin-grants", DemoSigner::kAdmin, true, {}};
  DemoStep apps{"10-portal-applications", DemoSigner::kPortal, false, {}};
  DemoStep district{"20-district-approvals", DemoSigner::kDistrict, false, {}};
  DemoStep municipal{"21-municipal-approvals", DemoSigner::kMunicipal, false, {}};
  DemoStep pays{"30-treasury-payments", DemoSigner::kTreasury, false, {}};
  DemoStep pays2{"31-treasury2-payments", DemoSigner::kTreasury2, false, {}};
  DemoStep claws{"40-treasury-clawbacks", DemoSigner::kTreasury, false, {}};
  DemoStep revoke{"50-admin-revoke", DemoSigner::kAdmin, true, {}};
  DemoStep after_revoke{"60-treasury2-after-revoke", DemoSigner::kTreasury2, false, {}};
  DemoStep wrong_role{"70-portal-wrong-role", DemoSigner::kPortal, false, {}};
  DemoStep unknown{"80-rogue-unknown-key", DemoSigner::kRogue, false, {}};
  DemoStep forged{"90-forged-signature", DemoSigner::kForged, false, {}};

  grants.events.push_back(
      {Grant(b, keys.portal, v1::ROLE_APPLICANT_PORTAL, "G60 application portal"), R::REASON_NONE});
  grants.events.push_back({Grant(b, keys.district, v1::ROLE_DISTRICT_APPROVER,
                                 "Songjiang Science and Technology Commission"),
                           R::REASON_NONE});
  grants.events.push_back({Grant(b, keys.municipal, v1::ROLE_MUNICIPAL_APPROVER,
                                 "Shanghai Science and Technology Commission"),
                           R::REASON_NONE});
  grants.events.push_back(
      {Grant(b, keys.treasury, v1::ROLE_TREASURY, "Songjiang Finance Bureau"), R::REASON_NONE});
  grants.events.push_back(
      {Grant(b, keys.treasury2, v1::ROLE_TREASURY, "Songjiang Finance Bureau (backup key)"),
       R::REASON_NONE});

  int app_no = 0;
  for (int a = 0; a < options.applicants; ++a) {
    std::string applicant = CreditCode(rng);
    int projects = static_cast<int>(rng.Range(1, 2));
    for (int p = 0; p < projects; ++p) {
      const DemoProgramme& prog = kProgrammes[rng.Next() % kProgrammes.size()];
      int n = ++app_no;
      std::string app_id = fmt::format("app-{:06d}", n);
      v1::Event app = b.Base(app_id, applicant);
      app.set_programme(prog.id);
      app.set_project_id(fmt::format("proj-{:06d}", n));
      int64_t base = rng.Range(100, 40000) * kWan;
      int64_t entitled = std::min(base / 10000 * prog.ratio_bp, prog.cap_fen);
      int64_t requested = std::max<int64_t>(kWan, entitled / 100 * rng.Range(60, 100));
      app.mutable_application()->set_declared_base_fen(base);
      app.mutable_application()->set_requested_fen(requested);
      app.mutable_application()->set_title(fmt::format("{} project {}", prog.id, n));
      apps.events.push_back({app, R::REASON_NONE});
      if (rng.Chance(10)) continue;  // still under review

      std::string apr_id = fmt::format("apr-{:06d}", n);
      v1::Event apr = b.Base(apr_id, applicant);
      apr.set_programme(prog.id);
      auto* ap = apr.mutable_approval();
      ap->set_application_event_id(app_id);
      ap->set_level(prog.level);
      bool over = rng.Chance(2);
      int64_t approved = over ? requested + kWan : requested / 100 * rng.Range(80, 100);
      ap->set_approved_fen(approved);
      int stages = static_cast<int>(rng.Range(1, 3));
      int64_t left = approved;
      for (int s = 1; s <= stages; ++s) {
        int64_t amount = s == stages ? left : approved / stages;
        left -= amount;
        auto* st = ap->add_stages();
        st->set_number(static_cast<uint32_t>(s));
        st->set_amount_fen(amount);
        st->set_milestone(s == 1        ? "contract signed"
                          : s == stages ? "acceptance"
                                        : "mid-term review");
      }
      (prog.level == v1::LEVEL_MUNICIPAL ? municipal : district)
          .events.push_back({apr, over ? R::REASON_EXCEEDS_REQUESTED : R::REASON_NONE});
      if (over) continue;

      // Payments: some stages paid; a few try to pay beyond the approval.
      int paid_stages = static_cast<int>(rng.Range(0, stages));
      bool beyond = paid_stages == stages && rng.Chance(6);
      // Some approvals are paid with the backup treasury key (revoked later); never the
      // ones with a payment beyond the approval, whose order matters.
      bool by_backup = !beyond && rng.Chance(5);
      std::vector<std::pair<std::string, int64_t>> paid;
      for (int s = 1; s <= paid_stages; ++s) {
        int64_t amount = ap->stages(s - 1).amount_fen();
        bool last_beyond = beyond && s == stages;
        v1::Event pay = b.Base(fmt::format("pay-{:06d}-{}", n, s), applicant);
        auto* sp = pay.mutable_stage_payment();
        sp->set_approval_event_id(apr_id);
        sp->set_stage(static_cast<uint32_t>(s));
        sp->set_amount_fen(last_beyond ? amount + rng.Range(1, 50) * kWan : amount);
        sp->set_source(prog.level == v1::LEVEL_MUNICIPAL
                           ? v1::FUNDING_SOURCE_MUNICIPAL_FISCAL
                           : v1::FUNDING_SOURCE_DISTRICT_SPECIAL_FUND);
        (by_backup ? pays2 : pays)
            .events.push_back({pay, last_beyond ? R::REASON_EXCEEDS_APPROVAL : R::REASON_NONE});
        if (!last_beyond) paid.emplace_back(pay.event_id(), amount);
        if (!last_beyond && !by_backup && rng.Chance(2)) {
          // A retry that re-sends the same event: recorded once, then as a duplicate.
          pays.events.push_back({pay, R::REASON_DUPLICATE_EVENT});
        }
      }
      if (!paid.empty() && rng.Chance(8)) {
        bool too_much = rng.Chance(25);
        v1::Event cb = b.Base(fmt::format("clb-{:06d}", n), applicant);
        auto* c = cb.mutable_clawback();
        int64_t total = 0;
        for (const auto& [id, amount] : paid) {
          c->add_payment_event_ids(id);
          total += amount;
        }
        c->set_amount_fen(too_much ? total + kYuan
                                   : std::max<int64_t>(kYuan, total / 100 * rng.Range(5, 100)));
        c->set_reason(too_much ? "recovery claimed above the amount paid"
                               : "milestone not met on audit");
        claws.events.push_back({cb, too_much ? R::REASON_EXCEEDS_PAID : R::REASON_NONE});
      }
      if (rng.Chance(3)) {
        // A payment for an approval that does not exist.
        v1::Event pay = b.Base(fmt::format("pay-{:06d}-x", n), applicant);
        auto* sp = pay.mutable_stage_payment();
        sp->set_approval_event_id(fmt::format("apr-{:06d}-missing", n));
        sp->set_stage(1);
        sp->set_amount_fen(kWan);
        sp->set_source(v1::FUNDING_SOURCE_DISTRICT_SPECIAL_FUND);
        pays.events.push_back({pay, R::REASON_NO_APPROVAL});
      }
      if (rng.Chance(3)) {
        v1::Event e = b.Base(fmt::format("bad-role-{:06d}", n), applicant);
        auto* sp = e.mutable_stage_payment();
        sp->set_approval_event_id(apr_id);
        sp->set_stage(1);
        sp->set_amount_fen(ap->stages(0).amount_fen());
        sp->set_source(v1::FUNDING_SOURCE_DISTRICT_SPECIAL_FUND);
        wrong_role.events.push_back({e, R::REASON_ROLE_NOT_ALLOWED});
      }
      if (rng.Chance(2)) {
        v1::Event e = b.Base(fmt::format("rogue-{:06d}", n), applicant);
        auto* sp = e.mutable_stage_payment();
        sp->set_approval_event_id(apr_id);
        sp->set_stage(1);
        sp->set_amount_fen(ap->stages(0).amount_fen());
        sp->set_source(v1::FUNDING_SOURCE_DISTRICT_SPECIAL_FUND);
        unknown.events.push_back({e, R::REASON_UNKNOWN_KEY});
        v1::Event f = e;
        f.set_event_id(fmt::format("forged-{:06d}", n));
        forged.events.push_back({f, R::REASON_BAD_SIGNATURE});
      }
      if (rng.Chance(2)) {
        v1::Event e = b.Base(fmt::format("late-{:06d}", n), applicant);
        auto* sp = e.mutable_stage_payment();
        sp->set_approval_event_id(apr_id);
        sp->set_stage(static_cast<uint32_t>(stages));
        sp->set_amount_fen(ap->stages(stages - 1).amount_fen());
        sp->set_source(v1::FUNDING_SOURCE_DISTRICT_SPECIAL_FUND);
        after_revoke.events.push_back({e, R::REASON_KEY_REVOKED});
      }
    }
  }
  v1::Event rv = b.Base("revoke-treasury2", "");
  rv.mutable_key_revoke()->set_key_id(keys.treasury2.key_id);
  rv.mutable_key_revoke()->set_reason("backup key retired");
  revoke.events.push_back({rv, R::REASON_NONE});

  std::vector<DemoStep> steps;
  for (DemoStep* s : {&grants, &apps, &district, &municipal, &pays, &pays2, &claws, &revoke,
                      &after_revoke, &wrong_role, &unknown, &forged}) {
    if (!s->events.empty()) steps.push_back(std::move(*s));
  }
  return steps;
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
