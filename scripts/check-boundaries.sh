#!/usr/bin/env bash
# The crate graph enforces the architecture (architecture.md): the sans-IO protocol crate must
# not depend on a runtime, the executor crate must not know any protocol, and the WebRTC test
# origin (a test peer) stays apart from the proxy.
set -euo pipefail
cd "$(dirname "$0")/.."

fail=0
if cargo tree --locked -p protocols -e normal --prefix none | grep -Eq '^(glommio|tokio|io-uring|async-std) '; then
  echo "boundaries: FAILED: protocols depends on a runtime:" >&2
  cargo tree --locked -p protocols -e normal -i glommio >&2 || true
  fail=1
fi
if cargo tree --locked -p executors -e normal --prefix none | grep -q '^protocols '; then
  echo "boundaries: FAILED: executors depends on protocols" >&2
  fail=1
fi
# tests/webrtc-origin is a test peer (str0m, its own crypto): nothing the proxy ships may pull it
# in, and it must not reach into the proxy's crates (it stands in for SRS, not for us).
for crate in srs-proxy protocols executors; do
  if cargo tree --locked -p "$crate" -e normal,build --prefix none | grep -Eq '^(webrtc-test-origin|str0m) '; then
    echo "boundaries: FAILED: $crate depends on the WebRTC test origin or str0m" >&2
    fail=1
  fi
done
if cargo tree --locked -p webrtc-test-origin -e normal --prefix none | grep -Eq '^(srs-proxy|protocols|executors) '; then
  echo "boundaries: FAILED: webrtc-test-origin depends on the proxy's crates" >&2
  fail=1
fi
[[ "$fail" == 0 ]] && echo "boundaries: ok (protocols has no runtime; executors knows no protocol; the WebRTC test origin stays a separate test peer)"
exit "$fail"
