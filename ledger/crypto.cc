#include "ledger/crypto.h"

#include <sodium.h>

#include <cstring>
#include <mutex>
#include <vector>

#include "ledger/bytes.h"

namespace g60 {

void CryptoInit() {
  static std::once_flag once;
  std::call_once(once, [] { G60_ASSERT(sodium_init() >= 0); });
}

Hash Sha256(std::string_view bytes) {
  Hash out;
  crypto_hash_sha256(out.data(), reinterpret_cast<const unsigned char*>(bytes.data()),
                     bytes.size());
  return out;
}

Hash Sha256(std::string_view a, std::string_view b) {
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  crypto_hash_sha256_update(&st, reinterpret_cast<const unsigned char*>(a.data()), a.size());
  crypto_hash_sha256_update(&st, reinterpret_cast<const unsigned char*>(b.data()), b.size());
  Hash out;
  crypto_hash_sha256_final(&st, out.data());
  return out;
}

std::string_view AsBytes(const Hash& h) {
  return {reinterpret_cast<const char*>(h.data()), h.size()};
}

std::string KeyIdOf(std::string_view public_key) {
  Hash h = Sha256(public_key);
  return HexEncode(AsBytes(h).substr(0, 16));
}

KeyPair GenerateKeyPair() {
  CryptoInit();
  KeyPair kp{std::string(kPublicKeySize, '\0'), std::string(kSecretKeySize, '\0')};
  crypto_sign_keypair(reinterpret_cast<unsigned char*>(kp.public_key.data()),
                      reinterpret_cast<unsigned char*>(kp.secret_key.data()));
  return kp;
}

KeyPair KeyPairFromSeed(std::string_view seed32) {
  CryptoInit();
  G60_ASSERT(seed32.size() == crypto_sign_SEEDBYTES);
  KeyPair kp{std::string(kPublicKeySize, '\0'), std::string(kSecretKeySize, '\0')};
  crypto_sign_seed_keypair(reinterpret_cast<unsigned char*>(kp.public_key.data()),
                           reinterpret_cast<unsigned char*>(kp.secret_key.data()),
                           reinterpret_cast<const unsigned char*>(seed32.data()));
  return kp;
}

namespace {
// prefix || message in one buffer; the ledger's messages are small (a few hundred bytes).
std::string Concat(std::string_view prefix, std::string_view message) {
  std::string m;
  m.reserve(prefix.size() + message.size());
  m.append(prefix);
  m.append(message);
  return m;
}
}  // namespace

std::string SignDetached(std::string_view secret_key, std::string_view prefix,
                         std::string_view message) {
  G60_ASSERT(secret_key.size() == kSecretKeySize);
  std::string m = Concat(prefix, message);
  std::string sig(kSignatureSize, '\0');
  crypto_sign_detached(reinterpret_cast<unsigned char*>(sig.data()), nullptr,
                       reinterpret_cast<const unsigned char*>(m.data()), m.size(),
                       reinterpret_cast<const unsigned char*>(secret_key.data()));
  return sig;
}

bool VerifyDetached(std::string_view public_key, std::string_view signature,
                    std::string_view prefix, std::string_view message) {
  if (public_key.size() != kPublicKeySize || signature.size() != kSignatureSize) return false;
  std::string m = Concat(prefix, message);
  return crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(signature.data()),
                                     reinterpret_cast<const unsigned char*>(m.data()), m.size(),
                                     reinterpret_cast<const unsigned char*>(public_key.data())) ==
         0;
}

}  // namespace g60
