// Every byte that arrives from outside ends as a readable entry (issue 13, item 1). Anyone
// who may write to the topic chooses the Kafka key and value, and so every string inside
// a signed event; protobuf writes a string field that is not UTF-8 but refuses to read it
// back, so one such byte in a stored entry would make the whole ledger unreadable and look
// exactly like tampering. These tests put bytes that are not UTF-8 into every string field
// of every event type (found by reflection, so that a field added later is covered too),
// append them, and read every entry back.
#include <catch2/catch.hpp>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/reflection.h>
#include <google/protobuf/stubs/logging.h>

#include "ledger/audit.h"
#include "ledger/entry.h"
#include "ledger/lmdb.h"
#include "ledger/verify.h"
#include "support.h"

using namespace g60;
using namespace g60::testing;
namespace pb = google::protobuf;

namespace {

const std::string kApplicant = "91310117MA1J000001";

// A path to one string field: the fields to descend through, then the string itself.
using FieldPath = std::vector<const pb::FieldDescriptor*>;

// Every string field reachable in `m` through fields that are set (the payload of the
// oneof in use, nested messages, repeated elements' first item).
void StringFields(const pb::Message& m, FieldPath prefix, std::vector<FieldPath>* out) {
  const pb::Reflection* r = m.GetReflection();
  std::vector<const pb::FieldDescriptor*> set;
  r->ListFields(m, &set);
  for (const pb::FieldDescriptor* f : set) {
    FieldPath path = prefix;
    path.push_back(f);
    if (f->type() == pb::FieldDescriptor::TYPE_STRING) {
      out->push_back(path);
    } else if (f->type() == pb::FieldDescriptor::TYPE_MESSAGE) {
      const pb::Message& sub =
          f->is_repeated() ? r->GetRepeatedMessage(m, f, 0) : r->GetMessage(m, f);
      StringFields(sub, path, out);
    }
  }
}

void SetString(pb::Message* m, const FieldPath& path, size_t at, const std::string& value) {
  const pb::Reflection* r = m->GetReflection();
  const pb::FieldDescriptor* f = path[at];
  if (at + 1 == path.size()) {
    if (f->is_repeated()) {
      r->SetRepeatedString(m, f, 0, value);
    } else {
      r->SetString(m, f, value);
    }
    return;
  }
  pb::Message* sub =
      f->is_repeated() ? r->MutableRepeatedMessage(m, f, 0) : r->MutableMessage(m, f);
  SetString(sub, path, at + 1, value);
}

std::string PathName(const FieldPath& path) {
  std::string s;
  for (const auto* f : path)
    s += (s.empty() ? "" : ".") + f->name();
  return s;
}

// A catalogue event whose catalogue text carries `value` in one of its string fields.
std::vector<std::string> HostileCatalogs(const std::string& value) {
  std::vector<FieldPath> paths;
  StringFields(TestCatalog(), {}, &paths);
  std::vector<std::string> out;
  for (const auto& path : paths) {
    v1::Catalog c = TestCatalog();
    SetString(&c, path, 0, value);
    v1::Event e = CatalogEvent("catalog-hostile-" + PathName(path));
    e.mutable_catalog_published()->set_catalog(c.SerializePartialAsString());
    out.push_back(SignEvent(e, Keys().admin));
  }
  return out;
}

}  // namespace

TEST_CASE("bytes that are not UTF-8 in any string field end as readable entries",
          "[hostile][store]") {
  pb::LogSilencer quiet;  // protobuf logs each string it serialises that is not UTF-8
  TempDir dir;
  auto ledger = OpenTestLedger(dir.path());
  const auto& k = Keys();
  std::vector<Record> records = GrantRecords(0);
  int64_t offset = static_cast<int64_t>(records.size());
  auto add = [&](const std::string& key, const std::string& value) {
    records.push_back(MakeRecord(0, offset++, key, value));
  };

  // Ordinary traffic first, so that the hostile events meet state to be judged against.
  add(kApplicant, SignEvent(ApplicationEvent("app-1", kApplicant, 100'000, 50'000), k.portal));
  add(kApplicant,
      SignEvent(ApprovalEvent("apr-1", kApplicant, "app-1", {20'000, 30'000}), k.district));
  add(kApplicant, SignEvent(PaymentEvent("pay-1", kApplicant, "apr-1", 1, 20'000), k.treasury));

  // The byte strings a hostile producer may send: not UTF-8 at all, a multi-byte
  // character cut short, an over-long encoding, a UTF-16 surrogate, and control bytes.
  const std::vector<std::string> hostile = {
      std::string("\xff\xfe", 2),     std::string("\xe4\xb8", 2),     std::string("ok\xc0\xaf", 4),
      std::string("\xed\xa0\x80", 3), std::string("a\0b\x1b[31m", 7),
  };
  struct Template {
    v1::Event event;
    const KeyFile* key;
  };
  const std::vector<Template> templates = {
      {ApplicationEvent("app-h", kApplicant, 100'000, 50'000), &k.portal},
      {ApprovalEvent("apr-h", kApplicant, "app-1", {10}), &k.district},
      {PaymentEvent("pay-h", kApplicant, "apr-1", 2, 30'000), &k.treasury},
      {ClawbackEvent("clb-h", kApplicant, {"pay-1"}, 5), &k.treasury},
      {GrantEvent("grant-h", k.treasury2, v1::ROLE_TREASURY), &k.admin},
  };
  size_t cases = 0;
  for (const auto& t : templates) {
    std::vector<FieldPath> paths;
    StringFields(t.event, {}, &paths);
    REQUIRE(!paths.empty());  // event_id at least
    for (const auto& path : paths) {
      for (const auto& bad : hostile) {
        v1::Event e = t.event;
        SetString(&e, path, 0, bad);
        // The signer's envelope too: a key id that is not UTF-8.
        add(kApplicant, SignEvent(e, *t.key));
        ++cases;
      }
    }
  }
  for (const auto& bad : hostile) {
    for (const auto& value : HostileCatalogs(bad)) {
      add("", value);
      ++cases;
    }
    v1::SignedEvent se;
    se.set_event(ApplicationEvent("app-k", kApplicant, 1, 1).SerializeAsString());
    se.set_key_id(bad + std::string(32 - bad.size(), 'a'));
    se.set_signature(std::string(64, '\x01'));
    add(kApplicant, se.SerializePartialAsString());
    add(bad, SignEvent(ApplicationEvent("app-key", kApplicant, 1, 1), k.portal));
    cases += 2;
  }
  // A value above the old 4 MiB entry limit, which stopped the ingest for good: now an
  // entry like any other (rejected: it is not a SignedEvent).
  add(kApplicant, std::string(5u << 20, '\xff'));
  ++cases;
  INFO(cases << " hostile records");
  auto outcomes = AppendAll(*ledger, records);
  REQUIRE(outcomes.size() == records.size());

  // Every entry reads back, whatever it holds.
  auto txn = lmdb::Txn::Begin(ledger->env(), true);
  REQUIRE(txn.has_value());
  auto head = ledger->Head(0);
  REQUIRE(head.has_value());
  REQUIRE((*head)->size == records.size());
  for (uint64_t seq = 0; seq < (*head)->size; ++seq) {
    auto v = txn->Get(ledger->tables().entries, EntryKey(0, seq));
    REQUIRE(v.has_value());
    auto entry = DecodeEntry(**v);
    INFO("entry " << seq);
    REQUIRE(entry.has_value());
    CHECK(entry->body.value() == records[seq].value);
    CHECK(entry->body.source().key() == records[seq].key);
  }
  txn->Abort();

  // And the ledger as a whole verifies and replays to the same decisions.
  VerifyOptions vo;
  vo.trust_anchors = {k.admin.public_key};
  auto report = VerifyLedger(*ledger, vo);
  REQUIRE(report.has_value());
  if (report->first_problem) FAIL(report->first_problem->ToString());
  TempDir scratch;
  AuditOptions ao;
  ao.trust_anchors = {k.admin.public_key};
  ao.scratch_dir = scratch.path();
  auto audit = AuditLedger(*ledger, ao);
  REQUIRE(audit.has_value());
  if (audit->first_discrepancy) FAIL(audit->first_discrepancy->ToString());
  CHECK(audit->entries == records.size());
}
