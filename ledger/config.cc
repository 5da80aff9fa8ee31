#include "ledger/config.h"

#include <fmt/format.h>

#include <toml++/toml.h>
#include <set>

#include "ledger/bytes.h"
#include "ledger/crypto.h"

namespace g60 {

Result<std::string> DecodePublicKey(std::string_view base64, std::string_view what) {
  auto raw = Base64Decode(base64);
  if (!raw || raw->size() != kPublicKeySize) {
    return Fail(
        Error::InvalidArgument(fmt::format("{} is not a base64 32-byte Ed25519 public key", what)));
  }
  return *raw;
}

namespace {

Status CheckKeys(const toml::table& table, std::string_view section,
                 const std::set<std::string_view>& allowed, const std::string& origin) {
  for (const auto& [k, v] : table) {
    if (!allowed.contains(k.str())) {
      return Fail(Error::InvalidArgument(
          fmt::format("{}: unknown key '{}' in [{}]", origin, k.str(), section)));
    }
  }
  return {};
}

template <typename T>
Status ReadInt(const toml::table& t, const char* key, T& out, int64_t min, int64_t max,
               const std::string& where) {
  const toml::node* n = t.get(key);
  if (!n) return {};
  auto v = n->value<int64_t>();
  if (!v || *v < min || *v > max) {
    return Fail(Error::InvalidArgument(
        fmt::format("{}: {} must be an integer from {} to {}", where, key, min, max)));
  }
  out = static_cast<T>(*v);
  return {};
}

Status ReadString(const toml::table& t, const char* key, std::string& out,
                  const std::string& where) {
  const toml::node* n = t.get(key);
  if (!n) return {};
  auto v = n->value<std::string>();
  if (!v) return Fail(Error::InvalidArgument(fmt::format("{}: {} must be a string", where, key)));
  out = *v;
  return {};
}

}  // namespace

Result<Config> ParseConfig(std::string_view text, const std::string& origin) {
  toml::table root;
  try {
    root = toml::parse(text, origin);
  } catch (const toml::parse_error& e) {
    return Fail(Error::InvalidArgument(fmt::format("{}:{}:{}: {}", origin, e.source().begin.line,
                                                   e.source().begin.column, e.description())));
  }
  Config c;
  G60_TRY(
      CheckKeys(root, "top level", {"ledger", "kafka", "trust", "ingest", "checkpoint"}, origin));
  if (auto* t = root["ledger"].as_table()) {
    G60_TRY(CheckKeys(*t, "ledger", {"dir", "map_size_mib"}, origin));
    G60_TRY(ReadString(*t, "dir", c.ledger_dir, origin + " [ledger]"));
    G60_TRY(ReadInt(*t, "map_size_mib", c.map_size_mib, 1, int64_t{1} << 30, origin + " [ledger]"));
  }
  if (auto* t = root["kafka"].as_table()) {
    G60_TRY(
        CheckKeys(*t, "kafka", {"bootstrap", "topic", "group_id", "consumer", "producer"}, origin));
    for (auto [name, out] : {std::pair{"consumer", &c.consumer_properties},
                             std::pair{"producer", &c.producer_properties}}) {
      const toml::node* n = t->get(name);
      if (!n) continue;
      const toml::table* props = n->as_table();
      if (!props)
        return Fail(
            Error::InvalidArgument(fmt::format("{}: [kafka.{}] must be a table", origin, name)));
      for (const auto& [k, v] : *props) {
        auto value = v.value<std::string>();
        if (!value) {
          return Fail(Error::InvalidArgument(fmt::format(
              "{}: [kafka.{}] {} must be a string (librdkafka takes every property as text)",
              origin, name, k.str())));
        }
        (*out)[std::string(k.str())] = *value;
      }
    }
    G60_TRY(ReadString(*t, "bootstrap", c.bootstrap, origin + " [kafka]"));
    G60_TRY(ReadString(*t, "topic", c.topic, origin + " [kafka]"));
    G60_TRY(ReadString(*t, "group_id", c.group_id, origin + " [kafka]"));
  }
  if (auto* t = root["trust"].as_table()) {
    G60_TRY(CheckKeys(*t, "trust", {"anchors"}, origin));
    if (const toml::node* n = t->get("anchors")) {
      const toml::array* arr = n->as_array();
      if (!arr) return Fail(Error::InvalidArgument(origin + ": [trust] anchors must be an array"));
      for (size_t i = 0; i < arr->size(); ++i) {
        auto s = (*arr)[i].value<std::string>();
        if (!s) return Fail(Error::InvalidArgument(origin + ": [trust] anchors are strings"));
        auto key = DecodePublicKey(*s, fmt::format("{}: [trust] anchors[{}]", origin, i));
        if (!key) return Fail(key.error());
        c.trust_anchors.push_back(*key);
      }
    }
  }
  if (auto* t = root["ingest"].as_table()) {
    G60_TRY(CheckKeys(*t, "ingest",
                      {"batch_max_messages", "batch_max_ms", "verify_threads", "metrics_listen"},
                      origin));
    G60_TRY(
        ReadInt(*t, "batch_max_messages", c.batch_max_messages, 1, 100000, origin + " [ingest]"));
    G60_TRY(ReadInt(*t, "batch_max_ms", c.batch_max_ms, 1, 60000, origin + " [ingest]"));
    G60_TRY(ReadInt(*t, "verify_threads", c.verify_threads, 0, 256, origin + " [ingest]"));
    G60_TRY(ReadString(*t, "metrics_listen", c.metrics_listen, origin + " [ingest]"));
  }
  if (auto* t = root["checkpoint"].as_table()) {
    std::string where = origin + " [checkpoint]";
    G60_TRY(CheckKeys(*t, "checkpoint",
                      {"key_file", "name", "every_entries", "every_seconds", "topic", "verifier"},
                      origin));
    G60_TRY(ReadString(*t, "key_file", c.checkpoint_key_file, where));
    G60_TRY(ReadString(*t, "name", c.checkpoint_name, where));
    G60_TRY(ReadInt(*t, "every_entries", c.checkpoint_every_entries, 1, int64_t{1} << 40, where));
    G60_TRY(ReadInt(*t, "every_seconds", c.checkpoint_every_seconds, 1, 86400, where));
    G60_TRY(ReadString(*t, "topic", c.checkpoint_topic, where));
    G60_TRY(ReadString(*t, "verifier", c.checkpoint_verifier, where));
    if (c.checkpoint_name.empty() || c.checkpoint_name.find_first_of(" +\n") != std::string::npos) {
      return Fail(Error::InvalidArgument(
          where +
          ": name must be non-empty, without spaces or '+' (it is a signed-note key name)"));
    }
  }
  return c;
}

Result<Config> LoadConfig(const std::string& path) {
  toml::table root;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return Fail(Error::NotFound(fmt::format("cannot read configuration {}", path)));
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0)
    text.append(buf, n);
  std::fclose(f);
  return ParseConfig(text, path);
}

}  // namespace g60
