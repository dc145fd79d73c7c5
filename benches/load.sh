#!/usr/bin/env bash
# Load test over TLS on loopback: the real server (`notebook-volumes serve --policies`) next to the
# no-op baseline (benches/noop: same actix-web + rustls stack, same certificate, parses the body as
# a serde_json::Value and allows with a fixed one-operation patch) and the same no-op answering
# with the real server's patch for the pod, wrk posting a KubeSpawner pod's AdmissionReview. Rounds are interleaved (every target once per round and connection count), the
# servers pinned to one core and wrk to another where the machine has two. For each target:
# CPU µs per admission from the server process's own utime+stime (/proc/PID/stat, robust to
# other load on the machine), admissions/s and wrk's p50/p99, medians over the rounds.
#
# Usage: benches/load.sh [seconds per run] [rounds]; env CONNECTIONS (default "1 16 64"),
# SHARES (policy sets besides the examples, default "500 5000"), RUST_LOG (the server's log
# filter: `off` to measure without logging), BEFORE (another build of notebook-volumes, run as
# "before-*" targets in the same rounds: before/after figures of a change).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-5}"
rounds="${2:-3}"
connections="${CONNECTIONS:-1 16 64}"
share_sets="${SHARES:-500 5000}"
bash benches/install-tools.sh

cargo build --release --locked --quiet --bin notebook-volumes --example noop_webhook
bin=target/release/notebook-volumes
noop=target/release/examples/noop_webhook
work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
"$bin" certs --out-dir "$work" >/dev/null 2>&1

# Servers on core 0, wrk on core 1 (each alone on its core when nothing else runs).
if [[ $(nproc) -ge 2 ]]; then
    serve_on=(taskset -c 0)
    load_on=(taskset -c 1)
    pinning="servers pinned to core 0, wrk to core 1"
else
    serve_on=()
    load_on=()
    pinning="one core: servers and wrk share it"
fi

# A policy set of the examples plus N generated shares, spread as in benches/decision.rs: over 50
# namespaces (the pod's, ds-team, is one of them) and every 25th reaching every namespace, a
# quarter public, the others readable by one other user; so ds-team has about 3 + 30 in scope at
# N=500 (5 mounted) and 300 at N=5,000 (about 50 mounted: far beyond a realistic pod).
generate_policy() {
    local n="$1" dir="$2"
    mkdir -p "$dir"
    cp examples/policies/*.yaml "$dir/"
    awk -v n="$n" 'BEGIN {
        split("public private private secret", levels, " ")
        for (i = 0; i < n; i++) {
            level = levels[i % 4 + 1]
            if (i % 25 == 0) scope = ""
            else if (i % 50 == 7) scope = "namespaces: [ds-team]\n"
            else scope = sprintf("namespaces: [team-%d]\n", i % 50)
            printf "---\nkind: Share\nname: bench-%d\n%sclaimName: bench-data-%d\n", i, scope, i
            printf "mountPath: /opt/app-root/src/bench/s%d\nlevel: %s\nwriters: {users: [user%d]}\n", i, level, i
            if (level != "public") printf "readers: {users: [user%d]}\n", i + 1
        }
    }' >"$dir/bench-shares.yaml"
}

# name port policy-dir binary. noop-answer is the no-op answering with the patch the real server
# gives this pod with the example policies (read from the examples target once it answers): what
# receiving the review and sending an answer of the real size cost without any decision.
targets=("noop 18444 - -")
port=18445
probe=18090
targets+=("examples $port examples/policies $bin")
examples_port=$port
port=$((port + 1))
targets+=("noop-answer $port - -")
for n in $share_sets; do
    port=$((port + 1))
    generate_policy "$n" "$work/policy-$n"
    targets+=("shares-$n $port $work/policy-$n $bin")
done
if [[ -n "${BEFORE:-}" ]]; then
    for t in "${targets[@]:1}"; do
        read -r name _ policy _ <<<"$t"
        [[ "$name" == noop* ]] && continue
        port=$((port + 1))
        targets+=("before-$name $port $policy $BEFORE")
    done
fi

start_target() {
    local name="$1" port="$2" policy="$3" server="$4"
    if [[ "$name" == noop* ]]; then
        local patch=()
        if [[ "$name" == noop-answer ]]; then
            curl -sk -X POST -H 'Content-Type: application/json' \
                --data-binary @tests/fixtures/kubespawner-alice.json \
                "https://127.0.0.1:$examples_port/mutate" |
                grep -o '"patch":"[^"]*"' | cut -d'"' -f4 | base64 -d >"$work/answer-patch.json"
            if [[ ! -s "$work/answer-patch.json" ]]; then
                echo "the examples target gave no patch for the fixture pod; see $work/examples.log" >&2
                exit 1
            fi
            patch=(--patch "$work/answer-patch.json")
        fi
        "${serve_on[@]}" "$noop" --listen "127.0.0.1:$port" \
            --tls-cert "$work/tls.crt" --tls-key "$work/tls.key" "${patch[@]}" >"$work/$name.log" 2>&1 &
    else
        probe=$((probe + 1))
        "${serve_on[@]}" "$server" serve --policies "$policy" --policy-namespace notebook-volumes \
            --tls-cert "$work/tls.crt" --tls-key "$work/tls.key" \
            --listen "127.0.0.1:$port" --probe-listen "127.0.0.1:$probe" \
            --log-format json >"$work/$name.log" 2>&1 &
    fi
    pids+=($!)
    eval "pid_${name//-/_}=$!"
    for _ in $(seq 100); do
        code=$(curl -sk -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
            --data-binary @tests/fixtures/kubespawner-alice.json "https://127.0.0.1:$port/mutate" || true)
        [[ "$code" == 200 ]] && return 0
        sleep 0.1
    done
    echo "$name did not answer on port $port; its log:" >&2
    cat "$work/$name.log" >&2
    exit 1
}

for t in "${targets[@]}"; do
    # shellcheck disable=SC2086
    start_target $t
done

# utime + stime of a process, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
ticks_per_s=$(getconf CLK_TCK)

echo "load: $rounds interleaved rounds of ${seconds}s per target and connection count; $pinning"
echo "KubeSpawner pod (tests/fixtures/kubespawner-alice.json), POST /mutate over TLS, keep-alive"
results="$work/results"
for round in $(seq "$rounds"); do
    for c in $connections; do
        for t in "${targets[@]}"; do
            read -r name port _ <<<"$t"
            pid_var="pid_${name//-/_}"
            pid="${!pid_var}"
            before=$(cpu_ticks "$pid")
            out=$(BODY=tests/fixtures/kubespawner-alice.json "${load_on[@]}" wrk -t1 -c"$c" \
                -d"${seconds}s" -s benches/post.lua "https://127.0.0.1:$port/mutate")
            after=$(cpu_ticks "$pid")
            read -r _ requests errors p50 p99 <<<"$(grep '^RESULT' <<<"$out")"
            if [[ "$errors" != 0 ]]; then
                echo "warning: $name, $c connections: $errors errors" >&2
            fi
            awk -v n="$name" -v c="$c" -v r="$requests" -v s="$seconds" -v t=$((after - before)) \
                -v hz="$ticks_per_s" -v p50="$p50" -v p99="$p99" 'BEGIN {
                printf "%s %d %.1f %.0f %.0f %.0f\n", n, c, t / hz * 1e6 / r, r / s, p50, p99 }' \
                >>"$results"
            printf '.' >&2
        done
    done
done
echo >&2

# Medians over the rounds; ratios to the no-op in the same rounds.
python_free_median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
median() { awk -v n="$1" -v c="$2" -v f="$3" '$1 == n && $2 == c { print $f }' "$results" | python_free_median; }
echo
echo "| target | conns | CPU µs/adm | × no-op | adm/s | p50 ms | p99 ms | p99 × no-op |"
echo "|---|---|---|---|---|---|---|---|"
for c in $connections; do
    base_cpu=$(median noop "$c" 3)
    base_p99=$(median noop "$c" 6)
    for t in "${targets[@]}"; do
        read -r name _ <<<"$t"
        cpu=$(median "$name" "$c" 3)
        rps=$(median "$name" "$c" 4)
        p50=$(median "$name" "$c" 5)
        p99=$(median "$name" "$c" 6)
        awk -v n="$name" -v c="$c" -v cpu="$cpu" -v bc="$base_cpu" -v rps="$rps" -v p50="$p50" \
            -v p99="$p99" -v bp="$base_p99" 'BEGIN {
            printf "| %s | %d | %.1f | %.2f | %.0f | %.2f | %.2f | %.2f |\n",
                n, c, cpu, cpu / bc, rps, p50 / 1000, p99 / 1000, p99 / bp }'
    done
done
echo
for t in "${targets[@]}"; do
    read -r name _ <<<"$t"
    [[ "$name" == noop* ]] && continue
    echo "$name: $(grep -c '"message":"admission"' "$work/$name.log" || true) admissions logged, $(grep -c '"decision":"allowed"' "$work/$name.log" || true) allowed"
done
