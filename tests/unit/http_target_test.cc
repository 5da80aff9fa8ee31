// ParseRequestTarget: what `serve` routes on. Each case is a raw request target and what
// it must give: the decoded segments and parameters, or an error naming the fault.
#include <catch2/catch.hpp>

#include "ops/http_target.h"

using namespace g60;

namespace {

using Segments = std::vector<std::string>;
using Query = std::vector<std::pair<std::string, std::string>>;

struct Case {
  std::string raw;
  Segments segments;
  Query query;
  std::string error;  // part of the message when the target is refused
};

}  // namespace

TEST_CASE("request targets: ids are percent-encoded segments, decoded once", "[http]") {
  const Case cases[] = {
      {"/", {""}, {}, ""},
      {"/api/status", {"api", "status"}, {}, ""},
      // An id holding '/' is one segment (issue 13.7's "pay/2024/1").
      {"/api/proofs/pay%2F2024%2F1", {"api", "proofs", "pay/2024/1"}, {}, ""},
      {"/api/proofs/pay%2f2024%2f1", {"api", "proofs", "pay/2024/1"}, {}, ""},
      // A literal "%2F" in an id is sent as %252F and decoded once, not twice.
      {"/api/proofs/pay%252F1", {"api", "proofs", "pay%2F1"}, {}, ""},
      {"/api/proofs/50%25", {"api", "proofs", "50%"}, {}, ""},
      // Spaces and UTF-8, percent-encoded; '+' in a path is a plus.
      {"/api/applicants/a%20b+c", {"api", "applicants", "a b+c"}, {}, ""},
      {"/api/applicants/%E6%9D%BE%E6%B1%9F", {"api", "applicants", "松江"}, {}, ""},
      {"/api/applicants/\xE6\x9D\xBE", {"api", "applicants", "松"}, {}, ""},
      // Empty and dot segments are kept as they are: nothing maps them to files.
      {"/a//b/", {"a", "", "b", ""}, {}, ""},
      {"/../etc/passwd", {"..", "etc", "passwd"}, {}, ""},
      {"/%2E%2E/x", {"..", "x"}, {}, ""},
      // Queries: form encoding, order kept, empty pairs skipped, a bare name is "".
      {"/api/payments?from=2026-01-01&to=2027-01-01",
       {"api", "payments"},
       {{"from", "2026-01-01"}, {"to", "2027-01-01"}},
       ""},
      {"/x?a=1+2&b=%2B&&c", {"x"}, {{"a", "1 2"}, {"b", "+"}, {"c", ""}}, ""},
      {"/x?after=a%3Db", {"x"}, {{"after", "a=b"}}, ""},
      {"/x?", {"x"}, {}, ""},
      // Refused: what no name or id holds, and what is not percent-encoding.
      {"/app.js%00.html", {}, {}, "control character (U+0000)"},
      {"/a%0Ab", {}, {}, "control character (U+000A)"},
      {"/a%7F", {}, {}, "control character (U+007F)"},
      {"/a%C2%85", {}, {}, "control character (U+0085)"},
      {"/a\tb", {}, {}, "control character (0x09)"},
      {"/a\x7f", {}, {}, "control character (0x7F)"},
      {"/x?q=%00", {}, {}, "parameter 'q' holds a control character"},
      {"/x?%0A=1", {}, {}, "name holds a control character"},
      {"/a%zz", {}, {}, "two hexadecimal digits"},
      {"/a%4", {}, {}, "two hexadecimal digits"},
      {"/a%", {}, {}, "two hexadecimal digits"},
      {"/a%u00e9", {}, {}, "two hexadecimal digits"},
      {"/x?a=%G1", {}, {}, "two hexadecimal digits"},
      {"/a%FF", {}, {}, "not UTF-8 text (byte 0xFF at offset 1)"},
      {"/a%C0%AF", {}, {}, "not UTF-8"},        // overlong '/'
      {"/a%ED%A0%80", {}, {}, "not UTF-8"},     // a surrogate
      {"/a%F4%90%80%80", {}, {}, "not UTF-8"},  // above U+10FFFF
      {"/a%E6%9D", {}, {}, "not UTF-8"},        // cut short
      {"/a\xE6\x9D", {}, {}, "not UTF-8"},
      {"/x?a=1&a=2", {}, {}, "parameter 'a' is given twice"},
      {"/x?a=1&a", {}, {}, "parameter 'a' is given twice"},
      {"/x?=1", {}, {}, "has no name"},
      {"", {}, {}, "starting with '/'"},
      {"api/status", {}, {}, "starting with '/'"},
      {"http://example.com/api/status", {}, {}, "origin-form"},
      {"*", {}, {}, "origin-form"},
  };
  for (const auto& c : cases) {
    INFO("target: " << c.raw);
    auto t = ParseRequestTarget(c.raw);
    if (c.error.empty()) {
      REQUIRE(t.has_value());
      CHECK(t->segments == c.segments);
      CHECK(t->query == c.query);
    } else {
      REQUIRE_FALSE(t.has_value());
      CHECK(t.error().code() == ErrorCode::kInvalidArgument);
      CHECK_THAT(t.error().message(), Catch::Contains(c.error));
    }
  }
}

TEST_CASE("a target's path for messages keeps what would change its meaning encoded", "[http]") {
  auto t = ParseRequestTarget("/api/proofs/pay%2F2024%2F1%3Fx%23y%25z%20w/%E6%9D%BE");
  REQUIRE(t.has_value());
  CHECK(t->Path() == "/api/proofs/pay%2F2024%2F1%3Fx%23y%25z%20w/松");
  CHECK(ParseRequestTarget("/")->Path() == "/");
}

TEST_CASE("percent-encoding leaves only RFC 3986's unreserved characters", "[http]") {
  CHECK(PercentEncode("pay/2024/1") == "pay%2F2024%2F1");
  CHECK(PercentEncode("a-b.c_d~e") == "a-b.c_d~e");
  CHECK(PercentEncode("50% off+") == "50%25%20off%2B");
  CHECK(PercentEncode("松") == "%E6%9D%BE");
  // Encoding then decoding gives back every id the ledger accepts (printable ASCII).
  std::string all;
  for (char c = 0x21; c < 0x7F; ++c)
    all += c;
  auto back = PercentDecode(PercentEncode(all), false, "the id");
  REQUIRE(back.has_value());
  CHECK(*back == all);
}
