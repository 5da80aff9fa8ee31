#include <sys/stat.h>
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "ledger/bytes.h"
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

TEST_CASE("a key file with an unknown member, an edited key_id or an unknown role is refused",
          "[keys]") {
  // Anchor files are among the files an auditor hands us (docs/audit.md): read strictly.
  TempDir dir;
  REQUIRE(WriteKeyFile(dir / "a.key", Keys().admin).has_value());
  std::ifstream in(dir / "a.key.pub");
  nlohmann::json pub = nlohmann::json::parse(in);
  auto write = [&](const std::string& text) {
    std::ofstream(dir / "edited.pub", std::ios::trunc) << text;
    return ReadPublicKeyFile(dir / "edited.pub");
  };
  REQUIRE(write(pub.dump()).has_value());
  nlohmann::json j = pub;
  j["comment"] = "hello";
  CHECK_THAT(write(j.dump()).error().message(), Catch::Contains("unknown member \"comment\""));
  j = pub;
  j["key_id"] = KeyIdOf(Keys().rogue.public_key);
  CHECK_THAT(write(j.dump()).error().message(),
             Catch::Contains("key_id is") && Catch::Contains("the file was edited"));
  j = pub;
  j["role"] = "superuser";
  CHECK_THAT(write(j.dump()).error().message(), Catch::Contains("role \"superuser\""));
  j = pub;
  j.erase("role");
  CHECK_THAT(write(j.dump()).error().message(), Catch::Contains("has no \"role\""));
  j = pub;
  j["format"] = "g60ledger-public-key/2";
  CHECK_THAT(write(j.dump()).error().message(), Catch::Contains("is not a key file"));
  std::string twice = pub.dump();
  twice.insert(twice.size() - 1,
               ",\"public_key\":\"" + Base64Encode(Keys().rogue.public_key) + "\"");
  CHECK_THAT(write(twice).error().message(), Catch::Contains("\"public_key\" twice"));
  // The secret file's public half is readable too (the ledger's own key, for instance),
  // but a public file is not a secret one.
  CHECK(ReadPublicKeyFile(dir / "a.key").has_value());
  std::ofstream(dir / "public-only.key") << pub.dump();
  ::chmod((dir / "public-only.key").c_str(), 0600);
  CHECK_THAT(ReadSecretKeyFile(dir / "public-only.key").error().message(),
             Catch::Contains("is a public key file and holds no secret key") &&
                 Catch::Contains("sign with the secret key file written with it instead"));
}
