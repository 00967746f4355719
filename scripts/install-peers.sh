#!/usr/bin/env bash
# Installs the real peers the end-to-end tests need (shared/design/test-peers.md), only when
# something is missing: a second run is a few `command -v` checks. Fails loudly when it cannot
# install: a missing peer is a test failure, never a silent skip.
set -euo pipefail

packages=(ffmpeg nginx-light libnginx-mod-rtmp libnginx-mod-stream haproxy wrk redis-server srt-tools curl)
commands=(ffmpeg ffprobe nginx haproxy wrk redis-server srt-live-transmit curl)
rtmp_module=/usr/lib/nginx/modules/ngx_rtmp_module.so
# nginx `stream` (TCP/UDP L4 relay): the bench floor for SRT and RTMP.
stream_module=/usr/lib/nginx/modules/ngx_stream_module.so
# libfuzzer-sys compiles libFuzzer (C++) for the fuzz targets.
if ! command -v c++ >/dev/null 2>&1; then packages+=(g++); commands+=(c++); fi

missing() {
  local out=()
  for c in "${commands[@]}"; do command -v "$c" >/dev/null 2>&1 || out+=("$c"); done
  [[ -f "$rtmp_module" ]] || out+=("$rtmp_module")
  [[ -f "$stream_module" ]] || out+=("$stream_module")
  echo "${out[*]}"
}

# node-media-server (npm): a real HTTP-FLV origin that is not ours. 2.7.x runs on Node 20.
nms_dir=/opt/srs-proxy-test-peers
nms_version=2.7.4
install_nms() {
  [[ -f "$nms_dir/node_modules/node-media-server/package.json" ]] \
    && grep -q "\"version\": \"$nms_version\"" "$nms_dir/node_modules/node-media-server/package.json" && return 0
  if ! command -v npm >/dev/null 2>&1; then
    [[ "$(id -u)" == 0 ]] || { echo "peers: FAILED: need root to apt-get install nodejs npm" >&2; exit 1; }
    apt-get -o DPkg::Lock::Timeout=600 update -q
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends nodejs npm
  fi
  mkdir -p "$nms_dir"
  npm install --no-audit --no-fund --prefix "$nms_dir" "node-media-server@$nms_version"
  echo "peers: node-media-server $nms_version in $nms_dir"
}
install_nms

# aiortc (PyPI): the WHIP/WHEP clients of the WebRTC tests (tests/webrtc/*.py). In a venv beside
# node-media-server, so Debian's externally-managed system Python is left alone; the test harness
# (tests/support/webrtc.rs) runs $aiortc_venv/bin/python3. Wheels only: no compiler needed.
aiortc_venv="$nms_dir/venv"
aiortc_version=1.16.0
aiortc_ok() {
  [[ -x "$aiortc_venv/bin/python3" ]] && "$aiortc_venv/bin/python3" -c \
    "import sys, aiortc, av; sys.exit(aiortc.__version__ != '$aiortc_version')" >/dev/null 2>&1
}
install_aiortc() {
  aiortc_ok && return 0
  # Debian ships venv's ensurepip only in python3-venv.
  if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    [[ "$(id -u)" == 0 ]] || { echo "peers: FAILED: need root to apt-get install python3 python3-venv" >&2; exit 1; }
    apt-get -o DPkg::Lock::Timeout=600 update -q
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends python3 python3-venv
  fi
  mkdir -p "$nms_dir"
  [[ -x "$aiortc_venv/bin/python3" ]] || python3 -m venv "$aiortc_venv"
  "$aiortc_venv/bin/python3" -m pip install --disable-pip-version-check -q "aiortc==$aiortc_version"
  if ! aiortc_ok; then
    echo "peers: FAILED: aiortc $aiortc_version does not import from $aiortc_venv" >&2
    exit 1
  fi
  echo "peers: aiortc $aiortc_version in $aiortc_venv"
}
install_aiortc

gap="$(missing)"
if [[ -z "$gap" ]]; then
  echo "peers: all present (${commands[*]}, ngx_rtmp_module, ngx_stream_module, node-media-server, aiortc)"
  exit 0
fi

echo "peers: missing: $gap; installing ${packages[*]}"
if [[ "$(id -u)" != 0 ]]; then
  echo "peers: FAILED: need root to apt-get install ${packages[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Wait for (rather than fail on) another apt holding the lock.
apt_opts=(-o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
apt-get "${apt_opts[@]}" update -q
apt-get "${apt_opts[@]}" install -y -q --no-install-recommends "${packages[@]}"

gap="$(missing)"
if [[ -n "$gap" ]]; then
  echo "peers: FAILED: still missing after install: $gap" >&2
  exit 1
fi
echo "peers: installed"
