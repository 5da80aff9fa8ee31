// Shared by the tests that run against real Apache Kafka (tests/kafka/run starts the
// clusters with ops/kafka and passes them in the environment):
//
//   G60_KAFKA_BOOTSTRAP   the cluster's bootstrap address (required)
//   G60_KAFKA_NAME        its name under var/kafka (for ops/kafka kill-broker, stop, ...)
//   G60_KAFKA_BROKERS     how many brokers it has (1 or 3)
//   G60_KAFKA_CLIENTS     sasl-ssl clusters: the directory of per-user librdkafka
//                         property files (USER.properties)
//   G60_KAFKA_EVENTS      signed events of the exactly-once test (default 20000; the long
//                         setting runs 100000)
//
// The tests are hidden ([.realkafka]) so that ctest's pass over the development broker
// does not run them; tests/kafka/run does, and fails if one cannot reach its cluster.
#pragma once

#include <unistd.h>
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>

#include "integration/harness.h"
#include "ledger/bytes.h"
#include "ops/kafka_admin.h"
#include "process.h"
#include "support.h"

namespace g60::testing {

struct RealKafka {
  std::string bootstrap;
  std::string name;
  int brokers = 1;
  std::string clients_dir;  // sasl-ssl only
};

inline std::string Env(const char* name, const std::string& fallback = "") {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

inline RealKafka Cluster() {
  RealKafka k;
  k.bootstrap = Env("G60_KAFKA_BOOTSTRAP");
  INFO("G60_KAFKA_BOOTSTRAP is not set: run these tests through tests/kafka/run");
  REQUIRE_FALSE(k.bootstrap.empty());
  k.name = Env("G60_KAFKA_NAME");
  k.brokers = std::atoi(Env("G60_KAFKA_BROKERS", "1").c_str());
  k.clients_dir = Env("G60_KAFKA_CLIENTS");
  return k;
}

// librdkafka properties of one user of a sasl-ssl cluster (KEY=VALUE lines).
inline std::map<std::string, std::string> ClientProperties(const RealKafka& k,
                                                           const std::string& user) {
  std::map<std::string, std::string> out;
  if (k.clients_dir.empty()) return out;
  std::ifstream in(k.clients_dir + "/" + user + ".properties");
  REQUIRE(in.good());
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto eq = line.find('=');
    if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

// Runs ops/kafka with the cluster's name; returns its exit status (output in `log`).
inline RunResult KafkaCtl(const RealKafka& k, std::vector<std::string> args,
                          const std::string& log) {
  std::vector<std::string> argv = {std::string(G60_SOURCE_DIR) + "/ops/kafka"};
  argv.insert(argv.end(), args.begin(), args.end());
  if (!k.name.empty()) {
    argv.push_back("--name");
    argv.push_back(k.name);
  }
  return Run(argv, log);
}

// A topic name of its own for each test and run, so that runs never see each other.
inline std::string UniqueTopic(const std::string& what) {
  static std::atomic<int> n{0};
  return fmt::format("g60.test.{}.{}.{}", what, ::getpid(), n++);
}

inline KafkaAdminOptions Admin(const RealKafka& k) {
  KafkaAdminOptions o;
  o.bootstrap = k.bootstrap;
  o.kafka = ClientProperties(k, "admin");
  return o;
}

// A topic created for one test and deleted when it ends.
class TestTopic {
 public:
  TestTopic(const RealKafka& k, const std::string& what, int partitions,
            const std::map<std::string, std::string>& configs = {})
      : admin_(Admin(k)), name_(UniqueTopic(what)) {
    auto s = CreateTopic(admin_, name_, partitions, k.brokers, configs);
    INFO((s ? "" : s.error().ToString()));
    REQUIRE(s.has_value());
  }
  ~TestTopic() { (void)DeleteTopic(admin_, name_); }
  const std::string& name() const { return name_; }

 private:
  KafkaAdminOptions admin_;
  std::string name_;
};

// A TOML section of librdkafka properties.
inline std::string PropertiesSection(const std::string& section,
                                     const std::map<std::string, std::string>& props) {
  std::string out = "[" + section + "]\n";
  for (const auto& [key, value] : props)
    out += fmt::format("\"{}\" = \"{}\"\n", key, value);
  return out;
}

// A configuration for `g60ledger ingest` over the cluster: ledger in DIR/ledger.
inline std::string WriteConfig(const std::filesystem::path& dir, const RealKafka& k,
                               const std::string& topic, const std::string& group,
                               const std::string& extra = "") {
  std::filesystem::create_directories(dir);
  std::ofstream cfg(dir / "ingest.toml");
  cfg << "[ledger]\ndir = \"ledger\"\nmap_size_mib = 1024\n"
      << "[kafka]\nbootstrap = \"" << k.bootstrap << "\"\ntopic = \"" << topic
      << "\"\ngroup_id = \"" << group << "\"\n"
      << "[trust]\nanchors = [\"" << Base64Encode(Keys().admin.public_key) << "\"]\n"
      << "[ingest]\nbatch_max_messages = 500\nbatch_max_ms = 50\n"
      << extra;
  return (dir / "ingest.toml").string();
}

// Produces the key grants and the catalogue to every partition.
inline void ProduceControl(Producer& producer) {
  for (const auto& r : GrantRecords(0))
    REQUIRE(producer.SendToAll(r.value, "control").has_value());
  auto d = producer.Flush();
  REQUIRE(d.has_value());
  REQUIRE(d->failures.empty());
}

inline std::unique_ptr<Producer> RealProducer(const RealKafka& k, const std::string& topic,
                                              const std::string& user = "producer") {
  ProducerOptions o;
  o.bootstrap = k.bootstrap;
  o.topic = topic;
  o.kafka = ClientProperties(k, user);
  auto p = Producer::Create(o);
  INFO((p ? "" : p.error().ToString()));
  REQUIRE(p.has_value());
  return std::move(*p);
}

inline IngestOptions RealIngest(const RealKafka& k, const std::string& topic,
                                const std::string& group) {
  IngestOptions io;
  io.bootstrap = k.bootstrap;
  io.topic = topic;
  io.group_id = group;
  io.until_caught_up = true;
  io.kafka = ClientProperties(k, "ingest");
  return io;
}

}  // namespace g60::testing
