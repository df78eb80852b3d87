#!/usr/bin/env bash
# `fathom serve --model ORG/NAME` from a hub (ctest e2e_hub_serve): with HF_ENDPOINT pointing to the fake hub
# (tests/hub/fake_hub_main.cpp) fathom downloads the fixture checkpoint into HF_HUB_CACHE, serves
# /v1/embeddings, loads it again through the admin API (and reports a missing repository there), `fathom
# download` prints the snapshot directory; then, with the fake hub stopped and HF_HUB_OFFLINE=1, it serves
# the same embeddings from the cache, and a model that is not cached fails naming what is missing.
#   tests/e2e/hub_serve_test.sh FATHOM FAKE_HUB
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/scripts/lib/listening_port.sh"
fathom=$1 fake_hub=$2
work=$(mktemp -d)
server="" hub=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; [ -n "$hub" ] && kill "$hub" 2>/dev/null; rm -rf "$work"' EXIT
fail() { echo "hub_serve: $*" >&2; for f in "$work"/*.log; do echo "== $f" >&2; cat "$f" >&2; done; exit 1; }
sha=$(printf 'a%.0s' $(seq 1 40))

"$fake_hub" "org/bert-mean-norm=$root/tests/fixtures/models/bert-mean-norm@$sha" >"$work/hub.log" 2>&1 &
hub=$!
hub_port=""
for _ in $(seq 1 100); do
  hub_port=$(sed -n 's/^fake hub listening on //p' "$work/hub.log")
  [ -n "$hub_port" ] && break
  sleep 0.1
done
[ -n "$hub_port" ] || fail "the fake hub did not start"
unset HF_TOKEN HUGGING_FACE_HUB_TOKEN HF_HUB_OFFLINE TRANSFORMERS_OFFLINE HF_HOME
export HF_HUB_CACHE="$work/cache" HF_ENDPOINT="http://127.0.0.1:$hub_port"
snapshot="$work/cache/models--org--bert-mean-norm/snapshots/$sha"

embed() {  # embed PORT OUT: POST one input, expect 200
  local code
  code=$(curl -s -o "$2" -w '%{http_code}' -H 'Content-Type: application/json' \
    -d '{"model":"bert-mean-norm","input":"hello hub"}' "http://127.0.0.1:$1/v1/embeddings")
  [ "$code" = 200 ] || fail "embeddings answered $code: $(cat "$2")"
  grep -q '"embedding"' "$2" || fail "no embedding in $(cat "$2")"
}

start_server() {  # start_server LOG ARGS...: sets server and port
  local log=$1 rc=0
  shift
  "$fathom" serve "$@" --port 0 --admin-token t >"$log" 2>&1 &
  server=$!
  port=$(listening_port "$log" "$server") || rc=$?
  [ $rc -eq 0 ] || fail "server did not listen (rc $rc)"
}

stop_server() {
  kill -TERM "$server"
  local rc=0
  wait "$server" || rc=$?
  server=""
  [ "$rc" = 0 ] || fail "exit code $rc after SIGTERM"
}

# Online: downloads, then serves.
start_server "$work/online.log" --model org/bert-mean-norm
[ -L "$snapshot/model.safetensors" ] || fail "no snapshot link $snapshot/model.safetensors"
[ "$(cat "$work/cache/models--org--bert-mean-norm/refs/main")" = "$sha" ] || fail "refs/main is not the commit"
grep -q "downloaded org/bert-mean-norm model.safetensors" "$work/online.log" || fail "no download progress lines in the log"
embed "$port" "$work/online.json"
# The admin API resolves hub references too (from the cache now), and names a repository the hub lacks.
code=$(curl -s -o "$work/admin.json" -w '%{http_code}' -H 'Authorization: Bearer t' -H 'Content-Type: application/json' \
  -d '{"name":"again","path":"org/bert-mean-norm"}' "http://127.0.0.1:$port/v1/admin/models")
[ "$code" = 200 ] || fail "admin load answered $code: $(cat "$work/admin.json")"
code=$(curl -s -o "$work/admin_missing.json" -w '%{http_code}' -H 'Authorization: Bearer t' -H 'Content-Type: application/json' \
  -d '{"name":"missing","path":"org/missing"}' "http://127.0.0.1:$port/v1/admin/models")
[ "$code" = 404 ] || [ "$code" = 400 ] || fail "admin load of a missing repository answered $code"
grep -q "no model repository org/missing" "$work/admin_missing.json" || fail "admin error: $(cat "$work/admin_missing.json")"
stop_server

out=$("$fathom" download org/bert-mean-norm 2>"$work/download.log") || fail "fathom download failed"
[ "$out" = "$snapshot" ] || fail "fathom download printed '$out', expected $snapshot"

# Offline, the hub gone: served from the cache, same embedding.
kill -TERM "$hub"; wait "$hub" || true; hub=""
export HF_HUB_OFFLINE=1
start_server "$work/offline.log" --model org/bert-mean-norm
embed "$port" "$work/offline.json"
cmp -s <(sed 's/"created":[0-9]*//' "$work/online.json") <(sed 's/"created":[0-9]*//' "$work/offline.json") ||
  fail "offline embedding differs: $(cat "$work/online.json") vs $(cat "$work/offline.json")"
stop_server
"$fathom" inspect org/bert-mean-norm >"$work/inspect.log" 2>&1 || fail "fathom inspect from the cache failed"
grep -q "architecture:" "$work/inspect.log" || fail "inspect output lacks the architecture"

rc=0; "$fathom" serve --model org/not-cached --port 0 >"$work/missing.log" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "an uncached model offline exited $rc, expected 1"
grep -q "HF_HUB_OFFLINE is set: org/not-cached@main is not in the hub cache" "$work/missing.log" || fail "offline error not clear"
echo "hub_serve: ok"
