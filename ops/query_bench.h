// `g60ledger bench --queries`: query latency on a large ledger. Builds a durable ledger
// of about N entries directly (the demo stream's events, signed, decided by the rules
// and appended in batches: no broker, so 10^6 entries take minutes, not hours), signs a
// checkpoint of every partition, then times, each many times over random subjects:
//   an applicant's history (the first page, up to 100 entries), a proof bundle of one
//   event (found, proved, serialised), and a programme's utilisation (every year);
// and prints p50/p99 and their ratio to the target (5 ms, 5 ms, 50 ms; below 1 is met).
#pragma once

#include <cstdint>
#include <string>

#include "ledger/status.h"

namespace g60 {

struct QueryBenchOptions {
  uint64_t entries = 1000000;
  std::string work_dir;
  std::string catalog_path;
  unsigned samples = 2000;  // subjects timed per query
  bool keep = false;        // keep the ledger (and reuse it when it is there)
};

int RunQueryBench(const QueryBenchOptions& options);

}  // namespace g60
