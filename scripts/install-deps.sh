#!/usr/bin/env bash
# Install fathom's build, test and run dependencies from Debian 12 packages (idempotent).
#   scripts/install-deps.sh               everything to build fathom and run the whole test suite (./dev, CI)
#   scripts/install-deps.sh --fuzz        that, plus clang and its libFuzzer/sanitizer runtimes (scripts/fuzz.sh)
#   scripts/install-deps.sh --build-only  only what compiling the fathom executable needs (the image's build stage)
#   scripts/install-deps.sh --runtime     only what running the fathom executable needs (the image's runtime stage):
#                                         the shared libraries it links, curl (health checks) and ca-certificates
#   --cuda (with --build-only or --runtime): also CUDA 13 from NVIDIA's Debian 12 repository (nvcc, cudart and
#                                         cuBLAS; their runtime libraries only with --runtime); installs NVIDIA's
#                                         cuda-keyring first when it is missing (needs developer.download.nvidia.com)
#   --print: print the selected package names, one a line, and install nothing (tests/deploy reads the list)
# Node.js and npm are needed by the end-to-end tests (the official `openai` client); they come from Debian
# when the machine has none. python3-yaml, python3-jsonschema, python3-kubernetes and yamllint are needed by
# the deployment checks (tests/deploy).
set -euo pipefail
mode=all fuzz=0 cuda=0 print=0
for arg in "$@"; do
  case "$arg" in
    --fuzz) fuzz=1 ;;
    --build-only) mode=build ;;
    --runtime) mode=runtime ;;
    --cuda) cuda=1 ;;
    --print) print=1 ;;
    *) sed -n '2,13p' "$0" >&2; exit 2 ;;
  esac
done
if [ $cuda = 1 ] && [ $mode = all ]; then
  echo "install-deps.sh: --cuda goes with --build-only or --runtime" >&2; exit 2
fi

# What compiling the fathom executable needs (CMakeLists.txt: find_package / pkg_check_modules).
build_pkgs=(build-essential cmake ninja-build pkg-config git
            nlohmann-json3-dev libcpp-httplib-dev libcli11-dev libtomlplusplus-dev libopenblas-dev libre2-dev
            libutf8proc-dev libavformat-dev libavcodec-dev libswresample-dev libavutil-dev zlib1g-dev
            libcurl4-openssl-dev libssl-dev libzip-dev)
# The Debian 12 packages owning the shared libraries the fathom executable links (readelf -d NEEDED), plus
# curl for the container health check and ca-certificates for HTTPS downloads. tests/deploy/check_runtime_libs.py
# fails when the executable links a library that no package of this list (or the base image) provides.
runtime_pkgs=(libopenblas0-pthread libre2-9 libutf8proc2 libavformat59 libavcodec59 libswresample4 libavutil57
              zlib1g libcpp-httplib0.11 libtomlplusplus3 libcurl4 libssl3 libzip4 libstdc++6 libgcc-s1 libc6 curl
              ca-certificates)
# CUDA 13 from NVIDIA's Debian 12 repository (the GPU image): the compiler and headers to build, the runtime
# libraries (libcudart.so.13, libcublasLt.so.13) to run. The driver (libcuda.so) comes from the host.
cuda_build_pkgs=(cuda-nvcc-13-0 cuda-cudart-dev-13-0 libcublas-dev-13-0)
cuda_runtime_pkgs=(cuda-cudart-13-0 libcublas-13-0)
# Tests: gtest/benchmark, curl for the shell e2e tests, the deployment checks.
test_pkgs=(libgtest-dev libgmock-dev libbenchmark-dev curl ca-certificates
           python3-yaml python3-jsonschema python3-kubernetes yamllint)

case $mode in
  all) pkgs=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
  build) pkgs=("${build_pkgs[@]}") ;;
  runtime) pkgs=("${runtime_pkgs[@]}") ;;
esac
if [ $cuda = 1 ]; then
  if [ $mode = build ]; then pkgs+=("${cuda_build_pkgs[@]}"); else pkgs+=("${cuda_runtime_pkgs[@]}"); fi
fi
if [ $fuzz = 1 ]; then
  pkgs+=(clang libclang-rt-14-dev llvm)
fi
if [ $mode = all ]; then
  command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
  command -v npm >/dev/null 2>&1 || pkgs+=(npm)
fi
if [ $print = 1 ]; then
  printf '%s\n' "${pkgs[@]}"
  exit 0
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if [ $cuda = 1 ] && ! dpkg-query -W -f='${Status}' cuda-keyring 2>/dev/null | grep -q "install ok installed"; then
  # NVIDIA's signing key and apt source for its Debian 12 CUDA repository.
  keyring=cuda-keyring_1.1-1_all.deb
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends curl ca-certificates >/dev/null
  tmp=$(mktemp -d)
  curl -fsSL -o "$tmp/$keyring" "https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64/$keyring"
  $SUDO dpkg -i "$tmp/$keyring" >/dev/null
  rm -rf "$tmp"
fi
echo "fathom: installing ${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
