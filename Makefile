# notebook-volumes — build, test and run.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: build test unit lint bench cluster cluster-bin demo clean

build:
	$(CARGO) build --release --locked

# Everything CI runs: lint, unit/property/HTTP tests, end-to-end tests against a real API server.
test: lint cluster-bin
	$(CARGO) test --locked --all-targets

# Fast loop: the pure core and the CLI, no API server.
unit:
	$(CARGO) test --locked --lib --bins

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

bench:
	$(CARGO) bench --locked --bench decision

clean:
	$(CARGO) clean
