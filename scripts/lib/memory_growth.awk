# Memory verdict of a soak's samples.csv: did column `col` grow after the warm-up?
#
#   awk -F, -v col=2 -v what=rss -v w=WARMUP_S -v lim=MAX_GROWTH_MIB -f scripts/lib/memory_growth.awk samples.csv
#
# Resident memory moves up and down with the requests in flight (an upload, its decoded audio and log-mel
# are allocated and unmapped per request), so one sample against another says little. The verdict compares
# the median of the first quarter of the samples taken at or after `w` seconds with the median of the last
# quarter: a leak or a fragmentation creep lifts the later median, an excursion does not. With fewer than 8
# samples the quarters are single samples (first and last). Prints one line ending in "flat" or "GROWTH".
function median(a, lo, hi,    m, i, j, t, b) {
  m = 0
  for (i = lo; i <= hi; i++) b[++m] = a[i]
  for (i = 2; i <= m; i++) { t = b[i]; for (j = i - 1; j >= 1 && b[j] > t; j--) b[j + 1] = b[j]; b[j + 1] = t }
  return (m % 2) ? b[(m + 1) / 2] : (b[m / 2] + b[m / 2 + 1]) / 2
}
NR > 1 && $1 >= w && $col != "" {
  v[++n] = $col + 0
  if (n == 1 || v[n] > max) max = v[n]
  if (n == 1 || v[n] < min) min = v[n]
}
END {
  if (n == 0) { print "no " what " samples after the warm-up"; exit }
  q = (n >= 8) ? int(n / 4) : 1
  first = median(v, 1, q)
  last = median(v, n - q + 1, n)
  printf "%s after warm-up: median %d MiB over the first %d samples, %d MiB over the last %d (range %d-%d MiB, %d samples), growth %d MiB (limit %d): %s",
         what, first, q, last, q, min, max, n, last - first, lim, (last - first > lim ? "GROWTH" : "flat")
}
