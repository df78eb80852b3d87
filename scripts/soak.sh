#!/usr/bin/env bash
# Soak test: serves the fixture models (three embedding models + tiny Whisper, bench/load/fixtures.toml),
# drives mixed load with fathom_load (--check against the fixtures' references) for MINUTES, samples the
# server's resident memory (/proc/PID/status VmRSS), thread count and /metrics every SAMPLE_S seconds into a
# CSV, then stops the server with SIGTERM. Fails when the load client fails (a status outside 200/429 or a
# wrong answer), when the server does not exit 0, or when resident memory after the warm-up grows by more
# than MAX_GROWTH_MIB (the median of the last quarter of the samples against that of the first quarter:
# scripts/lib/memory_growth.awk).
#
#   scripts/soak.sh [MINUTES]        (default 30)
#
# Environment: BUILD_DIR (default build; needs fathom and fathom_load), CONNECTIONS (default 16),
# SAMPLE_S (default 15), WARMUP_S (default 180), MAX_GROWTH_MIB (default 16), WORKLOAD (default
# bench/load/workloads/fixtures_mixed.json), CONFIG (default bench/load/fixtures.toml), OUT_DIR (default
# BUILD_DIR/soak-<date>), NICE (default 10: the server and client run niced), GPU_MEMORY (default 0; 1: also
# sample the device memory in use on GPU 0 through nvidia-smi, and fail on its growth after the warm-up
# as for resident memory).
# Output: OUT_DIR/samples.csv, OUT_DIR/load.json (fathom_load --out), OUT_DIR/server.log, OUT_DIR/summary.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/listening_port.sh

MINUTES=${1:-30}
BUILD_DIR=${BUILD_DIR:-build}
CONNECTIONS=${CONNECTIONS:-16}
SAMPLE_S=${SAMPLE_S:-15}
WARMUP_S=${WARMUP_S:-180}
MAX_GROWTH_MIB=${MAX_GROWTH_MIB:-16}
WORKLOAD=${WORKLOAD:-bench/load/workloads/fixtures_mixed.json}
CONFIG=${CONFIG:-bench/load/fixtures.toml}
OUT_DIR=${OUT_DIR:-$BUILD_DIR/soak-$(date +%Y%m%d-%H%M%S)}
NICE=${NICE:-10}
for b in fathom fathom_load; do
  [ -x "$BUILD_DIR/$b" ] || { echo "soak.sh: $BUILD_DIR/$b missing (cmake --build $BUILD_DIR --target $b)" >&2; exit 2; }
done
command -v curl >/dev/null || { echo "soak.sh: needs curl" >&2; exit 2; }
mkdir -p "$OUT_DIR"

nice -n "$NICE" "$BUILD_DIR/fathom" serve --config "$CONFIG" --port 0 >"$OUT_DIR/server.log" 2>&1 &
server=$!
load=""
cleanup() {
  [ -n "$load" ] && kill "$load" 2>/dev/null || true
  kill "$server" 2>/dev/null || true
}
trap cleanup EXIT
port="" wait_rc=0
port=$(listening_port "$OUT_DIR/server.log" "$server") || wait_rc=$?
[ $wait_rc -ne 1 ] || { cat "$OUT_DIR/server.log" >&2; echo "soak.sh: server exited" >&2; exit 1; }
[ $wait_rc -eq 0 ] || { echo "soak.sh: server did not start listening" >&2; exit 1; }
url="http://127.0.0.1:$port"
echo "soak.sh: server pid $server on $url; $MINUTES min, $CONNECTIONS connections, samples every ${SAMPLE_S} s in $OUT_DIR" >&2

nice -n "$NICE" "$BUILD_DIR/fathom_load" --url "$url" --connections "$CONNECTIONS" --duration $((MINUTES * 60)) \
  --workload "$WORKLOAD" --check --out "$OUT_DIR/load.json" >"$OUT_DIR/load.txt" 2>&1 &
load=$!

metric_sum() {  # sum of every sample of metric $1 in the /metrics text on stdin
  awk -v m="$1" '$1 == m || index($1, m "{") == 1 { s += $NF } END { printf "%.0f", s }'
}
csv="$OUT_DIR/samples.csv"
GPU_MEMORY=${GPU_MEMORY:-0}
gpu_mib() {  # device memory in use on GPU 0, MiB; empty without GPU_MEMORY=1
  [ "$GPU_MEMORY" = 1 ] && nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0 2>/dev/null | head -1
}
echo "t_s,rss_mib,threads,requests_total,errors_total,queue_depth,model_memory_mib,gpu_memory_mib" >"$csv"
start=$(date +%s)
while kill -0 "$load" 2>/dev/null; do
  t=$(( $(date +%s) - start ))
  rss_kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$server/status")
  threads=$(awk '/^Threads:/ {print $2}' "/proc/$server/status")
  m=$(curl -s --max-time 10 "$url/metrics" || true)
  req=$(metric_sum fathom_requests_total <<<"$m")
  err=$(metric_sum fathom_request_errors_total <<<"$m")
  qd=$(metric_sum fathom_queue_depth <<<"$m")
  mem=$(metric_sum fathom_model_memory_bytes <<<"$m")
  echo "$t,$((rss_kb / 1024)),$threads,$req,$err,$qd,$((mem / 1048576)),$(gpu_mib || true)" >>"$csv"
  for _ in $(seq 1 "$SAMPLE_S"); do kill -0 "$load" 2>/dev/null || break; sleep 1; done
done
load_rc=0
wait "$load" || load_rc=$?
load=""
kill -TERM "$server"
server_rc=0
wait "$server" || server_rc=$?
trap - EXIT

# Memory verdict of column $1 (2: VmRSS, 8: GPU memory) after the warm-up: scripts/lib/memory_growth.awk
# (median of the first quarter of the samples against the median of the last quarter).
growth() {
  awk -F, -v col="$1" -v what="$2" -v w="$WARMUP_S" -v lim="$MAX_GROWTH_MIB" -f scripts/lib/memory_growth.awk "$csv"
}
verdict=$(growth 2 rss)
gpu_verdict=""
[ "$GPU_MEMORY" = 1 ] && gpu_verdict=$(growth 8 "gpu memory")
{
  echo "soak: $MINUTES min, $CONNECTIONS connections, workload $WORKLOAD"
  tail -n 3 "$OUT_DIR/load.txt"
  echo "$verdict"
  [ -z "$gpu_verdict" ] || echo "$gpu_verdict"
  echo "load client exit $load_rc, server exit $server_rc"
} | tee "$OUT_DIR/summary.txt" >&2
[ "$load_rc" -eq 0 ] || { echo "soak.sh: FAILED: load client reported failures (see $OUT_DIR/load.txt)" >&2; exit 1; }
[ "$server_rc" -eq 0 ] || { echo "soak.sh: FAILED: server exit status $server_rc after SIGTERM" >&2; exit 1; }
case "$verdict" in *flat) ;; *) echo "soak.sh: FAILED: $verdict" >&2; exit 1 ;; esac
case "$gpu_verdict" in "" | *flat) ;; *) echo "soak.sh: FAILED: $gpu_verdict" >&2; exit 1 ;; esac
echo "soak.sh: OK ($csv)" >&2
