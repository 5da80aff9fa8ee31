// The NDJSON that `produce` signs (producers/ndjson.h): a line a reviewer could read two
// ways is refused, never signed (issue 13, item 2).
#include <catch2/catch.hpp>

#include "producers/ndjson.h"

using namespace g60;

namespace {

const std::string kHead =
    R"({"eventId":"app-1","applicantId":"91310117MA1J3XXXX1","programme":"G60-07b",)"
    R"("projectId":"p","occurredAtMs":"1767225600000",)";

std::string ErrorOf(const std::string& line) {
  auto e = ParseEventJson(line);
  return e ? std::string() : e.error().message();
}

}  // namespace

TEST_CASE("an ordinary event line parses", "[ndjson]") {
  auto e = ParseEventJson(
      kHead + R"("application":{"declaredBaseFen":"2000000000","requestedFen":"100"}})");
  REQUIRE(e.has_value());
  CHECK(e->application().requested_fen() == 100);
  // Field names as protobuf's JSON mapping allows them: lowerCamelCase or the proto name.
  auto f = ParseEventJson(kHead + R"("application":{"declared_base_fen":"5","requested_fen":1}})");
  REQUIRE(f.has_value());
  CHECK(f->application().declared_base_fen() == 5);
}

TEST_CASE("a repeated key is refused, whichever way it is spelt", "[ndjson]") {
  // The issue's example: signed as 99,999,999 without a word before.
  CHECK_THAT(
      ErrorOf(kHead + R"("application":{"declaredBaseFen":"2000000000","requestedFen":"100",)"
                      R"("requestedFen":"99999999"}})"),
      Catch::Contains("requestedFen") && Catch::Contains("more than once"));
  // The same field under its proto name and its JSON name.
  CHECK_THAT(
      ErrorOf(kHead + R"("application":{"declaredBaseFen":"2000000000","requestedFen":"100",)"
                      R"("requested_fen":"99999999"}})"),
      Catch::Contains("requested_fen") && Catch::Contains("more than once"));
  // At the top level too.
  CHECK_THAT(ErrorOf(kHead + R"("eventId":"app-2","application":{"requestedFen":"1"}})"),
             Catch::Contains("eventId"));
}

TEST_CASE("two payloads, trailing text and a repeated list are refused", "[ndjson]") {
  CHECK_FALSE(ErrorOf(kHead + R"("application":{"requestedFen":"1"},)"
                              R"("approval":{"applicationEventId":"x"}})")
                  .empty());
  CHECK_FALSE(ErrorOf(kHead + R"("application":{"requestedFen":"1"}} trailing)").empty());
  CHECK_FALSE(ErrorOf(kHead + R"("application":{"requestedFen":"1"}}{"eventId":"b"})").empty());
  CHECK_FALSE(ErrorOf("not json").empty());
  CHECK_FALSE(ErrorOf("[]").empty());
}

TEST_CASE("a line protobuf would read but strict JSON does not is refused", "[ndjson]") {
  // Found by an attacker's review: protobuf's parser takes single-quoted strings and bare
  // names, which hid a repeated field from the check above and signed the last value.
  CHECK_THAT(ErrorOf(kHead + R"("application":{'requestedFen':'100','requestedFen':'999'}})"),
             Catch::Contains("not strict JSON"));
  CHECK_THAT(ErrorOf(kHead + R"("application":{requestedFen:"100",requestedFen:"999"}})"),
             Catch::Contains("not strict JSON"));
  CHECK_THAT(ErrorOf("{\"eventId\":\"a\"} // a comment"), Catch::Contains("not strict JSON"));
}
