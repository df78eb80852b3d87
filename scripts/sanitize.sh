#!/usr/bin/env bash
# Builds the whole test suite with AddressSanitizer + UndefinedBehaviorSanitizer (CUDA off) in build-asan
# and runs it with ctest. Any sanitizer report fails the test that triggered it, so the run passes only with
# zero reports.
#
#   scripts/sanitize.sh [extra ctest args...]     e.g. scripts/sanitize.sh -L unit
#
# The e2e tests (Node's test runner + the openai client) drive the sanitized fathom binary, so server code
# reached over real sockets is checked too; they need node (npm ci runs in tests/e2e as ./dev test does).
# Environment: CXX/CC (default clang++/clang when installed, else g++/gcc), JOBS (default 2),
# BUILD_DIR (default build-asan), LABEL_EXCLUDE (ctest -LE regex, default "gpu"),
# FUZZERS=ON (clang only): configure with FATHOM_BUILD_FUZZERS=ON as well, so the same build directory also
# holds the libFuzzer targets and `BUILD_DIR=... scripts/fuzz.sh` reuses it instead of building everything
# again (the libraries then carry libFuzzer's coverage instrumentation, which the sanitizer runtimes
# accept without libFuzzer; CI does this).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${CXX:-}" ]; then
  if command -v clang++ >/dev/null 2>&1; then export CXX=clang++ CC=clang; else export CXX=g++ CC=gcc; fi
fi
JOBS=${JOBS:-2}
BUILD_DIR=${BUILD_DIR:-build-asan}
LABEL_EXCLUDE=${LABEL_EXCLUDE:-gpu}
FUZZERS=${FUZZERS:-OFF}

san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
start=$(date +%s)
cmake -S . -B "$BUILD_DIR" -G Ninja \
  -DFATHOM_WITH_CUDA=OFF -DFATHOM_BUILD_TESTS=ON -DFATHOM_BUILD_BENCH=OFF -DFATHOM_BUILD_FUZZERS="$FUZZERS" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g" \
  -DCMAKE_CXX_FLAGS="$san" -DCMAKE_C_FLAGS="$san" \
  -DCMAKE_EXE_LINKER_FLAGS="$san" -DCMAKE_SHARED_LINKER_FLAGS="$san" >/dev/null
cmake --build "$BUILD_DIR" -j"$JOBS"
if [ -f tests/e2e/package.json ] && command -v npm >/dev/null 2>&1; then
  (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
fi
built=$(date +%s)

# halt_on_error makes every report fatal, so a report always fails its test.
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:abort_on_error=0:detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
status=0
ctest --test-dir "$BUILD_DIR" --output-on-failure -j"$JOBS" -LE "$LABEL_EXCLUDE" "$@" || status=$?
end=$(date +%s)
echo "sanitize.sh: build $((built - start)) s, tests $((end - built)) s, total $((end - start)) s (compiler $CXX)" >&2
exit $status
