#!/usr/bin/env bash
# scripts/lib/memory_growth.awk (the soak's memory verdict) on synthetic samples: a flat series with
# excursions either way is flat, a steady creep is growth, samples only inside the warm-up say so.
set -euo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
verdict() {  # verdict CSV LIMIT
  awk -F, -v col=2 -v what=rss -v w=100 -v lim="$2" -f scripts/lib/memory_growth.awk "$1"
}
fail() { echo "memory_growth_test: $*" >&2; exit 1; }

{ echo "t_s,rss_mib"; echo "0,300"; echo "50,700"
  for i in $(seq 0 47); do  # 747 MiB with excursions of -29..+30 MiB, as under load
    v=747; case $((i % 7)) in 2) v=777 ;; 5) v=718 ;; esac
    echo "$((100 + 15 * i)),$v"; done; } >"$tmp/flat.csv"
out=$(verdict "$tmp/flat.csv" 16)
case "$out" in *"growth 0 MiB"*": flat") ;; *) fail "flat series: $out" ;; esac
case "$out" in *"range 718-777 MiB, 48 samples"*) ;; *) fail "flat series range: $out" ;; esac

{ echo "t_s,rss_mib"; for i in $(seq 0 47); do echo "$((100 + 15 * i)),$((800 + i))"; done; } >"$tmp/creep.csv"
out=$(verdict "$tmp/creep.csv" 16)  # +1 MiB per sample: quarter medians 805.5 and 841.5
case "$out" in *"growth 36 MiB"*": GROWTH") ;; *) fail "creeping series: $out" ;; esac
out=$(verdict "$tmp/creep.csv" 40)
case "$out" in *": flat") ;; *) fail "creep under the limit: $out" ;; esac

{ echo "t_s,rss_mib"; echo "0,300"; echo "100,310"; echo "115,400"; } >"$tmp/short.csv"
out=$(verdict "$tmp/short.csv" 16)  # fewer than 8 samples: first against last
case "$out" in *"growth 90 MiB"*": GROWTH") ;; *) fail "short series: $out" ;; esac

{ echo "t_s,rss_mib"; echo "0,300"; echo "50,310"; } >"$tmp/warmup.csv"
out=$(verdict "$tmp/warmup.csv" 16)
[ "$out" = "no rss samples after the warm-up" ] || fail "warm-up only: $out"
echo "memory_growth_test: OK"
