#!/usr/bin/env bash
# Installs what covd needs from Debian (compiler, libFuzzer runtime, LLVM tools to check
# against, LLVM's demangler header and a wasm32 C library and C++ headers to build it to
# WebAssembly, g++ for the C++ symbolizer tests, chromium for UI tests, lcov for the export
# test, nats-server for the fleet tests, afl++ for the AFL++ engine), then the npm packages.
# Safe to run again: packages already present are not fetched.
set -euo pipefail
cd "$(dirname "$0")/.."

debs=(clang-14 libclang-rt-14-dev lld-14 llvm-14 llvm-14-dev wasi-libc libc++-14-dev-wasm32 libclang-rt-14-dev-wasm32 binutils gcc g++ lcov chromium chromium-driver nats-server afl++)
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "covd: installing Debian packages: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "covd: Debian packages present"
fi

echo "covd: installing npm packages and building"
if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
