// Errors and results. Every fallible function returns Result<T>; an Error says what
// went wrong and whether trying again can help. A C library's error codes are
// translated into an Error once, at its boundary (lmdb.cc, the Kafka code), and
// nowhere else.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <expected>
#include <string>
#include <utility>

namespace g60 {

enum class ErrorCode {
  kInvalidArgument,     // the caller's input is wrong; retrying the same input fails again
  kNotFound,            // the thing asked for does not exist
  kFailedPrecondition,  // the system is not in a state that allows this (e.g. lock held)
  kPermissionDenied,    // a server refused this principal (Kafka ACLs); fix the grant, retry
  kUnavailable,         // transient: the broker is away, try again later
  kResourceExhausted,   // map full, disk full: the operator must make room, then resume
  kDataLoss,            // stored data is corrupt, or Kafka no longer has what we need
  kInternal,            // a library failed in a way we did not expect
};

const char* ErrorCodeName(ErrorCode code);

class [[nodiscard]] Error {
 public:
  Error(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Error InvalidArgument(std::string m) {
    return {ErrorCode::kInvalidArgument, std::move(m)};
  }
  static Error NotFound(std::string m) { return {ErrorCode::kNotFound, std::move(m)}; }
  static Error FailedPrecondition(std::string m) {
    return {ErrorCode::kFailedPrecondition, std::move(m)};
  }
  static Error PermissionDenied(std::string m) {
    return {ErrorCode::kPermissionDenied, std::move(m)};
  }
  static Error Unavailable(std::string m) { return {ErrorCode::kUnavailable, std::move(m)}; }
  static Error ResourceExhausted(std::string m) {
    return {ErrorCode::kResourceExhausted, std::move(m)};
  }
  static Error DataLoss(std::string m) { return {ErrorCode::kDataLoss, std::move(m)}; }
  static Error Internal(std::string m) { return {ErrorCode::kInternal, std::move(m)}; }

  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "DATA_LOSS: entry 3/17: previous-hash mismatch"
  std::string ToString() const;

  // Returns a copy whose message is prefixed with context ("opening ledger: ...").
  Error Context(const std::string& what) const { return {code_, what + ": " + message_}; }

 private:
  ErrorCode code_;
  std::string message_;
};

template <typename T>
using Result = std::expected<T, Error>;
using Status = std::expected<void, Error>;

inline std::unexpected<Error> Fail(Error e) {
  return std::unexpected<Error>(std::move(e));
}

// Assertions catch programmer errors; they stay on in release builds.
[[noreturn]] void AssertFailed(const char* expr, const char* file, int line);

}  // namespace g60

#define G60_ASSERT(expr) \
  ((expr) ? static_cast<void>(0) : ::g60::AssertFailed(#expr, __FILE__, __LINE__))

// Evaluates a Status/Result expression and returns its error from the enclosing function.
#define G60_TRY(expr)                                                             \
  do {                                                                            \
    auto g60_try_result_ = (expr);                                                \
    if (!g60_try_result_) return ::g60::Fail(std::move(g60_try_result_).error()); \
  } while (0)
