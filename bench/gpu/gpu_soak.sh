#!/usr/bin/env bash
# GPU soak: scripts/soak.sh against bench/gpu/soak_cuda.toml (the four fixture models, Whisper included, on
# cuda:0, each concurrent) with the mixed fixture workload of bench/load/workloads/fixtures_mixed.json, its
# audio path pointed at JFK, sampling device memory beside resident memory (GPU_MEMORY=1).
#
#   bench/gpu/gpu_soak.sh BUNDLE MINUTES OUT_DIR [JFK]
#
# BUNDLE: a device bundle (../shared/tools/device-bundle.sh) holding fathom and fathom_load; JFK: the
# shared assets' whisper/jfk.wav (default BUNDLE/jfk.wav). CONNECTIONS (default 64), SAMPLE_S (default 15)
# and WARMUP_S (default 120) pass through to scripts/soak.sh. Exit status: scripts/soak.sh's.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 3 ] || { echo "usage: $0 BUNDLE MINUTES OUT_DIR [JFK]" >&2; exit 2; }
bundle=$(cd "$1" && pwd); minutes=$2; out=$3; jfk=${4:-$bundle/jfk.wav}
[ -f "$jfk" ] || { echo "gpu_soak.sh: $jfk missing" >&2; exit 2; }
mkdir -p "$out"
workload="$out/workload.json"
python3 - "$jfk" "$workload" <<'PY'
import json, os, sys
jfk, dst = os.path.abspath(sys.argv[1]), sys.argv[2]
entries = json.load(open("bench/load/workloads/fixtures_mixed.json"))
for e in entries:
    if e["kind"] != "embeddings":
        e["file"] = jfk
json.dump(entries, open(dst, "w"))
PY
export LD_LIBRARY_PATH="$bundle/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
BUILD_DIR="$bundle/bin" CONFIG=bench/gpu/soak_cuda.toml WORKLOAD="$workload" OUT_DIR="$out" GPU_MEMORY=1 \
  CONNECTIONS=${CONNECTIONS:-64} SAMPLE_S=${SAMPLE_S:-15} WARMUP_S=${WARMUP_S:-120} NICE=0 \
  scripts/soak.sh "$minutes"
