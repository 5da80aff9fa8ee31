// Helpers shared by the tests: temporary directories, keys, signed records.
#pragma once

#include <unistd.h>

#include <fmt/format.h>

#include <filesystem>
#include <string>

#include "ledger/catalog.h"
#include "ledger/partitioner.h"
#include "ledger/rules.h"
#include "ledger/store.h"
#include "ops/demo_stream.h"
#include "producers/signer.h"

namespace g60::testing {

// A fresh directory under /tmp, removed when the object dies.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "g60test-XXXXXX").string();
    G60_ASSERT(::mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline const DemoKeys& Keys() {
  static const DemoKeys keys = DemoKeys::FromSeed(7);
  return keys;
}

inline Record MakeRecord(uint32_t partition, int64_t offset, std::string key, std::string value,
                         int64_t timestamp_ms = 1767225600000) {
  return Record{"g60.events", partition, offset, timestamp_ms, std::move(key), std::move(value)};
}

inline v1::Event GrantEvent(const std::string& id, const KeyFile& k, v1::Role role) {
  v1::Event e;
  e.set_event_id(id);
  e.set_occurred_at_ms(1767225600000);
  e.mutable_key_grant()->set_public_key(k.public_key);
  e.mutable_key_grant()->set_role(role);
  return e;
}

inline v1::Event ApplicationEvent(const std::string& id, const std::string& applicant,
                                  int64_t base_fen, int64_t requested_fen,
                                  const std::string& programme = "G60-07b") {
  v1::Event e;
  e.set_event_id(id);
  e.set_applicant_id(applicant);
  e.set_programme(programme);
  e.set_project_id("proj-" + id);
  e.set_occurred_at_ms(1767225600000);
  e.mutable_application()->set_declared_base_fen(base_fen);
  e.mutable_application()->set_requested_fen(requested_fen);
  return e;
}

inline v1::Event ApprovalEvent(const std::string& id, const std::string& applicant,
                               const std::string& application_id,
                               std::initializer_list<int64_t> stages,
                               v1::Level level = v1::LEVEL_DISTRICT) {
  v1::Event e;
  e.set_event_id(id);
  e.set_applicant_id(applicant);
  e.set_occurred_at_ms(1767225600000);
  auto* a = e.mutable_approval();
  a->set_application_event_id(application_id);
  a->set_level(level);
  int64_t total = 0;
  uint32_t n = 0;
  for (int64_t s : stages) {
    auto* st = a->add_stages();
    st->set_number(++n);
    st->set_amount_fen(s);
    total += s;
  }
  a->set_approved_fen(total);
  return e;
}

inline v1::Event PaymentEvent(const std::string& id, const std::string& applicant,
                              const std::string& approval_id, uint32_t stage, int64_t amount) {
  v1::Event e;
  e.set_event_id(id);
  e.set_applicant_id(applicant);
  e.set_occurred_at_ms(1767225600000);
  auto* p = e.mutable_stage_payment();
  p->set_approval_event_id(approval_id);
  p->set_stage(stage);
  p->set_amount_fen(amount);
  p->set_source(v1::FUNDING_SOURCE_DISTRICT_SPECIAL_FUND);
  return e;
}

inline v1::Event ClawbackEvent(const std::string& id, const std::string& applicant,
                               std::initializer_list<std::string> payments, int64_t amount) {
  v1::Event e;
  e.set_event_id(id);
  e.set_applicant_id(applicant);
  e.set_occurred_at_ms(1767225600000);
  auto* c = e.mutable_clawback();
  for (const auto& p : payments)
    c->add_payment_event_ids(p);
  c->set_amount_fen(amount);
  c->set_reason("test");
  return e;
}

// An applicant id of 18 characters starting with `prefix` (at most 14) that Kafka's
// partitioner puts in `partition` of `count`: the first such id, by a 4-character
// suffix of digits and capitals.
inline std::string ApplicantIn(const std::string& prefix, uint32_t partition, uint32_t count) {
  G60_ASSERT(prefix.size() <= 14 && partition < count);
  static constexpr char kAlphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  std::string id = prefix + std::string(18 - prefix.size(), '0');
  for (uint32_t i = 0; i < 36 * 36 * 36 * 36; ++i) {
    for (uint32_t d = 0, n = i; d < 4; ++d, n /= 36)
      id[17 - d] = kAlphabet[n % 36];
    if (KafkaPartitionForKey(id, count) == partition) return id;
  }
  G60_ASSERT(false && "no suffix maps the prefix to the partition");
  return {};
}

// A writable ledger in `dir` trusting the test admin key, for a topic of
// `partition_count` partitions (with 1, every applicant belongs in partition 0).
inline std::unique_ptr<Ledger> OpenTestLedger(const std::string& dir,
                                              size_t map_size = size_t{64} << 20,
                                              uint32_t partition_count = 1) {
  LedgerOptions o;
  o.dir = dir;
  o.writer = true;
  o.map_size_bytes = map_size;
  o.trust_anchors = {Keys().admin.public_key};
  o.partition_count = partition_count;
  auto l = Ledger::Open(o);
  G60_ASSERT(l.has_value());
  return std::move(*l);
}

// Appends records to a ledger in one batch; returns the outcomes.
inline std::vector<AppendOutcome> AppendAll(Ledger& ledger, const std::vector<Record>& records) {
  auto batch = ledger.BeginBatch();
  G60_ASSERT(batch.has_value());
  std::vector<AppendOutcome> out;
  PublicKeyLookup lookup = [&](std::string_view id) { return ledger.PublicKeyOf(id); };
  for (const auto& r : records) {
    auto o = batch->Append(r, Precheck(r.value, lookup));
    G60_ASSERT(o.has_value());
    out.push_back(*o);
  }
  G60_ASSERT(batch->Commit().has_value());
  return out;
}

// The repository's catalogue (schemas/catalog.txtpb), as tests publish it.
inline const v1::Catalog& TestCatalog() {
  static const v1::Catalog c = [] {
    auto loaded = LoadCatalogText(std::string(G60_SOURCE_DIR) + "/schemas/catalog.txtpb");
    G60_ASSERT(loaded.has_value());
    return *loaded;
  }();
  return c;
}

inline v1::Event CatalogEvent(const std::string& id, const v1::Catalog& catalog = TestCatalog()) {
  v1::Event e;
  e.set_event_id(id);
  e.set_occurred_at_ms(1767225600000);
  e.mutable_catalog_published()->set_catalog(SerializeCatalog(catalog));
  return e;
}

// Standard set-up records: grants of portal, district, municipal and treasury keys, then
// the catalogue.
inline std::vector<Record> GrantRecords(uint32_t partition, int64_t first_offset = 0) {
  const auto& k = Keys();
  std::vector<Record> out;
  int64_t off = first_offset;
  for (auto [key, role] : {std::pair{&k.portal, v1::ROLE_APPLICANT_PORTAL},
                           std::pair{&k.district, v1::ROLE_DISTRICT_APPROVER},
                           std::pair{&k.municipal, v1::ROLE_MUNICIPAL_APPROVER},
                           std::pair{&k.treasury, v1::ROLE_TREASURY}}) {
    out.push_back(MakeRecord(partition, off++, "",
                             SignEvent(GrantEvent("grant-" + key->key_id, *key, role), k.admin)));
  }
  out.push_back(MakeRecord(partition, off++, "", SignEvent(CatalogEvent("catalog-1"), k.admin)));
  return out;
}

}  // namespace g60::testing
