#!/usr/bin/env bash
# Installs the Debian 12 packages the build and the tests need, only those missing.
set -euo pipefail

packages=(
  cmake g++ make pkg-config
  clang libclang-rt-14-dev clang-format-14 clang-tidy-14
  libcjson-dev librocksdb-dev libcivetweb-dev libcurl4-openssl-dev libssl-dev openssl libpq-dev
  postgresql-15
  mosquitto mosquitto-dev libmosquitto-dev mosquitto-clients
  googletest libgtest-dev libbenchmark-dev
  curl graphite-carbon python3-whisper wrk docker-compose haproxy chromium
  python3-prometheus-client prometheus
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
