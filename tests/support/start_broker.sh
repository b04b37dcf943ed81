#!/usr/bin/env bash
# The one way tests and benchmarks start a broker (the C++ tests too: tests/support/broker.cpp).
#
# Run:    start_broker.sh [--port N] DIR [CONFIG [GLOBAL]]
#   Writes DIR/mosquitto.conf: GLOBAL, "listener <port> 127.0.0.1", allow_anonymous true,
#   set_tcp_nodelay true, "user root" when run as root (mosquitto drops to user mosquitto
#   otherwise), then CONFIG. <port> is N, else a free one; @REST_PORT@ in CONFIG or GLOBAL becomes
#   a second free port, which the broker must also listen on. Then the script becomes the broker
#   (exec: its pid, signals and exit status are the broker's), output in DIR/mosquitto.log.
#   Once the broker accepts connections on its port(s), one line goes to stdout and it closes:
#       port=<mqtt port> rest_port=<port or 0> start_ms=<from exec to listening>
#   Nothing comes (end of file) if the broker exits first or does not listen within
#   $TWINS_BROKER_START_TIMEOUT seconds (default 20).
# Source: `. start_broker.sh`, then `start_broker DIR [CONFIG [GLOBAL]]` runs it in the background
#   and sets started_pid, started_port, started_rest_port, started_ms; it returns 1 (after
#   killing a broker that never listened, and showing its log on stderr) when it did not start.
#   Set start_port to reuse a port (a restart).
# Free ports (free_ports N, also `start_broker.sh --free-ports N`): random ports below the kernel's
#   ephemeral range, so that no client connection takes them, with no socket on them now (ss).
# Environment: TWINS_MOSQUITTO (the broker binary, default /usr/sbin/mosquitto: scripts/compat.sh
#   tests other builds), TWINS_BROKER_PRELOAD (LD_PRELOAD for the broker only: the sanitizer
#   runtimes a sanitized plugin needs).

free_ports() {
  local low port ports=()
  low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range)
  ((low > 11000)) || low=61000
  while ((${#ports[@]} < $1)); do
    port=$((10000 + (RANDOM * 32768 + RANDOM) % (low - 10000)))
    [[ " ${ports[*]} " != *" $port "* && -z $(ss -Htan "sport = :$port") ]] && ports+=("$port")
  done
  echo "${ports[@]}"
}

if [[ ${BASH_SOURCE[0]} != "$0" ]]; then
  _start_broker_script=$(realpath "${BASH_SOURCE[0]}")
  # shellcheck disable=SC2034  # started_*: the function's outputs, read by the caller
  start_broker() {
    local dir=$1 ready field _
    started_pid=0 started_port=0 started_rest_port=0 started_ms=0
    mkdir -p "$dir"
    # A port found free may be taken before the broker binds it: then another one.
    for _ in 1 2 3; do
      rm -f "$dir/ready"
      mkfifo "$dir/ready"
      "$_start_broker_script" ${start_port:+--port "$start_port"} "$@" >"$dir/ready" &
      started_pid=$!
      ready=$(cat "$dir/ready")
      rm -f "$dir/ready"
      if [[ -n $ready ]]; then
        for field in $ready; do
          case $field in
            port=*) started_port=${field#*=} ;;
            rest_port=*) started_rest_port=${field#*=} ;;
            start_ms=*) started_ms=${field#*=} ;;
          esac
        done
        return 0
      fi
      kill "$started_pid" 2>/dev/null || true
      wait "$started_pid" 2>/dev/null || true
      if [[ -n ${start_port:-} ]] || ! grep -q "Address already in use" "$dir/mosquitto.log"; then break; fi
    done
    echo "the broker in $dir did not start:" >&2
    cat "$dir/mosquitto.log" >&2
    return 1
  }
  return 0
fi

set -euo pipefail
port=
case ${1:-} in
  --free-ports)
    free_ports "$2"
    exit 0
    ;;
  --port)
    port=$2
    shift 2
    ;;
esac
[[ $# -ge 1 ]] || {
  echo "usage: $0 [--port N] DIR [CONFIG [GLOBAL]] | --free-ports N" >&2
  exit 2
}
dir=$1 config=${2:-} global=${3:-}
rest_port=0
if [[ $config$global == *@REST_PORT@* ]]; then
  if [[ -n $port ]]; then
    rest_port=$port
    until [[ $rest_port != "$port" ]]; do rest_port=$(free_ports 1); done
  else
    read -r port rest_port < <(free_ports 2)
  fi
  config=${config//@REST_PORT@/$rest_port}
  global=${global//@REST_PORT@/$rest_port}
fi
[[ -n $port ]] || port=$(free_ports 1)

mkdir -p "$dir"
{
  [[ -z $global ]] || printf '%s\n' "$global"
  printf 'listener %s 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n' "$port"
  [[ $EUID -ne 0 ]] || echo "user root"
  [[ -z $config ]] || printf '%s\n' "$config"
} >"$dir/mosquitto.conf"

# The waiter, detached (its parent is about to become the broker, which would not reap it):
# once the broker ($$ after the exec) accepts on every port, it reports on stdout.
broker=$$
(
  (
    t0=$(date +%s%N)
    deadline=$((SECONDS + ${TWINS_BROKER_START_TIMEOUT:-20}))
    for p in "$port" $([[ $rest_port == 0 ]] || echo "$rest_port"); do
      until (exec 4<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do
        state=$(cut -d' ' -f3 "/proc/$broker/stat" 2>/dev/null || echo gone)
        [[ $state != Z && $state != gone && $SECONDS -lt $deadline ]] || exit 0
        sleep 0.005
      done
    done
    echo "port=$port rest_port=$rest_port start_ms=$((($(date +%s%N) - t0) / 1000000))"
  ) &
)
exec 1>>"$dir/mosquitto.log" 2>&1
[[ -z ${TWINS_BROKER_PRELOAD:-} ]] || export LD_PRELOAD=$TWINS_BROKER_PRELOAD
exec "${TWINS_MOSQUITTO:-/usr/sbin/mosquitto}" -c "$dir/mosquitto.conf"
