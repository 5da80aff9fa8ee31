// CPU time of the calling thread, for the pipeline's accounting of where each record's
// CPU goes (g60ledger bench). A system call of about a microsecond: take it per chunk
// or per thread, not per record.
#pragma once

#include <time.h>

namespace g60 {

inline double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

}  // namespace g60
