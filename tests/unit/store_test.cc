// The store and the first rules, through a real LMDB ledger: every verdict and reason
// of ledger/rules.cc, redeliveries, the writer lock, anchors, and a full map.
#include <catch2/catch.hpp>

#include "ledger/bundle.h"
#include "ledger/entry.h"
#include "ledger/lmdb.h"
#include "support.h"

using namespace g60;
using namespace g60::testing;
using ledger::v1::VERDICT_ACCEPTED;
using ledger::v1::VERDICT_REJECTED;

namespace {

const std::string kApplicant = "91310117MA1J000001";

// Appends records to one partition of a test ledger, one batch per call.
class Chain {
 public:
  explicit Chain(uint32_t partition = 0)
      : ledger_(OpenTestLedger(dir_.path())), partition_(partition) {
    offset_ = static_cast<int64_t>(AppendAll(*ledger_, GrantRecords(partition_)).size());
  }
  AppendOutcome Add(const std::string& value, const std::string& key = kApplicant,
                    int64_t timestamp_ms = 1767225600000) {
    auto out = AppendAll(*ledger_, {MakeRecord(partition_, offset_++, key, value, timestamp_ms)});
    return out.front();
  }
  AppendOutcome Add(const v1::Event& e, const KeyFile& k) {
    return Add(SignEvent(e, k), e.applicant_id());
  }
  // The detail sentence of the last entry.
  std::string LastDetail() {
    auto txn = lmdb::Txn::Begin(ledger_->env(), true);
    auto head = ledger_->Head(partition_);
    auto v = txn->Get(ledger_->tables().entries, EntryKey(partition_, (*head)->size - 1));
    return DecodeEntry(**v)->body.detail();
  }
  Ledger& ledger() { return *ledger_; }

 private:
  TempDir dir_;
  std::unique_ptr<Ledger> ledger_;
  uint32_t partition_;
  int64_t offset_ = 0;
};

Reason R(const AppendOutcome& o) {
  return o.reason;
}

}  // namespace

TEST_CASE("an application, approval, staged payments and a clawback are accepted",
          "[rules][store]") {
  Chain c;
  const auto& k = Keys();
  CHECK(c.Add(ApplicationEvent("app-1", kApplicant, 100'000'000, 30'000'000), k.portal).verdict ==
        VERDICT_ACCEPTED);
  CHECK(c.Add(ApprovalEvent("apr-1", kApplicant, "app-1", {10'000'000, 20'000'000}), k.district)
            .verdict == VERDICT_ACCEPTED);
  CHECK(c.Add(PaymentEvent("pay-1", kApplicant, "apr-1", 1, 10'000'000), k.treasury).verdict ==
        VERDICT_ACCEPTED);
  CHECK(c.Add(PaymentEvent("pay-2", kApplicant, "apr-1", 2, 20'000'000), k.treasury).verdict ==
        VERDICT_ACCEPTED);
  CHECK(c.Add(ClawbackEvent("clb-1", kApplicant, {"pay-1", "pay-2"}, 15'000'000), k.treasury)
            .verdict == VERDICT_ACCEPTED);
  CHECK_THAT(c.LastDetail(), Catch::Contains("150,000.00 CNY"));
  // What is left to claw back is 15,000,000 fen; one fen more is refused.
  auto over = c.Add(ClawbackEvent("clb-2", kApplicant, {"pay-1", "pay-2"}, 15'000'001), k.treasury);
  CHECK(R(over) == Reason::REASON_EXCEEDS_PAID);
  CHECK_THAT(c.LastDetail(),
             Catch::Contains("150,000.01 CNY") && Catch::Contains("150,000.00 CNY"));
  CHECK(c.Add(ClawbackEvent("clb-3", kApplicant, {"pay-2"}, 15'000'000), k.treasury).verdict ==
        VERDICT_ACCEPTED);
  CHECK(R(c.Add(ClawbackEvent("clb-4", kApplicant, {"pay-1"}, 1), k.treasury)) ==
        Reason::REASON_EXCEEDS_PAID);
}

TEST_CASE("signer checks: unknown key, bad signature, revoked, validity, role, level",
          "[rules][store]") {
  Chain c;
  const auto& k = Keys();
  auto app = ApplicationEvent("app-1", kApplicant, 100'000'000, 30'000'000);
  CHECK(R(c.Add(app, k.rogue)) == Reason::REASON_UNKNOWN_KEY);

  // A signature by another key under the portal's key id.
  std::string bytes;
  app.SerializeToString(&bytes);
  v1::SignedEvent forged = SignEventBytes(bytes, k.rogue);
  forged.set_key_id(k.portal.key_id);
  CHECK(R(c.Add(forged.SerializeAsString())) == Reason::REASON_BAD_SIGNATURE);
  // The forgery did not claim the id: the genuine event is still accepted.
  CHECK(c.Add(app, k.portal).verdict == VERDICT_ACCEPTED);

  CHECK(R(c.Add(PaymentEvent("p", kApplicant, "apr-1", 1, 1), k.portal)) ==
        Reason::REASON_ROLE_NOT_ALLOWED);
  CHECK(R(c.Add(ApprovalEvent("a", kApplicant, "app-1", {1}, v1::LEVEL_MUNICIPAL), k.district)) ==
        Reason::REASON_LEVEL_MISMATCH);
  CHECK(R(c.Add(ApprovalEvent("a2", kApplicant, "app-1", {1}), k.treasury)) ==
        Reason::REASON_ROLE_NOT_ALLOWED);

  // A key with a validity window.
  v1::Event g = GrantEvent("grant-rogue", k.rogue, v1::ROLE_TREASURY);
  g.mutable_key_grant()->set_valid_from_ms(2000);
  g.mutable_key_grant()->set_valid_until_ms(3000);
  CHECK(c.Add(SignEvent(g, k.admin), "").verdict == VERDICT_ACCEPTED);
  auto pay = SignEvent(PaymentEvent("p-early", kApplicant, "apr-x", 1, 1), k.rogue);
  CHECK(R(c.Add(pay, kApplicant, 1999)) == Reason::REASON_KEY_NOT_VALID);
  CHECK(R(c.Add(SignEvent(PaymentEvent("p-late", kApplicant, "apr-x", 1, 1), k.rogue), kApplicant,
                3000)) == Reason::REASON_KEY_NOT_VALID);
  CHECK(R(c.Add(SignEvent(PaymentEvent("p-in", kApplicant, "apr-x", 1, 1), k.rogue), kApplicant,
                2500)) == Reason::REASON_NO_APPROVAL);  // signer fine; the approval does not exist

  // Revocation: from this point on, the key's events are refused.
  v1::Event rv;
  rv.set_event_id("revoke-portal");
  rv.set_occurred_at_ms(1);
  rv.mutable_key_revoke()->set_key_id(k.portal.key_id);
  CHECK(c.Add(SignEvent(rv, k.admin), "").verdict == VERDICT_ACCEPTED);
  CHECK(R(c.Add(ApplicationEvent("app-2", kApplicant, 1, 1), k.portal)) ==
        Reason::REASON_KEY_REVOKED);
  rv.set_event_id("revoke-again");
  CHECK(R(c.Add(SignEvent(rv, k.admin), "")) == Reason::REASON_KEY_STATE);
  // Anchors cannot be revoked by an event; a key cannot be granted twice.
  rv.set_event_id("revoke-anchor");
  rv.mutable_key_revoke()->set_key_id(k.admin.key_id);
  CHECK(R(c.Add(SignEvent(rv, k.admin), "")) == Reason::REASON_KEY_STATE);
  CHECK(R(c.Add(SignEvent(GrantEvent("grant-twice", k.treasury, v1::ROLE_ADMIN), k.admin), "")) ==
        Reason::REASON_KEY_STATE);
  // Only admins grant.
  CHECK(R(c.Add(SignEvent(GrantEvent("grant-by-treasury", k.treasury2, v1::ROLE_ADMIN), k.treasury),
                "")) == Reason::REASON_ROLE_NOT_ALLOWED);
}

TEST_CASE("malformed values and events are recorded as rejected", "[rules][store]") {
  Chain c;
  CHECK(R(c.Add("")) == Reason::REASON_MALFORMED_MESSAGE);
  CHECK(R(c.Add("\xff\xff\xff")) == Reason::REASON_MALFORMED_MESSAGE);
  std::string good = SignEvent(ApplicationEvent("app-1", kApplicant, 1, 1), Keys().portal);
  CHECK(R(c.Add(good.substr(0, good.size() / 2))) == Reason::REASON_MALFORMED_MESSAGE);
  // A well-formed envelope around bytes that are not an Event.
  v1::SignedEvent se = SignEventBytes("\x0a\xff", Keys().portal);
  CHECK(R(c.Add(se.SerializeAsString())) == Reason::REASON_MALFORMED_EVENT);
  // An event without payload.
  v1::Event empty;
  empty.set_event_id("e");
  empty.set_applicant_id(kApplicant);
  empty.set_occurred_at_ms(1);
  CHECK(R(c.Add(empty, Keys().portal)) == Reason::REASON_MALFORMED_EVENT);
  // An event dated after the year 9999 (the fuzzer's INT64_MAX - 6143 among them).
  auto late = ApplicationEvent("app-late", kApplicant, 1, 1);
  late.set_occurred_at_ms(std::numeric_limits<int64_t>::max() - 6143);
  CHECK(R(c.Add(late, Keys().portal)) == Reason::REASON_INVALID_FIELD);
  CHECK_THAT(c.LastDetail(), Catch::Contains("after 9999-12-31 23:59:59.999 CST"));
  // A field rule: stages that do not sum to the approved amount.
  auto apr = ApprovalEvent("apr-1", kApplicant, "app-1", {10, 20});
  apr.mutable_approval()->set_approved_fen(31);
  CHECK(R(c.Add(apr, Keys().district)) == Reason::REASON_STAGE_PLAN_MISMATCH);
  CHECK_THAT(c.LastDetail(), Catch::Contains("sum to 0.30 CNY") && Catch::Contains("0.31 CNY"));
  // Kafka key differs from the applicant.
  CHECK(R(c.Add(good, "91310117OTHER00000")) == Reason::REASON_KAFKA_KEY_MISMATCH);
  // A key that is not UTF-8 (anyone who may write to the topic chooses it): the entry
  // reads back, and its detail shows the bytes escaped.
  CHECK(R(c.Add(good, std::string("\xff\xfe<b>\x01\"", 7))) == Reason::REASON_KAFKA_KEY_MISMATCH);
  CHECK_THAT(c.LastDetail(), Catch::Contains("Kafka key \"\\xff\\xfe<b>\\x01\\\"\""));
}

TEST_CASE("a copy with a wrong Kafka key does not use up the genuine event's id",
          "[rules][store]") {
  Chain c;
  const auto& k = Keys();
  std::string app = SignEvent(ApplicationEvent("app-1", kApplicant, 1000, 50), k.portal);
  // Sent first by someone who may write to the topic, with another key: rejected, and
  // the event id stays free.
  CHECK(R(c.Add(app, "91310117OTHER00000")) == Reason::REASON_KAFKA_KEY_MISMATCH);
  CHECK(c.Add(app, kApplicant).verdict == VERDICT_ACCEPTED);
  CHECK(R(c.Add(app, kApplicant)) == Reason::REASON_DUPLICATE_EVENT);
}

TEST_CASE("an event with no applicant, or an id that is not printable, claims no id",
          "[rules][store][identity]") {
  // A portal key signs a malformed application with no applicant under the id the admin's
  // revocation of that key will use; its Kafka key "" is in partition 0. Were its id
  // claimed, the genuine revocation would be a duplicate there and the key stay valid.
  Chain c;
  const auto& k = Keys();
  auto squat = ApplicationEvent("revoke-portal", "", 1000, 50);
  CHECK(R(c.Add(squat, k.portal)) == Reason::REASON_INVALID_FIELD);
  CHECK_THAT(c.LastDetail(), Catch::Contains("claims no id"));
  // An id with a NUL would read as another applicant's use of "app-1".
  auto nul = ApplicationEvent(std::string("app-1\0x", 7), kApplicant, 1000, 50);
  CHECK(R(c.Add(nul, k.portal)) == Reason::REASON_INVALID_FIELD);
  {
    auto txn = lmdb::Txn::Begin(c.ledger().env(), true);
    auto found = FindEvent(*txn, c.ledger().tables(), "app-1");
    REQUIRE(found.has_value());
    CHECK(found->empty());
  }
  v1::Event revoke;
  revoke.set_event_id("revoke-portal");
  revoke.set_occurred_at_ms(1767225600000);
  revoke.mutable_key_revoke()->set_key_id(k.portal.key_id);
  revoke.mutable_key_revoke()->set_reason("compromised");
  CHECK(c.Add(revoke, k.admin).verdict == VERDICT_ACCEPTED);
  CHECK(R(c.Add(ApplicationEvent("app-after", kApplicant, 1000, 50), k.portal)) ==
        Reason::REASON_KEY_REVOKED);
}

TEST_CASE("business rules name what conflicts", "[rules][store]") {
  Chain c;
  const auto& k = Keys();
  CHECK(R(c.Add(ApprovalEvent("apr-0", kApplicant, "app-missing", {5}), k.district)) ==
        Reason::REASON_NO_APPLICATION);
  REQUIRE(c.Add(ApplicationEvent("app-1", kApplicant, 1000, 50), k.portal).verdict ==
          VERDICT_ACCEPTED);
  CHECK(R(c.Add(ApprovalEvent("apr-big", kApplicant, "app-1", {51}), k.district)) ==
        Reason::REASON_EXCEEDS_REQUESTED);
  const std::string other = "91310117MA1J000002";
  // Events name one another within their applicant: another applicant's application is
  // not theirs to approve, and is simply not found.
  CHECK(R(c.Add(ApprovalEvent("apr-other", other, "app-1", {5}), k.district)) ==
        Reason::REASON_NO_APPLICATION);
  CHECK_THAT(c.LastDetail(), Catch::Contains("which applicant " + other + " does not have"));
  REQUIRE(c.Add(ApprovalEvent("apr-1", kApplicant, "app-1", {20, 30}), k.district).verdict ==
          VERDICT_ACCEPTED);
  CHECK(R(c.Add(ApprovalEvent("apr-2", kApplicant, "app-1", {5}), k.district)) ==
        Reason::REASON_ALREADY_APPROVED);
  CHECK_THAT(c.LastDetail(), Catch::Contains("apr-1"));
  CHECK(R(c.Add(PaymentEvent("pay-x", kApplicant, "apr-none", 1, 20), k.treasury)) ==
        Reason::REASON_NO_APPROVAL);
  CHECK(R(c.Add(PaymentEvent("pay-3", kApplicant, "apr-1", 3, 20), k.treasury)) ==
        Reason::REASON_UNKNOWN_STAGE);
  CHECK(R(c.Add(PaymentEvent("pay-w", kApplicant, "apr-1", 1, 21), k.treasury)) ==
        Reason::REASON_STAGE_AMOUNT);
  CHECK(R(c.Add(PaymentEvent("pay-big", kApplicant, "apr-1", 2, 51), k.treasury)) ==
        Reason::REASON_EXCEEDS_APPROVAL);
  REQUIRE(c.Add(PaymentEvent("pay-1", kApplicant, "apr-1", 1, 20), k.treasury).verdict ==
          VERDICT_ACCEPTED);
  CHECK(R(c.Add(PaymentEvent("pay-1b", kApplicant, "apr-1", 1, 20), k.treasury)) ==
        Reason::REASON_STAGE_ALREADY_PAID);
  CHECK_THAT(c.LastDetail(), Catch::Contains("already paid by pay-1"));
  // The same event again (a producer retry at a new offset) is a duplicate.
  CHECK(R(c.Add(PaymentEvent("pay-1", kApplicant, "apr-1", 1, 20), k.treasury)) ==
        Reason::REASON_DUPLICATE_EVENT);
  CHECK(R(c.Add(ClawbackEvent("clb-x", kApplicant, {"pay-none"}, 1), k.treasury)) ==
        Reason::REASON_NO_PAYMENT);
  CHECK(R(c.Add(ApplicationEvent("app-1", kApplicant, 1, 1), k.portal)) ==
        Reason::REASON_DUPLICATE_EVENT);
}

TEST_CASE("money overflow is a rejection, never a wrap", "[rules][store][money]") {
  Chain c;
  const auto& k = Keys();
  auto apr = ApprovalEvent("apr-1", kApplicant, "app-1", {INT64_MAX});
  auto* stage = apr.mutable_approval()->add_stages();
  stage->set_number(2);
  stage->set_amount_fen(2);
  apr.mutable_approval()->set_approved_fen(1);  // not what a wrapped sum would give either
  CHECK(R(c.Add(apr, k.district)) == Reason::REASON_INVALID_FIELD);
  CHECK_THAT(c.LastDetail(), Catch::Contains("overflow"));
}

TEST_CASE("a redelivered record is skipped, not appended twice", "[store]") {
  TempDir dir;
  auto ledger = OpenTestLedger(dir.path());
  auto grants = GrantRecords(2);
  auto first = AppendAll(*ledger, grants);
  CHECK(first.back().appended);
  auto again = AppendAll(*ledger, grants);
  for (const auto& o : again)
    CHECK_FALSE(o.appended);
  auto head = ledger->Head(2);
  REQUIRE(*head);
  CHECK((*head)->size == grants.size());
  CHECK((*head)->next_offset == static_cast<int64_t>(grants.size()));
  CHECK((*head)->head_hash == first.back().entry_hash);
}

TEST_CASE("a batch that is not committed leaves no trace", "[store]") {
  TempDir dir;
  auto ledger = OpenTestLedger(dir.path());
  {
    auto batch = ledger->BeginBatch();
    auto r = GrantRecords(0).front();
    REQUIRE(batch->Append(r, Precheck(r.value, nullptr)).has_value());
  }  // destroyed without Commit
  CHECK((*ledger->Heads()).empty());
}

TEST_CASE("one writer per ledger, readers any time", "[store]") {
  TempDir dir;
  auto writer = OpenTestLedger(dir.path());
  LedgerOptions o;
  o.dir = dir.path();
  o.writer = true;
  o.trust_anchors = {Keys().admin.public_key};
  auto second = Ledger::Open(o);
  REQUIRE_FALSE(second.has_value());
  CHECK(second.error().code() == ErrorCode::kFailedPrecondition);
  CHECK_THAT(second.error().message(), Catch::Contains("another process"));
  o.writer = false;
  CHECK(Ledger::Open(o).has_value());
}

TEST_CASE("a ledger file cut short is refused, not read into a SIGBUS", "[store]") {
  TempDir dir;
  {
    auto ledger = OpenTestLedger(dir.path());
    std::vector<Record> records = GrantRecords(0);
    for (int i = 0; i < 200; ++i) {
      std::string applicant = fmt::format("91310117CUT{:07d}", i);
      records.push_back(
          MakeRecord(0, static_cast<int64_t>(records.size()), applicant,
                     SignEvent(ApplicationEvent(fmt::format("app-{}", i), applicant, 1000, 50),
                               Keys().portal)));
    }
    AppendAll(*ledger, records);
  }
  const auto file = std::filesystem::path(dir.path()) / "data.mdb";
  const auto size = std::filesystem::file_size(file);
  std::filesystem::resize_file(file, size / 2);
  LedgerOptions o;
  o.dir = dir.path();
  auto l = Ledger::Open(o);
  REQUIRE_FALSE(l.has_value());
  CHECK(l.error().code() == ErrorCode::kDataLoss);
  CHECK_THAT(l.error().message(), Catch::Contains("data.mdb is cut short") &&
                                      Catch::Contains(std::to_string(size / 2) + " bytes"));
}

TEST_CASE("a ledger keeps the trust anchors it was created with", "[store]") {
  TempDir dir;
  { OpenTestLedger(dir.path()); }
  LedgerOptions o;
  o.dir = dir.path();
  o.writer = true;
  o.trust_anchors = {Keys().rogue.public_key};
  auto l = Ledger::Open(o);
  REQUIRE_FALSE(l.has_value());
  CHECK_THAT(l.error().message(), Catch::Contains("trust anchors"));
}

TEST_CASE("a full LMDB map is a clear, recoverable error", "[store]") {
  TempDir dir;
  const size_t small = size_t{1} << 20;  // 1 MiB
  uint64_t committed = 0;
  {
    auto ledger = OpenTestLedger(dir.path(), small);
    committed = AppendAll(*ledger, GrantRecords(0)).size();
    std::string big(20000, 'x');  // malformed values of 20 kB each
    auto offset = static_cast<int64_t>(committed);
    std::optional<Error> error;
    while (!error) {
      auto batch = ledger->BeginBatch();
      REQUIRE(batch.has_value());
      Record r = MakeRecord(0, offset, "k", big);
      auto o = batch->Append(r, Precheck(r.value, nullptr));
      if (!o) {
        error = o.error();
        break;
      }
      auto s = batch->Commit();
      if (!s) {
        error = s.error();
        break;
      }
      ++offset;
      ++committed;
    }
    CHECK(error->code() == ErrorCode::kResourceExhausted);
    CHECK_THAT(error->message(), Catch::Contains("map is full"));
  }
  // Reopened with a larger map, everything committed is there and appends resume.
  auto ledger = OpenTestLedger(dir.path(), small * 4);
  auto head = ledger->Head(0);
  REQUIRE(*head);
  CHECK((*head)->size == committed);
  auto more = AppendAll(*ledger, {MakeRecord(0, (*head)->next_offset, "k", "zz")});
  CHECK(more[0].appended);
}

TEST_CASE("a ledger of an older format is named as such, not as 'not a ledger'", "[store]") {
  TempDir dir;
  {
    auto env = lmdb::Env::Open(dir.path(), lmdb::EnvOptions{});
    REQUIRE(env.has_value());
    auto txn = lmdb::Txn::Begin(*env, false);
    REQUIRE(txn.has_value());
    auto meta = txn->OpenDb("meta", true);
    REQUIRE(meta.has_value());
    REQUIRE(txn->Put(*meta, "format", "g60ledger/1").has_value());
    REQUIRE(txn->Commit().has_value());
  }
  LedgerOptions o;
  o.dir = dir.path();
  auto l = Ledger::Open(o);
  REQUIRE_FALSE(l.has_value());
  CHECK(l.error().code() == ErrorCode::kFailedPrecondition);
  CHECK_THAT(l.error().message(), Catch::Contains("holds ledger format g60ledger/1"));
}

TEST_CASE("a ledger of format 2 (same tables, other keys) is refused by readers as well",
          "[store]") {
  // Format 3 keys events by id and applicant; a reader of format 2's keys would misread
  // them, and an audit would call the difference tampering.
  TempDir dir;
  {
    auto ledger = OpenTestLedger(dir.path());
    AppendAll(*ledger, GrantRecords(0));
    auto batch = ledger->BeginBatch();
    REQUIRE(batch.has_value());
    REQUIRE(batch->txn().Put(ledger->tables().meta, "format", "g60ledger/2").has_value());
    REQUIRE(batch->Commit().has_value());
  }
  LedgerOptions o;
  o.dir = dir.path();
  o.trust_anchors = {Keys().admin.public_key};
  for (bool writer : {false, true}) {
    INFO("writer " << writer);
    o.writer = writer;
    auto l = Ledger::Open(o);
    REQUIRE_FALSE(l.has_value());
    CHECK(l.error().code() == ErrorCode::kFailedPrecondition);
    CHECK_THAT(l.error().message(), Catch::Contains("holds ledger format g60ledger/2"));
  }
}
