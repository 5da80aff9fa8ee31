// The rule for JSON files handed to us (ledger/strict_json.h, docs/audit.md).
#include <catch2/catch.hpp>

#include "ledger/strict_json.h"

using namespace g60;
using nlohmann::json;

TEST_CASE("strict JSON: a member named twice, a byte order mark and non-JSON are refused",
          "[json]") {
  CHECK(ParseStrictJson(R"({"a": 1, "b": {"a": 2}, "c": [{"a": 3}, {"a": 4}]})", "f").has_value());
  auto twice = ParseStrictJson(R"({"a": 1, "b": 2, "a": 1})", "bundle.json");
  REQUIRE_FALSE(twice.has_value());
  CHECK_THAT(twice.error().message(),
             Catch::Contains("bundle.json names the member \"a\" twice in one object"));
  auto nested = ParseStrictJson(R"({"l": [{"x": 1}, {"y": 1, "y": 2}]})", "f");
  REQUIRE_FALSE(nested.has_value());
  CHECK_THAT(nested.error().message(), Catch::Contains("\"y\" twice"));
  auto bom = ParseStrictJson("\xEF\xBB\xBF{}", "f");
  REQUIRE_FALSE(bom.has_value());
  CHECK_THAT(bom.error().message(), Catch::Contains("byte order mark"));
  CHECK_FALSE(ParseStrictJson(R"({"a": NaN})", "f").has_value());
  CHECK_FALSE(ParseStrictJson(R"({"a": "\ud800"})", "f").has_value());  // a lone surrogate
  CHECK_FALSE(ParseStrictJson("{\"a\": \"\xff\"}", "f").has_value());   // not UTF-8
  CHECK_FALSE(ParseStrictJson(R"({} {})", "f").has_value());
}

TEST_CASE("strict JSON: values of another type are not equal", "[json]") {
  CHECK(SameJson(json::parse("1"), json(uint64_t{1})));
  CHECK(SameJson(json::parse("-5"), json(int64_t{-5})));
  CHECK(SameJson(json(int64_t{7}), json(uint64_t{7})));
  CHECK_FALSE(SameJson(json::parse("1.0"), json(1)));
  CHECK_FALSE(SameJson(json::parse("1e0"), json(1)));
  CHECK_FALSE(SameJson(json::parse("true"), json(1)));
  CHECK_FALSE(SameJson(json::parse("\"1\""), json(1)));
  CHECK_FALSE(SameJson(json::parse("18446744073709551615"), json(int64_t{-1})));
  CHECK(SameJson(json::parse(R"({"a": [1, "x"]})"), json::parse(R"({"a": [1, "x"]})")));
  CHECK_FALSE(SameJson(json::parse(R"({"a": [1, "x"]})"), json::parse(R"({"a": [1.0, "x"]})")));
  CHECK_FALSE(SameJson(json::parse(R"({"a": 1})"), json::parse(R"({"a": 1, "b": 2})")));
}

TEST_CASE("strict JSON: members exactly as listed, integers as JSON integers", "[json]") {
  json j = json::parse(R"({"format": "x", "n": 3, "f": 3.0, "s": "3", "neg": -3})");
  CHECK(RequireMembers(j, {"format", "n", "f", "s", "neg"}, {}, "p.json").has_value());
  CHECK(RequireMembers(j, {"format", "n", "f", "s"}, {"neg", "more"}, "p.json").has_value());
  auto unknown = RequireMembers(j, {"format", "n", "f", "s"}, {}, "p.json");
  REQUIRE_FALSE(unknown.has_value());
  CHECK_THAT(unknown.error().message(), Catch::Contains("p.json has an unknown member \"neg\""));
  auto missing = RequireMembers(j, {"format", "hashes"}, {"n", "f", "s", "neg"}, "p.json");
  REQUIRE_FALSE(missing.has_value());
  CHECK_THAT(missing.error().message(), Catch::Contains("p.json has no \"hashes\""));
  CHECK_FALSE(RequireMembers(json::array(), {}, {}, "p.json").has_value());
  CHECK(UnsignedMember(j, "n", "p.json").value() == 3);
  for (const char* m : {"f", "s", "neg", "absent"}) {
    INFO(m);
    CHECK_FALSE(UnsignedMember(j, m, "p.json").has_value());
  }
  CHECK_THAT(
      UnsignedMember(j, "f", "p.json").error().message(),
      Catch::Contains("p.json's \"f\" is 3.0, not a whole number written as a JSON integer"));
}
