#include <catch2/catch.hpp>

#include <fstream>
#include <regex>
#include <sstream>

#include "ledger/bytes.h"
#include "ledger/config.h"
#include "support.h"

using namespace g60;

TEST_CASE("the example configuration parses once it has a real anchor", "[config]") {
  std::ifstream in(std::string(G60_SOURCE_DIR) + "/ops/config/ledger.example.toml");
  REQUIRE(in);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string anchor = Base64Encode(g60::testing::Keys().admin.public_key);
  std::string text =
      std::regex_replace(ss.str(), std::regex("BASE64-OF-32-BYTE-ADMIN-PUBLIC-KEY="), anchor);
  auto c = ParseConfig(text, "example");
  REQUIRE(c.has_value());
  CHECK(c->ledger_dir == "/var/lib/g60ledger/ledger");
  CHECK(c->map_size_mib == 65536);
  CHECK(c->topic == "g60.events");
  CHECK(c->trust_anchors == std::vector<std::string>{g60::testing::Keys().admin.public_key});
  CHECK(c->batch_max_messages == 5000);
  CHECK(c->batch_max_ms == 250);
  CHECK(c->checkpoint_key_file == "/etc/g60ledger/ledger.key");
  CHECK(c->checkpoint_name == "g60ledger.example/songjiang");
  CHECK(c->checkpoint_every_entries == 10000);
  CHECK(c->checkpoint_every_seconds == 60);
  CHECK(c->checkpoint_topic == "g60.checkpoints");
  // As shipped, the placeholder anchor is refused with a clear error.
  auto raw = ParseConfig(ss.str(), "example");
  REQUIRE_FALSE(raw.has_value());
  CHECK_THAT(raw.error().message(), Catch::Contains("anchors[0] is not a base64 32-byte"));
}

TEST_CASE("configuration errors name the file, key and rule", "[config]") {
  CHECK_THAT(ParseConfig("[ledger]\ndri = \"x\"\n", "f.toml").error().message(),
             Catch::Contains("unknown key 'dri' in [ledger]"));
  CHECK_THAT(ParseConfig("[ingest]\nbatch_max_messages = 0\n", "f.toml").error().message(),
             Catch::Contains("batch_max_messages must be an integer from 1"));
  CHECK_THAT(ParseConfig("[kafka]\nbootstrap = 5\n", "f.toml").error().message(),
             Catch::Contains("bootstrap must be a string"));
  CHECK_THAT(
      ParseConfig("[kafka.consumer]\n\"session.timeout.ms\" = 6000\n", "f.toml").error().message(),
      Catch::Contains("must be a string"));
  CHECK_THAT(ParseConfig("[ledger\n", "f.toml").error().message(), Catch::StartsWith("f.toml:1:"));
  CHECK_THAT(ParseConfig("[checkpoint]\nname = \"a b\"\n", "f.toml").error().message(),
             Catch::Contains("signed-note key name"));
  CHECK_THAT(ParseConfig("[checkpoint]\nevery_entries = 0\n", "f.toml").error().message(),
             Catch::Contains("every_entries must be an integer from 1"));
  auto ok = ParseConfig("[kafka.consumer]\n\"session.timeout.ms\" = \"6000\"\n", "f.toml");
  REQUIRE(ok.has_value());
  CHECK(ok->consumer_properties.at("session.timeout.ms") == "6000");
}
