# notebook-volumes — build, test and run.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: build test unit lint bench load cluster cluster-bin demo clean

build:
	$(CARGO) build --release --locked

# Everything CI runs: lint, the benchmark and demo built (benchmarks run once as a smoke test),
# then unit/property/HTTP tests and end-to-end tests against a real API server.
test: lint cluster-bin
	$(CARGO) build --locked --examples
	$(CARGO) test --locked --bench decision --bench worst_case
	$(CARGO) test --locked --lib --bins --tests

# Fast loop: the pure core, the CLI and the in-process server tests; no API server.
unit:
	$(CARGO) test --locked --lib --bins --test core --test http --test tls --test limits --test manifests

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

# The test API server (kube-apiserver + etcd in one process): built once,
# cached outside the repository; prints the binary's path.
cluster-bin:
	@bash tests/cluster/build.sh

# A test API server for manual use, in the foreground, until Ctrl-C.
cluster:
	@bin="$$(bash tests/cluster/build.sh)" && exec "$$bin" -hint -exit-on-stdin-eof=false

# The whole job on a real API server: policies, webhook, three users' notebooks, a denial, a dry run.
demo: cluster-bin
	$(CARGO) run --locked --quiet --example demo

bench:
	$(CARGO) bench --locked --bench decision --bench worst_case

# The real server over TLS under wrk for 10 s (needs wrk: apt-get install wrk).
load:
	@bash benches/load.sh 10 16

clean:
	$(CARGO) clean
