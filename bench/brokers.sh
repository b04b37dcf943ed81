# Sourced by the benchmarks that run every Mosquitto: Debian's /usr/sbin/mosquitto and each one
# scripts/compat.sh built under build-compat/ (in `brokers`), a work directory `work` removed at
# exit with the broker started in `pid`. Brokers start through tests/support/start_broker.sh.
work=$(mktemp -d /tmp/twins-bench-XXXXXX)
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

brokers=(/usr/sbin/mosquitto)
for b in build-compat/*/prefix/sbin/mosquitto; do [ -x "$b" ] && brokers+=("$PWD/$b"); done
