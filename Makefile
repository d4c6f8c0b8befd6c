# rstream — build, test and demo entry points. Every target installs what it needs itself.
SHELL := /bin/bash
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: all build release test demo deps lint fmt clean

all: build

## deps: Debian packages and rustup pieces the tests and the demo need (idempotent).
deps:
	@./cross/install-deps.sh host

build:
	$(CARGO) build

release:
	$(CARGO) build --release

## test: unit + end-to-end tests (real binary on loopback), lints, the device build and its tokio check.
test: deps
	$(CARGO) build --no-default-features --features device
	$(CARGO) test --all-targets
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) fmt --check

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
