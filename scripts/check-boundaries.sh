#!/usr/bin/env bash
# The crate graph enforces the architecture (architecture.md): the sans-IO protocol crate must
# not depend on a runtime, and the executor crate must not know any protocol.
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
[[ "$fail" == 0 ]] && echo "boundaries: ok (protocols has no runtime; executors knows no protocol)"
exit "$fail"
