#!/usr/bin/env bash
# Where the server's CPU goes under load: `notebook-volumes serve` (pinned to core 0) under wrk
# (core 1), sampled by `perf record` with DWARF call stacks, and the samples sorted into the parts
# of an admission by benches/profile-breakdown.awk; then the hottest functions by self time.
# Needs perf (Debian: linux-perf; benches/install-tools.sh) and perf_events in the machine.
# Usage: benches/profile.sh [seconds] [connections] [policy directory]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-6}"
connections="${2:-16}"
policy="${3:-examples/policies}"
bash benches/install-tools.sh
cargo build --release --locked --quiet --bin notebook-volumes
bin=target/release/notebook-volumes
work="$(mktemp -d)"
server=""
trap '[[ -n "$server" ]] && kill "$server" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"' EXIT
"$bin" certs --out-dir "$work" >/dev/null 2>&1
# Run in the background only (it execs, so $! is the program itself).
pin() { if [[ $(nproc) -ge 2 ]]; then exec taskset -c "$1" "${@:2}"; else exec "${@:2}"; fi; }
pin 0 "$bin" serve --policies "$policy" --policy-namespace notebook-volumes \
    --tls-cert "$work/tls.crt" --tls-key "$work/tls.key" \
    --listen 127.0.0.1:19443 --probe-listen 127.0.0.1:19080 --log-format json >"$work/serve.log" 2>&1 &
server=$!
for _ in $(seq 100); do
    curl -sf http://127.0.0.1:19080/readyz >/dev/null 2>&1 && break
    sleep 0.1
done
BODY=tests/fixtures/kubespawner-alice.json pin 1 wrk -t1 -c"$connections" -d"$((seconds + 2))s" \
    -s benches/post.lua https://127.0.0.1:19443/mutate >"$work/wrk.txt" &
load=$!
sleep 1
perf record -q -F 2000 --call-graph dwarf,16384 -p "$server" -o "$work/perf.data" -- sleep "$seconds" 2>/dev/null
wait "$load"
echo "profile: ${seconds}s of serve --policies $policy under wrk -c$connections ($(grep '^Requests/sec' "$work/wrk.txt"))"
perf script -i "$work/perf.data" -F comm,ip,sym,dso 2>/dev/null | awk -f benches/profile-breakdown.awk
echo
echo "hottest functions (self):"
perf report -i "$work/perf.data" --no-children --sort symbol --stdio -g none 2>/dev/null |
    grep -E '^ +[0-9]' | sed -E 's/[ -]+$//' | head -25
