#include "ledger/lmdb.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <utility>

namespace g60::lmdb {

Error ToError(int rc, std::string_view what) {
  std::string m = std::string(what) + ": " + mdb_strerror(rc);
  switch (rc) {
    case MDB_NOTFOUND:
      return Error::NotFound(m);
    case MDB_MAP_FULL:
      return Error::ResourceExhausted(
          m +
          " (the LMDB map is full: raise ledger.map_size_mib in the configuration, or "
          "--map-size-mib, and start again; nothing was lost)");
    case ENOSPC:
      return Error::ResourceExhausted(m +
                                      " (the disk is full: free space and start again; "
                                      "the last committed batch is intact)");
    case MDB_INVALID:
      return Error::DataLoss(m +
                             " (data.mdb does not start as an LMDB data file does: it is not a "
                             "ledger's data file, or its first pages are damaged)");
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_VERSION_MISMATCH:
      return Error::DataLoss(m);
    case MDB_READERS_FULL:
    case MDB_MAP_RESIZED:
    case EAGAIN:
      return Error::Unavailable(m);
    case EACCES:
    case ENOENT:
    case EROFS:
      return Error::FailedPrecondition(m);
    default:
      return Error::Internal(m);
  }
}

Result<Env> Env::Open(const std::string& dir, const EnvOptions& options) {
  std::error_code ec;
  if (!options.read_only) std::filesystem::create_directories(dir, ec);
  if (!std::filesystem::is_directory(dir, ec)) {
    return Fail(Error::NotFound("ledger directory " + dir + " does not exist"));
  }
  MDB_env* raw = nullptr;
  if (int rc = mdb_env_create(&raw); rc != 0) return Fail(ToError(rc, "mdb_env_create"));
  Env env(raw);
  if (int rc = mdb_env_set_maxdbs(raw, options.max_dbs); rc != 0) {
    return Fail(ToError(rc, "mdb_env_set_maxdbs"));
  }
  if (int rc = mdb_env_set_mapsize(raw, options.map_size_bytes); rc != 0) {
    return Fail(ToError(rc, "mdb_env_set_mapsize"));
  }
  if (int rc = mdb_env_set_maxreaders(raw, 256); rc != 0) {
    return Fail(ToError(rc, "mdb_env_set_maxreaders"));
  }
  // MDB_NOTLS: read transactions are not tied to a thread (we hand them to workers).
  unsigned flags =
      MDB_NOTLS | (options.read_only ? MDB_RDONLY : 0u) | (options.no_sync ? MDB_NOSYNC : 0u);
  if (int rc = mdb_env_open(raw, dir.c_str(), flags, 0640); rc != 0) {
    return Fail(ToError(rc, "opening LMDB environment in " + dir));
  }
  return env;
}

Env& Env::operator=(Env&& other) noexcept {
  if (this != &other) {
    if (env_) mdb_env_close(env_);
    env_ = std::exchange(other.env_, nullptr);
    remap_mu_ = std::move(other.remap_mu_);
  }
  return *this;
}

Env::~Env() {
  if (env_) mdb_env_close(env_);
}

size_t Env::map_size() const {
  MDB_envinfo info;
  mdb_env_info(env_, &info);
  return info.me_mapsize;
}

Status Env::AdoptGrownMap() const {
  // Transactions of this process open now end on their own (a request, a batch); one
  // held longer than this makes the caller retry later rather than wait without end.
  constexpr auto kWait = std::chrono::seconds(10);
  std::unique_lock lock(*remap_mu_, std::defer_lock);
  if (!lock.try_lock_for(kWait)) {
    return Fail(Error::Unavailable(
        "the ledger's map was grown by its writer, and this process could not adopt the "
        "new size within 10 s because other transactions of it stayed open; try again"));
  }
  if (int rc = mdb_env_set_mapsize(env_, 0); rc != 0) {
    return Fail(ToError(rc, "adopting the grown map size"));
  }
  return {};
}

Status Env::CopyTo(int fd, bool compact, std::string_view dest) const {
  auto copy = [&]() {
    std::shared_lock lock(*remap_mu_);
    return mdb_env_copyfd2(env_, fd, compact ? MDB_CP_COMPACT : 0);
  };
  int rc = copy();
  if (rc == MDB_MAP_RESIZED) {  // the writer grew the map past ours: adopt it, start again
    G60_TRY(AdoptGrownMap());
    if (::ftruncate(fd, 0) != 0 || ::lseek(fd, 0, SEEK_SET) != 0) {
      rc = errno;
    } else {
      rc = copy();
    }
  }
  if (rc == ENOSPC || rc == EDQUOT || rc == EFBIG) {
    return Fail(Error::ResourceExhausted(fmt::format(
        "writing the copy {}: {} (the disk of the copy is full)", dest, std::strerror(rc))));
  }
  if (rc != 0) {
    Error e = ToError(rc, fmt::format("writing the copy {}", dest));
    if (compact && e.code() == ErrorCode::kDataLoss) {
      // lmdb.h: a compacting copy "fails if the environment has suffered a page leak".
      return Fail(
          e.Context("the compacting copy failed (it also fails on a data file whose "
                    "free pages leaked; a copy without compaction copies them as "
                    "they are)"));
    }
    return Fail(e);
  }
  return {};
}

Result<Txn> Txn::Begin(const Env& env, bool read_only) {
  MDB_txn* raw = nullptr;
  std::shared_lock lock(env.remap_mutex());
  int rc = mdb_txn_begin(env.get(), nullptr, read_only ? MDB_RDONLY : 0, &raw);
  if (rc == MDB_MAP_RESIZED) {  // the writer grew the map past ours: adopt it, once
    lock.unlock();
    G60_TRY(env.AdoptGrownMap());
    lock.lock();
    rc = mdb_txn_begin(env.get(), nullptr, read_only ? MDB_RDONLY : 0, &raw);
  }
  if (rc != 0) return Fail(ToError(rc, "mdb_txn_begin"));
  return Txn(raw, std::move(lock));
}

Txn& Txn::operator=(Txn&& other) noexcept {
  if (this != &other) {
    Abort();
    txn_ = std::exchange(other.txn_, nullptr);
    remap_lock_ = std::move(other.remap_lock_);
  }
  return *this;
}

Status Txn::Commit() {
  MDB_txn* raw = std::exchange(txn_, nullptr);
  G60_ASSERT(raw != nullptr);
  int rc = mdb_txn_commit(raw);
  if (remap_lock_.owns_lock()) remap_lock_.unlock();
  if (rc != 0) return Fail(ToError(rc, "committing transaction"));
  return {};
}

void Txn::Abort() {
  if (MDB_txn* raw = std::exchange(txn_, nullptr)) mdb_txn_abort(raw);
  if (remap_lock_.owns_lock()) remap_lock_.unlock();
}

Result<MDB_dbi> Txn::OpenDb(const char* name, bool create) {
  MDB_dbi dbi;
  if (int rc = mdb_dbi_open(get(), name, create ? MDB_CREATE : 0, &dbi); rc != 0) {
    return Fail(ToError(rc, std::string("opening table ") + name));
  }
  return dbi;
}

Result<std::optional<std::string_view>> Txn::Get(MDB_dbi dbi, std::string_view key) const {
  MDB_val k = Val(key), v;
  int rc = mdb_get(get(), dbi, &k, &v);
  if (rc == MDB_NOTFOUND) return std::optional<std::string_view>{};
  if (rc != 0) return Fail(ToError(rc, "mdb_get"));
  return std::optional<std::string_view>{View(v)};
}

Status Txn::Put(MDB_dbi dbi, std::string_view key, std::string_view value, unsigned flags) {
  MDB_val k = Val(key), v = Val(value);
  if (int rc = mdb_put(get(), dbi, &k, &v, flags); rc != 0) return Fail(ToError(rc, "mdb_put"));
  return {};
}

Result<uint64_t> Txn::Rows(MDB_dbi dbi) const {
  MDB_stat st;
  if (int rc = mdb_stat(get(), dbi, &st); rc != 0) return Fail(ToError(rc, "mdb_stat"));
  return static_cast<uint64_t>(st.ms_entries);
}

Status Txn::Del(MDB_dbi dbi, std::string_view key) {
  MDB_val k = Val(key);
  if (int rc = mdb_del(get(), dbi, &k, nullptr); rc != 0) return Fail(ToError(rc, "mdb_del"));
  return {};
}

Result<Cursor> Cursor::Open(const Txn& txn, MDB_dbi dbi) {
  MDB_cursor* raw = nullptr;
  if (int rc = mdb_cursor_open(txn.get(), dbi, &raw); rc != 0) {
    return Fail(ToError(rc, "mdb_cursor_open"));
  }
  return Cursor(raw);
}

Cursor::~Cursor() {
  if (cur_) mdb_cursor_close(cur_);
}

Result<bool> Cursor::Move(MDB_cursor_op op) {
  int rc = mdb_cursor_get(cur_, &key_, &value_, op);
  if (rc == MDB_NOTFOUND) return false;
  if (rc != 0) return Fail(ToError(rc, "mdb_cursor_get"));
  return true;
}

Result<bool> Cursor::Seek(std::string_view key) {
  key_ = Val(key);
  return Move(MDB_SET_RANGE);
}
Result<bool> Cursor::First() {
  return Move(MDB_FIRST);
}
Result<bool> Cursor::Last() {
  return Move(MDB_LAST);
}
Result<bool> Cursor::Prev() {
  return Move(MDB_PREV);
}
Result<bool> Cursor::Next() {
  return Move(MDB_NEXT);
}

}  // namespace g60::lmdb
