# Sourced by the benchmarks that run every Mosquitto: Debian's /usr/sbin/mosquitto and each one
# scripts/compat.sh built under build-compat/ (in `brokers`), a work directory `work` removed at
# exit with the broker started in `pid`, free_port, and write_conf.
work=$(mktemp -d /tmp/twins-bench-XXXXXX)
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

brokers=(/usr/sbin/mosquitto)
for b in build-compat/*/prefix/sbin/mosquitto; do [ -x "$b" ] && brokers+=("$PWD/$b"); done

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# write_conf PORT PLUGIN [LINE...]: $work/mosquitto.conf for one listener on the loopback,
# anonymous clients, TCP_NODELAY, the log in $work/mosquitto.log, PLUGIN and its option lines.
write_conf() {
  local port=$1 plugin=$2
  shift 2
  printf '%s\n' "listener $port 127.0.0.1" "allow_anonymous true" "user root" "set_tcp_nodelay true" \
    "log_dest file $work/mosquitto.log" "plugin $plugin" "$@" >"$work/mosquitto.conf"
}
