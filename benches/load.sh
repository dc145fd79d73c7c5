#!/usr/bin/env bash
# Load test of the real server over TLS on loopback: `notebook-volumes serve --policies` with the
# example policies, and wrk posting a KubeSpawner pod's AdmissionReview for a bounded time.
# Needs wrk (Debian: apt-get install wrk). Usage: benches/load.sh [seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
connections="${2:-16}"
command -v wrk >/dev/null || { echo "wrk not found: install it (Debian: apt-get install wrk)" >&2; exit 2; }

cargo build --release --locked --quiet
bin=target/release/notebook-volumes
work="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
"$bin" certs --out-dir "$work" >/dev/null 2>&1
"$bin" serve --policies examples/policies --policy-namespace notebook-volumes \
    --tls-cert "$work/tls.crt" --tls-key "$work/tls.key" \
    --listen 127.0.0.1:18443 --probe-listen 127.0.0.1:18080 --log-format json >"$work/serve.log" 2>&1 &
server=$!
for _ in $(seq 50); do
    curl -sf http://127.0.0.1:18080/readyz >/dev/null 2>&1 && break
    sleep 0.1
done
echo "load: ${seconds}s, ${connections} connections, POST /mutate (KubeSpawner pod, example policies)"
BODY=tests/fixtures/kubespawner-alice.json wrk -t2 -c"$connections" -d"${seconds}s" --latency \
    -s benches/post.lua https://127.0.0.1:18443/mutate
echo "admissions logged: $(grep -c '"message":"admission"' "$work/serve.log")"
curl -s http://127.0.0.1:18080/metrics | grep '^notebook_volumes_admissions_total'
