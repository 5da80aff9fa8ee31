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
  uint32_t batch_max_messages = 5000;  // batch_max_messages: entries per LMDB transaction
  uint32_t batch_max_ms = 250;         // batch_max_ms: longest wait to fill a batch
  uint32_t verify_threads = 0;         // verify_threads: 0 = one per core
  std::string metrics_listen;          // metrics_listen: "127.0.0.1:9464" serves /metrics
  // [checkpoint]
  std::string checkpoint_key_file;  // key_file: the ledger's own key; empty = no checkpoints
  std::string checkpoint_name = "g60ledger.local/songjiang";  // name: origins are NAME/PARTITION
  uint64_t checkpoint_every_entries = 10000;                  // every_entries
  uint32_t checkpoint_every_seconds = 60;                     // every_seconds
  std::string checkpoint_topic = "g60.checkpoints";           // topic: "" = not produced
  std::string checkpoint_verifier;  // verifier: the key auditors check checkpoints with
};

// Parses a configuration file. Unknown keys are errors, so that a typo never silently
// leaves a default in place.
Result<Config> LoadConfig(const std::string& path);
Result<Config> ParseConfig(std::string_view toml_text, const std::string& origin);

// Decodes a base64 Ed25519 public key; names `what` in the error.
Result<std::string> DecodePublicKey(std::string_view base64, std::string_view what);

}  // namespace g60
