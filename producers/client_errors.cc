#include "producers/client_errors.h"

#include <fmt/format.h>

namespace g60 {

void ClientErrors::event_cb(RdKafka::Event& event) {
  if (event.type() != RdKafka::Event::EVENT_ERROR) return;
  auto setting = [&](const std::string& k) {
    auto it = settings_.find(k);
    return it == settings_.end() ? std::string("(not set)") : it->second;
  };
  std::optional<Error> e;
  switch (event.err()) {
    case RdKafka::ERR__AUTHENTICATION:
    case RdKafka::ERR_SASL_AUTHENTICATION_FAILED:
      e = Error::PermissionDenied(fmt::format(
          "the Kafka cluster refused our credentials (sasl.username {}, sasl.mechanisms {}): "
          "{}. Check the user and password in the [kafka.consumer] / [kafka.producer] settings",
          setting("sasl.username"), setting("sasl.mechanisms"), event.str()));
      break;
    case RdKafka::ERR__SSL:
      e = Error::FailedPrecondition(fmt::format(
          "the TLS handshake with the Kafka cluster failed (ssl.ca.location {}): {}. Check "
          "that the CA file is the one that signed the brokers' certificates and that "
          "security.protocol matches the listener",
          setting("ssl.ca.location"), event.str()));
      break;
    case RdKafka::ERR__TRANSPORT:
    case RdKafka::ERR__ALL_BROKERS_DOWN: {
      // Usually transient (a broker restarting): remembered for the "no metadata" message.
      // One kind is not: a plaintext client on a TLS listener, for which librdkafka gives
      // a hint. A broker that is starting or dying closes handshakes the same way, so the
      // hint counts only before the cluster ever answered, and only when it repeats (the
      // reconnect backoff brings the third within about a second).
      std::lock_guard lock(mu_);
      last_transport_ = event.str();
      ++transport_errors_;
      if (!connected_ && event.str().find("incorrect security.protocol") != std::string::npos &&
          ++protocol_hints_ >= 3 && !refused_) {
        refused_ = Error::FailedPrecondition(fmt::format(
            "the Kafka broker closed the connection during the handshake: security.protocol "
            "{} does not match its listener (a TLS listener needs SSL or SASL_SSL). {}",
            setting("security.protocol"), event.str()));
      }
      return;
    }
    default:
      if (event.fatal()) {
        e = Error::Unavailable(fmt::format("Kafka client failed: {}", event.str()));
      }
      break;
  }
  if (!e) return;
  std::lock_guard lock(mu_);
  // Once the cluster has answered, a refusal from one broker (a rolling restart, a
  // certificate being rotated) may pass: librdkafka retries, and the log says why.
  if (connected_ && !event.fatal()) {
    last_transport_ = e->message();
    return;
  }
  if (!refused_) refused_ = std::move(*e);
}

}  // namespace g60
