// `g60ledger serve`: every endpoint, bad parameters, pagination, the OpenAPI description,
// reads while an ingest writes, and the web page in headless Chromium.
#include <fmt/format.h>
#include <httplib.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <regex>
#include <set>
#include <thread>

#include "integration/harness.h"
#include "ledger/bundle.h"
#include "ledger/bytes.h"
#include "ops/serve.h"
#include "process.h"
#include "support.h"

using namespace g60;
using namespace g60::testing;
using nlohmann::json;

namespace {

struct Served {
  TempDir dir;
  std::vector<DemoStep> steps;
  std::unique_ptr<Ledger> ledger;
  std::unique_ptr<ApiServer> server;
};

Served& DemoServer() {
  static std::unique_ptr<Served> s = [] {
    auto d = std::make_unique<Served>();
    auto broker = StartBroker();
    d->steps = IngestDemoStream(d->dir.path(), *broker, 120, 21);
    d->ledger = OpenReader(d->dir.path());
    ServeOptions o;
    o.port = 0;
    o.web_dir = std::string(G60_SOURCE_DIR) + "/web";
    o.openapi_path = std::string(G60_SOURCE_DIR) + "/docs/openapi.json";
    o.ledger_key = TestLedgerKey().verifier();
    auto server = ApiServer::Start(*d->ledger, o);
    REQUIRE(server.has_value());
    d->server = std::move(*server);
    return d;
  }();
  return *s;
}

std::pair<int, json> Get(int port, const std::string& path) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(30, 0);
  auto r = c.Get(path);
  REQUIRE(r);
  json body;
  if (r->get_header_value("Content-Type") == "application/json") body = json::parse(r->body);
  return {r->status, body};
}

// An accepted payment of the demo stream that was clawed back, and its applicant.
std::pair<std::string, std::string> ClawedBackPayment(const std::vector<DemoStep>& steps) {
  for (const auto& s : steps)
    for (const auto& pe : s.events)
      if (pe.expected == Reason::REASON_NONE && pe.event.has_clawback())
        return {pe.event.applicant_id(), pe.event.clawback().payment_event_ids(0)};
  FAIL("the demo stream has no clawback");
  return {};
}

}  // namespace

TEST_CASE("every API endpoint answers, and bad parameters get a 400 naming them",
          "[serve][integration]") {
  Served& s = DemoServer();
  int port = s.server->port();
  auto [applicant, payment] = ClawedBackPayment(s.steps);

  auto [st, status] = Get(port, "/api/status");
  REQUIRE(st == 200);
  CHECK(status["checkpoints_verified"] == true);
  CHECK(status["key_from_ledger"] == false);
  CHECK(status["entries"] == status["entries_covered_by_checkpoints"]);
  CHECK(status["partitions"].size() == static_cast<size_t>(kPartitions));

  struct Case {
    std::string path;
    int status;
    std::string error;  // part of the error message, for 4xx
  } cases[] = {
      {"/api/applicants/" + applicant, 200, ""},
      {"/api/applicants/" + applicant + "?limit=2", 200, ""},
      {"/api/applicants/91310117NOBODY0000", 404, "no entry"},
      {"/api/applicants/" + applicant + "?limit=0", 400, "limit must be"},
      {"/api/applicants/" + applicant + "?limit=abc", 400, "limit must be"},
      {"/api/applicants/" + applicant + "?after=nothex", 400, "page token"},
      {"/api/applicants/" + applicant + "?colour=red", 400, "unknown parameter 'colour'"},
      {"/api/programmes", 200, ""},
      {"/api/programmes?year=2026", 200, ""},
      {"/api/programmes?year=26x", 400, "year"},
      {"/api/programmes/G60-07b", 200, ""},
      {"/api/programmes/G60-99", 404, "not in the catalogue"},
      {"/api/payments", 200, ""},
      {"/api/payments?from=2026-01-01&to=2027-01-01&source=DISTRICT_SPECIAL_FUND&level=DISTRICT",
       200, ""},
      {"/api/payments?from=2026-13-01", 400, "from"},
      {"/api/payments?from=2027-01-01&to=2026-01-01", 400, "period is empty"},
      {"/api/payments?source=CASH", 400, "source 'CASH'"},
      {"/api/rejections?reason=EXCEEDS_CAP", 200, ""},
      {"/api/rejections?reason=NOPE", 400, "reason 'NOPE'"},
      {"/api/overlaps", 200, ""},
      {"/api/outstanding?limit=3", 200, ""},
      {"/api/clawbacks?from=2026-01-01", 200, ""},
      {"/api/proofs/" + payment, 200, ""},
      {"/api/proofs/no-such-event", 404, "no event"},
      {"/api/proofs?at=0:0", 200, ""},
      {"/api/proofs?at=zero", 400, "PARTITION:SEQUENCE"},
      {"/api/proofs", 400, "at="},
      {"/api/traces/" + payment, 200, ""},
      {"/api/traces/no-such-event", 404, "no event"},
      {"/api/checkpoints", 200, ""},
      {"/api/consistency?partition=0&old=3&new=10", 200, ""},
      {"/api/consistency?partition=0&old=10&new=3", 400, "old must not exceed new"},
      {"/api/consistency?partition=0&old=1&new=999999", 404, "fewer than"},
      {"/api/consistency?partition=x&old=1&new=2", 400, "partition must be"},
      {"/api/nowhere", 404, "no endpoint"},
  };
  for (const auto& c : cases) {
    INFO(c.path);
    auto [code, body] = Get(port, c.path);
    CHECK(code == c.status);
    if (c.status != 200) {
      CHECK(body["status"] == c.status);
      CHECK_THAT(body["error"].get<std::string>(), Catch::Contains(c.error));
    }
  }

  // A bundle served is one verify-proof accepts, with the auditor's own key and anchors.
  auto [pc, proof] = Get(port, "/api/proofs/" + payment);
  REQUIRE(pc == 200);
  BundleTrust trust{TestLedgerKey().verifier(), {Keys().admin.public_key}};
  CHECK(VerifyBundle(proof, trust).has_value());
  auto [tc, trace] = Get(port, "/api/traces/" + payment);
  REQUIRE(tc == 200);
  CHECK(trace["verification"]["ok"] == true);
  CHECK(VerifyBundle(trace["bundle"], trust).has_value());
  // The consistency proof joins two roots of the log.
  auto [cc, cons] = Get(port, "/api/consistency?partition=0&old=3&new=10");
  REQUIRE(cc == 200);
  CHECK(cons["old_size"] == 3);
  CHECK(cons["hashes"].size() > 0);

  // The page's files are served from the repository.
  httplib::Client c("127.0.0.1", port);
  auto page = c.Get("/");
  REQUIRE(page);
  CHECK(page->status == 200);
  CHECK(page->body.find("<script src=\"app.js\"></script>") != std::string::npos);
  CHECK(c.Get("/app.js")->status == 200);
}

TEST_CASE("pagination returns every row once, in order", "[serve][integration]") {
  Served& s = DemoServer();
  int port = s.server->port();
  for (std::string path :
       {"/api/payments", "/api/rejections", "/api/outstanding", "/api/overlaps"}) {
    INFO(path);
    auto [code, whole] = Get(port, path + "?limit=10000");
    REQUIRE(code == 200);
    REQUIRE(whole["next"].is_null());
    std::vector<json> rows;
    std::string after;
    for (int pages = 0; pages < 10000; ++pages) {
      auto [c, page] = Get(port, path + "?limit=2" + (after.empty() ? "" : "&after=" + after));
      REQUIRE(c == 200);
      REQUIRE(page["rows"].size() <= 2);
      for (const auto& r : page["rows"])
        rows.push_back(r);
      if (page["next"].is_null()) break;
      after = page["next"];
    }
    CHECK(rows == whole["rows"].get<std::vector<json>>());
    CHECK(rows.size() > 2);
  }
}

TEST_CASE("the OpenAPI description lists exactly the endpoints served", "[serve][integration]") {
  Served& s = DemoServer();
  auto [code, spec] = Get(s.server->port(), "/openapi.json");
  REQUIRE(code == 200);
  CHECK(spec["openapi"] == "3.0.3");
  std::set<std::string> documented, served;
  for (auto& [path, item] : spec["paths"].items()) {
    documented.insert(std::regex_replace(path, std::regex(R"(\{[^}]+\})"), "{}"));
    CHECK(item.contains("get"));
  }
  for (const auto& r : s.server->routes())
    served.insert(std::regex_replace(r, std::regex(R"(\(\[\^/\]\+\))"), "{}"));
  CHECK(documented == served);
}

TEST_CASE("the server reads while an ingest writes, and sees each commit", "[serve][integration]") {
  TempDir dir;
  auto broker = StartBroker();
  // A first part, so the ledger exists; then a second stream ingested while clients read.
  IngestDemoStream(dir.path(), *broker, 40, 31);
  auto reader = OpenReader(dir.path());
  ServeOptions o;
  o.port = 0;
  o.ledger_key = TestLedgerKey().verifier();
  auto server = ApiServer::Start(*reader, o);
  REQUIRE(server.has_value());
  int port = (*server)->port();
  auto [c0, before] = Get(port, "/api/status");
  REQUIRE(c0 == 200);
  uint64_t first = before["entries"];

  std::atomic<bool> done{false};
  std::atomic<uint64_t> requests{0}, failures{0}, went_back{0};
  std::vector<uint64_t> seen;
  std::mutex mu;
  auto poll = [&] {
    uint64_t last = 0;
    httplib::Client c("127.0.0.1", port);
    while (!done.load()) {
      auto r = c.Get("/api/status");
      ++requests;
      if (!r || r->status != 200) {
        ++failures;
        continue;
      }
      uint64_t n = json::parse(r->body)["entries"];
      if (n < last) ++went_back;
      last = n;
      {
        std::lock_guard lock(mu);
        seen.push_back(n);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  };
  std::thread a(poll), b(poll);
  {
    auto producer = MakeProducer(broker->bootstrap());
    DemoStreamOptions so;
    so.applicants = 100;
    so.seed = 32;
    so.first_serial = 100000;
    so.scenarios = false;
    so.catalog = TestCatalog();
    Expectations expect;
    ProduceStream(*producer, GenerateDemoStream(so, Keys()), expect);
    // The ingest is another process, as in production.
    std::string cfg = dir.path() + "/ingest.toml";
    std::ofstream(cfg) << "[ledger]\ndir = \"" << dir.path() << "\"\nmap_size_mib = 256\n"
                       << "[kafka]\nbootstrap = \"" << broker->bootstrap() << "\"\n"
                       << "[trust]\nanchors = [\"" << Base64Encode(Keys().admin.public_key)
                       << "\"]\n[ingest]\nbatch_max_messages = 50\n";
    // --assign-all: no wait for the first ingest's group membership to expire; many small
    // commits for the readers to see.
    auto ingest =
        Run({G60LEDGER_BIN, "ingest", "--config", cfg, "--assign-all", "--until-caught-up"},
            dir.path() + "/ingest.log");
    INFO(ingest.output);
    REQUIRE(ingest.status == 0);
  }
  auto [c1, after] = Get(port, "/api/status");
  done = true;
  a.join();
  b.join();
  uint64_t last = after["entries"];
  CHECK(last > first);
  CHECK(failures == 0);
  CHECK(went_back == 0);
  std::set<uint64_t> distinct(seen.begin(), seen.end());
  INFO("requests " << requests << ", distinct sizes seen " << distinct.size());
  CHECK(distinct.size() >= 3);  // commits became visible one after another
  CHECK(*distinct.rbegin() <= last);
}

TEST_CASE("the auditor's page in headless Chromium: status, applicant search, a payment trace",
          "[serve][integration][browser]") {
  Served& s = DemoServer();
  auto [applicant, payment] = ClawedBackPayment(s.steps);
  std::string url = fmt::format("http://127.0.0.1:{}", s.server->port());
  auto r = Run({"/usr/bin/python3", std::string(G60_SOURCE_DIR) + "/tests/browser/web_test.py", url,
                applicant, payment},
               s.dir.path() + "/web_test.out");
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK_THAT(r.output, Catch::Contains("web_test: trace ok"));
}
