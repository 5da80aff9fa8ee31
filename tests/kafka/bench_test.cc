// `g60ledger bench --kafka` at a small size on real Kafka: the produce, ingest (in a
// process of its own) and latency phases run there too, and their ratios come last.
// Nothing is timed: the figures are this machine's.
#include "kafka/real_kafka.h"

using namespace g60;
using namespace g60::testing;

TEST_CASE("real Kafka: bench --kafka runs every phase on both brokers, ratios last",
          "[.realkafka][single]") {
  RealKafka k = Cluster();
  TempDir dir;
  auto r =
      Run({G60LEDGER_BIN, "bench", "--events", "2000", "--bound-seconds", "0.2",
           "--latency-seconds", "0.5", "--latency-rate", "1000", "--dir", dir.path(), "--catalog",
           std::string(G60_SOURCE_DIR) + "/schemas/catalog.txtpb", "--kafka", k.bootstrap},
          dir / "bench.log");
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK_THAT(r.output, Catch::Contains("-- on the development broker") &&
                           Catch::Contains("-- on the Apache Kafka at " + k.bootstrap) &&
                           Catch::Contains("peak RSS of the ingest process"));
  // The ratios, last and in order.
  std::vector<std::string> lines;
  std::istringstream in(r.output);
  for (std::string line; std::getline(in, line);)
    if (line.rfind("ratio ", 0) == 0) lines.push_back(line);
  REQUIRE(lines.size() == 5);
  CHECK(lines[3].rfind("ratio kafka-ingest/bound ", 0) == 0);
  CHECK(lines[4].rfind("ratio kafka-latency-p99/100ms ", 0) == 0);
  CHECK(r.output.substr(r.output.rfind("ratio ")).find('\n') ==
        r.output.size() - 1 - r.output.rfind("ratio "));
}
