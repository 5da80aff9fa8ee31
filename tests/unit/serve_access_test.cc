// The read roles and bearer tokens of `serve` (ops/serve_access.h): the tokens file's
// format and every way to break it, its mode, the lookup, and the Authorization header.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <fstream>

#include "ledger/bytes.h"
#include "ops/serve_access.h"
#include "support.h"

using namespace g60;
using namespace g60::testing;

TEST_CASE("a tokens file holds hashes, and each token finds its own line", "[serve][tokens]") {
  std::string alice = NewBearerToken(), board = NewBearerToken();
  CHECK(alice.size() == 43);
  CHECK(alice != board);
  CHECK(
      alice.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
      std::string::npos);
  std::string line = TokenFileLine("alice", ReadRole::kAuditor, alice);
  CHECK(line == "alice auditor sha256:" + HexEncode(AsBytes(Sha256(alice))));
  CHECK(line.find(alice) == std::string::npos);  // the file never holds the token
  std::string board_line = TokenFileLine("x", ReadRole::kPublic, board);
  std::string text = "# serve tokens\n\n" + line + "\r\n\t dashboard\tpublic   " +
                     board_line.substr(board_line.rfind(' ') + 1) + "  \n";
  auto table = TokenTable::Parse(text, "tokens.txt");
  REQUIRE(table.has_value());
  CHECK(table->size() == 2);
  const TokenEntry* a = table->Find(alice);
  REQUIRE(a != nullptr);
  CHECK(a->name == "alice");
  CHECK(a->role == ReadRole::kAuditor);
  const TokenEntry* b = table->Find(board);
  REQUIRE(b != nullptr);
  CHECK(b->name == "dashboard");
  CHECK(b->role == ReadRole::kPublic);
  CHECK(table->Find("") == nullptr);
  CHECK(table->Find(alice + "x") == nullptr);
  CHECK(table->Find(alice.substr(1)) == nullptr);
  // The hash may be written in capitals.
  std::string upper = line;
  for (size_t i = line.find(':') + 1; i < upper.size(); ++i)
    upper[i] = static_cast<char>(std::toupper(static_cast<unsigned char>(upper[i])));
  auto t2 = TokenTable::Parse(upper, "t");
  REQUIRE(t2.has_value());
  CHECK(t2->Find(alice) != nullptr);
}

TEST_CASE("a tokens file that breaks the format is refused, naming the line", "[serve][tokens]") {
  std::string ok = TokenFileLine("alice", ReadRole::kAuditor, "token-a");
  std::string hash = ok.substr(ok.rfind(' ') + 1);
  struct Case {
    std::string text;
    std::string error;
  } cases[] = {
      {"", "holds no token"},
      {"# only a comment\n\n", "holds no token"},
      {"alice auditor\n", "line 1: expected three fields"},
      {ok + "\nbob auditor " + hash + " extra\n", "line 2: expected three fields"},
      {"al/ice auditor " + hash, "line 1: 'al/ice' is not a token name"},
      {std::string(65, 'a') + " auditor " + hash, "is not a token name"},
      {"alice admin " + hash, "line 1: the role 'admin' is not a role"},
      {"alice Auditor " + hash, "is not a role"},
      {"alice auditor " + hash.substr(7), "the third field must be sha256:"},
      {"alice auditor sha256:abcd", "the third field must be sha256:"},
      {"alice auditor sha256:" + std::string(64, 'g'), "the third field must be sha256:"},
      {"alice auditor token-a", "never tokens"},
      {ok + "\n" + TokenFileLine("alice", ReadRole::kPublic, "token-b"),
       "line 2: the name alice is used twice"},
      {ok + "\n# comment\n" + TokenFileLine("bob", ReadRole::kPublic, "token-a"),
       "line 3: this token is already alice's"},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    auto t = TokenTable::Parse(c.text, "tokens.txt");
    REQUIRE_FALSE(t.has_value());
    CHECK(t.error().code() == ErrorCode::kInvalidArgument);
    CHECK_THAT(t.error().message(), Catch::StartsWith("tokens.txt") && Catch::Contains(c.error));
  }
}

TEST_CASE("a tokens file others may write is refused, one others may read is warned about",
          "[serve][tokens]") {
  TempDir dir;
  std::string path = dir / "tokens";
  std::ofstream(path) << TokenFileLine("alice", ReadRole::kAuditor, "t") << "\n";
  auto load = [&](mode_t mode, std::vector<std::string>* warnings) {
    REQUIRE(::chmod(path.c_str(), mode) == 0);
    return TokenTable::Load(path, warnings);
  };
  std::vector<std::string> warnings;
  CHECK(load(0600, &warnings).has_value());
  CHECK(warnings.empty());
  CHECK(load(0640, &warnings).has_value());
  CHECK(warnings.empty());
  CHECK(load(0644, &warnings).has_value());
  REQUIRE(warnings.size() == 1);
  CHECK_THAT(warnings[0], Catch::Contains("may be read by anyone"));
  auto group = load(0660, nullptr);
  REQUIRE_FALSE(group.has_value());
  CHECK_THAT(group.error().message(),
             Catch::Contains("may be written by its group") && Catch::Contains("chmod go-w"));
  auto anyone = load(0602, nullptr);
  REQUIRE_FALSE(anyone.has_value());
  CHECK_THAT(anyone.error().message(), Catch::Contains("may be written by anyone"));
  CHECK(TokenTable::Load(dir / "absent", nullptr).error().code() == ErrorCode::kNotFound);
  CHECK_THAT(TokenTable::Load(dir.path(), nullptr).error().message(),
             Catch::Contains("not a file"));
}

TEST_CASE("the Authorization header: Bearer and a b64token, nothing else", "[serve][tokens]") {
  auto token = [](std::string_view h) {
    auto t = BearerToken(h);
    REQUIRE(t.has_value());
    return *t;
  };
  CHECK(token("Bearer abc-DEF_012.~+/") == std::optional<std::string>("abc-DEF_012.~+/"));
  CHECK(token("bearer abc==") == std::optional<std::string>("abc=="));
  CHECK(token("BEARER   abc") == std::optional<std::string>("abc"));
  CHECK(token("Basic YWxhZGRpbjpvcGVuc2VzYW1l") == std::nullopt);
  CHECK(token("Bearerabc") == std::nullopt);
  for (std::string bad : {"Bearer", "Bearer ", "Bearer a b", "Bearer a=b",
                          "Bearer ===", "Bearer a\"b", "Bearer a,b"}) {
    INFO(bad);
    auto t = BearerToken(bad);
    REQUIRE_FALSE(t.has_value());
    CHECK_THAT(t.error().message(), Catch::Contains("RFC 6750"));
  }
}

TEST_CASE("roles: public and auditor, and nothing else", "[serve][tokens]") {
  CHECK(ParseReadRole("public", "r").value() == ReadRole::kPublic);
  CHECK(ParseReadRole("auditor", "r").value() == ReadRole::kAuditor);
  CHECK(ReadRoleName(ReadRole::kPublic) == "public");
  CHECK(ReadRoleName(ReadRole::kAuditor) == "auditor");
  CHECK(ReadRole::kPublic < ReadRole::kAuditor);
  CHECK_THAT(ParseReadRole("admin", "--allow-anonymous").error().message(),
             Catch::Contains("--allow-anonymous 'admin' is not a role"));
}
