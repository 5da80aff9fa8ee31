#include "producers/keyfile.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "ledger/bytes.h"
#include "ledger/config.h"
#include "ledger/crypto.h"
#include "ledger/event_view.h"
#include "ledger/strict_json.h"

namespace g60 {

namespace {

constexpr const char* kSecretFormat = "g60ledger-secret-key/1";
constexpr const char* kPublicFormat = "g60ledger-public-key/1";

Status WriteExclusive(const std::string& path, const std::string& text, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    return Fail(Error::FailedPrecondition(
        fmt::format("cannot create {}: {}{}", path, std::strerror(errno),
                    errno == EEXIST ? " (key files are never overwritten; remove it first)" : "")));
  }
  ssize_t n = ::write(fd, text.data(), text.size());
  int fsync_rc = ::fsync(fd);
  ::close(fd);
  if (n != static_cast<ssize_t>(text.size()) || fsync_rc != 0) {
    return Fail(Error::ResourceExhausted(fmt::format("writing {} failed", path)));
  }
  return {};
}

Result<nlohmann::json> ReadJson(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Fail(Error::NotFound(fmt::format("cannot read key file {}", path)));
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseStrictJson(ss.str(), path);
}

// The members both formats share, under docs/audit.md's rule for files handed to us:
// exactly the format's members, a known role, and a key_id that is the public key's.
Result<KeyFile> ParseCommon(const nlohmann::json& j, const std::string& path) {
  bool secret = j.is_object() && j.contains("format") && SameJson(j["format"], kSecretFormat);
  if (!secret && !(j.is_object() && j.contains("format") && SameJson(j["format"], kPublicFormat))) {
    return Fail(Error::InvalidArgument(
        fmt::format("{} is not a key file: its \"format\" is not \"{}\" or \"{}\"", path,
                    kPublicFormat, kSecretFormat)));
  }
  if (secret) {
    G60_TRY(RequireMembers(j, {"format", "role", "key_id", "public_key", "secret_key"}, {}, path));
  } else {
    G60_TRY(RequireMembers(j, {"format", "role", "key_id", "public_key"}, {}, path));
  }
  KeyFile k;
  if (!j["public_key"].is_string()) {
    return Fail(Error::InvalidArgument(fmt::format("{}: public_key is not a string", path)));
  }
  auto pk = DecodePublicKey(j["public_key"].get<std::string>(), path + ": public_key");
  if (!pk) return Fail(pk.error());
  k.public_key = *pk;
  k.key_id = KeyIdOf(k.public_key);
  if (!SameJson(j["key_id"], k.key_id)) {
    return Fail(Error::InvalidArgument(
        fmt::format("{}: key_id is {} but the public key's id is \"{}\": the file was edited", path,
                    j["key_id"].dump(), k.key_id)));
  }
  k.role =
      j["role"].is_string() ? RoleFromName(j["role"].get<std::string>()) : v1::ROLE_UNSPECIFIED;
  if (k.role == v1::ROLE_UNSPECIFIED) {
    return Fail(Error::InvalidArgument(
        fmt::format("{}: role {} is not one of admin, applicant-portal, district-approver, "
                    "municipal-approver, treasury, ledger",
                    path, j["role"].dump())));
  }
  return k;
}

}  // namespace

Status WriteKeyFile(const std::string& path, const KeyFile& key) {
  nlohmann::json pub = {{"format", kPublicFormat},
                        {"role", RoleName(key.role)},
                        {"key_id", key.key_id},
                        {"public_key", Base64Encode(key.public_key)}};
  nlohmann::json sec = pub;
  sec["format"] = kSecretFormat;
  sec["secret_key"] = Base64Encode(key.secret_key);
  G60_TRY(WriteExclusive(path, sec.dump(2) + "\n", 0600));
  return WriteExclusive(path + ".pub", pub.dump(2) + "\n", 0644);
}

Result<KeyFile> GenerateKeyFile(const std::string& path, v1::Role role) {
  KeyPair kp = GenerateKeyPair();
  KeyFile k{role, KeyIdOf(kp.public_key), kp.public_key, kp.secret_key};
  G60_TRY(WriteKeyFile(path, k));
  return k;
}

Result<KeyFile> ReadSecretKeyFile(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return Fail(Error::NotFound(fmt::format("cannot read key file {}", path)));
  }
  // A public key file given where the secret is needed is named as such before its mode
  // is looked at: "chmod 600" would be the wrong advice for it.
  if (auto j = ReadJson(path);
      j && j->is_object() && j->contains("format") && (*j)["format"] == kPublicFormat) {
    std::string secret =
        path.size() > 4 && path.ends_with(".pub")
            ? fmt::format("its secret key file ({})", path.substr(0, path.size() - 4))
            : std::string("the secret key file written with it");
    return Fail(Error::InvalidArgument(fmt::format(
        "{} is a public key file and holds no secret key, so it can only check signatures; "
        "sign with {} instead",
        path, secret)));
  }
  if ((st.st_mode & 077) != 0) {
    return Fail(Error::FailedPrecondition(
        fmt::format("secret key file {} is readable by others (mode {:o}); chmod 600 it", path,
                    st.st_mode & 0777)));
  }
  auto j = ReadJson(path);
  if (!j) return Fail(j.error());
  auto k = ParseCommon(*j, path);
  if (!k) return Fail(k.error());
  if (!j->contains("secret_key") || !(*j)["secret_key"].is_string()) {
    return Fail(Error::InvalidArgument(fmt::format(
        "{} is not a {} file (it holds no secret key; the .pub file beside a key is the public "
        "half)",
        path, kSecretFormat)));
  }
  auto sk = Base64Decode((*j)["secret_key"].get<std::string>());
  if (!sk || sk->size() != kSecretKeySize || sk->substr(32) != k->public_key) {
    return Fail(Error::InvalidArgument(
        fmt::format("{}: secret_key is not the 64-byte Ed25519 secret of its public_key", path)));
  }
  k->secret_key = *sk;
  return k;
}

Result<KeyFile> ReadPublicKeyFile(const std::string& path) {
  auto j = ReadJson(path);
  if (!j) return Fail(j.error());
  return ParseCommon(*j, path);
}

}  // namespace g60
