#!/usr/bin/env bash
# A model that fails to load at startup does not stop the others (ctest e2e_degraded_startup): fathom serve
# with one good fixture model and one broken directory starts, lists the broken one as failed (startup
# table, /v1/models, /ready 503 naming it), serves the good one, and exits 0 on SIGTERM. With only broken
# models it exits 1 before listening.
#   tests/e2e/degraded_startup_test.sh FATHOM
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/scripts/lib/listening_port.sh"
fathom=$1
work=$(mktemp -d)
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT
fail() { echo "degraded_startup: $*" >&2; cat "$work/log" >&2 || true; exit 1; }

mkdir -p "$work/broken" && echo '{"architectures": ["BertModel"], "model_type": "bert"}' >"$work/broken/config.json"
"$fathom" serve --model "good=$root/tests/fixtures/models/bert-mean-norm" --model "broken=$work/broken" \
  --port 0 >"$work/log" 2>&1 &
server=$!
port="" wait_rc=0
port=$(listening_port "$work/log" "$server") || wait_rc=$?
[ $wait_rc -ne 1 ] || fail "server exited"
[ $wait_rc -eq 0 ] || fail "server did not listen"
url="http://127.0.0.1:$port"
grep -q "model 'broken' failed to load" "$work/log" || fail "no load error for the broken model"
grep -q "^broken .*none.*: failed to load" "$work/log" || fail "the startup table does not show the failure"
code=$(curl -s -o "$work/emb" -w '%{http_code}' -H 'Content-Type: application/json' \
  -d '{"model":"good","input":"hello"}' "$url/v1/embeddings")
[ "$code" = 200 ] || fail "good model answered $code: $(cat "$work/emb")"
grep -q '"embedding"' "$work/emb" || fail "no embedding in $(cat "$work/emb")"
code=$(curl -s -o "$work/bad" -w '%{http_code}' -H 'Content-Type: application/json' \
  -d '{"model":"broken","input":"hello"}' "$url/v1/embeddings")
[ "${code:0:1}" = 4 ] || [ "${code:0:1}" = 5 ] || fail "broken model answered $code"
grep -q '"error"' "$work/bad" || fail "broken model's answer has no OpenAI error: $(cat "$work/bad")"
code=$(curl -s -o "$work/ready" -w '%{http_code}' "$url/ready")
[ "$code" = 503 ] || fail "/ready answered $code with a failed model"
grep -q broken "$work/ready" || fail "/ready does not name the failed model: $(cat "$work/ready")"
curl -s "$url/v1/models" | grep -q '"failed"' || fail "/v1/models does not show the failed state"
code=$(curl -s -o /dev/null -w '%{http_code}' "$url/health")
[ "$code" = 200 ] || fail "/health answered $code"
kill -TERM "$server"
rc=0; wait "$server" || rc=$?
server=""
[ "$rc" = 0 ] || fail "exit code $rc after SIGTERM"

rc=0; "$fathom" serve --model "broken=$work/broken" --port 0 >"$work/log" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "with only a broken model the exit code was $rc, expected 1"
grep -q "no model could be loaded" "$work/log" || fail "no 'no model could be loaded' message"
echo "degraded_startup: ok"
