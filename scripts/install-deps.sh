#!/usr/bin/env bash
# Install fathom's build, test and run dependencies from Debian 12 packages (idempotent).
# Node.js and npm are needed by the end-to-end tests (the official `openai` client); they come from Debian
# when the machine has none.
set -euo pipefail
pkgs=(build-essential cmake ninja-build pkg-config git
      nlohmann-json3-dev libcpp-httplib-dev libcli11-dev libtomlplusplus-dev libopenblas-dev libre2-dev libutf8proc-dev
      libavformat-dev libavcodec-dev libswresample-dev libavutil-dev
      zlib1g-dev libcurl4-openssl-dev libssl-dev libgtest-dev libgmock-dev libbenchmark-dev curl ca-certificates)
# --fuzz: also clang and its libFuzzer/sanitizer runtimes (scripts/fuzz.sh); not needed otherwise.
if [ "${1:-}" = "--fuzz" ]; then
  pkgs+=(clang libclang-rt-14-dev llvm)
fi
command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || pkgs+=(npm)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "fathom: installing ${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
