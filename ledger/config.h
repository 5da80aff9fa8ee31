// The ledger's configuration file (TOML). ops/config/ledger.example.toml documents
// every key. Command-line flags override the file.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ledger/status.h"

namespace g60 {

struct Config {
  // [ledger]
  std::string ledger_dir;        // dir
  uint64_t map_size_mib = 4096;  // map_size_mib: LMDB map size; grow it when full
  // [kafka]
  std::string bootstrap;                      // bootstrap: "host:port,host:port"
  std::string topic = "g60.events";           // topic
  std::string group_id = "g60ledger-ingest";  // group_id
  // [kafka.consumer] / [kafka.producer]: more librdkafka properties, passed through
  // as they are (security.protocol, sasl.*, session.timeout.ms, ...).
  std::map<std::string, std::string> consumer_properties;
  std::map<std::string, std::string> producer_properties;
  // [trust]
  std::vector<std::string> trust_anchors;  // anchors: base64 Ed25519 public keys (decoded here)
  // [ingest]
  uint32_t batch_max_messages = 2000;  // batch_max_messages: entries per LMDB transaction
  uint32_t batch_max_ms = 100;         // batch_max_ms: longest wait to fill a batch
  uint32_t verify_threads = 0;         // verify_threads: 0 = one per core
  std::string metrics_listen;          // metrics_listen: "127.0.0.1:9464" serves /metrics
};

// Parses a configuration file. Unknown keys are errors, so that a typo never silently
// leaves a default in place.
Result<Config> LoadConfig(const std::string& path);
Result<Config> ParseConfig(std::string_view toml_text, const std::string& origin);

// Decodes a base64 Ed25519 public key; names `what` in the error.
Result<std::string> DecodePublicKey(std::string_view base64, std::string_view what);

}  // namespace g60
