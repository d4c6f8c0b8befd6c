# rstream — build, test and demo entry points. Every target installs what it needs itself.
SHELL := /bin/bash
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never
# `rstream version` names the commit it was built from (read with option_env! in src/cli/version.rs).
export RSTREAM_GIT_COMMIT ?= $(shell git describe --always --dirty --abbrev=12 2>/dev/null)

.PHONY: all build release test test-netns demo deps lint fmt clean fuzz

all: build

## deps: Debian packages and rustup pieces the tests and the demo need (idempotent), and the venv with the
## official MCP Python SDK that tests/mcp_sdk.rs drives `mcp serve` with (target/tmp/mcp-sdk-venv, from PyPI).
deps:
	@./cross/install-deps.sh host
	@./tests/mcp_sdk/venv.sh >/dev/null

build:
	$(CARGO) build

release:
	$(CARGO) build --release

## test: unit + end-to-end tests (real binary on loopback), lints, the device build and its tokio check. As root it
## also runs the tests that need network namespaces (test-netns); otherwise it says loudly that they did not run.
test: deps
	$(CARGO) build --no-default-features --features device
	$(CARGO) test --all-targets
	@if [ "$$(id -u)" = 0 ]; then $(MAKE) --no-print-directory test-netns; \
	else echo "*** NOT RUN: tests/fault_impaired_link.rs needs root (ip netns, tc): run make test-netns as root ***"; fi
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) fmt --check

## test-netns: the #[ignore]d tests that build network namespaces (root, ip netns, tc); fails when they cannot.
test-netns:
	$(CARGO) test --test fault_impaired_link -- --ignored

## demo: the walkthrough end to end on loopback (local engine, device agent, operator commands, forward).
demo: deps
	$(CARGO) build --release
	./scripts/demo.sh target/release/rstream

lint:
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) clippy --no-default-features --features device -- -D warnings

fmt:
	$(CARGO) fmt

clean:
	$(CARGO) clean

## fuzz: every cargo-fuzz target in fuzz/ for FUZZ_SECONDS each (default 60) from the seeds in fuzz/seeds; fails
## on a crash (input kept in fuzz/artifacts/). Installs nightly and cargo-fuzz if missing. Not part of `test`.
FUZZ_SECONDS ?= 60
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) ./fuzz/run.sh

## ---- static musl images for boards (cross/, boards/; see README "Boards and image sizes") ----
.PHONY: cross-deps board boards size test-cross rss

## cross-deps: rustup musl targets, nightly + rust-src, ziglang + cargo-zigbuild, qemu-user-static.
cross-deps:
	@./cross/install-deps.sh host cross

## board: one board image, e.g. `make board BOARD=rpi-4` → dist/rstream-rpi-4 (+ .tar.gz with service files, .sha256).
board: cross-deps
	@test -n "$(BOARD)" || { echo "usage: make board BOARD=<$$(ls boards | grep -v common | tr '\n' ' ')>"; exit 2; }
	./cross/board.sh $(BOARD)

## boards: every board under boards/.
boards: cross-deps
	./cross/board.sh --all

## size: size table (target × features → stripped static bytes); fails when a budget is exceeded.
## QUICK=1: the two budgeted rows only; DEVICE=1: the aarch64 device row only (CI, after test-cross).
size:
	./cross/size.sh $(if $(DEVICE),--device,$(if $(QUICK),--quick))

## test-cross: the device half of the end-to-end flow under qemu (aarch64, armv7) against a host engine.
## CROSS_ARCHES=aarch64 limits it (CI).
CROSS_ARCHES ?= aarch64 armv7
test-cross:
	./cross/test-cross.sh $(CROSS_ARCHES)

## rss: device agent memory, idle and with 32 concurrent exec sessions (x86_64 musl release build).
rss:
	./cross/rss.sh

## bench: rstream side by side with bore, rathole, ssh and rclone on loopback; ratios to stdout and bench/results.md.
## BENCH_SECONDS=5 per wrk run, BENCH_RUNS=50 exec round trips.
.PHONY: bench
bench:
	@./cross/install-deps.sh host bench
	$(CARGO) build --release
	./bench/run.sh target/release/rstream
