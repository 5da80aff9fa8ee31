// SHA-256 and Ed25519 through libsodium, with the ledger's domain separation.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "ledger/status.h"

namespace g60 {

using Hash = std::array<unsigned char, 32>;
constexpr size_t kPublicKeySize = 32;
constexpr size_t kSecretKeySize = 64;  // libsodium's seed || public key form
constexpr size_t kSignatureSize = 64;

// Must be called once before any other function here (idempotent, thread-safe).
void CryptoInit();

Hash Sha256(std::string_view bytes);
Hash Sha256(std::string_view a, std::string_view b);
std::string_view AsBytes(const Hash& h);

// The signed message of an event is kEventSignaturePrefix || event bytes.
// The prefix includes its terminating NUL so that no other prefix can be a
// continuation of it.
inline constexpr std::string_view kEventSignaturePrefix{"g60ledger/event/v1\0", 19};

// Key id of a public key: lowercase hex of the first 16 bytes of SHA-256(public key).
std::string KeyIdOf(std::string_view public_key);

struct KeyPair {
  std::string public_key;  // 32 bytes
  std::string secret_key;  // 64 bytes
};
KeyPair GenerateKeyPair();
// Derives the key pair of a 32-byte seed (deterministic; for tests and generated demos).
KeyPair KeyPairFromSeed(std::string_view seed32);

std::string SignDetached(std::string_view secret_key, std::string_view prefix,
                         std::string_view message);
bool VerifyDetached(std::string_view public_key, std::string_view signature,
                    std::string_view prefix, std::string_view message);

}  // namespace g60
