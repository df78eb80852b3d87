#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) in build-fuzz and runs each for SECONDS
# (default 60), starting from the committed seeds in fuzz/corpus/<target>/. Fails when any target
# crashes, leaks, hits a sanitizer report or times out on an input; the input is saved under
# build-fuzz/artifacts/<target>/ (reproduce: build-fuzz/fuzz/fuzz_<target> <file>).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]      e.g. scripts/fuzz.sh 300 safetensors
#
# Environment: CXX/CC (default clang++/clang), JOBS (build parallelism, default 2),
# BUILD_DIR (default build-fuzz), FUZZ_SEED (libFuzzer -seed; default: libFuzzer's own).
# Inputs found during the run accumulate in BUILD_DIR/corpus/<target>/. A BUILD_DIR already configured with
# FATHOM_BUILD_FUZZERS=ON (e.g. by `FUZZERS=ON scripts/sanitize.sh`) is reused as it is, not reconfigured.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_EACH=${1:-60}
shift || true
export CXX=${CXX:-clang++} CC=${CC:-clang}
JOBS=${JOBS:-2}
BUILD_DIR=${BUILD_DIR:-build-fuzz}

scripts/install-deps.sh --fuzz
start=$(date +%s)
if grep -q '^FATHOM_BUILD_FUZZERS:BOOL=ON' "$BUILD_DIR/CMakeCache.txt" 2>/dev/null; then
  echo "fuzz.sh: reusing $BUILD_DIR (already configured with FATHOM_BUILD_FUZZERS=ON)" >&2
else
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFATHOM_WITH_CUDA=OFF \
    -DFATHOM_BUILD_FUZZERS=ON -DFATHOM_BUILD_TESTS=OFF -DFATHOM_BUILD_BENCH=OFF -DFATHOM_BUILD_EXAMPLES=OFF >/dev/null
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in fuzz/*_fuzzer.cpp; do t=$(basename "$f" _fuzzer.cpp); targets+=("$t"); done
fi
cmake --build "$BUILD_DIR" -j"$JOBS" --target "${targets[@]/#/fuzz_}"
built=$(date +%s)
echo "fuzz.sh: build $((built - start)) s" >&2

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
failed=()
summary=()
for t in "${targets[@]}"; do
  work="$BUILD_DIR/corpus/$t"
  artifacts="$BUILD_DIR/artifacts/$t"
  mkdir -p "$work" "$artifacts" "fuzz/corpus/$t"
  seed=()
  [ -n "${FUZZ_SEED:-}" ] && seed=(-seed="$FUZZ_SEED")
  dict=()
  [ -f "fuzz/dict/$t.dict" ] && dict=(-dict="fuzz/dict/$t.dict")
  log="$BUILD_DIR/fuzz-$t.log"
  echo "== $t: ${SECONDS_EACH} s" >&2
  rc=0
  "$BUILD_DIR/fuzz/fuzz_$t" -max_total_time="$SECONDS_EACH" -timeout=30 -rss_limit_mb=3072 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "${seed[@]}" "${dict[@]}" "$work" "fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
  stats=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' || true)
  summary+=("$t: rc=$rc execs=${execs:-?} last: ${stats:-none}")
  if [ $rc -ne 0 ]; then
    failed+=("$t")
    echo "fuzz.sh: $t FAILED (rc=$rc), log $log:" >&2
    grep -E 'ERROR|SUMMARY|runtime error|Test unit written|==[0-9]+==' "$log" | head -20 >&2 || true
  fi
done
end=$(date +%s)
printf '%s\n' "${summary[@]}" >&2
echo "fuzz.sh: build $((built - start)) s, fuzzing $((end - built)) s, total $((end - start)) s" >&2
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz.sh: crashes in: ${failed[*]}" >&2
  exit 1
fi
