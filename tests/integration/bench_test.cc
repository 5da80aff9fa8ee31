// `g60ledger bench` end to end at a small size: every phase runs, the CPU accounting
// adds up, and the ratios are printed last, one per line. No figure is asserted: the
// bench measures this machine, and a unit test must not time it.
#include <catch2/catch.hpp>

#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "ops/bench.h"
#include "support.h"

using namespace g60;
using namespace g60::testing;

TEST_CASE("bench runs every phase, accounts for the ingest's CPU, and prints the ratios last",
          "[integration][kafka][bench]") {
  TempDir dir;
  BenchOptions o;
  o.events = 400;
  o.threads = 2;
  o.work_dir = dir.path();
  o.bound_seconds = 0.1;
  o.latency_seconds = 0.3;
  o.latency_rate = 500;
  o.catalog_path = std::string(G60_SOURCE_DIR) + "/schemas/catalog.txtpb";
  auto r = RunBench(o);
  REQUIRE(r.has_value());
  CHECK(r->dev.entries >= o.events);
  CHECK(r->bound_per_s > 0);
  CHECK(r->dev.ingest_per_s > 0);
  CHECK(r->verify_per_s > 0);
  CHECK(r->audit_per_s > 0);
  CHECK(r->dev.latency_samples > 0);
  // Every stage of the pipeline did work, on its own threads, within the process's CPU.
  CHECK(r->dev.ingest_verify_cpu_seconds > 0);
  CHECK(r->dev.ingest_write_cpu_seconds > 0);
  CHECK(r->dev.ingest_consume_cpu_seconds > 0);
  CHECK(r->dev.ingest_verify_cpu_seconds + r->dev.ingest_write_cpu_seconds +
            r->dev.ingest_consume_cpu_seconds <=
        r->dev.ingest_cpu_seconds * 1.01 + 0.01);
  CHECK(r->dev.ingest_commit_seconds > 0);
  CHECK(r->dev.ingest_commit_seconds < r->dev.ingest_wall_seconds);
  CHECK(r->audit_check_cpu_seconds > 0);
  CHECK(r->audit_apply_cpu_seconds > 0);

  std::FILE* f = std::tmpfile();
  REQUIRE(f != nullptr);
  PrintBench(*r, f);
  std::rewind(f);
  std::string text;
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof buf, f))
    text.append(buf, n);
  std::fclose(f);
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    lines.push_back(line);
  INFO(text);
  REQUIRE(lines.size() > 3);
  const std::vector<std::string> ratios = {"ratio ingest/bound ", "ratio verify/bound ",
                                           "ratio audit/verify "};
  for (size_t i = 0; i < ratios.size(); ++i) {
    const std::string& line = lines[lines.size() - ratios.size() + i];
    REQUIRE(line.rfind(ratios[i], 0) == 0);
    double value = std::stod(line.substr(ratios[i].size()));
    CHECK(value > 0);
  }
  CHECK(text.find("ingest CPU per record") != std::string::npos);
  CHECK(text.find("signature share") != std::string::npos);
}
