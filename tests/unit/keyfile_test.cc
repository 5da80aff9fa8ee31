#include <sys/stat.h>
#include <catch2/catch.hpp>

#include <filesystem>

#include "ledger/crypto.h"
#include "producers/keyfile.h"
#include "producers/ndjson.h"
#include "support.h"

using namespace g60;
using namespace g60::testing;

TEST_CASE("keygen writes a 0600 secret file and a public file, never overwriting", "[keys]") {
  TempDir dir;
  auto k = GenerateKeyFile(dir / "t.key", v1::ROLE_TREASURY);
  REQUIRE(k.has_value());
  struct stat st;
  REQUIRE(::stat((dir / "t.key").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto back = ReadSecretKeyFile(dir / "t.key");
  REQUIRE(back.has_value());
  CHECK(back->secret_key == k->secret_key);
  CHECK(back->role == v1::ROLE_TREASURY);
  CHECK(back->key_id == KeyIdOf(k->public_key));
  auto pub = ReadPublicKeyFile(dir / "t.key.pub");
  REQUIRE(pub.has_value());
  CHECK(pub->public_key == k->public_key);
  CHECK(pub->secret_key.empty());
  auto again = GenerateKeyFile(dir / "t.key", v1::ROLE_TREASURY);
  REQUIRE_FALSE(again.has_value());
  CHECK_THAT(again.error().message(), Catch::Contains("never overwritten"));
  // A secret key someone else can read is refused.
  ::chmod((dir / "t.key").c_str(), 0640);
  CHECK_THAT(ReadSecretKeyFile(dir / "t.key").error().message(),
             Catch::Contains("readable by others"));
}

TEST_CASE("a signature made with a key file verifies with the documented prefix", "[keys]") {
  const KeyFile& k = Keys().portal;
  std::string value = SignEvent(ApplicationEvent("a", "b", 1, 1), k);
  v1::SignedEvent se;
  REQUIRE(se.ParseFromString(value));
  CHECK(se.key_id() == k.key_id);
  CHECK(VerifyDetached(k.public_key, se.signature(), std::string_view("g60ledger/event/v1\0", 19),
                       se.event()));
  CHECK_FALSE(VerifyDetached(k.public_key, se.signature(), "g60ledger/event/v1", se.event()));
}

TEST_CASE("NDJSON events parse strictly", "[ndjson]") {
  auto e = ParseEventJson(
      R"({"eventId":"x","applicantId":"a","occurredAtMs":5,"stagePayment":{"approvalEventId":"y","stage":1,"amountFen":"12","source":"FUNDING_SOURCE_DISTRICT_FISCAL"}})");
  REQUIRE(e.has_value());
  CHECK(e->stage_payment().amount_fen() == 12);
  CHECK(e->stage_payment().source() == v1::FUNDING_SOURCE_DISTRICT_FISCAL);
  CHECK_FALSE(ParseEventJson(R"({"eventId":"x","unknown":1})").has_value());
  CHECK_FALSE(ParseEventJson(R"({"eventId":"x")").has_value());
  CHECK_FALSE(ParseEventJson(R"({"stagePayment":{"amountFen":"1.5"}})").has_value());
  // Round trip through the JSON mapping.
  CHECK(ParseEventJson(ToJsonLine(*e))->SerializeAsString() == e->SerializeAsString());
}
