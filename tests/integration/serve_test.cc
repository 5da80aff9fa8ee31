// `g60ledger serve`: every endpoint, bad parameters, pagination, the OpenAPI description,
// reads while an ingest writes, and the web page in headless Chromium.
#include <arpa/inet.h>
#include <fmt/format.h>
#include <httplib.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <regex>
#include <set>
#include <thread>

#include "integration/harness.h"
#include "ledger/bundle.h"
#include "ledger/bytes.h"
#include "ledger/merkle_verify.h"
#include "ledger/query.h"
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

// A raw TCP connection, so that the test controls every byte sent (a client library
// would encode or refuse what the tests need to send).
struct RawResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  std::string rest;     // bytes that came after the response
  bool closed = false;  // the server closed the connection after the response
};

class RawConnection {
 public:
  explicit RawConnection(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  }
  ~RawConnection() { ::close(fd_); }

  void Send(const std::string& bytes) {
    for (size_t sent = 0; sent < bytes.size();) {
      ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) break;  // the server may close before it has read everything
      sent += static_cast<size_t>(n);
    }
  }

  // Reads one response (its head, then Content-Length bytes of body unless it answers a
  // HEAD request, RFC 9110 §9.3.2).
  RawResponse Read(bool head_request = false) {
    RawResponse r;
    size_t end;
    while ((end = in_.find("\r\n\r\n")) == std::string::npos) {
      REQUIRE(Fill(20000));
    }
    std::istringstream head(in_.substr(0, end));
    std::string line;
    std::getline(head, line);
    REQUIRE(line.rfind("HTTP/1.1 ", 0) == 0);
    r.status = std::stoi(line.substr(9, 3));
    while (std::getline(head, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string name = line.substr(0, colon);
      for (auto& ch : name)
        ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      r.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
    }
    size_t length = r.headers.count("content-length") && !head_request
                        ? std::stoul(r.headers["content-length"])
                        : 0;
    while (in_.size() < end + 4 + length && Fill(20000)) {
    }
    r.body = in_.substr(end + 4, length);
    in_.erase(0, std::min(in_.size(), end + 4 + length));
    return r;
  }

  // Whatever else the server sends within `wait_ms`, and whether it then closed.
  std::pair<std::string, bool> Rest(int wait_ms = 1500) {
    bool open = true;
    while (open && Fill(wait_ms)) {
    }
    open = !eof_;
    std::string rest = std::move(in_);
    in_.clear();
    return {rest, !open};
  }

 private:
  // Reads what arrives within `wait_ms`; false on silence or end of stream.
  bool Fill(int wait_ms) {
    if (eof_) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, wait_ms) <= 0) return false;
    char buf[65536];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) {
      eof_ = true;
      return false;
    }
    in_.append(buf, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  std::string in_;
  bool eof_ = false;
};

// One request on a connection of its own: the response and, with `watch_end`, what
// followed it and whether the server closed the connection.
RawResponse RawExchange(int port, const std::string& request, bool watch_end = false) {
  RawConnection c(port);
  c.Send(request);
  RawResponse r = c.Read(request.rfind("HEAD ", 0) == 0);
  if (watch_end) std::tie(r.rest, r.closed) = c.Rest();
  return r;
}

// A GET of exactly `target`, on a connection of its own.
RawResponse RawGet(int port, const std::string& target, const std::string& method = "GET") {
  return RawExchange(port, method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
}

// The error body every error response carries: JSON {"error": sentence, "status": N}.
json ErrorBody(const RawResponse& r) {
  INFO("body: " << r.body);
  auto type = r.headers.find("content-type");
  REQUIRE(type != r.headers.end());
  REQUIRE(type->second.rfind("application/json", 0) == 0);
  json j = json::parse(r.body);
  CHECK(j["status"] == r.status);
  REQUIRE(j["error"].is_string());
  CHECK(!j["error"].get<std::string>().empty());
  return j;
}

// A ledger of one partition whose event and applicant ids hold the characters a URL
// path treats specially: '/' (the issue's "pay/2024/1") and '%' (a literal "%2F").
// Checkpoints signed at sizes 5, 6 and 9.
struct OddIds {
  static constexpr const char* kApplicant = "APPLICANT/2024/0001";
  TempDir dir;
  std::unique_ptr<Ledger> ledger;
  std::unique_ptr<ApiServer> server;
};

OddIds& OddIdServer() {
  static std::unique_ptr<OddIds> s = [] {
    auto d = std::make_unique<OddIds>();
    d->ledger = OpenTestLedger(d->dir.path());
    const auto& k = Keys();
    std::vector<Record> records = GrantRecords(0);
    int64_t off = static_cast<int64_t>(records.size());
    auto add = [&](const v1::Event& e, const KeyFile& key) {
      records.push_back(MakeRecord(0, off++, e.applicant_id(), SignEvent(e, key)));
    };
    const std::string a = OddIds::kApplicant;
    add(ApplicationEvent("app/2024/1", a, 100'000'000, 30'000'000), k.portal);
    add(ApprovalEvent("apr/2024/1", a, "app/2024/1", {10'000'000, 20'000'000}), k.district);
    add(PaymentEvent("pay/2024/1", a, "apr/2024/1", 1, 10'000'000), k.treasury);
    add(PaymentEvent("pay%2F2024%2F2", a, "apr/2024/1", 2, 20'000'000), k.treasury);
    // Signed three times: after the grants, after the application, and at the end.
    for (auto [from, to] : {std::pair{size_t{0}, size_t{5}}, std::pair{size_t{5}, size_t{6}},
                            std::pair{size_t{6}, records.size()}}) {
      std::vector<Record> part(records.begin() + from, records.begin() + to);
      for (const auto& o : AppendAll(*d->ledger, part))
        REQUIRE(o.verdict == ledger::v1::VERDICT_ACCEPTED);
      auto batch = d->ledger->BeginBatch();
      REQUIRE(batch.has_value());
      REQUIRE(IssueCheckpoint(*batch, 0, TestLedgerKey()).has_value());
      REQUIRE(batch->Commit().has_value());
    }
    ServeOptions o;
    o.port = 0;
    o.ledger_key = TestLedgerKey().verifier();
    auto server = ApiServer::Start(*d->ledger, o);
    REQUIRE(server.has_value());
    d->server = std::move(*server);
    return d;
  }();
  return *s;
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

TEST_CASE("the OpenAPI description lists exactly the endpoints served, with their roles",
          "[serve][integration]") {
  Served& s = DemoServer();
  auto [code, spec] = Get(s.server->port(), "/openapi.json");
  REQUIRE(code == 200);
  CHECK(spec["openapi"] == "3.0.3");
  std::map<std::string, std::string> documented, served;
  for (auto& [path, item] : spec["paths"].items()) {
    REQUIRE(item.contains("get"));
    documented[path] = item["get"].value("x-role", "");
    // Every path parameter of the template is described, and nothing else is.
    std::set<std::string> in_path, described;
    std::smatch m;
    for (auto it = path.cbegin();
         std::regex_search(it, path.cend(), m, std::regex(R"(\{([^}]+)\})")); it = m.suffix().first)
      in_path.insert(m[1]);
    for (const auto& p : item["get"]["parameters"])
      if (p["in"] == "path") described.insert(p["name"].get<std::string>());
    CHECK(in_path == described);
  }
  for (const auto& r : s.server->routes())
    served[r.path] = r.role;
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

// Issue 13, item 7: each example of the issue, kept as it was reported.
TEST_CASE("issue 13.7: errors outside /api are JSON, not empty bodies", "[serve][integration]") {
  int port = DemoServer().server->port();
  SECTION("a 404 outside /api") {
    auto r = RawGet(port, "/nowhere.html");
    CHECK(r.status == 404);
    CHECK_THAT(ErrorBody(r)["error"].get<std::string>(), Catch::Contains("/nowhere.html"));
  }
  SECTION("a 414 for a long URL") {
    auto r = RawGet(port, "/" + std::string(9000, 'a'));
    CHECK(r.status == 414);
    CHECK_THAT(ErrorBody(r)["error"].get<std::string>(), Catch::Contains("8192"));
  }
  SECTION("a POST") {
    for (std::string path : {"/", "/app.js", "/api/status", "/nowhere"}) {
      INFO(path);
      auto r = RawGet(port, path, "POST");
      CHECK(r.status == 405);
      CHECK(r.headers["allow"] == "GET, HEAD");
      CHECK_THAT(ErrorBody(r)["error"].get<std::string>(), Catch::Contains("POST"));
    }
  }
}

TEST_CASE("issue 13.7: /app.js%00.html is not served", "[serve][integration]") {
  int port = DemoServer().server->port();
  auto r = RawGet(port, "/app.js%00.html");
  CHECK(r.status == 400);
  CHECK_THAT(ErrorBody(r)["error"].get<std::string>(), Catch::Contains("control character"));
  CHECK(r.body.find("use strict") == std::string::npos);
}

TEST_CASE("issue 13.7: an event id containing '/' is proved and traced over HTTP",
          "[serve][integration]") {
  OddIds& s = OddIdServer();
  int port = s.server->port();
  BundleTrust trust{TestLedgerKey().verifier(), {Keys().admin.public_key}};
  auto [pc, proof] = Get(port, "/api/proofs/pay%2F2024%2F1");
  REQUIRE(pc == 200);
  CHECK(proof["subject"] == "pay/2024/1");
  CHECK(VerifyBundle(proof, trust).has_value());
  auto [tc, trace] = Get(port, "/api/traces/pay%2F2024%2F1");
  REQUIRE(tc == 200);
  CHECK(trace["verification"]["ok"] == true);
  std::set<std::string> linked;
  for (const auto& l : trace["bundle"]["links"])
    linked.insert(l["event_id"].get<std::string>());
  CHECK(linked.count("app/2024/1") == 1);
  CHECK(linked.count("apr/2024/1") == 1);
  CHECK(linked.count("pay/2024/1") == 1);
}

// The whole kind of issue 13.7's faults: every error, wherever it comes from, is JSON
// naming what was wrong, and the status says which.
TEST_CASE("every error is JSON: paths, parameters, methods, content, malformed requests",
          "[serve][integration]") {
  int port = DemoServer().server->port();
  auto get = [](std::string target) {
    return "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  };
  struct Case {
    std::string request;
    int status;
    std::string error;  // part of the message
  } cases[] = {
      // Nothing outside the page's files and the API; no path reaches a file by its name.
      {get("/nowhere"), 404, "nothing is at /nowhere"},
      {get("/api/nowhere"), 404, "no endpoint /api/nowhere"},
      {get("/app.js/"), 404, "nothing is at /app.js/"},
      {get("//app.js"), 404, "nothing is at"},
      {get("/../web/app.js"), 404, "nothing is at"},
      {get("/%2E%2E/web/app.js"), 404, "nothing is at"},
      {get("/..%2Fweb%2Fapp.js"), 404, "nothing is at"},
      {get("/web/app.js"), 404, "nothing is at"},
      {get("/.gitignore"), 404, "nothing is at"},
      {get("/index.html?x=1"), 400, "takes no parameters"},
      {get("/healthz?verbose=1"), 400, "takes no parameters"},
      // Control characters, raw or encoded, and what is not percent-encoding or UTF-8.
      {get("/app.js%00.html"), 400, "control character (U+0000)"},
      {get("/app.js%0A"), 400, "control character (U+000A)"},
      {get("/app.js%0D%0AX-Injected:%201"), 400, "control character"},
      {get("/api/proofs/a%1Bb"), 400, "control character (U+001B)"},
      {get("/api/proofs/a\x01"), 400, "control character (0x01)"},
      {get("/api/proofs/a%ZZ"), 400, "two hexadecimal digits"},
      {get("/api/proofs/a%u002F"), 400, "two hexadecimal digits"},
      {get("/api/proofs/a%FF"), 400, "not UTF-8"},
      {get("/api/payments?source=%00"), 400, "control character"},
      {get("/api/payments?limit=1&limit=2"), 400, "parameter 'limit' is given twice"},
      {get("/api/status?x=1"), 400, "unknown parameter 'x': this endpoint takes none"},
      // Methods: 405 for each method HTTP defines but GET and HEAD, 501 for one it does not.
      {"POST /api/status HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 405, "POST"},
      {"PUT /app.js HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 405, "PUT"},
      {"DELETE /api/status HTTP/1.1\r\nHost: x\r\n\r\n", 405, "DELETE"},
      {"PATCH /api/status HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 405, "PATCH"},
      {"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 405, "OPTIONS"},
      {"OPTIONS /api/status HTTP/1.1\r\nHost: x\r\n\r\n", 405, "OPTIONS"},
      {"TRACE / HTTP/1.1\r\nHost: x\r\n\r\n", 405, "TRACE"},
      {"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 405, "CONNECT"},
      {"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n", 501, "the method BREW"},
      // Content on a GET: never read, refused.
      {"GET /api/status HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", 413,
       "takes no request content"},
      {"GET /api/status HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 413,
       "takes no request content"},
      // Requests cpp-httplib itself refuses before any handler runs.
      {"GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + std::string(9000, 'a') + "\r\n\r\n", 400,
       "header line over 8192 bytes"},
      {"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 400, "not HTTP/1.1"},
      {"GET /\r\nHost: x\r\n\r\n", 400, "not HTTP/1.1"},
      {"GET /" + std::string(9000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n", 414, "8192"},
      {"GET /api/status?" + std::string(9000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n", 414, "8192"},
  };
  for (const auto& c : cases) {
    INFO("request: " << c.request.substr(0, 120));
    auto r = RawExchange(port, c.request);
    CHECK(r.status == c.status);
    CHECK_THAT(ErrorBody(r)["error"].get<std::string>(), Catch::Contains(c.error));
    CHECK(r.headers["x-content-type-options"] == "nosniff");
    if (c.status == 405 || c.status == 501) CHECK(r.headers["allow"] == "GET, HEAD");
  }
  // HEAD answers as GET does, without the body.
  auto head = RawGet(port, "/api/status", "HEAD");
  CHECK(head.status == 200);
  CHECK(head.body.empty());
  CHECK(std::stoul(head.headers["content-length"]) > 0);
  auto head404 = RawGet(port, "/nowhere", "HEAD");
  CHECK(head404.status == 404);
  CHECK(head404.body.empty());
}

// What the server did not read of a request must not be read as a request of its own:
// after refusing a request with content, or one it could not parse, it closes the
// connection. An ordinary error keeps it open.
TEST_CASE("a request the server did not read to its end closes the connection",
          "[serve][integration]") {
  int port = DemoServer().server->port();
  const std::string smuggled = "GET /api/payments HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string requests[] = {
      "POST /api/status HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(smuggled.size()) +
          "\r\n\r\n" + smuggled,
      "POST /api/status HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
          fmt::format("{:x}\r\n", smuggled.size()) + smuggled + "\r\n0\r\n\r\n",
      "GET /api/status HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(smuggled.size()) +
          "\r\n\r\n" + smuggled,
      "BREW / HTTP/1.1\r\nHost: x\r\n\r\n" + smuggled,
      "GET / HTTP/9.9\r\nHost: x\r\n\r\n" + smuggled,
  };
  for (const auto& request : requests) {
    INFO(request);
    auto r = RawExchange(port, request, true);
    CHECK(r.status >= 400);
    CHECK(r.closed);
    CHECK(r.rest.empty());  // no second response: the smuggled GET was never answered
  }
  // Two requests on one connection, the first an error whose end the server knows (a
  // request without Content-Length or Transfer-Encoding has no content, RFC 9112 §6.3):
  // both answered.
  for (std::string first :
       {"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n", "POST /api/status HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /api/status?x=1 HTTP/1.1\r\nHost: x\r\n\r\n"}) {
    INFO(first);
    RawConnection c(port);
    c.Send(first);
    CHECK(c.Read().status >= 400);
    c.Send("GET /api/status HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(c.Read().status == 200);
  }
}

TEST_CASE("ids with '/', '%', spaces and UTF-8 are routed as percent-encoded segments",
          "[serve][integration]") {
  OddIds& s = OddIdServer();
  int port = s.server->port();
  struct Case {
    std::string path;
    int status;
    std::string expect;  // the bundle's subject, or part of the error
  } cases[] = {
      {"/api/proofs/pay%2F2024%2F1", 200, "pay/2024/1"},
      // The id "pay%2F2024%2F2" itself: its '%' is encoded, and decoded once.
      {"/api/proofs/pay%252F2024%252F2", 200, "pay%2F2024%2F2"},
      {"/api/proofs/apr%2F2024%2F1", 200, "apr/2024/1"},
      {"/api/traces/app%2F2024%2F1", 200, "app/2024/1"},
      {"/api/traces/pay%252F2024%252F2", 200, "pay%2F2024%2F2"},
      // Not encoded, the slashes are the path's own: there is no such endpoint.
      {"/api/proofs/pay/2024/1", 404, "no endpoint /api/proofs/pay/2024/1"},
      // "pay%2F2024%2F2" decoded once is "pay/2024/2": no such event.
      {"/api/proofs/pay%2F2024%2F2", 404, "no event pay/2024/2 is on the record"},
      {"/api/proofs/no%20such%20id", 404, "no event no such id is on the record"},
      {"/api/proofs/%E6%9D%BE%E6%B1%9F%2F1", 404, "no event 松江/1 is on the record"},
      {"/api/traces/%E6%9D%BE%E6%B1%9F", 404, "松江"},
      {"/api/applicants/%E6%9D%BE%E6%B1%9F", 400, "is not an applicant id"},
      {"/api/programmes/G60%2F07b", 404, "G60/07b"},
  };
  for (const auto& c : cases) {
    INFO(c.path);
    auto r = RawGet(port, c.path);
    CHECK(r.status == c.status);
    if (c.status == 200) {
      json j = json::parse(r.body);
      CHECK((j.contains("bundle") ? j["bundle"]["subject"] : j["subject"]) == c.expect);
    } else {
      CHECK_THAT(ErrorBody(r)["error"].get<std::string>(), Catch::Contains(c.expect));
    }
  }
  // An applicant id with '/': the history of every event above.
  auto [code, history] = Get(port, "/api/applicants/APPLICANT%2F2024%2F0001");
  REQUIRE(code == 200);
  std::vector<std::string> ids;
  for (const auto& row : history["rows"])
    ids.push_back(row["event_id"]);
  CHECK(ids ==
        std::vector<std::string>{"app/2024/1", "apr/2024/1", "pay/2024/1", "pay%2F2024%2F2"});
}

TEST_CASE("checkpoint history over HTTP: every checkpoint, by page and by size",
          "[serve][integration][checkpoint]") {
  int port = OddIdServer().server->port();
  auto [c0, whole] = Get(port, "/api/checkpoints/0?limit=10000");
  REQUIRE(c0 == 200);
  CHECK(whole["partition"] == 0);
  CHECK(whole["next"].is_null());
  const json& list = whole["checkpoints"];
  REQUIRE(list.size() == 3);
  uint64_t last = 0;
  for (const auto& c : list) {
    CHECK(c["verified"] == true);
    CHECK(c["size"].get<uint64_t>() > last);
    CHECK_FALSE(c["last_entry_time"].get<std::string>().empty());
    last = c["size"];
  }
  // The latest is the one /api/checkpoints and /api/status give.
  auto [cl, latest] = Get(port, "/api/checkpoints");
  REQUIRE(cl == 200);
  CHECK(latest[0] == list.back());
  // Pages of one, joined, are the whole list.
  std::vector<json> paged;
  std::string after;
  for (int i = 0; i < 1000; ++i) {
    auto [c, page] =
        Get(port, "/api/checkpoints/0?limit=1" + (after.empty() ? "" : "&after=" + after));
    REQUIRE(c == 200);
    for (const auto& cp : page["checkpoints"])
      paged.push_back(cp);
    if (page["next"].is_null()) break;
    after = page["next"];
  }
  CHECK(paged == list.get<std::vector<json>>());
  // One by size; the auditor who kept only the first checks that the latest extends it.
  uint64_t first = list[0]["size"], newest = list.back()["size"];
  auto [c1, one] = Get(port, fmt::format("/api/checkpoints/0/{}", first));
  REQUIRE(c1 == 200);
  CHECK(one == list[0]);
  auto [c2, proof] =
      Get(port, fmt::format("/api/consistency?partition=0&old={}&new={}", first, newest));
  REQUIRE(c2 == 200);
  auto decode = [](const json& b64) {
    auto bytes = Base64Decode(b64.get<std::string>());
    REQUIRE(bytes.has_value());
    Hash h{};
    REQUIRE(bytes->size() == h.size());
    std::copy(bytes->begin(), bytes->end(), h.begin());
    return h;
  };
  std::vector<Hash> hashes;
  for (const auto& h : proof["hashes"])
    hashes.push_back(decode(h));
  CHECK(merkle::VerifyConsistency(first, newest, decode(list[0]["root"]),
                                  decode(list.back()["root"]), hashes)
            .has_value());

  struct Case {
    std::string path;
    int status;
    std::string error;
  } cases[] = {
      {"/api/checkpoints/0/7", 404,
       "partition 0 has no checkpoint of size 7: it has 3 checkpoints, sizes 5 to 9; the "
       "nearest are 6 and 9"},
      {"/api/checkpoints/99", 404, "the ledger has no partition 99 (it has 1)"},
      {"/api/checkpoints/99/100", 404, "no partition 99"},
      {"/api/checkpoints/x", 400, "the partition must be a non-negative integer"},
      {"/api/checkpoints/-1", 400, "the partition must be"},
      {"/api/checkpoints/0/ten", 400, "the size must be"},
      {"/api/checkpoints/0?after=abc", 400, "after (the last size of the page before)"},
      {"/api/checkpoints/0?limit=0", 400, "limit must be"},
      {"/api/checkpoints/0/100?limit=1", 400, "unknown parameter 'limit'"},
  };
  for (const auto& c : cases) {
    INFO(c.path);
    auto r = RawGet(port, c.path);
    CHECK(r.status == c.status);
    CHECK_THAT(ErrorBody(r)["error"].get<std::string>(), Catch::Contains(c.error));
  }
  auto [ce, empty] = Get(port, fmt::format("/api/checkpoints/0?after={}", newest));
  REQUIRE(ce == 200);
  CHECK(empty["checkpoints"].empty());
  CHECK(empty["next"].is_null());
}

TEST_CASE("health: /healthz answers, /readyz reads the ledger", "[serve][integration]") {
  Served& s = DemoServer();
  int port = s.server->port();
  auto [hc, health] = Get(port, "/healthz");
  CHECK(hc == 200);
  CHECK(health == json{{"status", "ok"}});
  auto [rc, ready] = Get(port, "/readyz");
  REQUIRE(rc == 200);
  auto [sc, status] = Get(port, "/api/status");
  REQUIRE(sc == 200);
  CHECK(ready["status"] == "ready");
  CHECK(ready["partitions"] == kPartitions);
  CHECK(ready["entries"] == status["entries"]);
  // The demo ingest signs a checkpoint of everything when it stops.
  CHECK(ready["entries_not_covered_by_checkpoints"] == 0);
  CHECK(ready["oldest_uncovered_entry_age_seconds"].is_null());

  // Entries no checkpoint covers: counted, and the oldest one's age given.
  TempDir dir;
  auto ledger = OpenTestLedger(dir.path());
  AppendAll(*ledger, GrantRecords(0));
  ServeOptions o;
  o.port = 0;
  auto server = ApiServer::Start(*ledger, o);
  REQUIRE(server.has_value());
  auto [c2, lagging] = Get((*server)->port(), "/readyz");
  REQUIRE(c2 == 200);
  CHECK(lagging["entries"] == 5);
  CHECK(lagging["entries_not_covered_by_checkpoints"] == 5);
  int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  // MakeRecord's Kafka timestamp is 2026-01-01T00:00:00Z.
  CHECK(lagging["oldest_uncovered_entry_age_seconds"].get<int64_t>() ==
        Approx(now_s - 1767225600).margin(5));
}

namespace {

// A server over the demo ledger that takes bearer tokens: "board" (public) and "alice"
// (auditor), from a tokens file that holds their hashes.
struct TokenServer {
  TempDir dir;
  std::string public_token = NewBearerToken();
  std::string auditor_token = NewBearerToken();
  std::unique_ptr<ApiServer> server;
};

std::unique_ptr<TokenServer> StartTokenServer(std::optional<ReadRole> anonymous = std::nullopt) {
  auto t = std::make_unique<TokenServer>();
  std::string path = t->dir / "tokens";
  std::ofstream(path) << "# name role sha256\n"
                      << TokenFileLine("board", ReadRole::kPublic, t->public_token) << "\n"
                      << TokenFileLine("alice", ReadRole::kAuditor, t->auditor_token) << "\n";
  REQUIRE(::chmod(path.c_str(), 0600) == 0);
  ServeOptions o;
  o.port = 0;
  o.web_dir = std::string(G60_SOURCE_DIR) + "/web";
  o.openapi_path = std::string(G60_SOURCE_DIR) + "/docs/openapi.json";
  o.ledger_key = TestLedgerKey().verifier();
  o.tokens_file = path;
  o.anonymous_role = anonymous;
  auto server = ApiServer::Start(*DemoServer().ledger, o);
  REQUIRE(server.has_value());
  t->server = std::move(*server);
  return t;
}

RawResponse GetAs(int port, const std::string& target, const std::string& authorization) {
  return RawExchange(
      port, "GET " + target + " HTTP/1.1\r\nHost: x\r\n" +
                (authorization.empty() ? "" : "Authorization: " + authorization + "\r\n") + "\r\n");
}

}  // namespace

TEST_CASE("roles: the public role reads totals and checkpoints, the auditor everything",
          "[serve][integration][auth]") {
  Served& demo = DemoServer();
  auto [applicant, payment] = ClawedBackPayment(demo.steps);
  auto t = StartTokenServer();
  int port = t->server->port();
  const std::string pub = "Bearer " + t->public_token, aud = "Bearer " + t->auditor_token;
  auto latest = json::parse(GetAs(port, "/api/checkpoints", aud).body);
  REQUIRE(!latest.empty());
  // Each endpoint the server routes, with its template filled in.
  auto concrete = [&](std::string path) {
    const std::pair<std::string, std::string> fill[] = {
        {"{applicant_id}", applicant},
        {"{programme}", "G60-07b"},
        {"{event_id}", payment},
        {"{partition}", "0"},
        {"{size}", std::to_string(latest[0]["size"].get<uint64_t>())}};
    for (const auto& [from, to] : fill)
      if (auto at = path.find(from); at != std::string::npos) path.replace(at, from.size(), to);
    if (path == "/api/proofs") path += "?at=0:0";
    if (path == "/api/consistency") path += "?partition=0&old=1&new=2";
    return path;
  };
  int checked = 0;
  for (const auto& route : t->server->routes()) {
    std::string path = concrete(route.path);
    INFO(path << " (role " << route.role << ")");
    auto anonymous = GetAs(port, path, "");
    auto as_public = GetAs(port, path, pub);
    auto as_auditor = GetAs(port, path, aud);
    if (route.role.empty()) {  // /healthz, /readyz
      CHECK(anonymous.status == 200);
      continue;
    }
    CHECK(anonymous.status == 401);
    CHECK(anonymous.headers["www-authenticate"] == "Bearer realm=\"g60ledger\"");
    CHECK_THAT(ErrorBody(anonymous)["error"].get<std::string>(),
               Catch::Contains("needs a bearer token"));
    CHECK(as_auditor.status == 200);
    if (route.role == "public") {
      CHECK(as_public.status == 200);
    } else {
      REQUIRE(route.role == "auditor");
      CHECK(as_public.status == 403);
      json e = ErrorBody(as_public);
      CHECK(e["role"] == "public");
      CHECK(e["required_role"] == "auditor");
      CHECK_THAT(e["error"].get<std::string>(), Catch::Contains("needs the auditor role"));
      CHECK(as_public.headers["www-authenticate"] ==
            "Bearer realm=\"g60ledger\", error=\"insufficient_scope\"");
    }
    ++checked;
  }
  CHECK(checked == 24);
  // The page, its description and the probes need no credentials.
  for (std::string path : {"/", "/app.js", "/openapi.json", "/healthz", "/readyz"}) {
    INFO(path);
    CHECK(GetAs(port, path, "").status == 200);
  }

  // Credentials that are not acceptable, each named.
  struct Case {
    std::string authorization;
    int status;
    std::string challenge, error;
  } cases[] = {
      {"Bearer " + t->public_token + "x", 401, R"(Bearer realm="g60ledger", error="invalid_token")",
       "not one this server accepts"},
      {"Bearer " + NewBearerToken(), 401, R"(Bearer realm="g60ledger", error="invalid_token")",
       "not one this server accepts"},
      {"bearer " + t->auditor_token, 200, "", ""},  // the scheme is case-insensitive
      {"Basic YWxpY2U6c2VjcmV0", 401, R"(Bearer realm="g60ledger")", "bearer tokens only"},
      {"Bearer", 400, R"(Bearer realm="g60ledger", error="invalid_request")", "RFC 6750"},
      {"Bearer a b", 400, R"(Bearer realm="g60ledger", error="invalid_request")", "RFC 6750"},
  };
  for (const auto& c : cases) {
    INFO(c.authorization);
    auto r = GetAs(port, "/api/payments", c.authorization);
    CHECK(r.status == c.status);
    if (c.status == 200) continue;
    CHECK(r.headers["www-authenticate"] == c.challenge);
    CHECK_THAT(ErrorBody(r)["error"].get<std::string>(), Catch::Contains(c.error));
  }
  auto twice = RawExchange(port, "GET /api/status HTTP/1.1\r\nHost: x\r\nAuthorization: " + pub +
                                     "\r\nAuthorization: " + aud + "\r\n\r\n");
  CHECK(twice.status == 400);
  CHECK_THAT(ErrorBody(twice)["error"].get<std::string>(),
             Catch::Contains("more than one Authorization header"));
}

TEST_CASE("anonymous requests: refused with tokens unless a role is given for them",
          "[serve][integration][auth]") {
  auto t = StartTokenServer(ReadRole::kPublic);
  int port = t->server->port();
  CHECK(GetAs(port, "/api/status", "").status == 200);
  auto r = GetAs(port, "/api/payments", "");
  CHECK(r.status == 403);
  CHECK(ErrorBody(r)["role"] == "public");
  CHECK(GetAs(port, "/api/payments", "Bearer " + t->auditor_token).status == 200);
  // A wrong token is refused even though no token would have read as public.
  CHECK(GetAs(port, "/api/status", "Bearer wrong").status == 401);
}

TEST_CASE("without credentials, serve is open on loopback only, unless told",
          "[serve][integration][auth]") {
  auto role = [](std::string host, std::string tokens = "", std::string ca = "",
                 std::optional<ReadRole> anonymous = std::nullopt) {
    ServeOptions o;
    o.host = host;
    o.tokens_file = tokens;
    o.tls_client_ca_file = ca;
    o.anonymous_role = anonymous;
    return AnonymousRole(o);
  };
  for (std::string loopback : {"127.0.0.1", "127.1.2.3", "localhost", "::1"}) {
    INFO(loopback);
    CHECK(IsLoopbackHost(loopback));
    CHECK(role(loopback).value() == ReadRole::kAuditor);
  }
  for (std::string open : {"0.0.0.0", "::", "192.168.1.5", "10.0.0.1", "example.com", ""}) {
    INFO(open);
    CHECK_FALSE(IsLoopbackHost(open));
    auto r = role(open);
    REQUIRE_FALSE(r.has_value());
    CHECK_THAT(r.error().message(), Catch::Contains("--tokens FILE") &&
                                        Catch::Contains("--tls-client-ca FILE") &&
                                        Catch::Contains("--allow-anonymous public"));
    CHECK(role(open, "", "", ReadRole::kPublic).value() == ReadRole::kPublic);
    CHECK(role(open, "tokens").value() == std::nullopt);
    CHECK(role(open, "", "ca.pem").value() == std::nullopt);
  }
  CHECK(role("127.0.0.1", "tokens").value() == std::nullopt);  // tokens mean tokens, everywhere
  CHECK(role("0.0.0.0", "tokens", "", ReadRole::kPublic).value() == ReadRole::kPublic);
  // Start refuses it too, before it listens.
  ServeOptions o;
  o.host = "0.0.0.0";
  o.port = 0;
  auto s = ApiServer::Start(*DemoServer().ledger, o);
  REQUIRE_FALSE(s.has_value());
  CHECK_THAT(s.error().message(), Catch::Contains("anyone who can reach 0.0.0.0"));
}

// The verbs as an operator runs them: `token` makes the tokens file, `serve --tokens`
// reads it, and no token ever reaches the log.
TEST_CASE("token and serve --tokens as processes: tokens work and are never logged",
          "[serve][integration][auth]") {
  Served& demo = DemoServer();
  TempDir dir;
  std::string tokens = dir / "tokens";
  auto make = [&](const std::string& name, const std::string& role) {
    auto r = Run({G60LEDGER_BIN, "token", "--name", name, "--role", role, "--tokens", tokens},
                 dir / ("token-" + name + ".out"));
    INFO(r.output);
    REQUIRE(r.status == 0);
    std::istringstream lines(r.output);
    std::string line, last;
    while (std::getline(lines, line))
      if (!line.empty() && line.find(' ') == std::string::npos) last = line;
    REQUIRE(last.size() == 43);
    return last;
  };
  std::string board = make("board", "public");
  std::string alice = make("alice", "auditor");
  struct stat st {};
  REQUIRE(::stat(tokens.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  {
    std::ifstream in(tokens);
    std::stringstream text;
    text << in.rdbuf();
    CHECK(text.str().find(board) == std::string::npos);
    CHECK(text.str().find(alice) == std::string::npos);
  }
  auto dup =
      Run({G60LEDGER_BIN, "token", "--name", "alice", "--role", "public", "--tokens", tokens},
          dir / "dup.out");
  CHECK(dup.status == 2);
  CHECK_THAT(dup.output, Catch::Contains("the name alice is used twice"));
  auto bad_role = Run({G60LEDGER_BIN, "token", "--name", "x", "--role", "admin"}, dir / "br.out");
  CHECK(bad_role.status == 2);

  // Served on loopback with the tokens file just made.
  Child serve({G60LEDGER_BIN, "serve", "--ledger", demo.dir.path(), "--listen", "127.0.0.1:0",
               "--tokens", tokens},
              dir / "serve.out");
  int port = 0;
  for (int i = 0; i < 100 && port == 0; ++i) {
    std::smatch m;
    std::string out = serve.Output();
    if (std::regex_search(out, m, std::regex(R"(serve: http://127\.0\.0\.1:(\d+)/)")))
      port = std::stoi(m[1]);
    else
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  INFO(serve.Output());
  REQUIRE(port != 0);
  CHECK_THAT(serve.Output(), Catch::Contains("access: bearer tokens, anonymous requests refused"));
  CHECK(GetAs(port, "/api/payments", "Bearer " + alice).status == 200);
  CHECK(GetAs(port, "/api/payments", "Bearer " + board).status == 403);
  CHECK(GetAs(port, "/api/payments", "Bearer " + board + "x").status == 401);
  CHECK(GetAs(port, "/api/payments", "").status == 401);
  // A token put in the URL by mistake (RFC 6750 §2.3, which serve does not take).
  CHECK(GetAs(port, "/api/payments?access_token=" + alice, "").status == 401);
  serve.Kill(SIGTERM);
  CHECK(serve.Wait() == 0);
  std::string log = serve.Output();
  INFO(log);
  CHECK_THAT(log, Catch::Contains("board GET /api/payments -> 403"));
  CHECK_THAT(log, Catch::Contains("- GET /api/payments -> 401"));
  CHECK_THAT(log, Catch::Contains("- GET /api/payments?access_token -> 401"));
  CHECK(log.find(board) == std::string::npos);
  CHECK(log.find(alice) == std::string::npos);

  // Refusals at start: a tokens file others may write, and an open address without any.
  REQUIRE(::chmod(tokens.c_str(), 0666) == 0);
  auto writable = Run({G60LEDGER_BIN, "serve", "--ledger", demo.dir.path(), "--listen",
                       "127.0.0.1:0", "--tokens", tokens},
                      dir / "writable.out");
  CHECK(writable.status == 2);
  CHECK_THAT(writable.output, Catch::Contains("may be written by anyone"));
  auto open = Run({G60LEDGER_BIN, "serve", "--ledger", demo.dir.path(), "--listen", "0.0.0.0:0"},
                  dir / "open.out");
  CHECK(open.status == 2);
  CHECK_THAT(open.output, Catch::Contains("--allow-anonymous"));
  auto bad =
      Run({G60LEDGER_BIN, "serve", "--ledger", demo.dir.path(), "--allow-anonymous", "everyone"},
          dir / "bad.out");
  CHECK(bad.status == 2);
  CHECK_THAT(bad.output, Catch::Contains("--allow-anonymous 'everyone' is not a role"));
}

namespace {

// Certificates made by the test with OpenSSL: a CA, a server certificate for 127.0.0.1
// and localhost signed by it, a client certificate signed by it, and a client
// certificate nobody signed (self-signed).
struct TestPki {
  TempDir dir;
  std::string ca_cert = dir / "ca.pem";
  std::string server_cert = dir / "server.pem", server_key = dir / "server.key";
  std::string client_cert = dir / "client.pem", client_key = dir / "client.key";
  std::string rogue_cert = dir / "rogue.pem", rogue_key = dir / "rogue.key";
  std::string other_key = dir / "other.key";  // a key no certificate here belongs to
};

using PKey = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using Cert = std::unique_ptr<X509, decltype(&X509_free)>;

PKey NewKey() {
  PKey k(EVP_EC_gen("P-256"), EVP_PKEY_free);
  REQUIRE(k);
  return k;
}

void AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  REQUIRE(ext != nullptr);
  REQUIRE(X509_add_ext(cert, ext, -1) == 1);
  X509_EXTENSION_free(ext);
}

// A certificate for `key` named `cn`, signed by `issuer` (itself when null).
Cert MakeCert(EVP_PKEY* key, const std::string& cn, X509* issuer, EVP_PKEY* issuer_key, bool ca,
              const char* san = nullptr) {
  static long serial = 1;
  Cert cert(X509_new(), X509_free);
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial++);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 86400);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name);
  X509* signer = issuer ? issuer : cert.get();
  AddExtension(cert.get(), signer, NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE");
  if (ca) AddExtension(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  if (san) AddExtension(cert.get(), signer, NID_subject_alt_name, san);
  REQUIRE(X509_sign(cert.get(), issuer_key ? issuer_key : key, EVP_sha256()) > 0);
  return cert;
}

void WritePem(const std::string& path, X509* cert, EVP_PKEY* key) {
  FILE* f = std::fopen(path.c_str(), "w");
  REQUIRE(f != nullptr);
  REQUIRE((cert ? PEM_write_X509(f, cert)
                : PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr)) == 1);
  std::fclose(f);
}

const TestPki& Pki() {
  static std::unique_ptr<TestPki> pki = [] {
    auto p = std::make_unique<TestPki>();
    PKey ca_key = NewKey(), server_key = NewKey(), client_key = NewKey(), rogue_key = NewKey(),
         other = NewKey();
    Cert ca = MakeCert(ca_key.get(), "g60ledger test CA", nullptr, nullptr, true);
    Cert server = MakeCert(server_key.get(), "localhost", ca.get(), ca_key.get(), false,
                           "DNS:localhost,IP:127.0.0.1");
    Cert client = MakeCert(client_key.get(), "auditor-7", ca.get(), ca_key.get(), false);
    Cert rogue = MakeCert(rogue_key.get(), "auditor-7", nullptr, nullptr, false);
    WritePem(p->ca_cert, ca.get(), nullptr);
    WritePem(p->server_cert, server.get(), nullptr);
    WritePem(p->server_key, nullptr, server_key.get());
    WritePem(p->client_cert, client.get(), nullptr);
    WritePem(p->client_key, nullptr, client_key.get());
    WritePem(p->rogue_cert, rogue.get(), nullptr);
    WritePem(p->rogue_key, nullptr, rogue_key.get());
    WritePem(p->other_key, nullptr, other.get());
    return p;
  }();
  return *pki;
}

std::unique_ptr<ApiServer> StartTls(ServeOptions o) {
  o.port = 0;
  o.ledger_key = TestLedgerKey().verifier();
  o.tls_cert_file = Pki().server_cert;
  o.tls_key_file = Pki().server_key;
  auto s = ApiServer::Start(*DemoServer().ledger, o);
  INFO((s ? "" : s.error().message()));
  REQUIRE(s.has_value());
  return std::move(*s);
}

// A GET over TLS that checks the server's certificate against the test CA; the client
// presents `cert` and `key` when given. The status, or -1 when no response came (the
// handshake failed).
int TlsGet(int port, const std::string& path, const std::string& cert = "",
           const std::string& key = "", const std::string& token = "") {
  httplib::SSLClient c("127.0.0.1", port, cert, key);
  c.set_ca_cert_path(Pki().ca_cert);
  c.enable_server_certificate_verification(true);
  c.set_read_timeout(30, 0);
  httplib::Headers h;
  if (!token.empty()) h.emplace("Authorization", "Bearer " + token);
  auto r = c.Get(path, h);
  return r ? r->status : -1;
}

}  // namespace

TEST_CASE("TLS: serve --tls-cert --tls-key answers HTTPS only", "[serve][integration][tls]") {
  auto server = StartTls({});
  int port = server->port();
  CHECK(server->tls());
  CHECK(TlsGet(port, "/api/status") == 200);
  CHECK(TlsGet(port, "/healthz") == 200);
  // JSON errors over TLS too.
  httplib::SSLClient c("127.0.0.1", port);
  c.set_ca_cert_path(Pki().ca_cert);
  c.enable_server_certificate_verification(true);
  auto r = c.Post("/api/status", "", "text/plain");
  REQUIRE(r);
  CHECK(r->status == 405);
  CHECK(json::parse(r->body)["status"] == 405);
  // A client that does not trust the test CA refuses the server.
  httplib::SSLClient distrustful("127.0.0.1", port);
  distrustful.enable_server_certificate_verification(true);
  distrustful.set_ca_cert_path(Pki().rogue_cert);
  CHECK_FALSE(distrustful.Get("/healthz"));
  // Plain HTTP to the TLS port gets no HTTP answer.
  httplib::Client plain("127.0.0.1", port);
  plain.set_read_timeout(5, 0);
  auto p = plain.Get("/healthz");
  CHECK((!p || p->status != 200));
}

TEST_CASE("TLS: bad certificate and key files are named at start", "[serve][integration][tls]") {
  const TestPki& pki = Pki();
  struct Case {
    std::string cert, key, ca, error;
  } cases[] = {
      {pki.server_cert, pki.other_key, "", "is not the key of the certificate"},
      {pki.server_cert, "", "", "needs both --tls-cert"},
      {"", pki.server_key, "", "needs both --tls-cert"},
      {"", "", pki.ca_cert, "give --tls-cert and --tls-key too"},
      {pki.dir / "absent.pem", pki.server_key, "", "cannot use " + pki.dir / "absent.pem"},
      {pki.server_key, pki.server_key, "", "as the server's certificate"},
      {pki.server_cert, pki.server_cert, "", "as the server's private key"},
      {pki.server_cert, pki.server_key, pki.dir / "absent-ca.pem", "client CA certificates"},
      {pki.server_cert, pki.server_key, pki.server_key, "client CA certificates"},
  };
  for (const auto& c : cases) {
    INFO(c.cert << " " << c.key << " " << c.ca);
    ServeOptions o;
    o.port = 0;
    o.tls_cert_file = c.cert;
    o.tls_key_file = c.key;
    o.tls_client_ca_file = c.ca;
    auto s = ApiServer::Start(*DemoServer().ledger, o);
    REQUIRE_FALSE(s.has_value());
    CHECK_THAT(s.error().message(), Catch::Contains(c.error));
  }
}

TEST_CASE("mutual TLS: only clients with a certificate the CA signed get in",
          "[serve][integration][tls][auth]") {
  const TestPki& pki = Pki();
  ServeOptions o;
  o.tls_client_ca_file = pki.ca_cert;
  auto server = StartTls(o);
  int port = server->port();
  CHECK(TlsGet(port, "/api/payments", pki.client_cert, pki.client_key) == 200);  // auditor
  CHECK(TlsGet(port, "/healthz") == -1);  // no certificate: no handshake
  CHECK(TlsGet(port, "/healthz", pki.rogue_cert, pki.rogue_key) == -1);  // nobody signed it

  // Certificates read as the role given; a token, where tokens are configured, counts instead.
  o.client_cert_role = ReadRole::kPublic;
  auto as_public = StartTls(o);
  CHECK(TlsGet(as_public->port(), "/api/status", pki.client_cert, pki.client_key) == 200);
  CHECK(TlsGet(as_public->port(), "/api/payments", pki.client_cert, pki.client_key) == 403);
  TempDir dir;
  std::string token = NewBearerToken();
  std::ofstream(dir / "tokens") << TokenFileLine("alice", ReadRole::kAuditor, token) << "\n";
  REQUIRE(::chmod((dir / "tokens").c_str(), 0600) == 0);
  o.tokens_file = dir / "tokens";
  auto both = StartTls(o);
  CHECK(TlsGet(both->port(), "/api/payments", pki.client_cert, pki.client_key) == 403);
  CHECK(TlsGet(both->port(), "/api/payments", pki.client_cert, pki.client_key, token) == 200);
  CHECK(TlsGet(both->port(), "/api/payments", pki.client_cert, pki.client_key, "wrong") == 401);
}

TEST_CASE("the auditor's page with tokens: asks for one, shows the public role its part",
          "[serve][integration][browser][auth]") {
  Served& s = DemoServer();
  auto [applicant, payment] = ClawedBackPayment(s.steps);
  auto t = StartTokenServer();
  std::string url = fmt::format("http://127.0.0.1:{}", t->server->port());
  auto r = Run({"/usr/bin/python3", std::string(G60_SOURCE_DIR) + "/tests/browser/web_test.py", url,
                // NAME=VALUE: a token may start with '-', which argparse would take for an option
                // (each random token starts with it one time in 64).
                applicant, payment, "--public-token=" + t->public_token,
                "--auditor-token=" + t->auditor_token},
               t->dir / "web_test.out");
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK_THAT(r.output,
             Catch::Contains("web_test: public role ok") && Catch::Contains("web_test: trace ok"));
}

// cpp-httplib writes a response's head and body in two writes; with Nagle's algorithm on,
// the body waited for the client's delayed ACK: about 40 ms on every request after the
// first of a kept-alive connection (docs/performance.md, "HTTP"). The bound is loose (a
// tenth of a millisecond is typical); with Nagle the 15 requests take over 600 ms.
TEST_CASE("requests on a kept-alive connection do not wait for the client's delayed ACK",
          "[serve][integration]") {
  int port = DemoServer().server->port();
  std::chrono::steady_clock::duration kept_alive{};
  for (int connection = 0; connection < 5; ++connection) {
    RawConnection c(port);
    for (int request = 0; request < 4; ++request) {  // the server keeps 5 per connection
      auto start = std::chrono::steady_clock::now();
      c.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
      REQUIRE(c.Read().status == 200);
      if (request > 0) kept_alive += std::chrono::steady_clock::now() - start;
    }
  }
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(kept_alive).count();
  INFO("15 requests on kept-alive connections took " << ms << " ms");
  CHECK(ms < 300);
}

// A damaged ledger: the server says what it could not read, in JSON, as a failure of its
// own (500), and /readyz reports it not ready (503).
TEST_CASE("a ledger the server cannot read gives JSON 500s and a 503 from /readyz",
          "[serve][integration]") {
  TempDir dir;
  auto ledger = OpenTestLedger(dir.path());
  AppendAll(*ledger, GrantRecords(0));
  {
    auto batch = ledger->BeginBatch();
    REQUIRE(batch.has_value());
    REQUIRE(IssueCheckpoint(*batch, 0, TestLedgerKey()).has_value());
    // A row of partition 0's checkpoints whose key is not partition || size (13 bytes,
    // after the checkpoint of size 5).
    std::string bad;
    PutU32BE(bad, 0);
    PutU64BE(bad, 5);
    REQUIRE(batch->txn().Put(ledger->tables().checkpoints, bad + "x", "x").has_value());
    REQUIRE(batch->Commit().has_value());
  }
  ServeOptions o;
  o.port = 0;
  auto server = ApiServer::Start(*ledger, o);
  REQUIRE(server.has_value());
  int port = (*server)->port();
  for (std::string path : {"/api/checkpoints/0", "/api/checkpoints/0/6", "/api/status"}) {
    INFO(path);
    auto r = RawGet(port, path);
    CHECK(r.status == 500);
    CHECK_THAT(ErrorBody(r)["error"].get<std::string>(),
               Catch::Contains("checkpoints table key is not 12 bytes"));
  }
  auto ready = RawGet(port, "/readyz");
  CHECK(ready.status == 503);
  CHECK_THAT(ErrorBody(ready)["error"].get<std::string>(),
             Catch::Contains("not ready: the ledger cannot be read"));
  CHECK(RawGet(port, "/healthz").status == 200);  // alive all the same
}

// Issue 14, item 5: event ids are unique per applicant (docs/formats.md, "Event
// identity"). Two applicants in different partitions, and two in one partition, may use
// the same ids; one applicant may not use an id twice. Every verb and endpoint that takes
// an event id names the applicants when the id is ambiguous, and answers for the one named.
TEST_CASE("one event id used by several applicants: each is its own event, everywhere",
          "[serve][integration][identity]") {
  TempDir dir;
  auto ledger = OpenTestLedger(dir.path(), size_t{64} << 20, 2);
  const auto& k = Keys();
  const std::string a = ApplicantIn("91310117IDA", 0, 2);
  const std::string b = ApplicantIn("91310117IDB", 1, 2);
  const std::string c = ApplicantIn("91310117IDC", 0, 2);  // a's partition
  std::map<uint32_t, int64_t> offset;
  std::vector<Record> records;
  for (uint32_t p : {0u, 1u}) {
    auto setup = GrantRecords(p);
    offset[p] = static_cast<int64_t>(setup.size());
    records.insert(records.end(), setup.begin(), setup.end());
  }
  std::vector<std::pair<std::string, ledger::v1::Reason>> expected;
  auto add = [&](const v1::Event& e, const KeyFile& key, ledger::v1::Reason want) {
    uint32_t p = KafkaPartitionForKey(e.applicant_id(), 2);
    records.push_back(MakeRecord(p, offset[p]++, e.applicant_id(), SignEvent(e, key)));
    expected.emplace_back(e.applicant_id() + " " + e.event_id(), want);
  };
  using R = ledger::v1::Reason;
  for (const std::string& who : {a, b}) {
    add(ApplicationEvent("app-1", who, 100'000'000, 30'000'000), k.portal, R::REASON_NONE);
    add(ApprovalEvent("apr-1", who, "app-1", {10'000'000, 20'000'000}), k.district, R::REASON_NONE);
    add(PaymentEvent("pay-1", who, "apr-1", 1, 10'000'000), k.treasury, R::REASON_NONE);
  }
  add(ApplicationEvent("app-1", c, 50'000'000, 10'000'000), k.portal, R::REASON_NONE);
  add(PaymentEvent("pay-1", a, "apr-1", 2, 20'000'000), k.treasury, R::REASON_DUPLICATE_EVENT);
  auto outcomes = AppendAll(*ledger, records);
  std::vector<AppendOutcome> business(outcomes.end() - static_cast<long>(expected.size()),
                                      outcomes.end());
  for (size_t i = 0; i < expected.size(); ++i) {
    INFO(expected[i].first);
    CHECK(business[i].reason == expected[i].second);
  }
  for (uint32_t p : {0u, 1u}) {
    auto batch = ledger->BeginBatch();
    REQUIRE(batch.has_value());
    REQUIRE(IssueCheckpoint(*batch, p, TestLedgerKey()).has_value());
    REQUIRE(batch->Commit().has_value());
  }

  // The library: the id alone is ambiguous; with an applicant it is one event.
  {
    auto txn = lmdb::Txn::Begin(ledger->env(), true);
    REQUIRE(txn.has_value());
    auto found = FindEvent(*txn, ledger->tables(), "app-1");
    REQUIRE(found.has_value());
    CHECK(found->size() == 3);
    auto ambiguous = ResolveEvent(*txn, ledger->tables(), "pay-1", std::nullopt);
    REQUIRE_FALSE(ambiguous.has_value());
    CHECK(ambiguous.error().code() == ErrorCode::kInvalidArgument);
    CHECK_THAT(ambiguous.error().message(),
               Catch::Contains("used by 2 applicants") && Catch::Contains(a + " (partition 0") &&
                   Catch::Contains(b + " (partition 1") && Catch::Contains("--applicant"));
    auto of_b = ResolveEvent(*txn, ledger->tables(), "pay-1", b);
    REQUIRE(of_b.has_value());
    REQUIRE(of_b->size() == 1);
    CHECK(of_b->front().partition == 1);
    auto none = ResolveEvent(*txn, ledger->tables(), "pay-1", c);
    REQUIRE_FALSE(none.has_value());
    CHECK(none.error().code() == ErrorCode::kNotFound);
    CHECK_THAT(none.error().message(), Catch::Contains("applicant " + c + " has no event pay-1"));
    // A trace follows the named applicant's chain only, in its own partition: application,
    // approval, payment, and the rejected second use of pay-1 against the same approval.
    auto trace = TraceEntries(*txn, ledger->tables(), "pay-1", a);
    REQUIRE(trace.has_value());
    CHECK(trace->size() == 4);
    for (const auto& ref : *trace)
      CHECK(ref.partition == 0);
  }

  // HTTP: 400 naming both applicants without ?applicant=, the one event with it.
  ServeOptions o;
  o.port = 0;
  o.ledger_key = TestLedgerKey().verifier();
  auto server = ApiServer::Start(*ledger, o);
  REQUIRE(server.has_value());
  const int port = (*server)->port();
  for (const std::string path : {"/api/proofs/pay-1", "/api/traces/pay-1"}) {
    INFO(path);
    auto [code, body] = Get(port, path);
    CHECK(code == 400);
    CHECK_THAT(body.value("error", ""), Catch::Contains(a) && Catch::Contains(b));
  }
  auto [pc, proof] = Get(port, "/api/proofs/pay-1?applicant=" + b);
  REQUIRE(pc == 200);
  BundleTrust trust{TestLedgerKey().verifier(), {Keys().admin.public_key}};
  auto links = VerifyBundle(proof, trust);
  REQUIRE(links.has_value());
  size_t payments = 0;
  for (const auto& l : proof["links"]) {
    if (l["event_id"] != "pay-1") continue;
    ++payments;
    CHECK(l["applicant_id"] == b);
  }
  CHECK(payments == 1);
  auto [tc, trace] = Get(port, "/api/traces/pay-1?applicant=" + a);
  REQUIRE(tc == 200);
  CHECK(trace["verification"]["ok"] == true);
  std::set<std::string> ids;
  for (const auto& l : trace["bundle"]["links"]) {
    if (l["role"] == "key-grant") continue;
    CHECK(l["applicant_id"] == a);
    ids.insert(l["event_id"].get<std::string>());
  }
  CHECK(ids == std::set<std::string>{"app-1", "apr-1", "pay-1"});
  auto [nc, nbody] = Get(port, "/api/traces/pay-1?applicant=" + c);
  CHECK(nc == 404);

  // The command line: the same answers.
  (*server)->Stop();
  auto refused =
      Run({G60LEDGER_BIN, "prove", "pay-1", "--ledger", dir.path()}, dir.path() + "/prove.out");
  INFO(refused.output);
  CHECK(refused.status != 0);
  CHECK_THAT(refused.output,
             Catch::Contains("used by 2 applicants") && Catch::Contains(a) && Catch::Contains(b));
  std::string bundle = dir.path() + "/bundle.json";
  auto proved =
      Run({G60LEDGER_BIN, "prove", "pay-1", "--applicant", a, "--ledger", dir.path(), "-o", bundle},
          dir.path() + "/prove2.out");
  INFO(proved.output);
  CHECK(proved.status == 0);
}

TEST_CASE("the compliance questions over HTTP: answers with their position, bad parameters named",
          "[serve][integration]") {
  Served& s = DemoServer();
  int port = s.server->port();
  auto [applicant, payment] = ClawedBackPayment(s.steps);
  auto heads = s.ledger->Heads();
  REQUIRE(heads.has_value());
  Queries q(*s.ledger);
  for (std::string path :
       {"/api/applicants/" + applicant + "/totals", "/api/applicants/" + applicant + "/headroom",
        std::string("/api/near-caps?within=100"), std::string("/api/pending?level=district"),
        std::string("/api/unpaid?programme=G60-07b"), std::string("/api/decisions?limit=5"),
        std::string("/api/catalogues"), std::string("/api/double-funding"),
        "/api/payments?applicant=" + applicant + "&min_fen=1",
        std::string("/api/rejections?programme=G60-07b&reason=EXCEEDS_CAP"),
        "/api/applicants/" + applicant + "?programme=G60-07b"}) {
    INFO(path);
    auto [code, body] = Get(port, path);
    REQUIRE(code == 200);
    REQUIRE(body["position"].size() == heads->size());
    for (size_t i = 0; i < heads->size(); ++i)
      CHECK(body["position"][i]["size"] == (*heads)[i].size);
  }
  auto [code, totals] = Get(port, "/api/applicants/" + applicant + "/totals");
  CHECK(totals == q.Totals(applicant)->ToJson());
  for (auto [path, named] : std::vector<std::pair<std::string, std::string>>{
           {"/api/payments?min_fen=ten", "min_fen"},
           {"/api/payments?min_fen=10&max_fen=5", "min_fen"},
           {"/api/near-caps?within=101", "within"},
           {"/api/pending?level=PROVINCIAL", "level"},
           {"/api/payments?source=CASH", "source"},
           {"/api/unpaid?source=DISTRICT_FISCAL", "source"},
           {"/api/decisions?applicant=a%20b", "applicant"},
           {"/api/decisions?colour=red", "colour"},
           {"/api/rejections?from=2026-13-01", "from"}}) {
    INFO(path);
    auto [status, e] = Get(port, path);
    CHECK(status == 400);
    CHECK(e["status"] == 400);
    CHECK_THAT(e["error"].get<std::string>(), Catch::Contains(named));
  }
  CHECK(Get(port, "/api/applicants/91310117NOBODY0000/totals").first == 404);
}

TEST_CASE("a trace names the catalogue each link was decided under", "[serve][integration]") {
  Served& s = DemoServer();
  auto [applicant, payment] = ClawedBackPayment(s.steps);
  auto [code, trace] = Get(s.server->port(), "/api/traces/" + payment);
  REQUIRE(code == 200);
  REQUIRE(trace["catalogs"].size() == trace["bundle"]["links"].size());
  for (const auto& c : trace["catalogs"]) {
    INFO(c.dump());
    // Key grants precede the catalogue's publication; everything after names it.
    if (c["event_id"].get<std::string>().rfind("grant", 0) == 0) continue;
    CHECK(c["catalog"] == TestCatalog().version());
  }
  // The command line prints it too.
  TempDir keys;
  REQUIRE(WriteKeyFile(keys / "admin", Keys().admin).has_value());
  auto out = Run(
      {G60LEDGER_BIN, "trace", payment, "--ledger", s.dir.path(), "--anchor", keys / "admin.pub"},
      keys / "trace.out");
  INFO(out.output);
  CHECK(out.status == 0);
  CHECK_THAT(out.output, Catch::Contains("catalogue") && Catch::Contains(TestCatalog().version()));
}
