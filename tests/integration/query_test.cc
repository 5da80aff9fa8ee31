// Compliance queries against expectations computed independently from the demo stream:
// the planned events and verdicts of GenerateDemoStream, not the ledger's state.
#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <set>

#include "consumers/ingest.h"
#include "integration/harness.h"
#include "ledger/bytes.h"
#include "ledger/catalog.h"
#include "ledger/crypto.h"
#include "ledger/query.h"
#include "ops/common.h"
#include "process.h"
#include "support.h"

using namespace g60;
using namespace g60::testing;
using nlohmann::json;

namespace {

struct Demo {
  TempDir dir;
  std::vector<DemoStep> steps;
  std::unique_ptr<Ledger> ledger;
};

// The demo stream (every programme, every policy scenario, forgeries and duplicates),
// produced and ingested once for every test of this file.
Demo& IngestedDemo() {
  static std::unique_ptr<Demo> demo = [] {
    auto d = std::make_unique<Demo>();
    auto broker = StartBroker();
    d->steps = IngestDemoStream(d->dir.path(), *broker, 160, 9);
    d->ledger = OpenReader(d->dir.path());
    return d;
  }();
  return *demo;
}

// Every page of a query, concatenated.
template <typename F>
std::vector<json> AllPages(F&& query, size_t limit) {
  std::vector<json> rows;
  Page page{limit, ""};
  for (int i = 0; i < 100000; ++i) {
    auto r = query(page);
    REQUIRE(r.has_value());
    REQUIRE(r->rows.size() <= limit);
    for (auto& row : r->rows)
      rows.push_back(row);
    if (r->next.empty()) return rows;
    page.after = r->next;
  }
  FAIL("paging did not end");
  return rows;
}

bool Accepted(const PlannedEvent& pe) {
  return pe.expected == Reason::REASON_NONE;
}

}  // namespace

TEST_CASE("an applicant's history is every event the stream sent for them, in chain order",
          "[query][integration]") {
  Demo& d = IngestedDemo();
  Queries q(*d.ledger);
  std::map<std::string, std::multiset<std::string>> sent;  // applicant -> event ids
  for (const auto& s : d.steps)
    for (const auto& pe : s.events)
      if (!s.control && !pe.event.applicant_id().empty())
        sent[pe.event.applicant_id()].insert(pe.event.event_id());
  REQUIRE(sent.size() > 100);
  size_t checked = 0;
  for (const auto& [applicant, ids] : sent) {
    if (checked++ % 7 != 0) continue;
    INFO(applicant);
    auto r = q.Applicant(applicant, Page{1000, ""});
    REQUIRE(r.has_value());
    std::multiset<std::string> got;
    uint64_t last = 0;
    for (const auto& row : r->rows) {
      got.insert(row["event_id"].get<std::string>());
      CHECK(row["applicant_id"] == applicant);
      CHECK(row["sequence"].get<uint64_t>() >= last);
      last = row["sequence"];
    }
    CHECK(got == ids);
    // Paged one row at a time: the same rows.
    auto paged = AllPages([&](const Page& p) { return q.Applicant(applicant, p); }, 1);
    CHECK(paged == r->rows);
  }
  CHECK(q.Applicant("91310117NOBODY0000", Page{}).error().code() == ErrorCode::kNotFound);
  CHECK(q.Applicant("has space", Page{}).error().code() == ErrorCode::kInvalidArgument);
  CHECK(q.Applicant(sent.begin()->first, Page{10, "zz"}).error().code() ==
        ErrorCode::kInvalidArgument);
  CHECK(q.Applicant(sent.begin()->first, Page{0, ""}).error().code() ==
        ErrorCode::kInvalidArgument);
}

TEST_CASE("programme utilisation equals the accepted approvals, payments and clawbacks sent",
          "[query][integration]") {
  Demo& d = IngestedDemo();
  Queries q(*d.ledger);
  struct Sum {
    uint64_t approvals = 0, payments = 0, clawbacks = 0;
    int64_t approved = 0, paid = 0, clawed = 0;
  };
  std::map<std::string, Sum> want;
  std::map<std::string, std::string> programme_of;  // approval or payment id -> programme
  for (const auto& s : d.steps) {
    for (const auto& pe : s.events) {
      const auto& e = pe.event;
      if (!Accepted(pe)) continue;
      if (e.has_approval()) {
        programme_of[e.event_id()] = e.programme();
        ++want[e.programme()].approvals;
        want[e.programme()].approved += e.approval().approved_fen();
      } else if (e.has_stage_payment()) {
        std::string p = programme_of.at(e.stage_payment().approval_event_id());
        programme_of[e.event_id()] = p;
        ++want[p].payments;
        want[p].paid += e.stage_payment().amount_fen();
      } else if (e.has_clawback()) {
        std::string p = programme_of.at(e.clawback().payment_event_ids(0));
        ++want[p].clawbacks;
        want[p].clawed += e.clawback().amount_fen();
      }
    }
  }
  auto r = q.Utilisation("", 0);
  REQUIRE(r.has_value());
  std::map<std::string, Sum> got;
  for (const auto& row : r->rows) {
    Sum& s = got[row["programme"]];
    s.approvals += row["approvals"].get<uint64_t>();
    s.approved += row["approved_fen"].get<int64_t>();
    s.payments += row["payments"].get<uint64_t>();
    s.paid += row["paid_fen"].get<int64_t>();
    s.clawbacks += row["clawbacks"].get<uint64_t>();
    s.clawed += row["clawed_back_fen"].get<int64_t>();
    CHECK(row["over_cap"] == false);
    CHECK(row["largest_approval_fen"].get<int64_t>() <= row["cap_per_approval_fen"].get<int64_t>());
  }
  REQUIRE(want.size() > 20);
  for (const auto& [p, w] : want) {
    INFO(p);
    CHECK(got[p].approvals == w.approvals);
    CHECK(got[p].approved == w.approved);
    CHECK(got[p].payments == w.payments);
    CHECK(got[p].paid == w.paid);
    CHECK(got[p].clawbacks == w.clawbacks);
    CHECK(got[p].clawed == w.clawed);
  }
  auto one = q.Utilisation("G60-01", 2026);
  REQUIRE(one.has_value());
  REQUIRE(one->rows.size() == 1);
  CHECK(one->rows[0]["approvals"].get<uint64_t>() == want["G60-01"].approvals);
  CHECK(q.Utilisation("G60-99", 0).error().code() == ErrorCode::kNotFound);
}

TEST_CASE("payments, rejections and clawbacks in a period match the stream, paged or not",
          "[query][integration]") {
  Demo& d = IngestedDemo();
  Queries q(*d.ledger);
  const auto& catalog = TestCatalog();
  std::map<std::string, v1::Level> level_of;
  for (const auto& p : catalog.programmes())
    level_of[p.id()] = p.level();
  std::map<std::string, std::string> programme_of;
  std::map<std::pair<std::string, std::string>, int64_t> paid;  // (source, level) -> fen
  std::map<std::string, uint64_t> rejected;                     // reason -> count
  int64_t clawed = 0;
  uint64_t clawbacks = 0;
  auto partitions = static_cast<uint64_t>(kPartitions);
  for (const auto& s : d.steps) {
    for (const auto& pe : s.events) {
      const auto& e = pe.event;
      if (!Accepted(pe)) {
        rejected[ReasonName(pe.expected)] += s.control ? partitions : 1;
        continue;
      }
      if (e.has_approval()) programme_of[e.event_id()] = e.programme();
      if (e.has_stage_payment()) {
        std::string p = programme_of.at(e.stage_payment().approval_event_id());
        std::string src = v1::FundingSource_Name(e.stage_payment().source()).substr(15);
        std::string lvl = level_of.at(p) == v1::LEVEL_DISTRICT ? "DISTRICT" : "MUNICIPAL";
        paid[{src, lvl}] += e.stage_payment().amount_fen();
      }
      if (e.has_clawback()) {
        ++clawbacks;
        clawed += e.clawback().amount_fen();
      }
    }
  }
  Filter all;
  auto pays = q.Payments(all, Page{10, ""});
  REQUIRE(pays.has_value());
  std::map<std::pair<std::string, std::string>, int64_t> got;
  for (const auto& row : pays->summary)
    got[{row["source"], row["level"]}] = row["amount_fen"];
  CHECK(got == paid);
  CHECK(pays->rows.size() == 10);
  CHECK_FALSE(pays->next.empty());
  auto every = AllPages([&](const Page& p) { return q.Payments(all, p); }, 37);
  size_t accepted_payments = 0;
  for (const auto& s : d.steps)
    for (const auto& pe : s.events)
      if (Accepted(pe) && pe.event.has_stage_payment()) ++accepted_payments;
  CHECK(every.size() == accepted_payments);
  // Filtered by source and level.
  Filter district_filter;
  district_filter.source = "district_special_fund";
  district_filter.level = "district";
  auto district = q.Payments(district_filter, Page{10000, ""});
  REQUIRE(district.has_value());
  int64_t sum = 0;
  for (const auto& row : district->rows)
    sum += row["amount_fen"].get<int64_t>();
  CHECK(sum == paid[{"DISTRICT_SPECIAL_FUND", "DISTRICT"}]);
  Filter cash;
  cash.source = "CASH";
  CHECK(q.Payments(cash, Page{}).error().code() == ErrorCode::kInvalidArgument);
  Filter provincial;
  provincial.level = "PROVINCIAL";
  CHECK(q.Payments(provincial, Page{}).error().code() == ErrorCode::kInvalidArgument);
  // A period: the stream starts on 2026-01-01 (CST); nothing is before.
  Filter before;
  before.period = Period{INT64_MIN, *ParseCstTime("2026-01-01", "t")};
  CHECK(q.Payments(before, Page{})->rows.empty());
  Filter empty;
  empty.period = Period{5, 5};
  CHECK(q.Payments(empty, Page{}).error().code() == ErrorCode::kInvalidArgument);

  auto rej = q.Rejections(all, "", Page{10000, ""});
  REQUIRE(rej.has_value());
  std::map<std::string, uint64_t> got_rej;
  for (const auto& row : rej->summary)
    got_rej[row["reason"]] += row["rejected"].get<uint64_t>();
  CHECK(got_rej == rejected);
  auto caps = q.Rejections(all, "exceeds_cap", Page{10000, ""});
  REQUIRE(caps.has_value());
  CHECK(caps->rows.size() == rejected["EXCEEDS_CAP"]);
  CHECK(q.Rejections(all, "NO_SUCH_REASON", Page{}).error().code() == ErrorCode::kInvalidArgument);

  auto claws = q.Clawbacks(all.period, Page{10000, ""});
  REQUIRE(claws.has_value());
  CHECK(claws->rows.size() == clawbacks);
  CHECK(claws->summary[0]["amount_fen"].get<int64_t>() == clawed);
  for (const auto& row : claws->rows)
    CHECK_FALSE(row["approval_event_id"].get<std::string>().empty());
}

TEST_CASE("overlap decisions and outstanding stages follow the stream's approvals",
          "[query][integration]") {
  Demo& d = IngestedDemo();
  Queries q(*d.ledger);
  uint64_t duplicates = 0, carried = 0;
  std::map<std::string, const v1::Event*> approvals;  // accepted
  std::set<std::pair<std::string, uint32_t>> paid_stages;
  for (const auto& s : d.steps) {
    for (const auto& pe : s.events) {
      const auto& e = pe.event;
      if (pe.expected == Reason::REASON_DUPLICATE_SUPPORT) ++duplicates;
      if (!Accepted(pe)) continue;
      if (e.has_approval()) {
        approvals[e.event_id()] = &e;
        if (e.approval().carried_over_fen() > 0) ++carried;
      }
      if (e.has_stage_payment()) {
        paid_stages.insert({e.stage_payment().approval_event_id(), e.stage_payment().stage()});
      }
    }
  }
  auto all = AllPages([&](const Page& p) { return q.Overlaps(p); }, 3);
  uint64_t superseded = 0, dup_rows = 0;
  std::set<std::string> superseded_ids;
  for (const auto& row : all) {
    CHECK_FALSE(row["winning_approval"].get<std::string>().empty());
    CHECK(approvals.count(row["winning_approval"]));
    if (row["decision"] == "superseded") {
      ++superseded;
      superseded_ids.insert(row["approval_event_id"]);
      CHECK(row["winning_fen"].get<int64_t>() > row["approved_fen"].get<int64_t>());
    } else {
      ++dup_rows;
      CHECK(row["winning_fen"].get<int64_t>() >= row["approved_fen"].get<int64_t>());
    }
  }
  CHECK(dup_rows == duplicates);
  REQUIRE(duplicates > 0);
  CHECK(superseded >= carried);  // every approval that carried money over superseded one
  REQUIRE(superseded > 0);
}

TEST_CASE("query output renders as aligned text and as CSV", "[query]") {
  QueryResult r;
  r.title = "t";
  r.columns = {"name", "amount_fen"};
  r.rows = {{{"name", "a,b"}, {"amount_fen", 12345}}, {{"name", "say \"hi\""}, {"amount_fen", 5}}};
  CHECK(FormatCsv(r) == "name,amount_fen\r\n\"a,b\",12345\r\n\"say \"\"hi\"\"\",5\r\n");
  // Cells a spreadsheet would evaluate are neutralised; numbers stay numbers.
  CHECK(CsvField("=HYPERLINK(\"http://x\")") == "\"'=HYPERLINK(\"\"http://x\"\")\"");
  CHECK(CsvField("@SUM(1+1)") == "'@SUM(1+1)");
  CHECK(CsvField("+8621") == "'+8621");
  CHECK(CsvField("-2+3") == "'-2+3");
  CHECK(CsvField("\t=1") == "'\t=1");
  CHECK(CsvField("\r=1") == "\"'\r=1\"");
  CHECK(CsvField("-12") == "-12");
  CHECK(CsvField("-3.50") == "-3.50");
  CHECK(CsvField("91310117MA1J000001") == "91310117MA1J000001");
  std::string table = FormatTable(r);
  CHECK(table.find("123.45 CNY") != std::string::npos);
  CHECK(table.find("(2 rows)") != std::string::npos);
}

TEST_CASE("an export that cannot be written fails and keeps the position, and links stay links",
          "[query][export]") {
  TempDir dir;
  {
    auto ledger = OpenTestLedger(dir.path());
    AppendAll(*ledger, GrantRecords(0));
  }
  const std::string pos = dir / "finance.pos";
  std::ofstream(pos) << "0:2\n";
  auto position = [&] {
    std::ifstream in(pos);
    std::string p;
    std::getline(in, p);
    return p;
  };
  // A full disk, behind -o (a device, written through) and behind standard output.
  auto to_device = Run(
      {G60LEDGER_BIN, "export", "--ledger", dir.path(), "--position-file", pos, "-o", "/dev/full"},
      dir / "device.out");
  INFO(to_device.output);
  CHECK(to_device.status == 3);
  CHECK_THAT(to_device.output, Catch::Contains("writing to /dev/full failed") &&
                                   Catch::Contains("the position is unchanged"));
  CHECK(std::filesystem::is_character_file("/dev/full"));
  CHECK(position() == "0:2");
  // (Its output is not read back: reading /dev/full gives zeros without end.)
  Child to_stdout({G60LEDGER_BIN, "export", "--ledger", dir.path(), "--position-file", pos},
                  "/dev/full");
  CHECK(to_stdout.Wait() == 3);
  CHECK(position() == "0:2");
  // A symlink is written through, not replaced by a regular file.
  std::filesystem::create_symlink(dir / "real.ndjson", dir / "link.ndjson");
  auto linked = Run({G60LEDGER_BIN, "export", "--ledger", dir.path(), "--position-file", pos, "-o",
                     dir / "link.ndjson"},
                    dir / "link.out");
  INFO(linked.output);
  REQUIRE(linked.status == 0);
  CHECK(std::filesystem::is_symlink(dir / "link.ndjson"));
  std::ifstream real(dir / "real.ndjson");
  int lines = 0;
  for (std::string line; std::getline(real, line);)
    ++lines;
  CHECK(lines == 3);  // entries 2, 3 and 4 of the five control records
  CHECK(position() == "0:5");
}

TEST_CASE("every verb's output fails loudly on a full disk, and links and devices stay as they are",
          "[query][export]") {
  // Found by an attacker's review: `checkpoint --all --json /dev/full`, run as root,
  // replaced the device with a regular file, and verbs writing to a full standard output
  // exited 0.
  TempDir dir;
  {
    auto ledger = OpenTestLedger(dir.path());
    AppendAll(*ledger, GrantRecords(0));
  }
  Child heads({G60LEDGER_BIN, "heads", "--ledger", dir.path()}, "/dev/full");
  CHECK(heads.Wait() == 3);
  Child summary({G60LEDGER_BIN, "summary", "--ledger", dir.path()}, "/dev/full");
  CHECK(summary.Wait() == 3);

  // WriteOutput, behind every -o and --json FILE of the auditor's verbs.
  auto full = WriteOutput("/dev/full", "x");
  REQUIRE_FALSE(full.has_value());
  CHECK_THAT(full.error().message(), Catch::Contains("writing to /dev/full failed"));
  CHECK(std::filesystem::is_character_file("/dev/full"));
  std::filesystem::create_symlink(dir / "real.json", dir / "link.json");
  REQUIRE(WriteOutput(dir / "link.json", "{}\n").has_value());
  CHECK(std::filesystem::is_symlink(dir / "link.json"));
  std::ifstream real(dir / "real.json");
  std::string text((std::istreambuf_iterator<char>(real)), std::istreambuf_iterator<char>());
  CHECK(text == "{}\n");
  REQUIRE(WriteOutput(dir / "new.json", "[]\n").has_value());
  CHECK(std::filesystem::is_regular_file(dir / "new.json"));
  CHECK_FALSE(std::filesystem::exists(dir / "new.json.tmp"));
}

TEST_CASE("export writes every entry once, and continues from where the last export ended",
          "[query][export]") {
  TempDir dir;
  auto ledger = OpenTestLedger(dir.path());
  auto records = GrantRecords(0);
  int64_t offset = static_cast<int64_t>(records.size());
  for (int i = 0; i < 20; ++i) {
    std::string applicant = fmt::format("91310117EXPORT{:04d}", i);
    records.push_back(
        MakeRecord(0, offset++, applicant,
                   SignEvent(ApplicationEvent(fmt::format("app-{}", i), applicant, 1000000, 500000),
                             Keys().portal)));
  }
  AppendAll(*ledger, std::vector<Record>(records.begin(), records.begin() + 15));
  std::string pos = dir.path() + "/finance.pos";
  auto lines = [](const std::string& path) {
    std::ifstream in(path);
    std::vector<json> out;
    for (std::string line; std::getline(in, line);)
      out.push_back(json::parse(line));
    return out;
  };
  auto first = Run({G60LEDGER_BIN, "export", "--ledger", dir.path(), "--position-file", pos, "-o",
                    dir.path() + "/1.ndjson"},
                   dir.path() + "/e1.out");
  INFO(first.output);
  REQUIRE(first.status == 0);
  auto one = lines(dir.path() + "/1.ndjson");
  REQUIRE(one.size() == 15);
  CHECK(one.front()["sequence"] == 0);
  CHECK(one.back()["event_id"] == "app-9");
  CHECK(one.back()["verdict"] == "ACCEPTED");
  CHECK(one.back()["entry_hash"].get<std::string>().size() == 64);
  // More entries arrive; the next export has only them.
  AppendAll(*ledger, std::vector<Record>(records.begin() + 15, records.end()));
  auto second = Run({G60LEDGER_BIN, "export", "--ledger", dir.path(), "--position-file", pos, "-o",
                     dir.path() + "/2.ndjson"},
                    dir.path() + "/e2.out");
  REQUIRE(second.status == 0);
  auto two = lines(dir.path() + "/2.ndjson");
  REQUIRE(two.size() == 10);
  CHECK(two.front()["sequence"] == 15);
  CHECK(two.back()["event_id"] == "app-19");
  auto third = Run({G60LEDGER_BIN, "export", "--ledger", dir.path(), "--position-file", pos, "-o",
                    dir.path() + "/3.ndjson"},
                   dir.path() + "/e3.out");
  REQUIRE(third.status == 0);
  CHECK(lines(dir.path() + "/3.ndjson").empty());
  // CSV from an explicit position: a header and one line per entry.
  auto csv = Run({G60LEDGER_BIN, "export", "--ledger", dir.path(), "--format", "csv", "--from",
                  "0:20", "-o", dir.path() + "/4.csv"},
                 dir.path() + "/e4.out");
  REQUIRE(csv.status == 0);
  std::ifstream in(dir.path() + "/4.csv");
  std::string header, line;
  std::getline(in, header);
  CHECK(header.rfind("partition,sequence,offset", 0) == 0);
  int n = 0;
  while (std::getline(in, line))
    ++n;
  CHECK(n == 5);
  auto bad = Run({G60LEDGER_BIN, "export", "--ledger", dir.path(), "--from", "0:99"},
                 dir.path() + "/e5.out");
  CHECK(bad.status == 2);
  CHECK_THAT(bad.output, Catch::Contains("beyond partition 0"));
}

namespace {

// What the demo stream says about its accepted approvals, computed from the planned
// events and the catalogue alone (not from the ledger's state).
struct StreamFacts {
  struct App {
    std::string applicant, programme, project;
    int64_t base = 0, requested = 0, occurred_ms = 0;
  };
  struct Apr {
    std::string id, applicant, programme, project, application, key_id;
    int64_t approved = 0, occurred_ms = 0;
    bool superseded = false, paid = false;
  };
  std::map<std::string, App> apps;  // accepted applications
  std::vector<Apr> approvals;       // accepted, in stream order
  std::map<std::string, size_t> approval_at;
  std::map<std::string, std::string> programme_of;  // approval or payment id -> programme
  // applicant -> year -> {paid, clawed back}
  std::map<std::string, std::map<int, std::pair<int64_t, int64_t>>> money;
};

const v1::OverlapGroup* GroupIn(const v1::Catalog& c, const std::string& programme) {
  for (const auto& g : c.overlap_groups())
    for (const auto& p : g.programmes())
      if (p == programme) return &g;
  return nullptr;
}

const v1::Programme& ProgrammeIn(const v1::Catalog& c, const std::string& id) {
  for (const auto& p : c.programmes())
    if (p.id() == id) return p;
  FAIL("no programme " << id);
  return c.programmes(0);
}

StreamFacts FactsOf(const std::vector<DemoStep>& steps) {
  const auto& catalog = TestCatalog();
  StreamFacts f;
  std::map<std::string, size_t> live;  // supersession scope -> the live approval
  for (const auto& s : steps) {
    for (const auto& pe : s.events) {
      const auto& e = pe.event;
      if (!Accepted(pe)) continue;
      int year = CstYear(e.occurred_at_ms());
      if (e.has_application()) {
        f.apps[e.event_id()] = {e.applicant_id(),
                                e.programme(),
                                e.project_id(),
                                e.application().declared_base_fen(),
                                e.application().requested_fen(),
                                e.occurred_at_ms()};
      } else if (e.has_approval()) {
        const auto& app = f.apps.at(e.approval().application_event_id());
        f.approval_at[e.event_id()] = f.approvals.size();
        f.approvals.push_back({e.event_id(), e.applicant_id(), app.programme, app.project,
                               e.approval().application_event_id(), Keys().For(s.signer).key_id,
                               e.approval().approved_fen(), e.occurred_at_ms()});
        f.programme_of[e.event_id()] = app.programme;
        // 从优、就高、不重复: an accepted approval of a project already supported in its
        // exclusive scope is higher, and replaces the one there.
        const v1::OverlapGroup* g = GroupIn(catalog, app.programme);
        if (g && g->mode() == v1::OverlapGroup::MODE_CO_FUNDED) continue;
        std::string scope = g ? g->id() : "programme:" + app.programme;
        if (ProgrammeIn(catalog, app.programme).kind() == v1::PROGRAMME_KIND_YEARLY_OPERATING) {
          scope += "/" + std::to_string(CstYear(app.occurred_ms));
        }
        // A once-only reward is one achievement of the enterprise, whatever its project id.
        std::string achievement =
            ProgrammeIn(catalog, app.programme).once_per_applicant() ? "(enterprise)" : app.project;
        std::string key = e.applicant_id() + "|" + scope + "|" + achievement;
        if (live.count(key)) f.approvals[live[key]].superseded = true;
        live[key] = f.approvals.size() - 1;
      } else if (e.has_stage_payment()) {
        f.approvals[f.approval_at.at(e.stage_payment().approval_event_id())].paid = true;
        f.programme_of[e.event_id()] = f.programme_of.at(e.stage_payment().approval_event_id());
        f.money[e.applicant_id()][year].first += e.stage_payment().amount_fen();
      } else if (e.has_clawback()) {
        f.money[e.applicant_id()][year].second += e.clawback().amount_fen();
      }
    }
  }
  return f;
}

// Every answer names the snapshot it read: each partition's size, and the checkpoint the
// demo's ingest signed when it stopped (so every partition is covered).
void CheckPosition(const QueryResult& r, const Ledger& ledger) {
  auto heads = ledger.Heads();
  REQUIRE(heads.has_value());
  REQUIRE(r.position.size() == heads->size());
  for (size_t i = 0; i < heads->size(); ++i) {
    CHECK(r.position[i]["partition"] == (*heads)[i].partition);
    CHECK(r.position[i]["size"] == (*heads)[i].size);
    CHECK(r.position[i]["checkpoint_size"] == (*heads)[i].size);
    CHECK(r.position[i]["covered"] == true);
  }
  CHECK(r.ToJson()["position"] == r.position);
  CHECK_THAT(FormatTable(r), Catch::Contains(FormatPosition(r.position)));
}

}  // namespace

TEST_CASE("outstanding stages are the unpaid stages of the approvals the stream left live",
          "[query][integration]") {
  // Which approvals are live comes from the stream and the catalogue (FactsOf), not from
  // the ledger's own overlap answer.
  Demo& d = IngestedDemo();
  Queries q(*d.ledger);
  StreamFacts f = FactsOf(d.steps);
  std::set<std::string> live;
  for (const auto& a : f.approvals)
    if (!a.superseded) live.insert(a.id);
  std::set<std::pair<std::string, uint32_t>> want;
  int64_t want_fen = 0;
  std::set<std::pair<std::string, uint32_t>> paid_stages;
  for (const auto& s : d.steps) {
    for (const auto& pe : s.events) {
      if (Accepted(pe) && pe.event.has_stage_payment()) {
        paid_stages.insert(
            {pe.event.stage_payment().approval_event_id(), pe.event.stage_payment().stage()});
      }
    }
  }
  for (const auto& s : d.steps) {
    for (const auto& pe : s.events) {
      const auto& e = pe.event;
      if (!Accepted(pe) || !e.has_approval() || !live.count(e.event_id())) continue;
      for (const auto& st : e.approval().stages()) {
        if (paid_stages.count({e.event_id(), st.number()})) continue;
        want.insert({e.event_id(), st.number()});
        want_fen += st.amount_fen();
      }
    }
  }
  auto rows = AllPages([&](const Page& p) { return q.Outstanding(p); }, 50);
  std::set<std::pair<std::string, uint32_t>> got;
  for (const auto& row : rows)
    got.insert({row["approval_event_id"], row["stage"].get<uint32_t>()});
  CHECK(got == want);
  REQUIRE_FALSE(want.empty());
  auto one = q.Outstanding(Page{10000, ""});
  int64_t got_fen = 0;
  for (const auto& s : one->summary)
    got_fen += s["outstanding_fen"].get<int64_t>();
  CHECK(got_fen == want_fen);
}

TEST_CASE("an applicant's totals per year: entitlement counts a superseded approval once",
          "[query][integration]") {
  Demo& d = IngestedDemo();
  Queries q(*d.ledger);
  StreamFacts f = FactsOf(d.steps);
  struct Want {
    std::map<int, int64_t> approved;
    int64_t entitlement = 0;
    bool superseded = false;
  };
  std::map<std::string, Want> want;
  for (const auto& a : f.approvals) {
    Want& w = want[a.applicant];
    w.approved[CstYear(a.occurred_ms)] += a.approved;
    if (!a.superseded) w.entitlement += a.approved;
    w.superseded = w.superseded || a.superseded;
  }
  size_t with_supersession = 0;
  for (const auto& [applicant, w] : want) {
    INFO(applicant);
    auto r = q.Totals(applicant);
    REQUIRE(r.has_value());
    CheckPosition(*r, *d.ledger);
    std::map<int, int64_t> approved;
    int64_t paid = 0, clawed = 0;
    for (const auto& row : r->rows) {
      int year = row["year"];
      approved[year] = row["approved_fen"];
      auto m = f.money[applicant][year];
      CHECK(row["paid_fen"] == m.first);
      CHECK(row["clawed_back_fen"] == m.second);
      CHECK(row["net_paid_fen"] == m.first - m.second);
      paid += m.first;
      clawed += m.second;
    }
    for (auto it = approved.begin(); it != approved.end();)
      it = it->second == 0 ? approved.erase(it) : std::next(it);
    CHECK(approved == w.approved);
    const json& total = r->summary[0];
    CHECK(total["entitlement_fen"] == w.entitlement);
    CHECK(total["paid_fen"] == paid);
    CHECK(total["net_paid_fen"] == paid - clawed);
    if (w.superseded) {
      ++with_supersession;
      int64_t sum = 0;
      for (const auto& [y, v] : w.approved)
        sum += v;
      CHECK(total["approved_fen"].get<int64_t>() > w.entitlement);
      CHECK(total["approved_fen"] == sum);
    }
  }
  CHECK(with_supersession > 0);
  CHECK(q.Totals("91310117NOBODY0000").error().code() == ErrorCode::kNotFound);
  CHECK_THAT(q.Totals("has space").error().message(), Catch::Contains("applicant id"));
}

// Figures by hand: a chain of supersessions A -> B -> C over three years (OG-07b), and a
// clawback of A's payment after C won. The rules record that clawback against A, B and C
// (the money was carried into both); the entitlement must not subtract it even once.
TEST_CASE("totals: a chain of supersessions over three years, clawed back after the last",
          "[query][integration]") {
  TempDir dir;
  auto ledger = OpenTestLedger(dir.path());
  const auto& k = Keys();
  const std::string a = "91310117MA1CHAIN01";
  std::vector<Record> r = GrantRecords(0);
  int64_t off = static_cast<int64_t>(r.size());
  auto at = [](const char* date) { return *CstDateToMs(date); };
  auto add = [&](v1::Event e, const char* date, const KeyFile& key) {
    e.set_occurred_at_ms(at(date));
    r.push_back(MakeRecord(0, off++, a, SignEvent(e, key)));
  };
  const int64_t base = 10'000'000'000;  // 100,000,000 CNY of investment
  auto project = [](v1::Event e) {
    e.set_project_id("6g-chain");
    return e;
  };
  add(project(ApplicationEvent("app-a", a, base, 100'000'000, "SH-M-07b")), "2026-03-01", k.portal);
  add(ApprovalEvent("apr-a", a, "app-a", {40'000'000, 60'000'000}, v1::LEVEL_MUNICIPAL),
      "2026-03-02", k.municipal);
  add(PaymentEvent("pay-a1", a, "apr-a", 1, 40'000'000), "2026-03-10", k.treasury);
  add(project(ApplicationEvent("app-b", a, base, 200'000'000, "G60-07b")), "2027-01-10", k.portal);
  auto apr_b = ApprovalEvent("apr-b", a, "app-b", {160'000'000});
  apr_b.mutable_approval()->set_approved_fen(200'000'000);
  apr_b.mutable_approval()->set_carried_over_fen(40'000'000);
  add(apr_b, "2027-01-11", k.district);
  add(PaymentEvent("pay-b1", a, "apr-b", 1, 160'000'000), "2027-02-01", k.treasury);
  add(project(ApplicationEvent("app-c", a, base, 300'000'000, "SH-M-07b")), "2028-01-10", k.portal);
  auto apr_c = ApprovalEvent("apr-c", a, "app-c", {100'000'000}, v1::LEVEL_MUNICIPAL);
  apr_c.mutable_approval()->set_approved_fen(300'000'000);
  apr_c.mutable_approval()->set_carried_over_fen(200'000'000);  // B: 160,000,000 + 40,000,000
  add(apr_c, "2028-01-11", k.municipal);
  add(ClawbackEvent("claw-a", a, {"pay-a1"}, 10'000'000), "2028-02-01", k.treasury);
  for (const auto& o : AppendAll(*ledger, r))
    REQUIRE(o.verdict == ledger::v1::VERDICT_ACCEPTED);

  auto t = Queries(*ledger).Totals(a);
  REQUIRE(t.has_value());
  struct Row {
    int year;
    int64_t approved, entitlement, paid, clawed;
  };
  // Entitlement: A what B took over from it (40,000,000), B what C took over less what B
  // itself took over (200,000,000 - 40,000,000), C its amount less what it took over.
  const std::vector<Row> want = {{2026, 100'000'000, 40'000'000, 40'000'000, 0},
                                 {2027, 200'000'000, 160'000'000, 160'000'000, 0},
                                 {2028, 300'000'000, 100'000'000, 0, 10'000'000}};
  REQUIRE(t->rows.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    INFO("year " << want[i].year);
    const json& row = t->rows[i];
    CHECK(row["year"] == want[i].year);
    CHECK(row["approvals"] == 1);
    CHECK(row["approved_fen"] == want[i].approved);
    CHECK(row["entitlement_fen"] == want[i].entitlement);
    CHECK(row["paid_fen"] == want[i].paid);
    CHECK(row["clawed_back_fen"] == want[i].clawed);
    CHECK(row["net_paid_fen"] == want[i].paid - want[i].clawed);
  }
  const json& total = t->summary[0];
  CHECK(total["entitlement_fen"] == 300'000'000);  // C's approved amount, the project's
  CHECK(total["approved_fen"] == 600'000'000);
  CHECK(total["net_paid_fen"] == 190'000'000);
}

TEST_CASE("headroom and near-caps are the running sums of the accepted approvals",
          "[query][integration]") {
  Demo& d = IngestedDemo();
  Queries q(*d.ledger);
  StreamFacts f = FactsOf(d.steps);
  const auto& catalog = TestCatalog();
  int first_year = std::stoi(catalog.effective_from().substr(0, 4));
  struct Cap {
    int64_t used = 0, cap = 0, base = INT64_MAX;
    bool approved = false;  // a record exists (near-caps reads only those)
  };
  // (applicant, cap, scope, period) -> sum
  std::map<std::tuple<std::string, std::string, std::string, std::string>, Cap> want;
  std::set<std::pair<std::string, std::string>> once;  // (applicant, programme)
  // Every cap an accepted application falls under is listed, approved or not; with no
  // approval, a co-funding cap is on the smallest base the project's applications declare.
  std::map<std::tuple<std::string, std::string, std::string, std::string>, int64_t> app_base;
  for (const auto& [id, app] : f.apps) {
    const auto& p = ProgrammeIn(catalog, app.programme);
    int year = CstYear(app.occurred_ms);
    if (p.kind() == v1::PROGRAMME_KIND_YEARLY_OPERATING) {
      want[{app.applicant, "yearly", app.programme, std::to_string(year)}].cap = p.yearly_cap_fen();
    } else if (p.kind() == v1::PROGRAMME_KIND_CUMULATIVE) {
      int w = static_cast<int>(p.window_years());
      int from = first_year + (year - first_year) / w * w;
      want[{app.applicant, "window", app.programme, fmt::format("{}-{}", from, from + w - 1)}].cap =
          p.window_cap_fen();
    }
    const v1::OverlapGroup* g = GroupIn(catalog, app.programme);
    if (g && g->mode() == v1::OverlapGroup::MODE_CO_FUNDED) {
      std::tuple<std::string, std::string, std::string, std::string> k{
          app.applicant, "co-funding", g->id(), "project " + app.project};
      want[k];
      app_base[k] = app_base.count(k) ? std::min(app_base[k], app.base) : app.base;
    }
  }
  for (const auto& a : f.approvals) {
    const auto& app = f.apps.at(a.application);
    const auto& p = ProgrammeIn(catalog, a.programme);
    int year = CstYear(app.occurred_ms);
    if (p.once_per_applicant()) once.insert({a.applicant, a.programme});
    if (p.kind() == v1::PROGRAMME_KIND_YEARLY_OPERATING) {
      Cap& c = want[{a.applicant, "yearly", a.programme, std::to_string(year)}];
      c.approved = true;
      c.used += a.approved;
      c.cap = p.yearly_cap_fen();
    } else if (p.kind() == v1::PROGRAMME_KIND_CUMULATIVE) {
      int w = static_cast<int>(p.window_years());
      int from = first_year + (year - first_year) / w * w;
      Cap& c = want[{a.applicant, "window", a.programme, fmt::format("{}-{}", from, from + w - 1)}];
      c.approved = true;
      c.used += a.approved;
      c.cap = p.window_cap_fen();
    }
    const v1::OverlapGroup* g = GroupIn(catalog, a.programme);
    if (g && g->mode() == v1::OverlapGroup::MODE_CO_FUNDED) {
      Cap& c = want[{a.applicant, "co-funding", g->id(), "project " + app.project}];
      c.approved = true;
      c.used += a.approved;
      c.base = std::min(c.base, app.base);
    }
  }
  for (auto& [k, c] : want) {
    if (std::get<1>(k) != "co-funding") continue;
    if (c.base == INT64_MAX) c.base = app_base.at(k);
    const v1::OverlapGroup* g = nullptr;
    for (const auto& og : catalog.overlap_groups())
      if (og.id() == std::get<2>(k)) g = &og;
    REQUIRE(g);
    c.cap = std::min(c.base * g->ratio_bp() / 10000, g->cap_fen());
  }
  REQUIRE(want.size() > 3);
  size_t unapproved = 0;
  for (const auto& [k, c] : want)
    unapproved += c.approved ? 0 : 1;
  INFO(unapproved << " caps with applications but no approval");
  REQUIRE_FALSE(once.empty());
  std::set<std::string> applicants;
  for (const auto& [k, c] : want)
    applicants.insert(std::get<0>(k));
  for (const auto& [a, p] : once)
    applicants.insert(a);
  decltype(want) got;
  std::set<std::pair<std::string, std::string>> got_once;
  for (const auto& applicant : applicants) {
    auto r = q.Headroom(applicant);
    REQUIRE(r.has_value());
    for (const auto& row : r->rows) {
      if (row["cap"] == "once-only") {
        got_once.insert({applicant, row["scope"].get<std::string>()});
        CHECK_FALSE(row["approval_event_id"].get<std::string>().empty());
        continue;
      }
      Cap& c = got[{row["applicant_id"].get<std::string>(), row["cap"].get<std::string>(),
                    row["scope"].get<std::string>(), row["period"].get<std::string>()}];
      c.used = row["used_fen"];
      c.cap = row["cap_fen"];
      CHECK(row["headroom_fen"] == c.cap - c.used);
    }
  }
  CHECK(got_once == once);
  REQUIRE(got.size() == want.size());
  for (const auto& [k, c] : want) {
    INFO(std::get<0>(k) << " " << std::get<1>(k) << " " << std::get<2>(k) << " " << std::get<3>(k));
    REQUIRE(got.count(k));
    CHECK(got[k].used == c.used);
    CHECK(got[k].cap == c.cap);
  }
  // Within X% of a cap: headroom <= X% of the cap.
  for (int within : {0, 10, 50, 100}) {
    std::set<std::tuple<std::string, std::string, std::string, std::string>> near, got_near;
    for (const auto& [k, c] : want)
      if (c.approved && (c.cap - c.used) * 100 <= static_cast<int64_t>(within) * c.cap) {
        near.insert(k);
      }
    for (const auto& row : AllPages([&](const Page& p) { return q.NearCaps(within, p); }, 2))
      got_near.insert({row["applicant_id"].get<std::string>(), row["cap"].get<std::string>(),
                       row["scope"].get<std::string>(), row["period"].get<std::string>()});
    INFO("within " << within);
    CHECK(got_near == near);
  }
  CHECK(q.NearCaps(101, Page{}).error().code() == ErrorCode::kInvalidArgument);
  CHECK(q.Headroom("91310117NOBODY0000").error().code() == ErrorCode::kNotFound);
}

TEST_CASE("pending applications, unpaid approvals and decisions by key match the stream",
          "[query][integration]") {
  Demo& d = IngestedDemo();
  Queries q(*d.ledger);
  StreamFacts f = FactsOf(d.steps);
  std::set<std::string> approved_apps, want_unpaid;
  for (const auto& a : f.approvals) {
    approved_apps.insert(a.application);
    if (!a.superseded && !a.paid) want_unpaid.insert(a.id);
  }
  std::set<std::string> want_pending;
  for (const auto& [id, app] : f.apps)
    if (!approved_apps.count(id)) want_pending.insert(id);
  std::set<std::string> pending, unpaid;
  for (const auto& row : AllPages([&](const Page& p) { return q.Pending(Filter{}, p); }, 7))
    pending.insert(row["application_event_id"]);
  for (const auto& row : AllPages([&](const Page& p) { return q.Unpaid(Filter{}, p); }, 7))
    unpaid.insert(row["approval_event_id"]);
  CHECK(pending == want_pending);
  CHECK(unpaid == want_unpaid);
  REQUIRE_FALSE(want_unpaid.empty());
  // Narrowed to one programme and a range of amounts.
  const auto& some = f.approvals[f.approval_at.at(*want_unpaid.begin())];
  Filter narrow;
  narrow.programme = some.programme;
  narrow.min_fen = some.approved;
  narrow.max_fen = some.approved;
  size_t want_narrow = 0;
  for (const auto& id : want_unpaid) {
    const auto& a = f.approvals[f.approval_at.at(id)];
    if (a.programme == some.programme && a.approved == some.approved) ++want_narrow;
  }
  CHECK(q.Unpaid(narrow, Page{10000, ""})->rows.size() == want_narrow);

  // Decisions by key: every approval event sent, accepted or not, by the key it names.
  std::map<std::string, std::pair<uint64_t, uint64_t>> by_key;  // accepted, rejected
  for (const auto& s : d.steps) {
    for (const auto& pe : s.events) {
      if (!pe.event.has_approval()) continue;
      std::string key =
          s.signer == DemoSigner::kForged ? Keys().treasury.key_id : Keys().For(s.signer).key_id;
      (Accepted(pe) ? by_key[key].first : by_key[key].second) += 1;
    }
  }
  auto all = q.Decisions("", Filter{}, Page{1, ""});
  REQUIRE(all.has_value());
  std::map<std::string, std::pair<uint64_t, uint64_t>> got;
  for (const auto& s : all->summary)
    got[s["key_id"]] = {s["accepted"], s["rejected"]};
  CHECK(got == by_key);
  const std::string district = Keys().district.key_id;
  auto rows = AllPages([&](const Page& p) { return q.Decisions(district, Filter{}, p); }, 50);
  CHECK(rows.size() == by_key[district].first + by_key[district].second);
  for (const auto& row : rows)
    CHECK(row["key_id"] == district);
}

TEST_CASE("filters narrow payments, rejections and histories as the stream says",
          "[query][integration]") {
  Demo& d = IngestedDemo();
  Queries q(*d.ledger);
  StreamFacts f = FactsOf(d.steps);
  // The applicant with the most accepted payments, in its most paid programme.
  std::map<std::pair<std::string, std::string>, std::vector<int64_t>> paid;
  std::map<std::pair<std::string, std::string>, uint64_t> rejected;  // (reason, programme)
  for (const auto& s : d.steps) {
    for (const auto& pe : s.events) {
      const auto& e = pe.event;
      if (Accepted(pe) && e.has_stage_payment()) {
        paid[{e.applicant_id(), f.programme_of.at(e.event_id())}].push_back(
            e.stage_payment().amount_fen());
      }
      if (!Accepted(pe) && e.has_approval()) ++rejected[{ReasonName(pe.expected), e.programme()}];
    }
  }
  auto most = std::max_element(paid.begin(), paid.end(), [](const auto& a, const auto& b) {
    return a.second.size() < b.second.size();
  });
  REQUIRE(most != paid.end());
  const auto& [applicant, programme] = most->first;
  std::vector<int64_t> amounts = most->second;
  std::sort(amounts.begin(), amounts.end());
  Filter filter;
  filter.applicant_id = applicant;
  filter.programme = programme;
  filter.min_fen = amounts.front();
  filter.max_fen = amounts.back();
  size_t want = amounts.size();
  auto r = q.Payments(filter, Page{10000, ""});
  REQUIRE(r.has_value());
  CHECK(r->rows.size() == want);
  for (const auto& row : r->rows) {
    CHECK(row["applicant_id"] == applicant);
    CHECK(row["programme"] == programme);
  }
  // The applicant's history in that programme: its accepted approvals there, and nothing
  // of any other programme.
  Filter in_programme;
  in_programme.programme = programme;
  auto h = q.Applicant(applicant, Page{10000, ""}, in_programme);
  REQUIRE(h.has_value());
  size_t approvals = 0, want_approvals = 0;
  for (const auto& row : h->rows) {
    CHECK(row["programme"] == programme);
    if (row["type"] == "approval" && row["verdict"] == "ACCEPTED") ++approvals;
  }
  for (const auto& a : f.approvals)
    if (a.applicant == applicant && a.programme == programme) ++want_approvals;
  CHECK(approvals == want_approvals);
  // Rejected approvals by reason and programme.
  REQUIRE_FALSE(rejected.empty());
  for (const auto& [key, n] : rejected) {
    if (key.second.empty()) continue;
    INFO(key.first << " " << key.second);
    Filter p;
    p.programme = key.second;
    auto rej = q.Rejections(p, key.first, Page{10000, ""});
    REQUIRE(rej.has_value());
    size_t approvals_rejected = 0;
    for (const auto& row : rej->rows)
      if (row["type"] == "approval") ++approvals_rejected;
    CHECK(approvals_rejected == n);
  }
  // Bad filters name the parameter.
  Filter bad;
  bad.min_fen = 5;
  bad.max_fen = 4;
  CHECK_THAT(q.Payments(bad, Page{}).error().message(), Catch::Contains("min_fen"));
  bad = Filter{};
  bad.level = "PROVINCIAL";
  CHECK_THAT(q.Pending(bad, Page{}).error().message(), Catch::Contains("level 'PROVINCIAL'"));
  bad = Filter{};
  bad.applicant_id = "has space";
  CHECK_THAT(q.Unpaid(bad, Page{}).error().message(), Catch::Contains("applicant 'has space'"));
}

TEST_CASE("the catalogue in force: its version and hash, and every decision names it",
          "[query][integration]") {
  Demo& d = IngestedDemo();
  Queries q(*d.ledger);
  auto r = q.Catalogues();
  REQUIRE(r.has_value());
  CheckPosition(*r, *d.ledger);
  const auto& catalog = TestCatalog();
  REQUIRE(r->rows.size() == 1);
  const json& row = r->rows[0];
  CHECK(row["version"] == catalog.version());
  CHECK(row["hash"] == HexEncode(AsBytes(Sha256(SerializeCatalog(catalog)))));
  CHECK(row["effective_from"] == catalog.effective_from());
  CHECK(row["validity_years"] == catalog.validity_years());
  CHECK(row["valid_until"] ==
        fmt::format("{}-01-01 00:00:00", std::stoi(catalog.effective_from().substr(0, 4)) +
                                             static_cast<int>(catalog.validity_years())));
  CHECK(row["partitions_published"] == kPartitions);
  CHECK(row["partitions_in_force"] == kPartitions);
  // An applicant's decisions were all made under it.
  StreamFacts f = FactsOf(d.steps);
  auto h = q.Applicant(f.approvals.front().applicant, Page{10000, ""});
  REQUIRE(h.has_value());
  for (const auto& e : h->rows)
    CHECK(e["catalog"] == catalog.version());
}

TEST_CASE("utilisation lists idle programmes as zero rows, with a totals row",
          "[query][integration]") {
  Demo& d = IngestedDemo();
  Queries q(*d.ledger);
  StreamFacts f = FactsOf(d.steps);
  const auto& catalog = TestCatalog();
  auto idle = q.Utilisation("", 2035);
  REQUIRE(idle.has_value());
  CheckPosition(*idle, *d.ledger);
  REQUIRE(idle->rows.size() == static_cast<size_t>(catalog.programmes_size()));
  for (const auto& row : idle->rows) {
    CHECK(row["year"] == 2035);
    CHECK(row["approvals"] == 0);
    CHECK(row["over_cap"] == false);
  }
  CHECK(idle->summary[0]["approved_fen"] == 0);
  auto all = q.Utilisation("", 0);
  REQUIRE(all.has_value());
  std::set<std::string> programmes;
  for (const auto& row : all->rows) {
    // (A rejected event that names nothing on the record has no programme: its row is "".)
    if (row["programme"] != "") programmes.insert(row["programme"].get<std::string>());
    CHECK(row["over_ratio_approvals"] == 0);
  }
  std::set<std::string> in_catalog;
  for (const auto& p : catalog.programmes())
    in_catalog.insert(p.id());
  // (Rejected events may name a programme the catalogue lacks: it has rows too.)
  for (const auto& p : in_catalog)
    CHECK(programmes.count(p));
  int64_t approved = 0;
  for (const auto& a : f.approvals)
    approved += a.approved;
  CHECK(all->summary[0]["programme"] == "total");
  CHECK(all->summary[0]["approvals"] == f.approvals.size());
  CHECK(all->summary[0]["approved_fen"] == approved);
}

TEST_CASE(
    "double funding across projects is flagged for review, and a later catalogue shows "
    "approvals above its ratio cap",
    "[query][integration]") {
  TempDir dir;
  auto ledger = OpenTestLedger(dir.path());
  const auto& k = Keys();
  auto records = GrantRecords(0);
  int64_t offset = static_cast<int64_t>(records.size());
  auto add = [&](const v1::Event& e, const KeyFile& key) {
    records.push_back(MakeRecord(0, offset++, e.applicant_id(), SignEvent(e, key)));
  };
  const int64_t day = int64_t{24} * 3600 * 1000, t0 = 1767225600000;
  auto app = [&](const std::string& id, const std::string& applicant, const std::string& prog,
                 int64_t base, int64_t when) {
    v1::Event e = ApplicationEvent(id, applicant, base, base * 3 / 10, prog);
    e.set_occurred_at_ms(when);
    add(e, k.portal);
  };
  auto approve = [&](const std::string& id, const std::string& applicant,
                     const std::string& application, int64_t amount, v1::Level level,
                     int64_t when) {
    v1::Event e = ApprovalEvent(id, applicant, application, {amount}, level);
    e.set_occurred_at_ms(when);
    add(e, level == v1::LEVEL_DISTRICT ? k.district : k.municipal);
  };
  // A: a district 6G project and a municipal one of group OG-07b, a month apart, amounts
  // 2% apart: flagged on both counts.
  const std::string a = "91310117DOUBLEA001", b = "91310117DOUBLEB001";
  app("a-1", a, "G60-07b", 100000000, t0);
  approve("a-apr-1", a, "a-1", 1000000, v1::LEVEL_DISTRICT, t0 + day);
  app("a-2", a, "SH-M-07b", 100000000, t0 + 30 * day);
  approve("a-apr-2", a, "a-2", 1020000, v1::LEVEL_MUNICIPAL, t0 + 31 * day);
  // A also has a 7a project, alone in its group: nothing to compare it with.
  app("a-3", a, "G60-07a", 100000000, t0);
  approve("a-apr-3", a, "a-3", 1000000, v1::LEVEL_DISTRICT, t0 + day);
  // B: same group, 800 days apart, amounts far apart: not flagged; then a third 90 days
  // after the second (the most that is "close"): flagged (dates), amounts 50% apart.
  app("b-1", b, "G60-07b", 100000000, t0);
  approve("b-apr-1", b, "b-1", 1000000, v1::LEVEL_DISTRICT, t0 + day);
  app("b-2", b, "SH-M-07b", 100000000, t0 + 800 * day);
  approve("b-apr-2", b, "b-2", 3000000, v1::LEVEL_MUNICIPAL, t0 + 801 * day);
  app("b-3", b, "G60-07b", 100000000, t0 + 890 * day);
  approve("b-apr-3", b, "b-3", 6000000, v1::LEVEL_DISTRICT, t0 + 891 * day);
  // A ratio-capped approval at its limit (30% of 10,000,000.00 CNY) under the first
  // catalogue; a second catalogue lowers G60-07b's ratio to 10%.
  app("c-1", b, "G60-07b", 1000000000, t0 + 2 * day);
  approve("c-apr-1", b, "c-1", 300000000, v1::LEVEL_DISTRICT, t0 + 3 * day);
  v1::Catalog lower = TestCatalog();
  lower.set_version("g60-2026-draft-2");
  for (auto& p : *lower.mutable_programmes())
    if (p.id() == "G60-07b") p.set_ratio_bp(1000);
  records.push_back(
      MakeRecord(0, offset++, "", SignEvent(CatalogEvent("catalog-2", lower), k.admin)));
  auto outcomes = AppendAll(*ledger, records);
  for (size_t i = 0; i < outcomes.size(); ++i) {
    INFO("record " << i);
    CHECK(outcomes[i].reason == Reason::REASON_NONE);
  }
  Queries q(*ledger);
  auto flags = AllPages([&](const Page& p) { return q.DoubleFunding(p); }, 1);
  std::set<std::tuple<std::string, std::string, std::string>> got;
  for (const auto& row : flags) {
    got.insert({row["approval_a"].get<std::string>(), row["approval_b"].get<std::string>(),
                row["why"].get<std::string>()});
    CHECK(row["group"] == "OG-07b");
    REQUIRE(row["entries"].size() == 4);
    CHECK(row["entries"][1]["event_id"] == row["approval_a"]);
    CHECK(row["entries"][3]["event_id"] == row["approval_b"]);
  }
  // Not flagged: a-apr-3 (alone in OG-07a); b-apr-1 with b-apr-2 or b-apr-3 (800 and 890
  // days, 66.66% and 83.33% apart); b-apr-2 or b-apr-3 with c-apr-1 (798 and 888 days).
  const std::set<std::tuple<std::string, std::string, std::string>> want = {
      {"a-apr-1", "a-apr-2", "applications 30 days apart; amounts differ by 1.96%"},
      {"b-apr-2", "b-apr-3", "applications 90 days apart"},
      {"b-apr-1", "c-apr-1", "applications 2 days apart"},
  };
  CHECK(got == want);
  // The entries behind a flag are the ones the ledger holds.
  auto entry_of = [&](const std::string& id) {
    auto h = q.Applicant(id[0] == 'a' ? a : b, Page{10000, ""});
    for (const auto& row : h->rows)
      if (row["event_id"] == id) return row["sequence"].get<uint64_t>();
    return uint64_t{0};
  };
  for (const auto& row : flags)
    for (const auto& e : row["entries"])
      CHECK(e["sequence"] == entry_of(e["event_id"]));

  // The catalogues: both, the later in force; decisions name the one they were made under.
  auto cats = q.Catalogues();
  REQUIRE(cats.has_value());
  REQUIRE(cats->rows.size() == 2);
  CHECK(cats->rows[1]["version"] == "g60-2026-draft-2");
  CHECK(cats->rows[0]["partitions_in_force"] == 0);
  CHECK(cats->rows[1]["partitions_in_force"] == 1);
  auto h = q.Applicant(b, Page{10000, ""});
  for (const auto& row : h->rows)
    CHECK(row["catalog"] == TestCatalog().version());
  // Under 10%, c-apr-1's 3,000,000.00 CNY is above 1,000,000.00: over the ratio cap.
  auto u = q.Utilisation("G60-07b", 0);
  REQUIRE(u.has_value());
  uint64_t over = 0;
  for (const auto& row : u->rows) {
    over += row["over_ratio_approvals"].get<uint64_t>();
    CHECK(row["over_cap"] == (row["over_ratio_approvals"].get<uint64_t>() > 0));
  }
  CHECK(over == 1);
}

TEST_CASE(
    "the query verbs print the position: a footer line, a JSON member, and for CSV on "
    "standard error",
    "[query][integration][cli]") {
  Demo& d = IngestedDemo();
  StreamFacts f = FactsOf(d.steps);
  const std::string applicant = f.approvals.front().applicant;
  Queries q(*d.ledger);
  auto want = q.Totals(applicant);
  REQUIRE(want.has_value());
  const std::string footer = FormatPosition(want->position);
  const std::string dir = d.dir.path();
  auto text = Run({G60LEDGER_BIN, "query", "totals", applicant, "--ledger", dir}, dir + "/t.out");
  INFO(text.output);
  REQUIRE(text.status == 0);
  CHECK_THAT(text.output, Catch::EndsWith(footer + "\n") && Catch::Contains(" CNY"));
  auto js =
      Run({G60LEDGER_BIN, "query", "totals", applicant, "--ledger", dir, "--json"}, dir + "/j.out");
  REQUIRE(js.status == 0);
  CHECK(json::parse(js.output) == want->ToJson());
  // CSV: only the header and the rows on standard output, the position on standard error.
  auto csv = Run({"/bin/sh", "-c",
                  fmt::format("'{}' query totals {} --ledger '{}' --csv 2>'{}/csv.err'",
                              G60LEDGER_BIN, applicant, dir, dir)},
                 dir + "/c.out");
  REQUIRE(csv.status == 0);
  CHECK(csv.output.rfind("year,approvals,approved_fen,entitlement_fen", 0) == 0);
  CHECK(csv.output.find("position") == std::string::npos);
  std::ifstream err(dir + "/csv.err");
  std::string err_line;
  std::getline(err, err_line);
  CHECK(err_line == footer);
  // Filters and bad parameters, named.
  auto pending = Run({G60LEDGER_BIN, "query", "pending", "--ledger", dir, "--level", "municipal",
                      "--all", "--json"},
                     dir + "/p.out");
  REQUIRE(pending.status == 0);
  // (The parsed answer is kept: a range-for over a member of a temporary reads freed memory.)
  const json pending_json = json::parse(pending.output);
  for (const auto& row : pending_json["rows"])
    CHECK(row["level"] == "MUNICIPAL");
  for (auto [args, named] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"near-caps", "--within", "101"}, "within"},
           {{"payments", "--min-fen", "9", "--max-fen", "1"}, "min_fen"},
           {{"payments", "--source", "CASH"}, "source 'CASH'"},
           {{"unpaid", "--level", "PROVINCIAL"}, "level 'PROVINCIAL'"},
           {{"decisions", "--applicant", "a b"}, "applicant 'a b'"}}) {
    std::vector<std::string> argv = {G60LEDGER_BIN, "query"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--ledger", dir});
    auto bad = Run(argv, dir + "/bad.out");
    INFO(bad.output);
    CHECK(bad.status == 2);
    CHECK_THAT(bad.output, Catch::Contains(named));
  }
}
