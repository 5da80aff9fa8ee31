#include "ledger/crypto.h"

#include <openssl/evp.h>
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

// SHA-256 is OpenSSL's: it uses the CPU's SHA extensions where there are any (x86 SHA-NI,
// ARMv8), about ten times libsodium's portable code on a 500-byte entry, and the writer
// hashes every entry and Merkle node. Ed25519 stays libsodium's.
namespace {

const EVP_MD* Sha256Md() {
  static const EVP_MD* md = [] {
    EVP_MD* m = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    G60_ASSERT(m != nullptr);
    return m;
  }();
  return md;
}

struct DigestContext {
  DigestContext() : ctx(EVP_MD_CTX_new()) { G60_ASSERT(ctx != nullptr); }
  ~DigestContext() { EVP_MD_CTX_free(ctx); }
  DigestContext(const DigestContext&) = delete;
  DigestContext& operator=(const DigestContext&) = delete;
  EVP_MD_CTX* ctx;
};

Hash Digest(std::initializer_list<std::string_view> parts) {
  thread_local DigestContext dc;
  Hash out;
  unsigned int len = 0;
  G60_ASSERT(EVP_DigestInit_ex(dc.ctx, Sha256Md(), nullptr) == 1);
  for (std::string_view p : parts)
    G60_ASSERT(EVP_DigestUpdate(dc.ctx, p.data(), p.size()) == 1);
  G60_ASSERT(EVP_DigestFinal_ex(dc.ctx, out.data(), &len) == 1 && len == out.size());
  return out;
}

}  // namespace

Hash Sha256(std::string_view bytes) {
  return Digest({bytes});
}

Hash Sha256(std::string_view a, std::string_view b) {
  return Digest({a, b});
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
