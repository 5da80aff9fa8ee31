// The ingest path itself (issue 13, item 1): an arbitrary Kafka key and value, as anyone
// who may write to the topic can send them, appended to a real LMDB ledger, read back and
// verified. The first input byte chooses the value: the remaining bytes as they are, or
// those bytes signed as an Event by the key of a role (so that the fuzzer reaches every
// rule, not only the signature check). Headers are not fuzzed because the ingest copies
// only topic, partition, offset, timestamp, key and value from a record (docs/formats.md).
//
// Properties: the append never fails; the entry reads back with exactly the key and
// value delivered; every 2,000 inputs the whole ledger verifies (chain, Merkle log,
// signatures, heads), after which a fresh ledger is started so that the map stays small.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <memory>

#include "fuzz_support.h"
#include "ledger/entry.h"
#include "ledger/lmdb.h"
#include "ledger/verify.h"
#include "support.h"

using namespace g60;
using namespace g60::testing;

namespace {

const std::string kApplicant = "91310117MA1J000001";
constexpr uint64_t kInputsPerLedger = 2000;

struct State {
  std::unique_ptr<TempDir> dir;
  std::unique_ptr<Ledger> ledger;
  int64_t offset = 0;
  uint64_t inputs = 0;
};

State& S() {
  static State s;
  return s;
}

void Fresh() {
  State& s = S();
  s.ledger.reset();
  s.dir = std::make_unique<TempDir>();
  LedgerOptions o;
  o.dir = s.dir->path();
  o.writer = true;
  o.scratch = true;  // no fsync: the properties are about bytes, not power loss
  o.map_size_bytes = size_t{1} << 30;
  o.trust_anchors = {Keys().admin.public_key};
  o.partition_count = 1;
  auto l = Ledger::Open(o);
  G60_FUZZ_CHECK(l.has_value(), "a fresh ledger opens");
  s.ledger = std::move(*l);
  // Grants, the catalogue, and an application with an approval and one payment, so that
  // approvals, payments and clawbacks meet state.
  const auto& k = Keys();
  std::vector<Record> r = GrantRecords(0);
  s.offset = static_cast<int64_t>(r.size());
  auto add = [&](const v1::Event& e, const KeyFile& key) {
    r.push_back(MakeRecord(0, s.offset++, e.applicant_id(), SignEvent(e, key)));
  };
  add(ApplicationEvent("app-1", kApplicant, 100'000, 50'000), k.portal);
  add(ApprovalEvent("apr-1", kApplicant, "app-1", {20'000, 30'000}), k.district);
  add(PaymentEvent("pay-1", kApplicant, "apr-1", 1, 20'000), k.treasury);
  AppendAll(*s.ledger, r);
  s.inputs = 0;
}

void VerifyWhole() {
  VerifyOptions vo;
  vo.trust_anchors = {Keys().admin.public_key};
  vo.threads = 1;
  auto report = VerifyLedger(*S().ledger, vo);
  G60_FUZZ_CHECK(report.has_value(), "the ledger can be read");
  if (report->first_problem)
    std::fprintf(stderr, "%s\n", report->first_problem->ToString().c_str());
  G60_FUZZ_CHECK(report->ok(), "the ledger verifies");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const auto& k = Keys();
  auto raw = [](uint8_t mode, const std::string& key, const std::string& rest) {
    // The layout FuzzedDataProvider reads below: the key (random-length string, which
    // ends at a single backslash), then the value; the mode is taken from the end.
    std::string out;
    for (char c : key) {
      out += c;
      if (c == '\\') out += '\\';
    }
    out += "\\ ";
    out += rest;
    out += static_cast<char>(mode);
    return out;
  };
  auto event = [](const v1::Event& e) { return e.SerializeAsString(); };
  fuzz::MaybeWriteSeeds({
      raw(0, kApplicant, SignEvent(ApplicationEvent("app-2", kApplicant, 1000, 500), k.portal)),
      raw(1, kApplicant, event(ApplicationEvent("app-3", kApplicant, 1000, 500))),
      raw(2, kApplicant, event(ApprovalEvent("apr-2", kApplicant, "app-1", {10}))),
      raw(4, kApplicant, event(PaymentEvent("pay-2", kApplicant, "apr-1", 2, 30'000))),
      raw(4, kApplicant, event(ClawbackEvent("clb-1", kApplicant, {"pay-1"}, 5))),
      raw(5, "", event(GrantEvent("grant-x", k.treasury2, v1::ROLE_TREASURY))),
      raw(5, "", event(CatalogEvent("catalog-2"))),
      raw(0, std::string("\xff\xfe", 2), "garbage"),
  });
  Fresh();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  State& s = S();
  FuzzedDataProvider in(data, size);
  const auto mode = in.ConsumeIntegralInRange<uint8_t>(0, 5);
  std::string key = in.ConsumeRandomLengthString(256);
  std::string rest = in.ConsumeRemainingBytesAsString();
  std::string value;
  if (mode == 0) {
    value = std::move(rest);
  } else {
    const auto& k = Keys();
    const KeyFile* signer[] = {&k.portal, &k.district, &k.municipal, &k.treasury, &k.admin};
    value = SignEventBytes(std::move(rest), *signer[mode - 1]).SerializeAsString();
  }
  const Record record = MakeRecord(0, s.offset++, key, value);
  auto outcomes = AppendAll(*s.ledger, {record});  // aborts if the append fails
  G60_FUZZ_CHECK(outcomes.size() == 1 && outcomes[0].appended, "every record is appended");

  {
    auto txn = lmdb::Txn::Begin(s.ledger->env(), true);
    G60_FUZZ_CHECK(txn.has_value(), "a read transaction begins");
    auto v = txn->Get(s.ledger->tables().entries, EntryKey(0, outcomes[0].sequence));
    G60_FUZZ_CHECK(v.has_value() && v->has_value(), "the entry is stored");
    auto entry = DecodeEntry(**v);
    G60_FUZZ_CHECK(entry.has_value(), "the entry reads back");
    G60_FUZZ_CHECK(entry->body.value() == value, "the value is kept exactly");
    G60_FUZZ_CHECK(entry->body.source().key() == key, "the key is kept exactly");
  }
  if (++s.inputs >= kInputsPerLedger) {
    VerifyWhole();
    Fresh();
  }
  return 0;
}
