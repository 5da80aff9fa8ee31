#include "ledger/backup.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <memory>

#include "ledger/bytes.h"
#include "ledger/checkpoint.h"
#include "ledger/merkle.h"
#include "ledger/store.h"

namespace g60 {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr const char* kDataFile = "data.mdb";
constexpr const char* kLockFile = "lock.mdb";       // LMDB's reader table
constexpr const char* kWriterLock = "writer.lock";  // the ingest's flock (store.cc)

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string Join(const fs::path& dir, const char* name) {
  return (dir / name).string();
}

// Free bytes for an unprivileged writer on the filesystem holding `path`.
std::string FreeSpace(const std::string& path) {
  struct statvfs st;
  if (::statvfs(path.c_str(), &st) != 0) return "unknown";
  return fmt::format("{}", static_cast<uint64_t>(st.f_bavail) * st.f_frsize);
}

// fsync of a file or directory: a rename or a new file is durable only once the
// directory holding it is synced.
Status SyncPath(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Fail(
        Error::Internal(fmt::format("opening {} to flush it: {}", path, std::strerror(errno))));
  }
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) {
    return Fail(Error::Internal(fmt::format("flushing {} to disk: {}", path, std::strerror(err))));
  }
  return {};
}

// `path` as an absolute path with symlinks of its existing part resolved.
fs::path Resolved(const std::string& path) {
  std::error_code ec;
  fs::path p = fs::weakly_canonical(fs::absolute(path, ec), ec);
  return ec ? fs::absolute(path).lexically_normal() : p;
}

// "b/" and "b" name one directory, and "b.partial" must be its sibling.
std::string WithoutTrailingSlash(std::string path) {
  while (path.size() > 1 && path.back() == '/')
    path.pop_back();
  return path;
}

bool IsInside(const fs::path& child, const fs::path& parent) {
  auto rel = child.lexically_relative(parent);
  return !rel.empty() && *rel.begin() != "..";
}

// The path must not exist yet; its parent must, and it must not lie inside `source`.
Status CheckNewPath(const std::string& path, const std::string& source, const char* role) {
  if (path.empty()) return Fail(Error::InvalidArgument(fmt::format("no {} directory given", role)));
  std::error_code ec;
  if (fs::exists(fs::symlink_status(path, ec))) {
    return Fail(Error::InvalidArgument(fmt::format(
        "{} already exists: a {} never replaces anything; give a directory name that does not "
        "exist yet (for example one with the date in it)",
        path, role)));
  }
  fs::path parent = fs::absolute(path, ec).parent_path();
  if (!fs::is_directory(parent, ec)) {
    return Fail(Error::InvalidArgument(
        fmt::format("the directory {} is to be created in, {}, does not exist (create it first)",
                    path, parent.string())));
  }
  fs::path src = Resolved(source), dst = Resolved(path);
  if (dst == src || IsInside(dst, src)) {
    return Fail(Error::InvalidArgument(
        fmt::format("{} is inside {}: a copy kept inside what it copies is lost with it; "
                    "put it elsewhere, ideally on another disk",
                    path, source)));
  }
  return {};
}

// The staging directory `DEST.partial`: created (or taken over from an interrupted run)
// under an exclusive flock on the directory itself, so two runs never write one copy.
// Unless committed, its files and itself are removed.
class Staging {
 public:
  static Result<std::unique_ptr<Staging>> Create(const std::string& dest, bool* taken_over) {
    std::string path = dest + ".partial";
    *taken_over = false;
    bool created = ::mkdir(path.c_str(), 0750) == 0;
    if (!created && errno != EEXIST) {
      return Fail(Error::FailedPrecondition(
          fmt::format("cannot create {}: {}", path, std::strerror(errno))));
    }
    int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      return Fail(Error::FailedPrecondition(
          fmt::format("{} exists and is not a directory this can use ({}); move it away", path,
                      std::strerror(errno))));
    }
    std::unique_ptr<Staging> s(new Staging(path, fd));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      s->committed_ = true;  // not ours: leave it alone
      return Fail(Error::FailedPrecondition(fmt::format(
          "another copy to {} is being written right now (its staging directory {} is locked); "
          "wait for it to finish",
          dest, path)));
    }
    if (!created) {  // the remains of a run that was killed: only files a run writes
      std::error_code ec;
      for (const auto& e : fs::directory_iterator(path, ec)) {
        std::string name = e.path().filename().string();
        if (name != kDataFile && name != kLockFile) {
          s->committed_ = true;
          return Fail(Error::FailedPrecondition(fmt::format(
              "{} holds {}, which no backup or restore writes: it is not the remains of an "
              "interrupted copy, so it is left alone; move it away",
              path, name)));
        }
      }
      if (ec) {
        return Fail(Error::FailedPrecondition(fmt::format("reading {}: {}", path, ec.message())));
      }
      G60_TRY(s->RemoveFiles());
      *taken_over = true;
    }
    return s;
  }

  ~Staging() {
    if (!committed_) (void)Discard();
    if (fd_ >= 0) ::close(fd_);
  }

  const std::string& path() const { return path_; }
  // Whether CommitTo got as far as renaming the directory to its destination.
  bool renamed() const { return renamed_; }

  // Removes the staged files and the directory.
  Status Discard() {
    committed_ = true;
    G60_TRY(RemoveFiles());
    if (::rmdir(path_.c_str()) != 0 && errno != ENOENT) {
      return Fail(Error::Internal(fmt::format("removing {}: {}", path_, std::strerror(errno))));
    }
    return {};
  }

  // Flushes the directory and renames it to `dest` in one step; `dest` must not exist.
  Status CommitTo(const std::string& dest) {
    G60_TRY(SyncPath(path_));
    if (::renameat2(AT_FDCWD, path_.c_str(), AT_FDCWD, dest.c_str(), RENAME_NOREPLACE) != 0) {
      int err = errno;
      return Fail(Error::FailedPrecondition(
          fmt::format("renaming {} to {}: {}{}", path_, dest, std::strerror(err),
                      err == EEXIST ? " (it was created while the copy was made)"
                      : err == EXDEV || err == EBUSY
                          ? " (a mount point cannot be replaced: give a new directory inside it)"
                          : "")));
    }
    committed_ = renamed_ = true;
    return SyncPath(Resolved(dest).parent_path().string());
  }

 private:
  Staging(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  Status RemoveFiles() {
    for (const char* name : {kDataFile, kLockFile}) {
      std::string f = Join(path_, name);
      if (::unlink(f.c_str()) != 0 && errno != ENOENT) {
        return Fail(Error::Internal(fmt::format("removing {}: {}", f, std::strerror(errno))));
      }
    }
    return {};
  }

  std::string path_;
  int fd_ = -1;
  bool committed_ = false;
  bool renamed_ = false;
};

Result<std::unique_ptr<Ledger>> OpenReadOnly(const std::string& dir, size_t map_size_bytes,
                                             std::vector<std::string> anchors) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return Fail(Error::NotFound(fmt::format("the ledger directory {} does not exist", dir)));
  }
  if (!fs::is_regular_file(Join(dir, kDataFile), ec)) {
    return Fail(
        Error::NotFound(fmt::format("{} holds no ledger: there is no {} in it", dir, kDataFile)));
  }
  LedgerOptions o;
  o.dir = dir;
  o.map_size_bytes = map_size_bytes;
  o.trust_anchors = std::move(anchors);
  return Ledger::Open(o);
}

std::vector<std::string> KeyIds(const std::vector<std::string>& keys) {
  std::vector<std::string> ids;
  for (const auto& k : keys)
    ids.push_back(KeyIdOf(k));
  std::sort(ids.begin(), ids.end());
  return ids;
}

// Configured anchors must be the ledger's: ingest refuses to write with any others.
Status CheckAnchors(const std::string& dir, const std::vector<std::string>& recorded,
                    std::vector<std::string> configured) {
  std::sort(configured.begin(), configured.end());
  configured.erase(std::unique(configured.begin(), configured.end()), configured.end());
  if (configured.empty() || configured == recorded) return {};
  return Fail(Error::InvalidArgument(fmt::format(
      "the trust anchors of the configuration (key ids {}) are not those {} was created with "
      "(key ids {}); ingest refuses to write a ledger with other anchors, so fix the "
      "configuration first",
      fmt::join(KeyIds(configured), ", "), dir, fmt::join(KeyIds(recorded), ", "))));
}

uint64_t LedgerBytes(const Ledger& ledger) {
  std::error_code ec;
  auto n = fs::file_size(Join(ledger.dir(), kDataFile), ec);
  return ec ? 0 : n;
}

struct Staged {
  std::unique_ptr<Staging> staging;
  BackupReport report;
};

// Writes the copy of `source` into the staging directory of `dest` and flushes it.
Status WriteCopy(const Ledger& source, const Staging& staging, bool compact,
                 const std::string& dest) {
  std::string file = Join(staging.path(), kDataFile);
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
  if (fd < 0) {
    return Fail(
        Error::FailedPrecondition(fmt::format("cannot create {}: {}", file, std::strerror(errno))));
  }
  Status copied = source.env().CopyTo(fd, compact, file);
  if (copied && ::fsync(fd) != 0) {
    int err = errno;
    copied = Fail(err == ENOSPC || err == EDQUOT
                      ? Error::ResourceExhausted(
                            fmt::format("flushing the copy {}: {} (the disk of the copy is full)",
                                        file, std::strerror(err)))
                      : Error::Internal(fmt::format("flushing the copy {} to disk: {}", file,
                                                    std::strerror(err))));
  }
  if (::close(fd) != 0 && copied) {
    copied =
        Fail(Error::Internal(fmt::format("closing the copy {}: {}", file, std::strerror(errno))));
  }
  if (!copied && copied.error().code() == ErrorCode::kResourceExhausted) {
    return Fail(Error::ResourceExhausted(fmt::format(
        "{}. The disk holding {} is full: {} bytes are free there, and the ledger's data file "
        "is {} bytes. The partial copy was removed; free space there, or back up to another "
        "disk",
        copied.error().message(), dest, FreeSpace(staging.path()), LedgerBytes(source))));
  }
  return copied;
}

// Opens the staged copy, verifies it with the anchors it recorded, and fills the report.
Status VerifyCopy(const Staging& staging, const BackupOptions& o, BackupReport& r) {
  auto copy = OpenReadOnly(staging.path(), o.map_size_bytes, {});
  if (!copy) return Fail(copy.error().Context("opening the copy"));
  auto recorded = (*copy)->RecordedAnchors();
  if (!recorded) return Fail(recorded.error().Context("the copy"));
  const std::vector<std::string>& anchors = *recorded;
  VerifyOptions vo;
  vo.trust_anchors = anchors;
  vo.threads = o.verify_threads;
  auto verified = VerifyLedger(**copy, vo);
  if (!verified) return Fail(verified.error().Context("verifying the copy"));
  r.entries = verified->entries;
  r.signatures = verified->signatures;
  r.problem = verified->first_problem;
  r.anchor_key_ids = KeyIds(anchors);
  auto topic = (*copy)->RecordedTopic();
  if (!topic) return Fail(topic.error());
  r.topic = *topic;
  r.partition_count = (*copy)->partition_count();
  auto txn = lmdb::Txn::Begin((*copy)->env(), true);
  if (!txn) return Fail(txn.error());
  auto heads = ReadHeads(*txn, (*copy)->tables());
  if (!heads) return Fail(heads.error());
  if (r.problem) return {};  // the heads of a damaged copy are not worth reporting
  for (const auto& h : *heads) {
    BackupPartition p;
    p.partition = h.partition;
    p.size = h.size;
    p.head_hash = h.head_hash;
    p.next_offset = h.next_offset;
    auto root = merkle::Root(MerkleNodes(*txn, (*copy)->tables(), h.partition), h.size);
    if (!root) return Fail(root.error());
    p.merkle_root = *root;
    auto cp = LatestCheckpoint(*txn, (*copy)->tables(), h.partition);
    if (!cp) return Fail(cp.error());
    p.checkpoint_size = *cp ? (*cp)->size : 0;
    r.partitions.push_back(p);
  }
  return {};
}

// Copies `o.ledger_dir` into the staging directory of `o.dest_dir` and verifies the copy.
Result<Staged> StageVerifiedCopy(const BackupOptions& o) {
  Staged s;
  BackupReport& r = s.report;
  r.ledger_dir = o.ledger_dir;
  r.dest_dir = o.dest_dir;
  r.compact = o.compact;
  auto source = OpenReadOnly(o.ledger_dir, o.map_size_bytes, {});
  if (!source) return Fail(source.error());
  auto recorded = (*source)->RecordedAnchors();
  if (!recorded) return Fail(recorded.error());
  G60_TRY(CheckAnchors(o.ledger_dir, *recorded, o.configured_anchors));
  r.anchors_compared = !o.configured_anchors.empty();
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(o.ledger_dir, ec)) {
    std::string name = e.path().filename().string();
    if (name != kDataFile && name != kLockFile && name != kWriterLock) r.not_copied.push_back(name);
  }
  std::sort(r.not_copied.begin(), r.not_copied.end());
  auto staging = Staging::Create(o.dest_dir, &r.removed_interrupted);
  if (!staging) return Fail(staging.error());
  s.staging = std::move(*staging);
  auto start = Clock::now();
  r.ledger_bytes = LedgerBytes(**source);
  if (auto w = WriteCopy(**source, *s.staging, o.compact, o.dest_dir); !w) {
    if (auto d = s.staging->Discard(); !d) {
      return Fail(w.error().Context(
          fmt::format("(and the partial copy could not be removed: {})", d.error().message())));
    }
    return Fail(w.error());
  }
  source->reset();  // the copy is all that is read from here on
  r.copy_seconds = SecondsSince(start);
  struct stat from {
  }, to{};
  r.same_filesystem = ::stat(o.ledger_dir.c_str(), &from) == 0 &&
                      ::stat(s.staging->path().c_str(), &to) == 0 && from.st_dev == to.st_dev;
  r.bytes = fs::file_size(Join(s.staging->path(), kDataFile), ec);
  start = Clock::now();
  G60_TRY(VerifyCopy(*s.staging, o, r));
  r.verify_seconds = SecondsSince(start);
  // The reader table of the verification is no part of the copy.
  std::string lock = Join(s.staging->path(), kLockFile);
  if (::unlink(lock.c_str()) != 0 && errno != ENOENT) {
    return Fail(Error::Internal(fmt::format("removing {}: {}", lock, std::strerror(errno))));
  }
  return s;
}

// The pid written in a lock file, for messages.
std::string HolderPid(int fd) {
  char buf[32] = {0};
  ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "unknown";
}

// The writer lock of the ledger in `dir`, taken so that no ingest starts while it is held.
// FailedPrecondition when a process holds it or has the LMDB environment open.
class InUseCheck {
 public:
  ~InUseCheck() {
    if (fd_ >= 0) ::close(fd_);
  }
  Status Take(const std::string& dir) {
    std::string writer = Join(dir, kWriterLock);
    if (fd_ < 0) fd_ = ::open(writer.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd_ < 0) {
      return Fail(Error::FailedPrecondition(
          fmt::format("cannot open {}: {}", writer, std::strerror(errno))));
    }
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      std::string pid = HolderPid(fd_);
      ::close(fd_);
      fd_ = -1;
      return Fail(Error::FailedPrecondition(fmt::format(
          "an ingest (pid {}) is writing to the ledger in {}: stop it before restoring over it",
          pid, dir)));
    }
    // Every process with the environment open holds a shared fcntl lock on the first
    // byte of lock.mdb (LMDB's mdb_env_excl_lock); ask whether an exclusive one would
    // conflict, without taking it.
    std::string lock = Join(dir, kLockFile);
    int lfd = ::open(lock.c_str(), O_RDONLY | O_CLOEXEC);
    if (lfd < 0) return {};  // never opened, or not an LMDB directory at all
    struct flock probe {};
    probe.l_type = F_WRLCK;
    probe.l_whence = SEEK_SET;
    probe.l_start = 0;
    probe.l_len = 1;
    int rc = ::fcntl(lfd, F_GETLK, &probe);
    ::close(lfd);
    if (rc == 0 && probe.l_type != F_UNLCK) {
      return Fail(Error::FailedPrecondition(fmt::format(
          "a process (pid {}) has the ledger in {} open (serve, a verb reading it, or a backup "
          "of it): stop it before restoring over it",
          probe.l_pid, dir)));
    }
    return {};
  }

 private:
  int fd_ = -1;
};

std::string UtcStamp() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

// Moves the ledger in `dir` aside and renames the staged copy to `dir`, with the writer
// lock held and after checking once more that no process has `dir` open. A failure before
// the copy is in place puts the old ledger back.
Status ReplaceWith(Staging& staging, const std::string& dir, InUseCheck& in_use,
                   std::string* aside_out) {
  G60_TRY(in_use.Take(dir));  // again: something may have opened it during the copy
  std::string aside = dir + ".replaced-" + UtcStamp();
  if (::renameat2(AT_FDCWD, dir.c_str(), AT_FDCWD, aside.c_str(), RENAME_NOREPLACE) != 0) {
    int err = errno;
    return Fail(Error::FailedPrecondition(fmt::format(
        "moving {} aside to {}: {}{}; nothing was changed", dir, aside, std::strerror(err),
        err == EXDEV || err == EBUSY
            ? " (a mount point cannot be moved: restore into a new directory inside it and "
              "point [ledger] dir there)"
            : "")));
  }
  *aside_out = aside;
  auto committed = staging.CommitTo(dir);
  if (committed || staging.renamed()) return committed;
  if (::renameat2(AT_FDCWD, aside.c_str(), AT_FDCWD, dir.c_str(), RENAME_NOREPLACE) != 0) {
    return Fail(committed.error().Context(
        fmt::format("the ledger that was in {} is now in {} and could not be moved back ({})", dir,
                    aside, std::strerror(errno))));
  }
  aside_out->clear();
  return committed;
}

}  // namespace

Result<BackupReport> BackupLedger(const BackupOptions& options) {
  CryptoInit();
  BackupOptions o = options;
  o.dest_dir = WithoutTrailingSlash(o.dest_dir);
  G60_TRY(CheckNewPath(o.dest_dir, o.ledger_dir, "backup"));
  auto staged = StageVerifiedCopy(o);
  if (!staged) return Fail(staged.error());
  if (staged->report.problem) {
    G60_TRY(staged->staging->Discard());
    return staged->report;
  }
  G60_TRY(staged->staging->CommitTo(o.dest_dir));
  return staged->report;
}

Result<RestoreReport> RestoreLedger(const RestoreOptions& options) {
  CryptoInit();
  RestoreOptions o = options;
  o.ledger_dir = WithoutTrailingSlash(o.ledger_dir);
  RestoreReport out;
  std::error_code ec;
  const bool exists = fs::exists(fs::symlink_status(o.ledger_dir, ec));
  if (exists && !o.replace) {
    return Fail(Error::InvalidArgument(
        fmt::format("{} already exists: restore into a directory that does not exist yet, or give "
                    "--replace to move {} aside (it is kept, as {}.replaced-<time>, never deleted)",
                    o.ledger_dir, o.ledger_dir, o.ledger_dir)));
  }
  InUseCheck in_use;
  if (exists) {
    if (!fs::is_directory(o.ledger_dir, ec)) {
      return Fail(Error::InvalidArgument(fmt::format("{} is not a directory", o.ledger_dir)));
    }
    G60_TRY(in_use.Take(o.ledger_dir));  // before the copy, so that nothing is done in vain
  } else {
    G60_TRY(CheckNewPath(o.ledger_dir, o.backup_dir, "restored ledger"));
  }
  fs::path src = Resolved(o.backup_dir), dst = Resolved(o.ledger_dir);
  if (src == dst || IsInside(dst, src) || IsInside(src, dst)) {
    return Fail(Error::InvalidArgument(fmt::format(
        "the backup {} and the ledger directory {} overlap; restore into another directory",
        o.backup_dir, o.ledger_dir)));
  }
  BackupOptions b;
  b.ledger_dir = o.backup_dir;
  b.dest_dir = o.ledger_dir;
  b.compact = false;  // the backup's pages as they are
  b.configured_anchors = o.configured_anchors;
  b.verify_threads = o.verify_threads;
  b.map_size_bytes = o.map_size_bytes;
  auto staged = StageVerifiedCopy(b);
  if (!staged) return Fail(staged.error());
  out.copy = staged->report;
  if (out.copy.problem) {
    G60_TRY(staged->staging->Discard());
    return out;
  }
  if (exists) {
    G60_TRY(ReplaceWith(*staged->staging, o.ledger_dir, in_use, &out.replaced_to));
    return out;
  }
  G60_TRY(staged->staging->CommitTo(o.ledger_dir));
  return out;
}

}  // namespace g60
