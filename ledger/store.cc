#include "ledger/store.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "ledger/bytes.h"
#include "ledger/catalog.h"
#include "ledger/entry.h"
#include "ledger/index.h"
#include "ledger/merkle.h"

namespace g60 {

namespace {

// 3: events are keyed by event id and applicant (EventKey), reasons 34 and 39 retired.
constexpr std::string_view kFormat = "g60ledger/3";
constexpr std::string_view kPartitionCountKey = "partition_count";
constexpr std::string_view kTopicKey = "topic";

// A ledger's partition count is fixed for its life: adding partitions to its topic moves
// applicants to other partitions (murmur2 of the key modulo the count), which would split
// their histories over two chains (docs/design.md, "The partition count is fixed").
std::string EncodeU32(uint32_t v) {
  std::string out;
  PutU32BE(out, v);
  return out;
}

Status CheckPartitionCount(const std::string& dir, uint32_t recorded, uint32_t topic) {
  if (recorded == 0 || recorded == topic) return {};
  return Fail(Error::FailedPrecondition(fmt::format(
      "the Kafka topic has {} partitions but ledger {} was created for {}: the partition of "
      "every applicant is murmur2(applicant id) mod the partition count, so a topic whose "
      "count changed would split applicants' histories over two chains. A ledger's topic "
      "keeps its partition count for life; to grow, create a new topic with the new count "
      "and re-produce the events into it for a new ledger (docs/design.md, "
      "\"The partition count is fixed\")",
      topic, dir, recorded)));
}
constexpr size_t kHeadValueSize = 8 + 32 + 8;

std::string PartitionPrefix(uint32_t partition) {
  std::string k;
  PutU32BE(k, partition);
  return k;
}

Status LockWriter(const std::string& dir, int* fd_out) {
  std::string path = dir + "/writer.lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) {
    return Fail(
        Error::FailedPrecondition(fmt::format("cannot open {}: {}", path, std::strerror(errno))));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    char holder[32] = {0};
    ssize_t n = ::pread(fd, holder, sizeof holder - 1, 0);
    ::close(fd);
    return Fail(Error::FailedPrecondition(fmt::format(
        "another process (pid {}) is writing to the ledger in {}: one writer per ledger",
        n > 0 ? std::string(holder, static_cast<size_t>(n)) : "unknown", dir)));
  }
  std::string pid = std::to_string(::getpid());
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    // The lock is held; the pid is only a courtesy for the error above.
  }
  *fd_out = fd;
  return {};
}

// LMDB reports a short write on a full disk as EIO (mdb_page_flush): when a commit fails
// that way and the ledger's filesystem is (nearly) full, say so.
Error ExplainWriteFailure(const Error& e, const std::string& dir) {
  if (e.code() != ErrorCode::kInternal && e.code() != ErrorCode::kResourceExhausted) return e;
  struct statvfs fs;
  if (::statvfs(dir.c_str(), &fs) != 0) return e;
  uint64_t free_bytes = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
  constexpr uint64_t kNearlyFull = 4u << 20;
  if (free_bytes >= kNearlyFull) return e;
  return Error::ResourceExhausted(fmt::format(
      "{} (the disk is full: {} bytes free on the filesystem of {}; free space and start "
      "again, the last committed batch is intact)",
      e.message(), free_bytes, dir));
}

}  // namespace

std::string MerkleKey(uint32_t partition, uint32_t level, uint64_t index) {
  std::string k = PartitionPrefix(partition);
  k.push_back(static_cast<char>(level));
  PutU64BE(k, index);
  return k;
}

std::function<Result<Hash>(uint32_t, uint64_t)> MerkleNodes(const lmdb::Txn& txn,
                                                            const Tables& tables,
                                                            uint32_t partition) {
  return [&txn, &tables, partition](uint32_t level, uint64_t index) -> Result<Hash> {
    auto v = txn.Get(tables.merkle, MerkleKey(partition, level, index));
    if (!v) return Fail(v.error());
    if (!*v || (*v)->size() != 32) {
      return Fail(Error::DataLoss(
          fmt::format("Merkle subtree ({}, {}) of partition {} is missing or damaged", level, index,
                      partition)));
    }
    Hash h;
    std::copy((*v)->begin(), (*v)->end(), h.begin());
    return h;
  };
}

std::string PartitionKey(uint32_t partition, std::string_view id) {
  std::string k = PartitionPrefix(partition);
  k.append(id);
  return k;
}

std::string EncodeHead(const PartitionHead& head) {
  std::string v;
  v.reserve(kHeadValueSize);
  PutU64BE(v, head.size);
  v.append(AsBytes(head.head_hash));
  PutU64BE(v, static_cast<uint64_t>(head.next_offset));
  return v;
}

Result<PartitionHead> DecodeHead(uint32_t partition, std::string_view value) {
  if (value.size() != kHeadValueSize) {
    return Fail(Error::DataLoss(fmt::format("head record of partition {} is {} bytes, not {}",
                                            partition, value.size(), kHeadValueSize)));
  }
  const auto* p = reinterpret_cast<const unsigned char*>(value.data());
  PartitionHead h;
  h.partition = partition;
  h.size = GetU64BE(p);
  std::copy(p + 8, p + 40, h.head_hash.begin());
  h.next_offset = static_cast<int64_t>(GetU64BE(p + 40));
  return h;
}

// ---- TxnStateView

template <typename Msg>
Result<std::optional<Msg>> TxnStateView::Load(MDB_dbi dbi, std::string_view id, const char* what) {
  auto v = txn_.Get(dbi, PartitionKey(partition_, id));
  if (!v) return Fail(v.error());
  if (!*v) return std::optional<Msg>{};
  Msg m;
  if (!m.ParseFromArray((*v)->data(), static_cast<int>((*v)->size()))) {
    return Fail(Error::DataLoss(fmt::format("{} state of {} in partition {} does not parse", what,
                                            PrintableBytes(id), partition_)));
  }
  return std::optional<Msg>{std::move(m)};
}

Result<std::optional<ledger::v1::KeyState>> TxnStateView::Key(std::string_view key_id) {
  for (const auto& [anchor_id, anchor] : anchors_) {
    if (anchor_id == key_id) {
      ledger::v1::KeyState ks;
      ks.set_public_key(anchor);
      ks.set_role(v1::ROLE_ADMIN);
      ks.set_granted_at_seq(kAnchorGrantSeq);
      return std::optional<ledger::v1::KeyState>{std::move(ks)};
    }
  }
  return Load<ledger::v1::KeyState>(t_.keys, key_id, "key");
}

Result<std::optional<uint64_t>> TxnStateView::EventClaimedAt(std::string_view applicant_id,
                                                             std::string_view event_id) {
  auto v = txn_.Get(t_.event_ids, PartitionKey(partition_, EventKey(event_id, applicant_id)));
  if (!v) return Fail(v.error());
  if (!*v) return std::optional<uint64_t>{};
  if ((*v)->size() != 8) return Fail(Error::DataLoss("event id record is not 8 bytes"));
  return std::optional<uint64_t>{GetU64BE(reinterpret_cast<const unsigned char*>((*v)->data()))};
}

Result<std::optional<ledger::v1::ApplicationState>> TxnStateView::Application(
    std::string_view applicant_id, std::string_view event_id) {
  return Load<ledger::v1::ApplicationState>(t_.applications, EventKey(event_id, applicant_id),
                                            "application");
}
Result<std::optional<ledger::v1::ApprovalState>> TxnStateView::Approval(
    std::string_view applicant_id, std::string_view event_id) {
  return Load<ledger::v1::ApprovalState>(t_.approvals, EventKey(event_id, applicant_id),
                                         "approval");
}
Result<std::optional<ledger::v1::PaymentState>> TxnStateView::Payment(std::string_view applicant_id,
                                                                      std::string_view event_id) {
  return Load<ledger::v1::PaymentState>(t_.payments, EventKey(event_id, applicant_id), "payment");
}

Result<std::optional<ledger::v1::PolicyRecord>> TxnStateView::Policy(std::string_view key) {
  return Load<ledger::v1::PolicyRecord>(t_.policy, key, "policy");
}

Result<std::shared_ptr<const CatalogIndex>> TxnStateView::Catalog() {
  auto hash = txn_.Get(t_.catalogs, PartitionPrefix(partition_));
  if (!hash) return Fail(hash.error());
  if (!*hash) return std::shared_ptr<const CatalogIndex>();
  if ((*hash)->size() != 32) return Fail(Error::DataLoss("catalogue hash record is not 32 bytes"));
  Hash h;
  std::copy((*hash)->begin(), (*hash)->end(), h.begin());
  auto bytes = txn_.Get(t_.catalog_blobs, **hash);
  if (!bytes) return Fail(bytes.error());
  if (!*bytes) return Fail(Error::DataLoss("the catalogue in force is missing from catalog_blobs"));
  return catalogs_.Get(h, **bytes);
}

// ---- Ledger

Result<std::unique_ptr<Ledger>> Ledger::Open(const LedgerOptions& options) {
  CryptoInit();
  int lock_fd = -1;
  if (options.writer) {
    std::error_code ec;
    std::filesystem::create_directories(options.dir, ec);
    if (ec) {
      return Fail(Error::FailedPrecondition(
          fmt::format("cannot create ledger directory {}: {}", options.dir, ec.message())));
    }
    G60_TRY(LockWriter(options.dir, &lock_fd));
  }
  lmdb::EnvOptions env_options;
  env_options.map_size_bytes = options.map_size_bytes;
  env_options.read_only = !options.writer;
  env_options.no_sync = options.scratch;
  auto env = lmdb::Env::Open(options.dir, env_options);
  if (!env) {
    if (lock_fd >= 0) ::close(lock_fd);
    return Fail(env.error().Context("opening ledger " + options.dir));
  }
  // A data file shorter than the pages LMDB's meta page says it holds (a copy that ran
  // out of space, a file cut by hand) would fault with SIGBUS on the first read of a
  // missing page: refuse it, naming both sizes.
  {
    MDB_envinfo info;
    MDB_stat st;
    mdb_env_info(env->get(), &info);
    mdb_env_stat(env->get(), &st);
    const uint64_t need = (static_cast<uint64_t>(info.me_last_pgno) + 1) * st.ms_psize;
    std::error_code ec;
    const auto have =
        std::filesystem::file_size(std::filesystem::path(options.dir) / "data.mdb", ec);
    if (!ec && have < need) {
      if (lock_fd >= 0) ::close(lock_fd);
      return Fail(Error::DataLoss(fmt::format(
          "{}/data.mdb is cut short: {} bytes, but its pages need {}; the ledger file is "
          "damaged (restore it from a backup, or ingest the topic again)",
          options.dir, have, need)));
    }
  }
  std::unique_ptr<Ledger> ledger(new Ledger(std::move(*env), options.dir));
  ledger->lock_fd_ = lock_fd;
  ledger->replay_scratch_ = options.replay_scratch;
  G60_TRY(ledger->Init(options));
  return ledger;
}

Ledger::~Ledger() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

Status Ledger::Init(const LedgerOptions& options) {
  bool write = options.writer;
  auto txn = lmdb::Txn::Begin(env_, !write);
  if (!txn) return Fail(txn.error());
  struct {
    const char* name;
    MDB_dbi* dbi;
  } tables[] = {{"meta", &tables_.meta},
                {"entries", &tables_.entries},
                {"heads", &tables_.heads},
                {"event_ids", &tables_.event_ids},
                {"keys", &tables_.keys},
                {"pubkeys", &tables_.pubkeys},
                {"applications", &tables_.applications},
                {"approvals", &tables_.approvals},
                {"payments", &tables_.payments},
                {"policy", &tables_.policy},
                {"catalogs", &tables_.catalogs},
                {"catalog_blobs", &tables_.catalog_blobs},
                {"merkle", &tables_.merkle},
                {"index", &tables_.index},
                {"checkpoints", &tables_.checkpoints},
                {"totals", &tables_.totals}};
  for (auto& t : tables) {
    auto dbi = txn->OpenDb(t.name, write);
    if (!dbi) {
      // A ledger of an older format lacks the newer tables: say so rather than "not a ledger".
      if (t.dbi != &tables_.meta) {
        auto format = txn->Get(tables_.meta, "format");
        if (format && *format && **format != kFormat) {
          return Fail(Error::FailedPrecondition(fmt::format(
              "{} holds ledger format {}, this build reads {} (it has no table {}); ingest its "
              "topic again into a new ledger directory",
              options.dir, std::string(**format), kFormat, t.name)));
        }
      }
      return Fail(dbi.error().Context(
          fmt::format("{} is not a g60ledger ledger (or was never written)", options.dir)));
    }
    *t.dbi = *dbi;
  }
  anchors_ = options.trust_anchors;
  std::sort(anchors_.begin(), anchors_.end());
  anchors_.erase(std::unique(anchors_.begin(), anchors_.end()), anchors_.end());
  std::string anchor_blob;
  for (const auto& a : anchors_) {
    if (a.size() != kPublicKeySize) {
      return Fail(Error::InvalidArgument("a trust anchor is not a 32-byte Ed25519 public key"));
    }
    anchor_blob += a;
  }
  if (!write) {
    // A reader of another format would misread every key (format 3 keys events by id and
    // applicant), and an audit would report the difference as tampering: refuse it.
    auto format = txn->Get(tables_.meta, "format");
    if (!format) return Fail(format.error());
    if (*format && **format != kFormat) {
      return Fail(Error::FailedPrecondition(fmt::format(
          "{} holds ledger format {}, this build reads {}: read it with the build that wrote "
          "it, or ingest its topic again into a new ledger directory (docs/formats.md)",
          options.dir, std::string(**format), kFormat)));
    }
  }
  if (write) {
    auto format = txn->Get(tables_.meta, "format");
    if (!format) return Fail(format.error());
    if (!*format) {
      G60_TRY(txn->Put(tables_.meta, "format", kFormat));
      G60_TRY(txn->Put(tables_.meta, "anchors", anchor_blob));
    } else if (**format != kFormat) {
      return Fail(
          Error::FailedPrecondition(fmt::format("{} holds ledger format {}, this build writes {}",
                                                options.dir, std::string(**format), kFormat)));
    } else {
      auto stored = txn->Get(tables_.meta, "anchors");
      if (!stored) return Fail(stored.error());
      if (!*stored || **stored != anchor_blob) {
        return Fail(Error::FailedPrecondition(fmt::format(
            "the trust anchors in the configuration differ from those {} was created with; "
            "a ledger's decisions depend on its anchors, so it keeps them for life",
            options.dir)));
      }
    }
  }
  {  // The topic's partition count (u32 big-endian), recorded once for life.
    auto stored = txn->Get(tables_.meta, kPartitionCountKey);
    if (!stored) return Fail(stored.error());
    if (*stored) {
      if ((*stored)->size() != 4) {
        return Fail(Error::DataLoss(
            fmt::format("{}: the recorded partition count is not 4 bytes", options.dir)));
      }
      partition_count_ = GetU32BE(reinterpret_cast<const unsigned char*>((*stored)->data()));
    }
    if (write && options.partition_count != 0) {
      G60_TRY(CheckPartitionCount(options.dir, partition_count_, options.partition_count));
      if (partition_count_ == 0) {
        G60_TRY(txn->Put(tables_.meta, kPartitionCountKey, EncodeU32(options.partition_count)));
        partition_count_ = options.partition_count;
      }
    }
  }
  {  // Public keys ever granted, for the parallel signature pre-check. The cursor
     // must close before its transaction ends.
    auto cur = lmdb::Cursor::Open(*txn, tables_.pubkeys);
    if (!cur) return Fail(cur.error());
    for (auto ok = cur->First();; ok = cur->Next()) {
      if (!ok) return Fail(ok.error());
      if (!*ok) break;
      public_keys_.emplace(std::string(cur->key()), std::string(cur->value()));
    }
  }
  for (const auto& a : anchors_) {
    anchor_keys_.emplace_back(KeyIdOf(a), a);
    public_keys_.emplace(anchor_keys_.back());
  }
  // Committing (even a read-only transaction) keeps the table handles open: LMDB
  // closes handles opened in a transaction that aborts.
  return txn->Commit();
}

Status Ledger::BindTopic(std::string_view topic, uint32_t count) {
  G60_ASSERT(lock_fd_ >= 0);  // only a writer records them
  if (count == 0) {
    return Fail(Error::InvalidArgument("a Kafka topic has at least one partition, not 0"));
  }
  G60_TRY(CheckPartitionCount(dir_, partition_count_, count));
  auto txn = lmdb::Txn::Begin(env_, false);
  if (!txn) return Fail(txn.error());
  auto stored_topic = txn->Get(tables_.meta, kTopicKey);
  if (!stored_topic) return Fail(stored_topic.error());
  if (*stored_topic && **stored_topic != topic) {
    return Fail(Error::FailedPrecondition(fmt::format(
        "ledger {} was built from Kafka topic \"{}\", not \"{}\": a ledger consumes one topic "
        "for life (its offsets are that topic's); give ingest its own topic (--topic or "
        "[kafka] topic), or start a new ledger directory for another",
        dir_, PrintableBytes(**stored_topic), PrintableBytes(topic))));
  }
  bool changed = false;
  if (!*stored_topic) {
    G60_TRY(txn->Put(tables_.meta, kTopicKey, topic));
    changed = true;
  }
  if (partition_count_ == 0) {
    G60_TRY(txn->Put(tables_.meta, kPartitionCountKey, EncodeU32(count)));
    changed = true;
  }
  if (!changed) return {};  // the transaction aborts: nothing was written
  G60_TRY(txn->Commit());
  partition_count_ = count;
  return {};
}

Result<std::vector<std::string>> Ledger::RecordedAnchors() const {
  auto txn = lmdb::Txn::Begin(env_, true);
  if (!txn) return Fail(txn.error());
  auto blob = txn->Get(tables_.meta, "anchors");
  if (!blob) return Fail(blob.error());
  if (!*blob || (*blob)->size() % kPublicKeySize != 0) {
    return Fail(Error::DataLoss(fmt::format(
        "{}: the record of the trust anchors the ledger was created with is {}", dir_,
        *blob ? fmt::format("{} bytes, not a multiple of {}", (*blob)->size(), kPublicKeySize)
              : std::string("missing"))));
  }
  std::vector<std::string> out;
  for (size_t i = 0; i < (*blob)->size(); i += kPublicKeySize) {
    out.emplace_back((*blob)->substr(i, kPublicKeySize));
  }
  return out;
}

Result<std::string> Ledger::RecordedTopic() const {
  auto txn = lmdb::Txn::Begin(env_, true);
  if (!txn) return Fail(txn.error());
  auto topic = txn->Get(tables_.meta, kTopicKey);
  if (!topic) return Fail(topic.error());
  return *topic ? std::string(**topic) : std::string();
}

std::string Ledger::PublicKeyOf(std::string_view key_id) const {
  std::shared_lock lock(keys_mu_);
  auto it = public_keys_.find(std::string(key_id));
  return it == public_keys_.end() ? std::string() : it->second;
}

Result<Batch> Ledger::BeginBatch() {
  G60_ASSERT(lock_fd_ >= 0);  // only a writer appends
  auto txn = lmdb::Txn::Begin(env_, false);
  if (!txn) return Fail(txn.error());
  return Batch(*this, std::move(*txn));
}

Result<std::optional<PartitionHead>> Ledger::Head(uint32_t partition) const {
  auto txn = lmdb::Txn::Begin(env_, true);
  if (!txn) return Fail(txn.error());
  auto v = txn->Get(tables_.heads, PartitionPrefix(partition));
  if (!v) return Fail(v.error());
  if (!*v) return std::optional<PartitionHead>{};
  auto h = DecodeHead(partition, **v);
  if (!h) return Fail(h.error());
  return std::optional<PartitionHead>{*h};
}

Result<std::vector<PartitionHead>> Ledger::Heads() const {
  auto txn = lmdb::Txn::Begin(env_, true);
  if (!txn) return Fail(txn.error());
  return ReadHeads(*txn, tables_);
}

Result<std::vector<PartitionHead>> ReadHeads(const lmdb::Txn& txn, const Tables& tables) {
  auto cur = lmdb::Cursor::Open(txn, tables.heads);
  if (!cur) return Fail(cur.error());
  std::vector<PartitionHead> out;
  for (auto ok = cur->First();; ok = cur->Next()) {
    if (!ok) return Fail(ok.error());
    if (!*ok) break;
    if (cur->key().size() != 4) return Fail(Error::DataLoss("heads table key is not 4 bytes"));
    auto h = DecodeHead(GetU32BE(reinterpret_cast<const unsigned char*>(cur->key().data())),
                        cur->value());
    if (!h) return Fail(h.error());
    out.push_back(*h);
  }
  return out;
}

// ---- Batch

Result<PartitionHead*> Batch::Head(uint32_t partition) {
  auto it = heads_.find(partition);
  if (it != heads_.end()) return &it->second;
  auto v = txn_.Get(ledger_->tables_.heads, PartitionPrefix(partition));
  if (!v) return Fail(v.error());
  PartitionHead h;
  h.partition = partition;
  if (*v) {
    auto decoded = DecodeHead(partition, **v);
    if (!decoded) return Fail(decoded.error());
    h = *decoded;
  }
  return &heads_.emplace(partition, h).first->second;
}

Status Batch::ApplyEffects(uint32_t partition, const std::vector<Effect>& effects) {
  const Tables& t = ledger_->tables_;
  for (const Effect& e : effects) {
    std::string key = PartitionKey(partition, e.id);
    switch (e.kind) {
      case Effect::Kind::kClaimEventId: {
        std::string seq;
        PutU64BE(seq, heads_.at(partition).size);
        G60_TRY(txn_.Put(t.event_ids, key, seq, MDB_NOOVERWRITE));
        break;
      }
      case Effect::Kind::kPutKey: {
        G60_TRY(txn_.Put(t.keys, key, e.value));
        ledger::v1::KeyState ks;
        G60_ASSERT(ks.ParseFromString(e.value));
        G60_TRY(txn_.Put(t.pubkeys, e.id, ks.public_key()));
        new_keys_.emplace_back(e.id, ks.public_key());
        break;
      }
      case Effect::Kind::kPutApplication:
        G60_TRY(txn_.Put(t.applications, key, e.value));
        break;
      case Effect::Kind::kPutApproval:
        G60_TRY(txn_.Put(t.approvals, key, e.value));
        break;
      case Effect::Kind::kPutPayment:
        G60_TRY(txn_.Put(t.payments, key, e.value));
        break;
      case Effect::Kind::kPutPolicy:
        G60_TRY(txn_.Put(t.policy, key, e.value));
        break;
      case Effect::Kind::kPublishCatalog:
        G60_TRY(txn_.Put(t.catalog_blobs, e.id, e.value));
        G60_TRY(txn_.Put(t.catalogs, PartitionPrefix(partition), e.id));
        break;
    }
  }
  return {};
}

Result<AppendOutcome> Batch::Append(const Record& record, const Prechecked& pre) {
  auto head_or = Head(record.partition);
  if (!head_or) return Fail(head_or.error());
  PartitionHead& head = **head_or;
  AppendOutcome out;
  if (record.offset < head.next_offset) return out;  // consumed before: a redelivery
  const uint32_t partition_count = ledger_->partition_count();
  if (partition_count == 0) {
    return Fail(Error::FailedPrecondition(fmt::format(
        "ledger {} has no recorded partition count, which its decisions depend on; ingest "
        "records the topic's count when it starts",
        ledger_->dir())));
  }

  TxnStateView state(txn_, ledger_->tables_, record.partition, ledger_->anchor_keys_,
                     ledger_->catalogs_, partition_count);
  auto decision = Decide(state, record, pre, head.size);
  if (!decision) return Fail(decision.error());

  ledger::v1::EntryBody body;
  auto* src = body.mutable_source();
  src->set_topic(record.topic);
  src->set_partition(static_cast<int32_t>(record.partition));
  src->set_offset(record.offset);
  src->set_timestamp_ms(record.timestamp_ms);
  src->set_key(record.key);
  body.set_value(record.value);
  body.set_verdict(decision->verdict);
  body.set_reason(decision->reason);
  // Every string field of the body must be UTF-8, or protobuf would write the entry but
  // never read it back (issue 13, item 1): the texts below come from a parsed event,
  // which protobuf has checked, or from the rules' sentences, which may quote outside
  // bytes; Utf8OrEscaped is the last guard for both and costs one scan when all is well.
  body.set_detail(Utf8OrEscaped(decision->detail));
  const auto& d = pre.decoded;
  if (d.reason != Reason::REASON_MALFORMED_MESSAGE && d.reason != Reason::REASON_MALFORMED_EVENT) {
    body.set_event_id(Utf8OrEscaped(d.event.event_id()));
    body.set_applicant_id(Utf8OrEscaped(d.event.applicant_id()));
    body.set_event_type(d.type);
    body.set_key_id(Utf8OrEscaped(d.signed_event.key_id()));
  }
  body.set_programme(
      Utf8OrEscaped(decision->programme.empty() ? d.event.programme() : decision->programme));
  body.set_amount_fen(decision->amount_fen);
  body.set_catalog_hash(decision->catalog_hash);
  for (auto& note : decision->notes)
    body.add_effects(Utf8OrEscaped(std::move(note)));
  std::string body_bytes;
  G60_ASSERT(body.SerializeToString(&body_bytes));
  if (body_bytes.size() > kEntryBodyMaxBytes) {
    return Fail(Error::InvalidArgument(
        fmt::format("record at {}/{} makes a {}-byte entry body, above the {}-byte limit",
                    record.partition, record.offset, body_bytes.size(), kEntryBodyMaxBytes)));
  }
  std::string entry = EncodeEntry(record.partition, head.size, head.head_hash, body_bytes);
  G60_TRY(txn_.Put(ledger_->tables_.entries, EntryKey(record.partition, head.size), entry,
                   MDB_NOOVERWRITE));
  // A rejection's only possible effect is claiming the event id of an authentic event.
  G60_TRY(ApplyEffects(record.partition, decision->effects));
  out.appended = true;
  out.sequence = head.size;
  out.entry_hash = EntryHash(entry);
  if (!ledger_->replay_scratch_)
    G60_TRY(AppendMerkleLeaf(record.partition, head.size, out.entry_hash));
  G60_TRY(WriteIndex(state, body, pre.decoded, record.partition, head.size));
  G60_TRY(WriteTotals(body, pre.decoded, record.partition));
  out.verdict = decision->verdict;
  out.reason = decision->reason;
  head.size += 1;
  head.head_hash = out.entry_hash;
  head.next_offset = record.offset + 1;
  ++appended_;
  return out;
}

// The entry hash is the leaf of the partition's Merkle log: stores the subtrees it
// completes, write-once, in the same transaction. The left siblings it needs are the
// last subtrees written at their levels, which the batch remembers (the partition's
// right edge); the first of a batch come from the log.
Status Batch::AppendMerkleLeaf(uint32_t partition, uint64_t index, const Hash& leaf) {
  std::vector<MerkleEdge>& edge = merkle_edges_[partition];
  auto stored = MerkleNodes(txn_, ledger_->tables_, partition);
  auto writes = merkle::AppendLeaf(
      [&](uint32_t level, uint64_t at) -> Result<Hash> {
        if (level < edge.size() && edge[level].known && edge[level].index == at) {
          return edge[level].hash;
        }
        return stored(level, at);
      },
      index, leaf);
  if (!writes) return Fail(writes.error());
  for (const auto& w : *writes) {
    G60_TRY(txn_.Put(ledger_->tables_.merkle, MerkleKey(partition, w.level, w.index),
                     AsBytes(w.hash), MDB_NOOVERWRITE));
    if (w.level >= edge.size()) edge.resize(w.level + 1);
    edge[w.level] = MerkleEdge{true, w.index, w.hash};
  }
  return {};
}

Status Batch::WriteIndex(StateView& state, const ledger::v1::EntryBody& body,
                         const DecodedMessage& d, uint32_t partition, uint64_t sequence) {
  IndexInput in;
  in.body = &body;
  if (!body.event_id().empty()) {
    in.project_id = d.event.project_id();
    in.occurred_at_ms = d.event.occurred_at_ms();
    switch (d.type) {
      case EventType::EVENT_TYPE_APPROVAL:
        in.approval_id = d.event.event_id();
        if (in.project_id.empty()) {
          auto app =
              state.Application(d.event.applicant_id(), d.event.approval().application_event_id());
          if (!app) return Fail(app.error());
          if (*app) in.project_id = (*app)->project_id();
        }
        break;
      case EventType::EVENT_TYPE_STAGE_PAYMENT:
        in.approval_id = d.event.stage_payment().approval_event_id();
        break;
      case EventType::EVENT_TYPE_CLAWBACK:
        if (d.event.clawback().payment_event_ids_size() > 0) {
          auto pay = state.Payment(d.event.applicant_id(), d.event.clawback().payment_event_ids(0));
          if (!pay) return Fail(pay.error());
          if (*pay) in.approval_id = (*pay)->approval_event_id();
        }
        break;
      default:
        break;
    }
    if (in.project_id.empty() && !in.approval_id.empty()) {
      auto ap = state.Approval(d.event.applicant_id(), in.approval_id);
      if (!ap) return Fail(ap.error());
      if (*ap) in.project_id = (*ap)->project_id();
    }
  }
  for (auto& key : IndexKeys(in, partition, sequence))
    index_keys_.push_back(std::move(key));
  return {};
}

std::string TotalsKey(std::string_view programme, int year, uint32_t partition) {
  std::string k(programme);
  k.push_back('\0');
  k.push_back(static_cast<char>((year >> 8) & 0xff));
  k.push_back(static_cast<char>(year & 0xff));
  PutU32BE(k, partition);
  return k;
}

Status Batch::WriteTotals(const ledger::v1::EntryBody& body, const DecodedMessage& d,
                          uint32_t partition) {
  if (body.programme().empty() || body.event_id().empty() || d.event.occurred_at_ms() <= 0) {
    return {};
  }
  std::string key = TotalsKey(body.programme(), CstYear(d.event.occurred_at_ms()), partition);
  auto [it, fresh] = totals_.try_emplace(std::move(key));
  ledger::v1::ProgrammeYearTotals& totals = it->second;
  if (fresh) {  // first use in this batch: start from the stored figures
    auto v = txn_.Get(ledger_->tables_.totals, it->first);
    if (!v) return Fail(v.error());
    if (*v && !totals.ParseFromArray((*v)->data(), static_cast<int>((*v)->size()))) {
      return Fail(Error::DataLoss(fmt::format("totals of {} do not parse", body.programme())));
    }
  }
  auto add = [](int64_t& total, int64_t amount) -> Status {
    if (__builtin_add_overflow(total, amount, &total)) {
      return Fail(Error::DataLoss("a programme's yearly total overflows int64 fen"));
    }
    return {};
  };
  if (body.verdict() != ledger::v1::VERDICT_ACCEPTED) {
    totals.set_rejected(totals.rejected() + 1);
  } else {
    int64_t sum = 0;
    switch (body.event_type()) {
      case EventType::EVENT_TYPE_APPLICATION:
        totals.set_applications(totals.applications() + 1);
        sum = totals.requested_fen();
        G60_TRY(add(sum, d.event.application().requested_fen()));
        totals.set_requested_fen(sum);
        break;
      case EventType::EVENT_TYPE_APPROVAL:
        totals.set_approvals(totals.approvals() + 1);
        sum = totals.approved_fen();
        G60_TRY(add(sum, body.amount_fen()));
        totals.set_approved_fen(sum);
        totals.set_largest_approval_fen(std::max(totals.largest_approval_fen(), body.amount_fen()));
        break;
      case EventType::EVENT_TYPE_STAGE_PAYMENT:
        totals.set_payments(totals.payments() + 1);
        sum = totals.paid_fen();
        G60_TRY(add(sum, body.amount_fen()));
        totals.set_paid_fen(sum);
        break;
      case EventType::EVENT_TYPE_CLAWBACK:
        totals.set_clawbacks(totals.clawbacks() + 1);
        sum = totals.clawed_back_fen();
        G60_TRY(add(sum, body.amount_fen()));
        totals.set_clawed_back_fen(sum);
        break;
      default:
        break;
    }
  }
  return {};
}

Status Batch::WriteHeads() {
  for (const auto& [partition, head] : heads_) {
    G60_TRY(txn_.Put(ledger_->tables_.heads, PartitionPrefix(partition), EncodeHead(head)));
  }
  return {};
}

std::vector<std::string> Batch::TakeIndexKeys() {
  std::sort(index_keys_.begin(), index_keys_.end());
  return std::exchange(index_keys_, {});
}

Status Batch::Commit() {
  // Index keys are written at commit, in key order: consecutive puts then share B-tree
  // pages (a batch's keys for one applicant, programme or day are neighbours), which
  // costs a fraction of the same puts in arrival order. Nothing reads the index inside
  // the writer's transaction.
  G60_ASSERT(!ledger_->replay_scratch_ || index_keys_.empty());  // taken by the replay
  for (const auto& key : TakeIndexKeys())
    G60_TRY(txn_.Put(ledger_->tables_.index, key, "", MDB_NOOVERWRITE));
  // Totals are kept in memory for the batch (one row takes many records) and written once.
  for (const auto& [key, totals] : totals_) {
    std::string bytes;
    G60_ASSERT(totals.SerializeToString(&bytes));
    G60_TRY(txn_.Put(ledger_->tables_.totals, key, bytes));
  }
  totals_.clear();
  G60_TRY(WriteHeads());
  if (auto committed = txn_.Commit(); !committed) {
    return Fail(ExplainWriteFailure(committed.error(), ledger_->dir_));
  }
  std::unique_lock lock(ledger_->keys_mu_);
  for (auto& [id, pk] : new_keys_)
    ledger_->public_keys_.emplace(std::move(id), std::move(pk));
  return {};
}

}  // namespace g60
