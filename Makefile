# srs-proxy build, test and tooling entry points. `make test` is what CI runs (.ci/run).
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: all test peers fmt-check clippy doc boundaries fuzz-build cargo-test run bench fuzz clean

all: test

## test: install missing peers, then fmt, clippy, docs, crate boundaries, fuzz build, all tests
test: peers fmt-check clippy doc boundaries fuzz-build cargo-test

peers:
	bash scripts/install-peers.sh

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

doc:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps --locked

boundaries:
	bash scripts/check-boundaries.sh

fuzz-build:
	bash scripts/fuzz.sh build

# Unit tests, the in-memory harnesses, and the end-to-end tests with real peers (tests/). The
# WebRTC test origin (tests/webrtc-origin) is built first: the end-to-end tests run its binary.
cargo-test:
	$(CARGO) build -p webrtc-test-origin --locked
	$(CARGO) test --workspace --locked

## run: release build, then the proxy from the repo root (PROXY_STATIC_FILES defaults to ./static)
run:
	$(CARGO) build --release --locked
	./target/release/srs-proxy

## bench: RTMP fan-out (direct / HAProxy / srs-proxy), idle memory, register API, relay microbench
## (~8 min; results into bench/RESULTS.md). BENCH_ARGS="rtmp-fanout --reps 5 --window 30" etc.; --help lists flags.
BENCH_ARGS ?=
bench:
	$(CARGO) build --release --locked
	$(CARGO) run --release --locked -p bench -- $(BENCH_ARGS)

## fuzz: build and run every libFuzzer target ~10 s (FUZZ_SECONDS=N to change)
FUZZ_SECONDS ?= 10
fuzz:
	bash scripts/fuzz.sh run $(FUZZ_SECONDS)

clean:
	$(CARGO) clean
	rm -rf fuzz/target fuzz/corpus fuzz/artifacts
