// The demo's event stream: a realistic, reproducible mix of applications, approvals,
// staged payments and clawbacks across every programme of the catalogue, the policy
// scenarios (从优、就高、不重复 supersessions and duplicates, co-funding, once-only
// rewards, yearly and window caps), and events the ledger must reject (forged
// signature, wrong role, unknown and revoked keys, payments beyond the approval,
// duplicates, clawbacks beyond what was paid, every policy rejection). Every planned event carries
// the verdict the ledger must reach, so tests can compare, event by event.
//
// The stream is cut into steps, each signed by one signer and produced in order:
// Kafka keeps order within a partition, so applications precede approvals precede
// payments for each applicant.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ledger/event_view.h"
#include "producers/keyfile.h"
#include "schemas/catalog.pb.h"

namespace g60 {

enum class DemoSigner {
  kAdmin,
  kPortal,
  kDistrict,
  kMunicipal,
  kTreasury,
  kTreasury2,
  kRogue,
  kForged
};
const char* DemoSignerName(DemoSigner s);  // "admin", ..., "forged"

struct DemoKeys {
  KeyFile admin, portal, district, municipal, treasury, treasury2, rogue;
  // Derives all keys from a seed (tests; no files).
  static DemoKeys FromSeed(uint64_t seed);
  const KeyFile& For(DemoSigner s) const;
};

struct PlannedEvent {
  v1::Event event;
  Reason expected = Reason::REASON_NONE;  // REASON_NONE: must be accepted
};

struct DemoStep {
  std::string name;  // "10-portal-applications"
  DemoSigner signer;
  bool control = false;  // produced to every partition
  std::vector<PlannedEvent> events;
};

struct DemoStreamOptions {
  int applicants = 300;
  uint64_t seed = 1;
  int64_t start_ms = 1767225600000;  // 2026-01-01T08:00:00 CST, inside the validity window
  // The catalogue published first and followed by every application (its programmes,
  // kinds and caps drive the amounts). Required.
  v1::Catalog catalog;
  // The policy scenarios (overlaps, co-funding, once-only, yearly and window caps, every
  // policy rejection) besides the random bulk.
  bool scenarios = true;
  // Event ids are numbered from here (a second stream into the same topic takes new ids).
  int first_serial = 0;
};

std::vector<DemoStep> GenerateDemoStream(const DemoStreamOptions& options, const DemoKeys& keys);

// The signed Kafka value of a planned event of `step`. A forged event is signed by the
// rogue key but names the treasury's key id.
std::string SignDemoEvent(const DemoStep& step, const v1::Event& event, const DemoKeys& keys);

}  // namespace g60
