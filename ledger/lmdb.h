// A thin RAII layer over LMDB (liblmdb). LMDB's error codes become g60::Error here and
// nowhere else. Lifetimes follow lmdb.h: a committed or aborted transaction handle is
// freed and must not be used again, so Txn is move-only, aborts in its destructor
// unless committed, and gives up its handle before it looks at the commit's result.
#pragma once

#include <lmdb.h>

#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>

#include "ledger/status.h"

namespace g60::lmdb {

// Translates an LMDB return code (or errno value) into an Error naming `what`.
Error ToError(int rc, std::string_view what);

inline std::string_view View(const MDB_val& v) {
  return {static_cast<const char*>(v.mv_data), v.mv_size};
}
inline MDB_val Val(std::string_view s) {
  return MDB_val{s.size(), const_cast<char*>(s.data())};
}

struct EnvOptions {
  size_t map_size_bytes = size_t{4} << 30;  // 4 GiB; grown by the operator if it fills
  unsigned max_dbs = 32;
  bool read_only = false;
  // Commits without fsync (MDB_NOSYNC): only for scratch copies that a crash may lose.
  bool no_sync = false;
};

// The map size of a long-lived reader (serve, a verify running beside the ingest) is
// the one it opened with. When the operator grows the map of a full ledger and the
// writer fills the new space, LMDB answers the reader's next transaction with
// MDB_MAP_RESIZED; Txn::Begin then adopts the new size (mdb_env_set_mapsize(env, 0)),
// which LMDB allows only while no transaction of the process is open. So every
// transaction holds the environment's remap lock shared, and the remap takes it
// exclusively, waiting a bounded time for the transactions open at that moment.
class Env {
 public:
  // Opens (creating if allowed) the environment in directory `dir`.
  static Result<Env> Open(const std::string& dir, const EnvOptions& options);
  Env(Env&& other) noexcept
      : env_(std::exchange(other.env_, nullptr)), remap_mu_(std::move(other.remap_mu_)) {}
  Env& operator=(Env&& other) noexcept;
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;
  ~Env();

  MDB_env* get() const { return env_; }
  // Current map size in bytes.
  size_t map_size() const;
  // Held shared by every open transaction; exclusively to adopt a grown map.
  std::shared_timed_mutex& remap_mutex() const { return *remap_mu_; }
  // Adopts the map size another process has grown the environment to.
  Status AdoptGrownMap() const;
  // Writes a consistent copy of the environment's data file to `fd` (an empty regular
  // file open for writing), as LMDB's mdb_env_copyfd2 does: inside a read transaction of
  // its own, so writers in this and other processes go on committing meanwhile; only the
  // plain copy holds the writer lock of the environment, for the moment it copies the two
  // meta pages. `compact` (MDB_CP_COMPACT) omits free pages and renumbers the rest;
  // otherwise every page up to the last one in use is copied as it is. Errors:
  // ResourceExhausted when the copy's disk is full (ENOSPC, EDQUOT, EFBIG), otherwise as
  // ToError; `dest` names the copy in them. The fd is not synced.
  Status CopyTo(int fd, bool compact, std::string_view dest) const;

 private:
  explicit Env(MDB_env* env) : env_(env), remap_mu_(std::make_unique<std::shared_timed_mutex>()) {}
  MDB_env* env_ = nullptr;
  std::unique_ptr<std::shared_timed_mutex> remap_mu_;
};

class Txn {
 public:
  static Result<Txn> Begin(const Env& env, bool read_only);
  Txn(Txn&& other) noexcept
      : txn_(std::exchange(other.txn_, nullptr)), remap_lock_(std::move(other.remap_lock_)) {}
  Txn& operator=(Txn&& other) noexcept;
  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;
  ~Txn() { Abort(); }

  // Commits; the handle is released whether or not the commit succeeds.
  Status Commit();
  void Abort();

  MDB_txn* get() const {
    G60_ASSERT(txn_ != nullptr);
    return txn_;
  }

  // Opens (creating in a write transaction) a named database.
  Result<MDB_dbi> OpenDb(const char* name, bool create);

  // Returns the value for key, std::nullopt when absent. The view is valid until the
  // transaction ends or the next write in it.
  Result<std::optional<std::string_view>> Get(MDB_dbi dbi, std::string_view key) const;
  // Stores key/value; flags as mdb_put (e.g. MDB_NOOVERWRITE, MDB_APPEND).
  Status Put(MDB_dbi dbi, std::string_view key, std::string_view value, unsigned flags = 0);
  Status Del(MDB_dbi dbi, std::string_view key);
  // Rows in the table (mdb_stat: kept in the table's root, no scan).
  Result<uint64_t> Rows(MDB_dbi dbi) const;

 private:
  Txn(MDB_txn* txn, std::shared_lock<std::shared_timed_mutex> lock)
      : txn_(txn), remap_lock_(std::move(lock)) {}
  MDB_txn* txn_ = nullptr;
  std::shared_lock<std::shared_timed_mutex> remap_lock_;  // released after the txn ends
};

// A cursor bound to a transaction; closed in its destructor, which must run before
// the transaction commits or aborts (LMDB frees a write transaction's cursors itself).
class Cursor {
 public:
  static Result<Cursor> Open(const Txn& txn, MDB_dbi dbi);
  Cursor(Cursor&& other) noexcept : cur_(std::exchange(other.cur_, nullptr)) {}
  Cursor(const Cursor&) = delete;
  Cursor& operator=(const Cursor&) = delete;
  ~Cursor();

  // Positions at the first key >= `key`; false when there is none.
  Result<bool> Seek(std::string_view key);
  Result<bool> First();
  Result<bool> Last();
  Result<bool> Next();
  Result<bool> Prev();
  std::string_view key() const { return View(key_); }
  std::string_view value() const { return View(value_); }

 private:
  explicit Cursor(MDB_cursor* cur) : cur_(cur) {}
  Result<bool> Move(MDB_cursor_op op);
  MDB_cursor* cur_ = nullptr;
  MDB_val key_{0, nullptr};
  MDB_val value_{0, nullptr};
};

}  // namespace g60::lmdb
