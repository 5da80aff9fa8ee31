#include "ops/common.h"

#include <fmt/format.h>

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "producers/keyfile.h"

namespace g60 {

std::atomic<bool> g_stop{false};

namespace {
void OnSignal(int) {
  g_stop.store(true);
}
}  // namespace

void InstallSignalHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

int Report(const Error& e) {
  std::fprintf(stderr, "g60ledger: %s\n", e.ToString().c_str());
  return e.code() == ErrorCode::kInvalidArgument || e.code() == ErrorCode::kNotFound
             ? kExitUsage
             : kExitOperating;
}

Status WriteOutput(const std::string& path, std::string_view text) {
  std::FILE* out = stdout;
  std::string tmp, target = "standard output";
  if (!path.empty() && path != "-") {
    std::error_code ec;
    auto st = std::filesystem::symlink_status(path, ec);
    const bool replace = ec || st.type() == std::filesystem::file_type::not_found ||
                         st.type() == std::filesystem::file_type::regular;
    target = replace ? path + ".tmp" : path;
    if (replace) tmp = target;
    out = std::fopen(target.c_str(), "wb");
    if (!out) {
      return Fail(Error::FailedPrecondition(
          fmt::format("cannot write {}: {}", target, std::strerror(errno))));
    }
  }
  auto failed = [&](const char* what) -> Status {
    const int err = errno;
    if (out != stdout) std::fclose(out);
    if (!tmp.empty()) std::filesystem::remove(tmp);
    return Fail(Error::ResourceExhausted(fmt::format(
        "{} {} failed ({}): nothing was written in its place", what, target, std::strerror(err))));
  };
  if (std::fwrite(text.data(), 1, text.size(), out) != text.size()) return failed("writing to");
  if (std::fflush(out) != 0 || std::ferror(out)) return failed("writing to");
  if (out == stdout) return {};
  if (::fsync(::fileno(out)) != 0 && errno != EINVAL && errno != EROFS) return failed("syncing");
  if (std::fclose(out) != 0) {
    out = stdout;  // closed, whatever it said
    return failed("closing");
  }
  if (!tmp.empty()) {
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) {
      return Fail(
          Error::FailedPrecondition(fmt::format("renaming {} to {}: {}", tmp, path, ec.message())));
    }
  }
  return {};
}

void Common::AddLedger(CLI::App* app) {
  app->add_option("--config", config_path, "ledger configuration file (TOML)");
  app->add_option("--ledger", ledger_dir, "ledger directory (LMDB)");
}

void Common::AddKafka(CLI::App* app) {
  if (!app->get_option_no_throw("--config")) {
    app->add_option("--config", config_path, "ledger configuration file (TOML)");
  }
  app->add_option("--bootstrap", bootstrap, "Kafka bootstrap servers HOST:PORT,...");
  app->add_option("--topic", topic, "Kafka topic (default g60.events)");
}

void Common::AddAnchors(CLI::App* app) {
  app->add_option("--anchor", anchor_files,
                  "trust anchor public key file (repeatable; adds to [trust] anchors)")
      ->allow_extra_args(false);
}

Result<Config> Common::Load() const {
  Config c;
  if (!config_path.empty()) {
    auto loaded = LoadConfig(config_path);
    if (!loaded) return Fail(loaded.error());
    c = *loaded;
    auto beside = [&](std::string& path) {
      if (!path.empty() && std::filesystem::path(path).is_relative()) {
        path = (std::filesystem::path(config_path).parent_path() / path).string();
      }
    };
    beside(c.ledger_dir);
    beside(c.checkpoint_key_file);
  }
  if (!ledger_dir.empty()) c.ledger_dir = ledger_dir;
  if (!bootstrap.empty()) c.bootstrap = bootstrap;
  if (!topic.empty()) c.topic = topic;
  if (map_size_mib) c.map_size_mib = map_size_mib;
  for (const auto& f : anchor_files) {
    auto k = ReadPublicKeyFile(f);
    if (!k) return Fail(k.error());
    c.trust_anchors.push_back(k->public_key);
  }
  return c;
}

Result<std::unique_ptr<Ledger>> Common::OpenLedger(const Config& c, bool writer) const {
  if (c.ledger_dir.empty()) {
    return Fail(Error::InvalidArgument("no ledger directory (--ledger or [ledger] dir)"));
  }
  LedgerOptions o;
  o.dir = c.ledger_dir;
  o.writer = writer;
  o.map_size_bytes = static_cast<size_t>(c.map_size_mib) << 20;
  o.trust_anchors = c.trust_anchors;
  return Ledger::Open(o);
}

std::optional<Error> MissingAnchors(const Config& c, std::string_view verb) {
  if (!c.trust_anchors.empty()) return std::nullopt;
  return Error::InvalidArgument(
      fmt::format("{} needs the ledger's trust anchors to check who signed what: give --anchor "
                  "ADMIN.pub (the admin public key the ledger was created with) or a --config with "
                  "[trust] anchors. Without them every signed entry would look unauthorised; that "
                  "would say nothing about the ledger",
                  verb));
}

Result<OpenedLedger> OpenForReading(const Common& common) {
  auto cfg = common.Load();
  if (!cfg) return Fail(cfg.error());
  auto ledger = common.OpenLedger(*cfg, false);
  if (!ledger) return Fail(ledger.error());
  return OpenedLedger{std::move(*cfg), std::move(*ledger)};
}

}  // namespace g60
