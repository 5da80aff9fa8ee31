#!/usr/bin/env bash
# Installs the Debian 12 packages g60ledger builds and tests with, if any is missing.
# Sourced by ops/test and ops/demo; idempotent: a machine that has them all is not touched.
g60_packages=(
  build-essential cmake ninja-build pkg-config clang-format
  librdkafka-dev        # Kafka client and the mock cluster (development broker)
  libprotobuf-dev protobuf-compiler
  libsodium-dev         # Ed25519
  libssl-dev            # SHA-256 (OpenSSL uses the CPU's SHA instructions)
  liblmdb-dev lmdb-utils
  catch2                # v2.13 test framework
  libcli11-dev nlohmann-json3-dev libspdlog-dev libfmt-dev libtomlplusplus-dev
  libcpp-httplib-dev prometheus-cpp-dev libbenchmark-dev
  kcat python3-kafka python3-nacl   # independent clients used by the tests
  chromium chromium-driver          # the auditor's web page, tested headless
  clang-19 libclang-rt-19-dev llvm-19  # libFuzzer harnesses (tests/fuzz), and their symbolizer
)

g60_install_deps() {
  local missing=()
  local p
  for p in "${g60_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    return 0
  fi
  echo "g60ledger: installing missing Debian packages: ${missing[*]}" >&2
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# Configures and builds one preset (release by default) into build/<preset>.
g60_build() {
  local preset="${1:-release}"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$(nproc)"
}
