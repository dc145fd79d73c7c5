# notebook-volumes — build, test and run.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: build test unit lint bench bench-cluster faults load profile cluster cluster-bin helm-bin node-deps hub-deps hub demo clean

build:
	$(CARGO) build --release --locked

# Everything CI runs: lint, the benchmark and demo built (benchmarks run once as a smoke test),
# then unit/property/HTTP tests and end-to-end tests against a real API server (and, in
# tests/e2e_node.rs, a real kubelet and controllers: needs root, see node-deps; in
# tests/e2e_hub.rs, JupyterHub with KubeSpawner on that node, see hub-deps). The fault suite
# (tests/faults) runs in its short form here, about a minute.
test: lint cluster-bin helm-bin node-deps hub-deps
	$(CARGO) build --locked --examples
	$(CARGO) test --locked --bench decision --bench worst_case
	$(CARGO) test --locked --lib --bins --tests

# Fast loop: the pure core, the CLI and the in-process server tests; no API server.
unit:
	$(CARGO) test --locked --lib --bins --test core --test http --test tls --test limits --test manifests

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings

# The test API server (kube-apiserver + etcd in one process): built once,
# cached outside the repository; prints the binary's path.
cluster-bin:
	@bash tests/cluster/build.sh

# helm v3 for the chart tests (tests/helm.rs), built once from the Go module proxy and cached
# outside the repository like the test API server; prints the binary's path.
helm-bin:
	@bash tests/helm/build.sh

# What the test node needs: containerd, runc, CNI plugins and iptables installed from Debian
# packages when missing (apt-get, as root), and the test images built (cached).
node-deps:
	@bash tests/cluster/install-node-deps.sh
	@bash tests/cluster/images.sh >/dev/null

# What the JupyterHub scenario needs, cached outside the repository (tests/hub/install.sh):
# JupyterHub and KubeSpawner in a virtualenv (PyPI), configurable-http-proxy (npm; Debian's nodejs
# and npm when missing) and the notebook server image (Debian python3.11 + jupyterhub, JupyterLab).
hub-deps: node-deps
	@bash tests/hub/install.sh "$$(bash tests/cluster/images.sh)" >/dev/null

# The users' view with the real spawner (root: it runs a node): JupyterHub + KubeSpawner +
# configurable-http-proxy, the webhook and the test node, the scenario of tests/e2e_hub.rs, and a
# headless Chromium screenshot of alice's JupyterLab file browser (Debian's chromium, installed
# when missing) in docs/images/jupyterlab-alice.png.
HUB_SCREENSHOT ?= docs/images/jupyterlab-alice.png
hub: cluster-bin node-deps
	@bash tests/hub/install.sh "$$(bash tests/cluster/images.sh)" --chromium >/dev/null
	@mkdir -p "$(dir $(HUB_SCREENSHOT))"
	NOTEBOOK_VOLUMES_HUB_SCREENSHOT="$(abspath $(HUB_SCREENSHOT))" $(CARGO) test --locked --test e2e_hub -- --nocapture

# A test cluster for manual use, in the foreground, until Ctrl-C: the API server, a node
# (containerd + kubelet) and the controllers.
cluster: cluster-bin node-deps
	@bin="$$(bash tests/cluster/build.sh)" && images="$$(bash tests/cluster/images.sh)" && \
		exec "$$bin" -hint -exit-on-stdin-eof=false -node -images "$$images"

# The whole job on a real cluster (root: it runs a node): policies, webhook, three users' notebooks
# running for real with a write from inside each, module load, a denial, a dry run.
demo: cluster-bin node-deps
	$(CARGO) run --locked --quiet --example demo

bench:
	$(CARGO) bench --locked --bench decision --bench worst_case

# Pod CREATE latency through the API server with the webhook (first and later launches), without
# one and with the no-op webhook of benches/noop, 1 and 8 clients; create-to-Running on the node
# (root; release build). BENCH_PODS, BENCH_RUNNING (0: no node): sample sizes.
bench-cluster: cluster-bin node-deps
	$(CARGO) run --locked --release --quiet --example bench_cluster

# The fault suite in its full form, on the test build `make test` uses: replicas killed and
# stopped, certificate rotation, an API server restart, policy churn, home claim races and the
# webhook down, each under a stream of notebook creations (20/s from 4 clients, 30 s); prints
# attempted / failed / latency per scenario (figures in docs/operating.md, "Faults, measured").
faults: cluster-bin
	NOTEBOOK_VOLUMES_FAULTS=full $(CARGO) test --locked --test faults -- --nocapture

# The real server next to a no-op webhook of the same stack, over TLS under wrk: CPU per
# admission, admissions/s, p50/p99 at 1, 16 and 64 connections, interleaved rounds (root or wrk
# installed: benches/install-tools.sh). Arguments: LOAD_SECONDS per run, LOAD_ROUNDS.
LOAD_SECONDS ?= 5
LOAD_ROUNDS ?= 3
load:
	@bash benches/load.sh $(LOAD_SECONDS) $(LOAD_ROUNDS)

# perf on the server under wrk: the share of CPU per part of an admission (root, perf_events).
profile:
	@bash benches/profile.sh

clean:
	$(CARGO) clean
