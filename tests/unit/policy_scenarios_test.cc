// The policy, case by case, from a data file: tests/data/policy_scenarios.json lists
// scenarios (each on a fresh ledger with the keys granted and the repository's catalogue
// published), their events in protobuf's JSON mapping, who signs each, and the verdict
// and reason the ledger must reach. The file documents the policy as much as it tests it.
#include <catch2/catch.hpp>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "ledger/entry.h"
#include "ledger/lmdb.h"
#include "producers/ndjson.h"
#include "support.h"

using namespace g60;
using namespace g60::testing;

namespace {

nlohmann::json LoadScenarios() {
  std::ifstream in(std::string(G60_SOURCE_DIR) + "/tests/data/policy_scenarios.json");
  REQUIRE(in);
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str());
}

const KeyFile& SignerKey(const std::string& by) {
  const auto& k = Keys();
  if (by == "admin") return k.admin;
  if (by == "portal") return k.portal;
  if (by == "district") return k.district;
  if (by == "municipal") return k.municipal;
  if (by == "treasury") return k.treasury;
  FAIL("unknown signer '" << by << "' (admin, portal, district, municipal, treasury)");
  return k.rogue;
}

ledger::v1::EntryBody LastBody(const Ledger& ledger, uint32_t partition) {
  auto txn = lmdb::Txn::Begin(ledger.env(), true);
  auto head = ledger.Head(partition);
  auto v = txn->Get(ledger.tables().entries, EntryKey(partition, (*head)->size - 1));
  return DecodeEntry(**v)->body;
}

}  // namespace

TEST_CASE("policy scenarios from tests/data/policy_scenarios.json", "[rules][policy][scenarios]") {
  nlohmann::json file = LoadScenarios();
  const std::string default_applicant = file.at("applicant");
  const std::string default_time = file.at("occurred_at_ms");
  std::set<std::string> programmes_accepted, programmes_rejected, reasons;
  size_t events = 0;
  for (const auto& sc : file.at("scenarios")) {
    const std::string name = sc.at("name");
    TempDir dir;
    auto ledger = OpenTestLedger(dir.path());
    std::map<std::string, std::string> programme_of;  // application event id -> programme
    std::vector<Record> setup = GrantRecords(0);
    if (sc.value("no_catalog", false)) setup.pop_back();  // the catalogue comes last
    int64_t offset = static_cast<int64_t>(AppendAll(*ledger, setup).size());
    for (const auto& ev : sc.at("events")) {
      nlohmann::json body = ev.at("event");
      bool control = body.contains("keyGrant") || body.contains("keyRevoke") ||
                     body.contains("catalogPublished");
      if (!control && !body.contains("applicantId")) body["applicantId"] = default_applicant;
      if (!body.contains("occurredAtMs")) body["occurredAtMs"] = default_time;
      auto event = ParseEventJson(body.dump());
      INFO("scenario: " << name << "\nevent: " << body.dump());
      REQUIRE(event.has_value());
      std::string value = SignEvent(*event, SignerKey(ev.at("by")));
      auto out = AppendAll(*ledger, {MakeRecord(0, offset++, event->applicant_id(), value)});
      const std::string expect = ev.at("expect");
      const ledger::v1::EntryBody last = LastBody(*ledger, 0);
      const std::string& detail = last.detail();
      INFO("detail: " << detail);
      if (expect == "ACCEPTED") {
        CHECK(out[0].verdict == ledger::v1::VERDICT_ACCEPTED);
      } else {
        CHECK(out[0].verdict == ledger::v1::VERDICT_REJECTED);
        CHECK(ReasonName(out[0].reason) == expect);
        reasons.insert(expect);
      }
      // The programme the entry is counted under (utilisation, histories).
      if (ev.contains("programme"))
        CHECK(last.programme() == ev.at("programme").get<std::string>());
      if (ev.contains("detail_contains")) {
        for (const auto& part : ev.at("detail_contains")) {
          CHECK_THAT(detail, Catch::Contains(part.get<std::string>()));
        }
      }
      if (event->has_application()) programme_of[event->event_id()] = event->programme();
      if (event->has_approval()) {
        auto it = programme_of.find(event->approval().application_event_id());
        if (it != programme_of.end()) {
          (expect == "ACCEPTED" ? programmes_accepted : programmes_rejected).insert(it->second);
        }
      }
      ++events;
    }
  }
  // Every programme of the catalogue has an accepted and a rejected approval (counted by
  // the programme of the application approved), and every
  // policy reason occurs.
  for (const auto& p : TestCatalog().programmes()) {
    INFO("programme " << p.id());
    CHECK(programmes_accepted.contains(p.id()));
    CHECK(programmes_rejected.contains(p.id()));
  }
  for (const char* r : {"NO_CATALOG",
                        "UNKNOWN_PROGRAMME",
                        "OUTSIDE_VALIDITY",
                        "EXCEEDS_CAP",
                        "WRONG_REWARD",
                        "ALREADY_REWARDED",
                        "YEARLY_CAP",
                        "WINDOW_CAP",
                        "DUPLICATE_SUPPORT",
                        "CARRY_MISMATCH",
                        "SUPERSEDED",
                        "LEVEL_NOT_PROGRAMME",
                        "CO_FUNDING_CAP",
                        "NOT_STAGED",
                        "EXCEEDS_APPROVAL",
                        "EXCEEDS_PAID",
                        "UNKNOWN_STAGE",
                        "STAGE_AMOUNT",
                        "STAGE_ALREADY_PAID",
                        "STAGE_PLAN_MISMATCH",
                        "DATED_BEFORE_APPLICATION",
                        "DATED_BEFORE_APPROVAL",
                        "DATED_BEFORE_PAYMENT",
                        "DATED_BEFORE_SUPERSEDED",
                        "AMOUNT_OVERFLOW"}) {
    INFO("reason " << r);
    CHECK(reasons.contains(r));
  }
  CHECK(events > 0);
}
