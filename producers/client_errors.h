// The errors a Kafka client reports through librdkafka's event callback that no retry
// will cure: the cluster refused our credentials (SASL), the TLS handshake failed, a
// plaintext client keeps reaching a TLS listener, or the client hit a fatal error.
// librdkafka logs them and keeps retrying for ever; the producer and the ingest instead
// stop at once with a message naming the setting to fix, as long as the cluster has
// never answered them. Afterwards only a fatal error stops them: a refusal from one
// broker during a rolling restart, say, is kept for the log while librdkafka retries.
//
// Thread safety: librdkafka calls event_cb on the thread that serves the client's queue;
// Refused() may be called from any thread.
#pragma once

#include <librdkafka/rdkafkacpp.h>

#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "ledger/status.h"

namespace g60 {

class ClientErrors : public RdKafka::EventCb {
 public:
  // `settings`: the client's extra librdkafka properties, to name the user and CA file.
  explicit ClientErrors(std::map<std::string, std::string> settings)
      : settings_(std::move(settings)) {}

  void event_cb(RdKafka::Event& event) override;

  // The first unrecoverable error seen, as an Error an operator can act on.
  std::optional<Error> Refused() const {
    std::lock_guard lock(mu_);
    return refused_;
  }
  // The owner has had an answer from the cluster (metadata): from now on a connection
  // closed during the handshake is a broker restarting, not a wrong security.protocol.
  void Connected() {
    std::lock_guard lock(mu_);
    connected_ = true;
  }
  // How many connection failures librdkafka has reported so far.
  uint64_t TransportErrors() const {
    std::lock_guard lock(mu_);
    return transport_errors_;
  }
  // The last connection failure librdkafka reported (it retries those), or "".
  std::string LastTransportError() const {
    std::lock_guard lock(mu_);
    return last_transport_;
  }

 private:
  std::map<std::string, std::string> settings_;
  mutable std::mutex mu_;
  std::optional<Error> refused_;
  std::string last_transport_;
  bool connected_ = false;
  uint64_t transport_errors_ = 0;
  int protocol_hints_ = 0;  // handshakes closed before any answer, librdkafka's hint given
};

}  // namespace g60
