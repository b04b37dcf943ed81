#!/usr/bin/env bash
# REST speed: wrk on GET of a ~1 KiB document and on /healthz against the same server in the
# same run; the document GET should reach at least 0.8x the trivial endpoint's requests/s.
#
#   bench/rest_bench.sh [SERVER_BINARY] [SECONDS_PER_MEASURE]
#
# SERVER_BINARY defaults to build/bench/rest_bench_server. CivetWeb serves one connection per
# thread, so wrk opens as many connections as the server has threads (REST_THREADS, default 4).
set -euo pipefail
cd "$(dirname "$0")/.."

server=${1:-build/bench/rest_bench_server}
seconds=${2:-3}
rounds=${REST_ROUNDS:-5}
threads=${REST_THREADS:-4}
command -v wrk >/dev/null || { echo "wrk is not installed (Debian package wrk)" >&2; exit 1; }
[[ -x $server ]] || { echo "no server binary at $server; build the rest_bench_server target" >&2; exit 1; }

work=$(mktemp -d)
pid=
cleanup() {
  if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

"$server" "$work/db" "$threads" >"$work/out" 2>"$work/err" &
pid=$!
for _ in $(seq 100); do
  grep -q '^document_bytes' "$work/out" 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/err" >&2; exit 1; }
  sleep 0.1
done
port=$(awk '$1 == "port" {print $2}' "$work/out")
bytes=$(awk '$1 == "document_bytes" {print $2}' "$work/out")
[[ -n $port ]] || { echo "server did not start" >&2; cat "$work/err" >&2; exit 1; }
base="http://127.0.0.1:$port"
doc="$base/iot/v1/regions/fr-par/twins/bench/documents/doc"

# The document must really come back before it is measured.
curl -sf -H 'X-Auth-Token: bench' "$doc" >/dev/null || { echo "GET $doc failed" >&2; exit 1; }

rate() {
  wrk -t2 -c"$threads" -d"${seconds}s" "$@" | tee -a "$work/wrk.log" | awk '/^Requests\/sec:/ {print $2}'
}
# Warm both paths, then alternate the two endpoints so that a change in machine load during
# the run weighs on both alike. Rates are means over the rounds; the ratio is the median of
# the per-round ratios (each from two back-to-back measures), which one noisy round cannot sway.
wrk -t1 -c1 -d1s -H 'X-Auth-Token: bench' "$doc" >/dev/null
wrk -t1 -c1 -d1s "$base/healthz" >/dev/null
doc_rates=() health_rates=()
for ((round = 0; round < rounds; round++)); do
  doc_rates+=("$(rate -H 'X-Auth-Token: bench' "$doc")")
  health_rates+=("$(rate "$base/healthz")")
done
mean() { printf '%s\n' "$@" | awk '{ s += $1 } END { print s / NR }'; }
doc_rate=$(mean "${doc_rates[@]}")
health_rate=$(mean "${health_rates[@]}")
errors=$(grep -c 'Non-2xx\|Socket errors' "$work/wrk.log" || true)

ratio=$(for ((i = 0; i < rounds; i++)); do echo "${doc_rates[i]} ${health_rates[i]}"; done |
  awk '{ print $1 / $2 }' | sort -g | awk '{ r[NR] = $1 } END { print (NR % 2) ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2 }')

awk -v d="$doc_rate" -v h="$health_rate" -v ratio="$ratio" -v b="$bytes" -v e="$errors" -v s="$seconds" -v c="$threads" -v r="$rounds" -v dr="${doc_rates[*]}" -v hr="${health_rates[*]}" 'BEGIN {
  printf "REST benchmark: %d rounds of %s s per endpoint, %d connections, document data %d bytes\n", r, s, c, b
  printf "  GET document  %10.0f req/s   (rounds: %s)\n", d, dr
  printf "  GET /healthz  %10.0f req/s   (rounds: %s)\n", h, hr
  printf "  ratio         %10.2f (median per round; target >= 0.80): %s\n", ratio, (ratio >= 0.8 ? "met" : "NOT met")
  if (e > 0) printf "  warning: wrk reported errors or non-2xx replies\n"
}'
