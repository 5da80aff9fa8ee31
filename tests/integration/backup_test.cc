// Backups of a live ledger and their restore (ledger/backup.h; `g60ledger backup` and
// `restore`; docs/operations.md, "Backups and restores"): copies taken while a writer
// commits always verify and are snapshots of the real chain; every refusal says why and
// leaves nothing behind; the restore drill loses and doubles nothing.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "integration/harness.h"
#include "ledger/bytes.h"
#include "ledger/merkle.h"
#include "process.h"
#include "producers/keyfile.h"

using namespace g60;
using namespace g60::testing;
using namespace std::chrono_literals;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr uint32_t kTrafficPartitions = 2;

// Ordinary traffic for a ledger of two partitions, appended batch by batch as ingest
// would: the grants and catalogue first, then per partition an accepted application and
// records of garbage of varying sizes (rejected, some over a page so that LMDB writes
// overflow pages).
class Traffic {
 public:
  explicit Traffic(Ledger& ledger) : ledger_(ledger) {
    for (uint32_t p = 0; p < kTrafficPartitions; ++p) {
      auto grants = GrantRecords(p);
      next_offset_[p] = static_cast<int64_t>(grants.size());
      AppendAll(ledger_, grants);
    }
  }
  void Append(int garbage_per_partition) {
    std::vector<Record> records;
    for (uint32_t p = 0; p < kTrafficPartitions; ++p) {
      std::string applicant = ApplicantIn("91310117BK", p, kTrafficPartitions);
      std::string id = fmt::format("app-{}-{}", p, round_);
      records.push_back(
          MakeRecord(p, next_offset_[p]++, applicant,
                     SignEvent(ApplicationEvent(id, applicant, 10000, 500), Keys().portal)));
      for (int i = 0; i < garbage_per_partition; ++i) {
        size_t size = 100 + (round_ * 7919 + static_cast<uint64_t>(i) * 104729) % 2500;
        records.push_back(MakeRecord(p, next_offset_[p]++, applicant, std::string(size, 'g')));
      }
    }
    ++round_;
    AppendAll(ledger_, records);
  }

 private:
  Ledger& ledger_;
  int64_t next_offset_[kTrafficPartitions] = {};
  uint64_t round_ = 0;
};

// A ledger of `rounds` batches of traffic in `dir`, closed again.
void BuildLedger(const std::string& dir, int rounds, int garbage = 3) {
  auto ledger = OpenTestLedger(dir, size_t{256} << 20, kTrafficPartitions);
  Traffic traffic(*ledger);
  for (int i = 0; i < rounds; ++i)
    traffic.Append(garbage);
}

// A configuration that trusts the test admin key (the anchors every test ledger has).
std::string WriteConfig(const TempDir& dir, const std::string& ledger_dir,
                        const std::string& extra = "") {
  std::ofstream cfg(dir / "ledger.toml");
  cfg << "[ledger]\ndir = \"" << ledger_dir << "\"\nmap_size_mib = 256\n"
      << "[trust]\nanchors = [\"" << Base64Encode(Keys().admin.public_key) << "\"]\n"
      << extra;
  return dir / "ledger.toml";
}

std::vector<std::string> Files(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir))
    names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// The heads of the ledger in `dir`, read in this process.
std::vector<PartitionHead> HeadsOf(const std::string& dir) {
  auto ledger = OpenReader(dir);
  auto heads = ledger->Heads();
  REQUIRE(heads.has_value());
  return *heads;
}

void RequireSameHeads(const std::vector<PartitionHead>& a, const std::vector<PartitionHead>& b) {
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    INFO("partition " << a[i].partition);
    CHECK(a[i].partition == b[i].partition);
    CHECK(a[i].size == b[i].size);
    CHECK(a[i].next_offset == b[i].next_offset);
    CHECK(HexEncode(AsBytes(a[i].head_hash)) == HexEncode(AsBytes(b[i].head_hash)));
  }
}

// Changes one byte of entry `sequence` of partition 0, through LMDB (a tampered file).
void DamageEntry(const std::string& dir, uint64_t sequence) {
  lmdb::EnvOptions eo;
  eo.map_size_bytes = size_t{256} << 20;
  auto env = lmdb::Env::Open(dir, eo);
  REQUIRE(env.has_value());
  auto txn = lmdb::Txn::Begin(*env, false);
  REQUIRE(txn.has_value());
  auto entries = txn->OpenDb("entries", false);
  REQUIRE(entries.has_value());
  auto v = txn->Get(*entries, EntryKey(0, sequence));
  REQUIRE(v.has_value());
  REQUIRE(v->has_value());
  std::string bytes(**v);
  bytes[bytes.size() - 3] ^= 0x01;
  REQUIRE(txn->Put(*entries, EntryKey(0, sequence), bytes).has_value());
  REQUIRE(txn->Commit().has_value());
}

json ParseJson(const RunResult& r) {
  INFO(r.output);
  REQUIRE(r.status == 0);
  return json::parse(r.output);
}

// Mounts a tmpfs of `size` (e.g. "1m") on `dir` until the object dies. Needs root, as
// ops/test and CI run.
struct Tmpfs {
  std::string dir;
  Tmpfs(const std::string& d, const std::string& size, const std::string& log) : dir(d) {
    REQUIRE(::geteuid() == 0);
    fs::create_directories(dir);
    REQUIRE(Run({"/bin/mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", dir}, log).status ==
            0);
  }
  ~Tmpfs() { std::system(("umount " + dir + " 2>/dev/null").c_str()); }
};

}  // namespace

TEST_CASE("backup: a verified copy, page-for-page or compact, that verify accepts on its own",
          "[backup]") {
  TempDir dir;
  BuildLedger(dir / "ledger", 40);
  std::string cfg = WriteConfig(dir, dir / "ledger");
  for (const char* mode : {"--compact", "--no-compact"}) {
    INFO(mode);
    std::string dest = dir / (std::string("copy") + mode);
    auto r =
        Run({G60LEDGER_BIN, "backup", "--config", cfg, "--to", dest, mode}, dir / "backup.log");
    INFO(r.output);
    REQUIRE(r.status == 0);
    CHECK_THAT(r.output, Catch::Contains(dest + " is a verified copy of " + dir / "ledger"));
    CHECK_THAT(r.output, Catch::Contains("(the configuration's)"));
    CHECK_THAT(r.output, Catch::Contains("is on the same filesystem as"));
    CHECK_THAT(r.output, Catch::Contains("partition 1 size 165 next_offset 165 head "));
    CHECK(Files(dest) == std::vector<std::string>{"data.mdb"});  // no reader table, no lock
    CHECK_FALSE(fs::exists(dest + ".partial"));
    RequireSameHeads(HeadsOf(dest), HeadsOf(dir / "ledger"));
    // The copy stands alone: verify with the auditor's anchors accepts it.
    auto v = Run({G60LEDGER_BIN, "verify", "--config", cfg, "--ledger", dest}, dir / "verify.log");
    INFO(v.output);
    CHECK(v.status == 0);
    CHECK_THAT(v.output, Catch::Contains("verify: OK: 330 entries in 2 partition(s)"));
  }
  CHECK(fs::file_size(dir / "copy--compact/data.mdb") <
        fs::file_size(dir / "copy--no-compact/data.mdb"));
  // "DIR/" names DIR: the copy is staged beside it, not inside it.
  auto slash =
      Run({G60LEDGER_BIN, "backup", "--config", cfg, "--to", dir / "slash/"}, dir / "slash.log");
  INFO(slash.output);
  CHECK(slash.status == 0);
  CHECK(Files(dir / "slash") == std::vector<std::string>{"data.mdb"});
  // The machine-readable report carries the same facts.
  json j = ParseJson(Run({G60LEDGER_BIN, "backup", "--config", cfg, "--to", dir / "j", "--json"},
                         dir / "json.log"));
  CHECK(j["verified"] == true);
  CHECK(j["problem"].is_null());
  CHECK(j["entries"] == 2 * (5 + 40 * 4));     // grants and catalogue, then 40 rounds
  CHECK(j["signatures"] == 2 * (4 + 1 + 40));  // grants, catalogue, applications
  CHECK(j["partition_count"] == kTrafficPartitions);
  CHECK(j["trust_anchor_key_ids"] == json::array({Keys().admin.key_id}));
  CHECK(j["bytes"] == fs::file_size(dir / "j/data.mdb"));
  REQUIRE(j["partitions"].size() == 2);
  auto heads = HeadsOf(dir / "ledger");
  for (size_t p = 0; p < 2; ++p) {
    CHECK(j["partitions"][p]["partition"] == p);
    CHECK(j["partitions"][p]["size"] == heads[p].size);
    CHECK(j["partitions"][p]["next_offset"] == heads[p].next_offset);
    CHECK(j["partitions"][p]["head"] == HexEncode(AsBytes(heads[p].head_hash)));
  }
}

TEST_CASE("backup refuses what it must not do, says why, and leaves nothing behind", "[backup]") {
  TempDir dir;
  BuildLedger(dir / "ledger", 5);
  std::string cfg = WriteConfig(dir, dir / "ledger");
  auto backup = [&](const std::string& to, std::vector<std::string> more = {}) {
    std::vector<std::string> args = {G60LEDGER_BIN, "backup", "--config", cfg, "--to", to};
    args.insert(args.end(), more.begin(), more.end());
    return Run(args, dir / "refused.log");
  };

  SECTION("an existing destination is never overwritten") {
    fs::create_directories(dir / "taken");
    std::ofstream(dir / "taken/keep.txt") << "mine";
    auto r = backup(dir / "taken");
    CHECK(r.status == 2);
    CHECK_THAT(r.output, Catch::Contains("already exists: a backup never replaces anything"));
    CHECK(Files(dir / "taken") == std::vector<std::string>{"keep.txt"});
    CHECK_FALSE(fs::exists(dir / "taken.partial"));
  }
  SECTION("a destination whose parent is missing, or inside the ledger") {
    auto r = backup(dir / "no/such/dir");
    CHECK(r.status == 2);
    CHECK_THAT(r.output, Catch::Contains("does not exist (create it first)"));
    r = backup(dir / "ledger/inside");
    CHECK(r.status == 2);
    CHECK_THAT(r.output, Catch::Contains("a copy kept inside what it copies is lost with it"));
    CHECK(Files(dir / "ledger") == std::vector<std::string>{"data.mdb", "lock.mdb", "writer.lock"});
  }
  SECTION("what is not a ledger") {
    auto r = Run({G60LEDGER_BIN, "backup", "--ledger", dir / "nothing", "--to", dir / "c"},
                 dir / "r.log");
    CHECK(r.status == 2);
    CHECK_THAT(r.output,
               Catch::Contains("the ledger directory " + dir / "nothing" + " does not exist"));
    fs::create_directories(dir / "empty");
    r = Run({G60LEDGER_BIN, "backup", "--ledger", dir / "empty", "--to", dir / "c"}, dir / "r.log");
    CHECK(r.status == 2);
    CHECK_THAT(r.output, Catch::Contains("holds no ledger: there is no data.mdb in it"));
    fs::create_directories(dir / "junk");
    std::ofstream(dir / "junk/data.mdb") << std::string(20000, 'j');
    r = Run({G60LEDGER_BIN, "backup", "--ledger", dir / "junk", "--to", dir / "c"}, dir / "r.log");
    CHECK(r.status == 3);
    CHECK_THAT(r.output, Catch::Contains("is not a ledger's data file"));
    CHECK_FALSE(fs::exists(dir / "c"));
    CHECK_FALSE(fs::exists(dir / "c.partial"));
  }
  SECTION("configured trust anchors that are not the ledger's") {
    REQUIRE(WriteKeyFile(dir / "other", Keys().portal).has_value());
    auto r = Run({G60LEDGER_BIN, "backup", "--ledger", dir / "ledger", "--anchor",
                  dir / "other.pub", "--to", dir / "c"},
                 dir / "r.log");
    CHECK(r.status == 2);
    CHECK_THAT(r.output, Catch::Contains("(key ids " + Keys().portal.key_id + ") are not those") &&
                             Catch::Contains("(key ids " + Keys().admin.key_id + ")"));
    CHECK_FALSE(fs::exists(dir / "c.partial"));
  }
  SECTION("a damaged ledger gives a copy that does not verify: exit 1, nothing kept") {
    DamageEntry(dir / "ledger", 7);
    for (const char* mode : {"--compact", "--no-compact"}) {
      auto r = backup(dir / "c", {mode});
      INFO(r.output);
      CHECK(r.status == 1);
      CHECK_THAT(r.output, Catch::Contains("backup: FAILED: the copy does not verify at "
                                           "partition 0 entry 7") &&
                               Catch::Contains("Nothing was kept") &&
                               Catch::Contains("run `g60ledger verify`"));
      CHECK_FALSE(fs::exists(dir / "c"));
      CHECK_FALSE(fs::exists(dir / "c.partial"));
    }
    // With --json, standard output is the report alone, naming the problem.
    auto j = Run({"/bin/sh", "-c",
                  fmt::format("{} backup --config {} --to {} --json 2>/dev/null", G60LEDGER_BIN,
                              cfg, dir / "c")},
                 dir / "json.log");
    INFO(j.output);
    CHECK(j.status == 1);
    json report = json::parse(j.output);
    CHECK(report["verified"] == false);
    CHECK(report["problem"]["partition"] == 0);
    CHECK(report["problem"]["sequence"] == 7);
  }
  SECTION("the remains of a killed backup are cleared; a copy being written is left alone") {
    fs::create_directories(dir / "c.partial");
    std::ofstream(dir / "c.partial/data.mdb") << "half a copy";
    auto r = backup(dir / "c");
    INFO(r.output);
    CHECK(r.status == 0);
    CHECK_THAT(r.output, Catch::Contains("removed the remains of an interrupted copy"));
    CHECK(Files(dir / "c") == std::vector<std::string>{"data.mdb"});
    // Another run holds its staging directory: this one waits for nothing and says so.
    fs::create_directories(dir / "d.partial");
    int fd = ::open((dir / "d.partial").c_str(), O_RDONLY | O_DIRECTORY);
    REQUIRE(fd >= 0);
    REQUIRE(::flock(fd, LOCK_EX | LOCK_NB) == 0);
    r = backup(dir / "d");
    ::close(fd);
    CHECK(r.status == 3);
    CHECK_THAT(r.output, Catch::Contains("is being written right now"));
    CHECK_FALSE(fs::exists(dir / "d"));
    CHECK(fs::exists(dir / "d.partial"));
    // A staging directory holding something no backup writes is not ours to delete.
    std::ofstream(dir / "d.partial/notes.txt") << "someone's";
    r = backup(dir / "d");
    CHECK(r.status == 3);
    CHECK_THAT(r.output, Catch::Contains("holds notes.txt, which no backup or restore writes"));
    CHECK(fs::exists(dir / "d.partial/notes.txt"));
  }
}

TEST_CASE(
    "backup to a full disk exits 3, says so, and removes the partial copy, and to another "
    "filesystem it works",
    "[backup][disk]") {
  TempDir dir;
  BuildLedger(dir / "ledger", 120, 6);  // about 3 MB
  std::string cfg = WriteConfig(dir, dir / "ledger");
  {
    Tmpfs small(dir / "small", "1m", dir / "mount.log");
    for (const char* mode : {"--compact", "--no-compact"}) {
      auto r = Run({G60LEDGER_BIN, "backup", "--config", cfg, "--to", dir / "small/copy", mode},
                   dir / "full.log");
      INFO(r.output);
      CHECK(r.status == 3);
      CHECK_THAT(r.output,
                 Catch::Contains("No space left on device") &&
                     Catch::Contains("The disk holding " + dir / "small/copy" + " is full") &&
                     Catch::Contains("The partial copy was removed"));
      CHECK(Files(dir / "small").empty());
    }
  }
  Tmpfs other(dir / "other", "64m", dir / "mount2.log");
  auto r = Run({G60LEDGER_BIN, "backup", "--config", cfg, "--to", dir / "other/copy"},
               dir / "other.log");
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK_THAT(r.output, !Catch::Contains("same filesystem"));
  RequireSameHeads(HeadsOf(dir / "other/copy"), HeadsOf(dir / "ledger"));
}

TEST_CASE("restore puts a verified backup in place and never over a ledger in use",
          "[backup][restore]") {
  TempDir dir;
  BuildLedger(dir / "ledger", 10);
  std::string cfg = WriteConfig(dir, dir / "restored");
  REQUIRE(Run({G60LEDGER_BIN, "backup", "--config", cfg, "--ledger", dir / "ledger", "--to",
               dir / "backup"},
              dir / "backup.log")
              .status == 0);
  auto restore = [&](std::vector<std::string> more = {}) {
    std::vector<std::string> args = {G60LEDGER_BIN, "restore", "--config",
                                     cfg,           "--from",  dir / "backup"};
    args.insert(args.end(), more.begin(), more.end());
    return Run(args, dir / "restore.log");
  };
  auto r = restore();
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK_THAT(r.output, Catch::Contains(dir / "restored" + " now holds a verified copy") &&
                           Catch::Contains("ingest resumes at each partition's next_offset"));
  RequireSameHeads(HeadsOf(dir / "restored"), HeadsOf(dir / "ledger"));

  SECTION("over an existing ledger only with --replace, which keeps the old one aside") {
    r = restore();
    CHECK(r.status == 2);
    CHECK_THAT(r.output, Catch::Contains("already exists: restore into a directory that does not "
                                         "exist yet, or give --replace"));
    std::ofstream(dir / "restored/marker") << "the ledger that was there";
    r = restore({"--replace"});
    INFO(r.output);
    REQUIRE(r.status == 0);
    CHECK_THAT(r.output, Catch::Contains("the ledger that was there is kept in " +
                                         dir / "restored.replaced-"));
    CHECK_FALSE(fs::exists(dir / "restored/marker"));
    int kept = 0;
    for (const auto& e : fs::directory_iterator(dir.path())) {
      kept += e.path().filename().string().starts_with("restored.replaced-") &&
              fs::exists(e.path() / "marker");
    }
    CHECK(kept == 1);
  }
  SECTION("not while an ingest holds the writer lock") {
    auto writer = OpenTestLedger(dir / "restored", size_t{256} << 20, kTrafficPartitions);
    r = restore({"--replace"});
    CHECK(r.status == 3);
    CHECK_THAT(r.output, Catch::Contains(fmt::format("an ingest (pid {}) is writing to the ledger",
                                                     ::getpid())));
    CHECK_FALSE(fs::exists(dir / "restored.partial"));
  }
  SECTION("not while any process has the ledger open") {
    auto reader = OpenReader(dir / "restored");
    r = restore({"--replace"});
    CHECK(r.status == 3);
    CHECK_THAT(r.output, Catch::Contains(fmt::format("a process (pid {}) has the ledger in {} open",
                                                     ::getpid(), dir / "restored")));
    reader.reset();
    CHECK(restore({"--replace"}).status == 0);
  }
  SECTION("a damaged backup is refused and the ledger directory is left as it was") {
    DamageEntry(dir / "backup", 3);
    r = Run({G60LEDGER_BIN, "restore", "--config", cfg, "--from", dir / "backup", "--ledger",
             dir / "fresh"},
            dir / "restore.log");
    CHECK(r.status == 1);
    CHECK_THAT(r.output, Catch::Contains("restore: FAILED: the copy does not verify at partition 0 "
                                         "entry 3") &&
                             Catch::Contains("The backup is damaged: restore from another one"));
    CHECK_FALSE(fs::exists(dir / "fresh"));
    CHECK_FALSE(fs::exists(dir / "fresh.partial"));
  }
}

// The fault of the issue: of 415 `cp` copies taken during ingest, 26 did not verify and 2
// crashed inside liblmdb. A backup is taken in one read transaction: each of many taken
// while a writer commits continuously verifies, and is a snapshot of the very chain the
// writer goes on to extend (its heads and Merkle roots are those of the final chain at
// the same sizes).
TEST_CASE("backups taken while a writer commits continuously always verify",
          "[backup][integration]") {
  int backups = 50;
  if (const char* env = std::getenv("G60_BACKUP_LOOPS")) backups = std::atoi(env);
  TempDir dir;
  std::string cfg = WriteConfig(dir, dir / "ledger");
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> batches{0};
  std::atomic<uint64_t> started{0};  // backups started so far
  // The writer commits a batch about every few ms, and at most kPerBackup batches per
  // backup started, so that the ledger stays within its map however slow the backups run
  // (under the sanitizers each takes seconds).
  constexpr uint64_t kPerBackup = 60;
  auto writer = OpenTestLedger(dir / "ledger", size_t{512} << 20, kTrafficPartitions);
  std::thread commits([&] {
    Traffic traffic(*writer);
    while (!stop.load()) {
      if (batches.load() < (started.load() + 1) * kPerBackup) {
        traffic.Append(12);
        ++batches;
      }
      std::this_thread::sleep_for(1ms);
    }
  });
  std::vector<json> reports;
  for (int i = 0; i < backups; ++i) {
    started = static_cast<uint64_t>(i) + 1;
    std::string dest = dir / fmt::format("b{}", i);
    auto r = Run({G60LEDGER_BIN, "backup", "--config", cfg, "--to", dest, "--json",
                  i % 2 ? "--no-compact" : "--compact"},
                 dir / "backup.log");
    INFO("backup " << i << ": " << r.output);
    REQUIRE(r.status == 0);
    reports.push_back(json::parse(r.output));
    REQUIRE(reports.back()["verified"] == true);
    if (i + 1 < backups) fs::remove_all(dest);
  }
  // For contrast (not a condition of the test): file copies under the same writer. Run
  // each verify in a process of its own, since a torn copy can stop LMDB with an assertion.
  int torn = 0;
  for (int i = 0; i < 10; ++i) {
    std::string dest = dir / "cp";
    fs::remove_all(dest);
    fs::create_directories(dest);
    fs::copy_file(dir / "ledger/data.mdb", dest + "/data.mdb");
    torn +=
        Run({G60LEDGER_BIN, "verify", "--config", cfg, "--ledger", dest}, dir / "cp.log").status !=
        0;
  }
  uint64_t committed_during = batches.load();
  stop = true;
  commits.join();
  writer.reset();
  WARN(backups << " backups, all verified, while " << committed_during
               << " batches were committed; of 10 file copies taken meanwhile, " << torn
               << " did not verify");
  CHECK(committed_during >= static_cast<uint64_t>(backups));  // the writer really was busy
  auto final_ledger = OpenReader(dir / "ledger");
  auto txn = lmdb::Txn::Begin(final_ledger->env(), true);
  REQUIRE(txn.has_value());
  uint64_t last_entries = 0;
  for (const auto& report : reports) {
    CHECK(report["entries"].get<uint64_t>() >= last_entries);  // snapshots in time order
    last_entries = report["entries"].get<uint64_t>();
    for (const auto& p : report["partitions"]) {
      const auto partition = p["partition"].get<uint32_t>();
      const auto size = p["size"].get<uint64_t>();
      REQUIRE(size > 0);
      auto bytes = txn->Get(final_ledger->tables().entries, EntryKey(partition, size - 1));
      REQUIRE(bytes.has_value());
      REQUIRE(bytes->has_value());
      CHECK(p["head"] == HexEncode(AsBytes(EntryHash(**bytes))));
      CHECK(p["next_offset"] == size);
      auto root = merkle::Root(MerkleNodes(*txn, final_ledger->tables(), partition), size);
      REQUIRE(root.has_value());
      CHECK(p["merkle_root"] == HexEncode(AsBytes(*root)));
    }
  }
  CHECK(last_entries > reports.front()["entries"].get<uint64_t>());
  // The drill an operator can run: the live ledger and a backup, verified together, each
  // chain of the backup a prefix of the ledger's.
  txn->Abort();
  final_ledger.reset();
  auto set = Run({G60LEDGER_BIN, "verify-set", "--config", cfg, dir / "ledger",
                  dir / fmt::format("b{}", backups - 1)},
                 dir / "verify-set.log");
  INFO(set.output);
  CHECK(set.status == 0);
}

// The restore drill of docs/operations.md, end to end with the processes an operator
// runs: the development broker, an ingest, backups taken while events arrive and are
// ingested, the ingest SIGKILLed, one backup restored into a fresh directory, and an
// ingest on it to the end. Every message produced must be one entry, exactly once, and
// each partition's chain must equal that of a reference ledger that ingested everything
// without interruption.
TEST_CASE(
    "restore drill: back up during ingest, kill it, restore, ingest to the end: nothing "
    "lost or doubled",
    "[backup][restore][integration][kafka]") {
  TempDir dir;
  Child broker({G60LEDGER_BIN, "broker", "--partitions", std::to_string(kPartitions),
                "--bootstrap-file", dir / "bootstrap"},
               dir / "broker.log");
  for (int i = 0; i < 200 && !fs::exists(dir / "bootstrap"); ++i)
    std::this_thread::sleep_for(50ms);
  REQUIRE(fs::exists(dir / "bootstrap"));
  std::string bootstrap;
  std::ifstream(dir / "bootstrap") >> bootstrap;
  const CheckpointKey& k = TestLedgerKey();
  REQUIRE(WriteKeyFile(dir / "ledger.key",
                       KeyFile{v1::ROLE_LEDGER, KeyIdOf(k.public_key), k.public_key, k.secret_key})
              .has_value());
  std::string cfg = WriteConfig(
      dir, dir / "ledger",
      fmt::format("[kafka]\nbootstrap = \"{}\"\n[kafka.consumer]\n\"fetch.wait.max.ms\" = \"5\"\n"
                  "[ingest]\nbatch_max_messages = 200\nbatch_max_ms = 20\n"
                  "[checkpoint]\nkey_file = \"{}\"\nname = \"{}\"\nevery_entries = 100\n"
                  "topic = \"g60.checkpoints\"\n",
                  bootstrap, dir / "ledger.key", k.name));

  // Events arrive for about six seconds.
  DemoStreamOptions so;
  so.applicants = 500;
  so.seed = 31;
  so.catalog = TestCatalog();
  auto steps = GenerateDemoStream(so, Keys());
  std::atomic<uint64_t> messages{0};
  std::atomic<bool> produced{false};
  std::string feed_error;
  std::thread feeder([&] {
    ProducerOptions po;
    po.bootstrap = bootstrap;
    auto producer = Producer::Create(po);
    if (!producer) {
      feed_error = producer.error().ToString();
      return;
    }
    auto partitions = (*producer)->PartitionCount();
    if (!partitions) {
      feed_error = partitions.error().ToString();
      return;
    }
    uint64_t sent = 0;
    for (const auto& step : steps) {
      for (const auto& pe : step.events) {
        auto n = TrySendEvent(**producer, step, pe, *partitions);
        if (!n) {
          feed_error = n.error().ToString();
          return;
        }
        sent += *n;
        if (sent % 40 == 0) std::this_thread::sleep_for(100ms);
      }
      auto flushed = (*producer)->Flush();
      if (!flushed || !flushed->failures.empty()) {
        feed_error = "a delivery failed";
        return;
      }
      messages = sent;
    }
    produced = true;
  });

  Child ingest({G60LEDGER_BIN, "ingest", "--config", cfg, "--assign-all"}, dir / "ingest.log");
  for (int i = 0; i < 200 && EntriesIn(dir / "ledger") == 0; ++i)
    std::this_thread::sleep_for(50ms);
  // Backups while events arrive and the ingest writes them.
  std::vector<json> backups;
  for (int i = 0; i < 4 && !produced.load(); ++i) {
    auto r = Run(
        {G60LEDGER_BIN, "backup", "--config", cfg, "--to", dir / fmt::format("b{}", i), "--json"},
        dir / "backup.log");
    INFO(r.output);
    REQUIRE(r.status == 0);
    backups.push_back(json::parse(r.output));
    std::this_thread::sleep_for(600ms);
  }
  const bool killed_while_producing = !produced.load();
  ingest.Kill(SIGKILL);
  CHECK(ingest.Wait() == 128 + SIGKILL);
  feeder.join();
  INFO(feed_error);
  REQUIRE(produced.load());
  CHECK(killed_while_producing);
  REQUIRE(backups.size() >= 2);

  // The backup to restore: one taken in the middle of the stream.
  const json* chosen = nullptr;
  for (const auto& b : backups) {
    uint64_t n = b["entries"].get<uint64_t>();
    if (n > 0 && n < messages.load() && (!chosen || n > (*chosen)["entries"].get<uint64_t>())) {
      chosen = &b;
    }
  }
  REQUIRE(chosen != nullptr);
  const uint64_t backed_up = (*chosen)["entries"].get<uint64_t>();
  WARN(backups.size() << " backups during ingest; restoring the one of " << backed_up
                      << " entries, of " << messages.load() << " messages");

  auto restored = Run({G60LEDGER_BIN, "restore", "--config", cfg, "--from",
                       (*chosen)["destination"].get<std::string>(), "--ledger", dir / "restored"},
                      dir / "restore.log");
  INFO(restored.output);
  REQUIRE(restored.status == 0);
  auto resumed = Run({G60LEDGER_BIN, "ingest", "--config", cfg, "--ledger", dir / "restored",
                      "--assign-all", "--until-caught-up"},
                     dir / "resumed.log");
  INFO(resumed.output);
  REQUIRE(resumed.status == 0);
  // It resumed at the backup's offsets: it appended exactly what came after them.
  CHECK_THAT(resumed.output,
             Catch::Contains(fmt::format("{} entr(ies) appended", messages.load() - backed_up)));
  auto reference = Run({G60LEDGER_BIN, "ingest", "--config", cfg, "--ledger", dir / "reference",
                        "--assign-all", "--until-caught-up"},
                       dir / "reference.log");
  INFO(reference.output);
  REQUIRE(reference.status == 0);
  auto verified = Run({G60LEDGER_BIN, "verify", "--config", cfg, "--ledger", dir / "restored"},
                      dir / "verify.log");
  INFO(verified.output);
  CHECK(verified.status == 0);

  RequireSameHeads(HeadsOf(dir / "restored"), HeadsOf(dir / "reference"));
  auto ledger = OpenReader(dir / "restored");
  RequireOneEntryPerMessage(*ledger, messages.load());
  RequireVerified(*ledger);
  Census got = ReadAll(*ledger);
  ledger.reset();
  Census want = ReadAll(*OpenReader(dir / "reference"));
  CHECK(got.entries == messages.load());
  CHECK(got.seen == want.seen);  // every event, with the same verdicts, as often
  broker.Kill(SIGTERM);
  CHECK(broker.Wait() == 0);
}
