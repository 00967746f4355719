#!/usr/bin/env bash
# Builds (and optionally runs) the libFuzzer targets in fuzz/ on the STABLE toolchain.
#
#   scripts/fuzz.sh build            build every target (part of `make test`)
#   scripts/fuzz.sh run [SECONDS]    build, then run each target SECONDS (default 10) (`make fuzz`)
#   scripts/fuzz.sh run SECONDS NAME run one target
#
# How: libfuzzer-sys links libFuzzer's driver; rustc's *stable* `-Cpasses=sancov-module` plus
# LLVM's sanitizer-coverage options give libFuzzer its coverage feedback (what `cargo fuzz`
# does, minus `-Zsanitizer=address`, which needs nightly). `--target <host>` keeps these flags
# off build scripts and proc macros. See fuzz/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-build}"
seconds="${2:-10}"
only="${3:-}"

host="$(rustc -vV | sed -n 's/^host: //p')"
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
-Cdebug-assertions -Coverflow-checks"
# Our flags must not leak into, nor be overridden by, a caller's settings.
unset CARGO_BUILD_RUSTFLAGS CARGO_ENCODED_RUSTFLAGS

targets=(rtmp_chunk_decoder rtmp_amf0 rtmp_server_session rtmp_relay http_request_head http_playlist_rewrite http_mpd_rewrite srt_packet webrtc_stun_sdp redis_resp)
if [[ -n "$only" ]]; then targets=("$only"); fi

echo "fuzz: building ${targets[*]} for $host (stable, sancov)"
bins=()
for t in "${targets[@]}"; do bins+=(--bin "$t"); done
cargo build --manifest-path fuzz/Cargo.toml --release --target "$host" "${bins[@]}"

if [[ "$mode" == "build" ]]; then
  exit 0
fi
if [[ "$mode" != "run" ]]; then
  echo "usage: $0 build | run [SECONDS] [TARGET]" >&2
  exit 2
fi

# Seeds: real wire captures from shared/fixtures (read-only extra corpus dirs).
seeds_for() {
  case "$1" in
    rtmp_*) echo "../shared/fixtures/rtmp" ;;
    http_*) echo "../shared/fixtures/http" ;;
    srt_*) echo "../shared/fixtures/srt" ;;
    webrtc_*) echo "../shared/fixtures/webrtc" ;;
  esac
}

status=0
for t in "${targets[@]}"; do
  corpus="fuzz/corpus/$t"
  artifacts="fuzz/artifacts/$t"
  mkdir -p "$corpus" "$artifacts"
  extra=()
  seed_dir="$(seeds_for "$t")"
  if [[ -n "$seed_dir" && -d "$seed_dir" ]]; then extra+=("$seed_dir"); fi
  # Inputs that once crashed a target: they must keep passing.
  if [[ -d "fuzz/regressions/$t" ]]; then extra+=("fuzz/regressions/$t"); fi
  echo "fuzz: running $t for ${seconds}s"
  if ! "fuzz/target/$host/release/$t" "$corpus" "${extra[@]}" \
      -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
      -artifact_prefix="$artifacts/" -print_final_stats=1 2>"fuzz/artifacts/$t.log"; then
    echo "fuzz: $t FAILED; crash input and log under $artifacts/ (tail below)" >&2
    tail -n 40 "fuzz/artifacts/$t.log" >&2
    status=1
  else
    grep -E "stat::number_of_executed_units|cov:" "fuzz/artifacts/$t.log" | tail -n 2 || true
  fi
done
exit "$status"
