// The catalogue: the repository's file is valid, every kind of mistake is named, the
// calendar arithmetic of the validity window is exact, and a newly published catalogue
// changes decisions from its entry on, never before.
#include <catch2/catch.hpp>

#include "ledger/catalog.h"
#include "ledger/entry.h"
#include "ledger/lmdb.h"
#include "support.h"

using namespace g60;
using namespace g60::testing;

namespace {
bool Mentions(const std::vector<std::string>& problems, const std::string& text) {
  for (const auto& p : problems) {
    if (p.find(text) != std::string::npos) return true;
  }
  return false;
}
}  // namespace

TEST_CASE("the repository's catalogue is valid and covers every monetary measure", "[catalog]") {
  const v1::Catalog& c = TestCatalog();
  CHECK(CheckCatalog(c).empty());
  std::set<std::string> measures;
  for (const auto& p : c.programmes()) {
    if (p.level() == v1::LEVEL_DISTRICT) measures.insert(p.measure());
  }
  // POLICY-FACTS.md: the measures that pay money.
  for (const char* m : {"1", "2",   "4",   "6",  "7a",  "7b",  "7c",  "8a",  "8b",  "8c",
                        "9", "10a", "10b", "11", "13a", "13b", "17a", "17b", "17c", "17d"}) {
    INFO("measure " << m);
    CHECK(measures.contains(m));
  }
  auto idx = IndexCatalog(SerializeCatalog(c));
  REQUIRE(idx.has_value());
  // Figures of the text, in fen.
  CHECK((*idx)->Find("G60-01")->cap_fen() == 3'000'000'000);
  CHECK((*idx)->Find("G60-01")->ratio_bp() == 5000);
  CHECK((*idx)->Find("G60-08c")->fixed_fen() == 5'000'000'000);
  CHECK((*idx)->Find("G60-10a")->fixed_fen() == 400'000'000);
  CHECK((*idx)->Find("G60-17c")->yearly_cap_fen() == 200'000'000);
  CHECK((*idx)->Find("G60-06")->window_cap_fen() == 2'000'000'000);
  CHECK((*idx)->GroupOf("SH-M-07b")->id() == "OG-07b");
  CHECK((*idx)->GroupOf("G60-01")->mode() == v1::OverlapGroup::MODE_CO_FUNDED);
}

TEST_CASE("catalogue mistakes are each named", "[catalog]") {
  v1::Catalog c = TestCatalog();
  c.mutable_programmes(1)->set_id(c.programmes(0).id());
  c.mutable_programmes(2)->set_ratio_bp(10001);
  c.mutable_programmes(3)->set_kind(v1::PROGRAMME_KIND_UNSPECIFIED);
  c.mutable_overlap_groups(1)->add_programmes("G60-nope");
  c.mutable_overlap_groups(2)->add_programmes(c.overlap_groups(3).programmes(0));
  c.set_effective_from("2026-02-30");
  auto problems = CheckCatalog(c);
  CHECK(Mentions(problems, "id appears twice"));
  CHECK(Mentions(problems, "ratio_bp above 10000"));
  CHECK(Mentions(problems, "kind is missing"));
  CHECK(Mentions(problems, "programme G60-nope is not in the catalogue"));
  CHECK(Mentions(problems, "is in two groups"));
  CHECK(Mentions(problems, "does not exist"));
  CHECK_FALSE(IndexCatalog(SerializeCatalog(c)).has_value());
}

TEST_CASE("an overlap group holds once-per-applicant rewards or project programmes, not both",
          "[catalog]") {
  // 从优、就高、不重复 judges a once-only reward per enterprise and a project programme per
  // project; a group mixing them could not say which of the two it compares.
  v1::Catalog c = TestCatalog();
  for (auto& g : *c.mutable_overlap_groups()) {
    if (g.id() != "OG-10a") continue;
    for (auto& p : *c.mutable_programmes())
      if (p.id() == g.programmes(0)) p.set_once_per_applicant(false);
  }
  auto problems = CheckCatalog(c);
  CHECK(Mentions(problems, "overlap group OG-10a: mixes once-per-applicant rewards"));
  v1::Catalog cofunded = TestCatalog();
  for (auto& p : *cofunded.mutable_programmes())
    if (p.id() == "G60-01" || p.id() == "SH-M-01") p.set_once_per_applicant(true);
  CHECK(Mentions(CheckCatalog(cofunded), "overlap group OG-01: a co-funded group funds projects"));
}

TEST_CASE("validity dates are China Standard Time calendar dates", "[catalog]") {
  CHECK(*CstDateToMs("2026-01-01") == 1767196800000);  // 2025-12-31T16:00:00Z
  CHECK(CstYear(1767196800000) == 2026);
  CHECK(CstYear(1767196799999) == 2025);
  CHECK_FALSE(CstDateToMs("2026-1-1").has_value());
  CHECK_FALSE(CstDateToMs("2026-02-29").has_value());
  auto idx = IndexCatalog(SerializeCatalog(TestCatalog()));
  CHECK((*idx)->valid_from_ms == 1767196800000);
  CHECK((*idx)->valid_until_ms == 1924963200000);  // 2031-01-01 00:00 CST
  CHECK(*ApplyRatio(999, 3000) == 299);            // rounded down
  CHECK(*ApplyRatio(INT64_MAX, 10000) == INT64_MAX);
}

TEST_CASE("a new catalogue may not change how a programme is judged against earlier approvals",
          "[catalog][rules]") {
  // G60-10a out of its overlap group in catalogue 2 would let a municipal unicorn reward
  // be paid after the district's under catalogue 1: refused, naming the programme.
  TempDir dir;
  auto ledger = OpenTestLedger(dir.path());
  std::vector<Record> r = GrantRecords(0);
  int64_t off = static_cast<int64_t>(r.size());
  v1::Catalog moved = TestCatalog();
  moved.set_version("g60-2026-draft-2");
  for (auto& g : *moved.mutable_overlap_groups()) {
    if (g.id() != "OG-10a") continue;
    g.set_id("OG-10a-2");
  }
  r.push_back(MakeRecord(0, off++, "", SignEvent(CatalogEvent("catalog-2", moved), Keys().admin)));
  v1::Catalog ratio = TestCatalog();
  ratio.set_version("g60-2026-draft-3");
  for (auto& p : *ratio.mutable_programmes())
    if (p.id() == "G60-07b") p.set_ratio_bp(2000);
  r.push_back(MakeRecord(0, off++, "", SignEvent(CatalogEvent("catalog-3", ratio), Keys().admin)));
  auto out = AppendAll(*ledger, r);
  CHECK(out[out.size() - 2].reason == ledger::v1::REASON_INVALID_FIELD);
  CHECK(out.back().verdict == ledger::v1::VERDICT_ACCEPTED);  // a cap may change
  auto txn = lmdb::Txn::Begin(ledger->env(), true);
  auto v = txn->Get(ledger->tables().entries, EntryKey(0, out.size() - 2));
  const std::string detail = DecodeEntry(**v)->body.detail();
  CHECK_THAT(detail, Catch::Contains("changes how programme G60-10a is judged") &&
                         Catch::Contains("overlap group OG-10a (exclusive)") &&
                         Catch::Contains("overlap group OG-10a-2 (exclusive)"));
  txn->Abort();
  // Leaving G60-10a out of one catalogue and adding it back changed does not get round it.
  v1::Catalog without = TestCatalog();
  without.set_version("g60-2026-draft-4");
  // G60-10a, SH-M-10a and their group left out altogether (a valid catalogue).
  auto* progs = without.mutable_programmes();
  for (int i = progs->size() - 1; i >= 0; --i) {
    if (progs->Get(i).id() == "G60-10a" || progs->Get(i).id() == "SH-M-10a")
      progs->DeleteSubrange(i, 1);
  }
  auto* groups = without.mutable_overlap_groups();
  for (int i = groups->size() - 1; i >= 0; --i) {
    if (groups->Get(i).id() == "OG-10a") groups->DeleteSubrange(i, 1);
  }
  auto back = moved;
  back.set_version("g60-2026-draft-5");
  std::vector<Record> more = {
      MakeRecord(0, off++, "", SignEvent(CatalogEvent("catalog-4", without), Keys().admin)),
      MakeRecord(0, off++, "", SignEvent(CatalogEvent("catalog-5", back), Keys().admin))};
  auto later = AppendAll(*ledger, more);
  CHECK(later.front().verdict == ledger::v1::VERDICT_ACCEPTED);
  CHECK(later.back().reason == ledger::v1::REASON_INVALID_FIELD);
}

TEST_CASE("a new catalogue changes decisions from its entry on, never before", "[catalog][rules]") {
  TempDir dir;
  auto ledger = OpenTestLedger(dir.path());
  const auto& k = Keys();
  std::vector<Record> r = GrantRecords(0);
  int64_t off = static_cast<int64_t>(r.size());
  const std::string a = "91310117MA1J000001";
  auto add = [&](const v1::Event& e, const KeyFile& key) {
    r.push_back(MakeRecord(0, off++, e.applicant_id(), SignEvent(e, key)));
  };
  // Under the first catalogue, 6G is capped at 30,000,000 CNY.
  add(ApplicationEvent("app-1", a, 20'000'000'000, 2'500'000'000), k.portal);
  add(ApprovalEvent("apr-1", a, "app-1", {2'500'000'000}), k.district);
  v1::Catalog tighter = TestCatalog();
  tighter.set_version("g60-2026-draft-2");
  for (auto& p : *tighter.mutable_programmes()) {
    if (p.id() == "G60-07b") p.set_cap_fen(2'000'000'000);
  }
  add(CatalogEvent("catalog-2", tighter), k.admin);
  add(ApplicationEvent("app-2", a, 20'000'000'000, 2'500'000'000), k.portal);
  add(ApprovalEvent("apr-2", a, "app-2", {2'500'000'000}), k.district);
  auto out = AppendAll(*ledger, r);
  size_t n = out.size();
  CHECK(out[n - 4].verdict == ledger::v1::VERDICT_ACCEPTED);  // apr-1 under the first
  CHECK(out[n - 3].verdict == ledger::v1::VERDICT_ACCEPTED);  // the new catalogue
  CHECK(out[n - 1].reason == Reason::REASON_EXCEEDS_CAP);     // apr-2 under the second
  // Each entry names the catalogue it was decided under.
  auto txn = lmdb::Txn::Begin(ledger->env(), true);
  auto hash_of = [&](uint64_t seq) {
    auto v = txn->Get(ledger->tables().entries, EntryKey(0, seq));
    return DecodeEntry(**v)->body.catalog_hash();
  };
  std::string first(AsBytes(Sha256(SerializeCatalog(TestCatalog()))));
  std::string second(AsBytes(Sha256(SerializeCatalog(tighter))));
  CHECK(hash_of(n - 4) == first);
  CHECK(hash_of(n - 3) == second);
  CHECK(hash_of(n - 1) == second);
  CHECK(hash_of(0).empty());  // a key grant before any catalogue
}

TEST_CASE("catalogue text whose strings are not UTF-8 is refused, naming the field", "[catalog]") {
  // Found by the catalogue fuzzer: the text format writes any bytes through escapes, and
  // the catalogue passed `catalog check` but could never be read back from its bytes.
  auto ok = ParseCatalogText(R"(programmes { id: "X-1" name: "资助" })", "ok.txtpb");
  REQUIRE(ok.has_value());
  auto bad = ParseCatalogText(R"(programmes { id: "X-1" } programmes { id: "X-2" name: "\377" })",
                              "bad.txtpb");
  REQUIRE_FALSE(bad.has_value());
  CHECK_THAT(bad.error().message(), Catch::Contains("bad.txtpb") &&
                                        Catch::Contains("programmes[1].name") &&
                                        Catch::Contains("not UTF-8"));
}

TEST_CASE("any time from outside is given a CST year and printed without overflow", "[catalog]") {
  // Found by the ingest fuzzer: occurred_at_ms near INT64_MAX overflowed ms + 8 h (UBSan)
  // in the yearly-cap bookkeeping.
  CHECK(CstYear(std::numeric_limits<int64_t>::max()) == 9999);
  CHECK(CstYear(std::numeric_limits<int64_t>::min()) == 1);
  CHECK(FormatCstTime(std::numeric_limits<int64_t>::max()) == "9999-12-31 23:59:59 CST");
  CHECK(FormatCstTime(std::numeric_limits<int64_t>::min()) == "0001-01-01 00:00:00 CST");
  CHECK(FormatCstTime(1767225600000) == "2026-01-01 08:00:00 CST");
  CHECK(FormatCstTime(kTimeMaxMs) == "9999-12-31 23:59:59 CST");
}
