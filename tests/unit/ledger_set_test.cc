// Ledgers of several ingest nodes checked together (ledger/ledger_set.h): coverage of
// every partition, and overlapping chains that must be prefixes of each other.
#include <catch2/catch.hpp>

#include "ledger/ledger_set.h"
#include "process.h"
#include "producers/keyfile.h"
#include "support.h"

using namespace g60;
using namespace g60::testing;

namespace {

// The records of partition `p` of a 2-partition topic: grants, then `n` applications.
std::vector<Record> PartitionRecords(uint32_t p, int n, const std::string& tag = "") {
  auto r = GrantRecords(p);
  const std::string applicant = ApplicantIn("91310117SET", p, 2);
  int64_t off = static_cast<int64_t>(r.size());
  for (int i = 0; i < n; ++i) {
    r.push_back(MakeRecord(
        p, off++, applicant,
        SignEvent(ApplicationEvent(fmt::format("app-{}{}-{}", tag, p, i), applicant, 1000000, 1000),
                  Keys().portal)));
  }
  return r;
}

std::vector<Record> Prefix(std::vector<Record> r, size_t n) {
  r.resize(n);
  return r;
}

}  // namespace

TEST_CASE("ledgers of one consumer group are checked together", "[ledger-set]") {
  TempDir a_dir, b_dir, c_dir;
  auto a = OpenTestLedger(a_dir.path(), size_t{64} << 20, 2);
  auto b = OpenTestLedger(b_dir.path(), size_t{64} << 20, 2);
  auto c = OpenTestLedger(c_dir.path(), size_t{64} << 20, 2);
  // Node a held both partitions, then crashed; b took partition 1 over from offset 0.
  AppendAll(*a, PartitionRecords(0, 10));
  AppendAll(*a, Prefix(PartitionRecords(1, 10), 8));
  AppendAll(*b, PartitionRecords(1, 10));

  SECTION("a prefix is consistent; every partition is held") {
    auto r = CheckLedgerSet({{"a", a.get()}, {"b", b.get()}});
    REQUIRE(r.has_value());
    INFO((r->problems.empty() ? "" : r->problems.front()));
    CHECK(r->ok());
    CHECK(r->partition_count == 2);
    REQUIRE(r->partitions.size() == 2);
    CHECK(r->partitions[1].holders.size() == 2);
    CHECK(r->partitions[1].holders[r->partitions[1].longest].first == 1);  // b's is longer
  }
  SECTION("a partition nobody holds is named") {
    auto r = CheckLedgerSet({{"b", b.get()}});
    REQUIRE(r.has_value());
    REQUIRE(r->problems.size() == 1);
    CHECK_THAT(r->problems[0], Catch::Contains("partition 0 of 2 is in none"));
  }
  SECTION("chains that diverge are named with the first entry that differs") {
    // c holds partition 1 with other events from entry 7 on.
    auto other = Prefix(PartitionRecords(1, 10), 7);
    for (const auto& r : Prefix(PartitionRecords(1, 10, "x"), 12)) {
      if (r.offset >= 7) other.push_back(r);
    }
    AppendAll(*c, other);
    auto r = CheckLedgerSet({{"a", a.get()}, {"b", b.get()}, {"c", c.get()}});
    REQUIRE(r.has_value());
    REQUIRE(r->problems.size() == 1);  // a's chain is b's prefix; c's is not
    CHECK_THAT(r->problems[0], Catch::Contains("partition 1: c (12 entries) and b (15 entries) "
                                               "diverge at entry 7"));
  }
  SECTION("partitions nobody holds are named as a range") {
    TempDir d_dir;
    auto d = OpenTestLedger(d_dir.path(), size_t{64} << 20, 9);
    AppendAll(*d, GrantRecords(4));
    auto r = CheckLedgerSet({{"d", d.get()}});
    REQUIRE(r.has_value());
    REQUIRE(r->problems.size() == 2);
    CHECK_THAT(r->problems[0], Catch::Contains("partitions 0 to 3 of 9 are in none"));
    CHECK_THAT(r->problems[1], Catch::Contains("partitions 5 to 8 of 9 are in none"));
  }
  SECTION("ledgers of topics of different partition counts are not one set") {
    TempDir d_dir;
    auto d = OpenTestLedger(d_dir.path(), size_t{64} << 20, 3);
    auto r = CheckLedgerSet({{"a", a.get()}, {"d", d.get()}});
    REQUIRE(r.has_value());
    REQUIRE_FALSE(r->ok());
    CHECK_THAT(r->problems[0], Catch::Contains("not the same topic"));
  }
}

TEST_CASE("verify-set refuses a ledger named twice, a directory that is no ledger, no anchors",
          "[ledger-set]") {
  TempDir a_dir, empty, out;
  {
    auto a = OpenTestLedger(a_dir.path(), size_t{64} << 20, 2);
    AppendAll(*a, PartitionRecords(0, 3));
  }
  REQUIRE(WriteKeyFile(out / "admin", Keys().admin).has_value());
  const std::string anchor = out / "admin.pub";
  auto twice =
      Run({G60LEDGER_BIN, "verify-set", "--anchor", anchor, a_dir.path(), a_dir.path() + "/./"},
          out / "twice.log");
  CHECK(twice.status == 2);
  CHECK_THAT(twice.output, Catch::Contains("are the same ledger"));
  auto none = Run({G60LEDGER_BIN, "verify-set", "--anchor", anchor, a_dir.path(), empty.path()},
                  out / "none.log");
  CHECK(none.status == 2);
  CHECK_THAT(none.output, Catch::Contains("is not a ledger directory (no data.mdb)"));
  // Without anchors every signature would look unauthorised: a usage error, not a finding.
  for (const char* verb : {"verify-set", "verify", "audit"}) {
    INFO(verb);
    std::vector<std::string> args = {G60LEDGER_BIN, verb};
    if (std::string(verb) != "verify-set") args.push_back("--ledger");
    args.push_back(a_dir.path());
    auto r = Run(args, out / "anchors.log");
    CHECK(r.status == 2);
    CHECK_THAT(r.output, Catch::Contains("needs the ledger's trust anchors"));
  }
}
