#!/usr/bin/env bash
# Builds the test API server (kube-apiserver + embedded etcd, one process)
# once and caches it outside the repository, keyed by the Kubernetes version
# and a hash of the sources and this script. Later runs, from any clone on the
# same machine, reuse the cached binary.
#
# Progress goes to stderr; the last line on stdout is the binary's path.
#
# Environment:
#   NOTEBOOK_VOLUMES_CACHE_DIR   cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/notebook-volumes)
#   TESTCLUSTER_BUILD_JOBS       parallel compile jobs (default: cores, at most one per 3 GiB of memory)
set -euo pipefail

# Everything runs inside main, so that bash has read the whole script before
# it starts: editing the file during a long build cannot break that build.

BUILD_NAME="testcluster build"
# shellcheck source=tests/build-progress.sh
. "$(dirname "${BASH_SOURCE[0]}")/../build-progress.sh"

main() {
    local src
    src="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
    command -v go >/dev/null ||
        die "'go' not found on PATH. The test API server is built from Go sources in tests/cluster; install Go 1.26 or newer, or set NOTEBOOK_VOLUMES_TESTCLUSTER_BIN to a prebuilt binary."

    k8s_version="$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ { print $2; exit }' "$src/go.mod")"
    [[ -n "$k8s_version" ]] || die "cannot find the k8s.io/kubernetes version in $src/go.mod"

    # The key covers everything that changes the binary: sources, module pins,
    # build flags (this script) and the Go toolchain.
    key="$(
        cd "$src"
        {
            cat go.mod go.sum build.sh ./*.go
            go env GOVERSION GOOS GOARCH
        } | sha256sum | cut -c1-16
    )"
    cache_root="${NOTEBOOK_VOLUMES_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/notebook-volumes}"
    out_dir="$cache_root/testcluster-$k8s_version-$key"
    bin="$out_dir/testcluster"

    if [[ -x "$bin" ]]; then
        echo "$bin"
        exit 0
    fi

    mkdir -p "$cache_root"
    # One build at a time per cache; a second caller waits, then finds the binary.
    exec 9>"$cache_root/testcluster.lock"
    if command -v flock >/dev/null; then
        if ! flock -n 9; then
            say "another build is running; waiting for it"
            flock 9
        fi
    fi
    if [[ -x "$bin" ]]; then
        echo "$bin"
        exit 0
    fi

    started=$SECONDS

    if [[ -z "${TESTCLUSTER_BUILD_JOBS:-}" ]]; then
        cores="$(nproc 2>/dev/null || echo 2)"
        mem_gib="$(awk '/^MemTotal:/ { print int($2 / 1048576) }' /proc/meminfo 2>/dev/null || echo 6)"
        by_mem=$((mem_gib / 3))
        TESTCLUSTER_BUILD_JOBS=$((cores < by_mem ? cores : by_mem))
        ((TESTCLUSTER_BUILD_JOBS >= 1)) || TESTCLUSTER_BUILD_JOBS=1
    fi

    say "building Kubernetes $k8s_version kube-apiserver + etcd (first time only; takes several minutes)"
    say "cache: $out_dir"

    export GOFLAGS="-mod=readonly -buildvcs=false"
    cd "$src"

    say "step 1/2: downloading Go modules from the module proxy"
    # -x prints one "# get URL: 200 OK" line per finished fetch.
    download_log="$cache_root/.testcluster-download.log"
    if ! go mod download -x 2>&1 | tee "$download_log" |
        sed -un 's/^# get \(.*\): 200 OK.*/\1/p' | throttle 5 "files fetched"; then
        grep -v '^# get' "$download_log" | tail -n 20 >&2
        die "go mod download failed (GOPROXY=$(go env GOPROXY)); full output in $download_log"
    fi
    say "modules ready ($(elapsed))"

    total="$(go list -deps . | grep -c . || true)"
    say "step 2/2: compiling $total packages with $TESTCLUSTER_BUILD_JOBS parallel jobs"
    tmp="$(mktemp "$cache_root/.testcluster-build.XXXXXX")"
    trap 'rm -f "$tmp"' EXIT
    ldflags="-s -w"
    ldflags+=" -X k8s.io/component-base/version.gitVersion=$k8s_version"
    ldflags+=" -X k8s.io/component-base/version.gitMajor=$(cut -d. -f1 <<<"${k8s_version#v}")"
    ldflags+=" -X k8s.io/component-base/version.gitMinor=$(cut -d. -f2 <<<"$k8s_version")"
    ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
    # -v prints each package as it is compiled (cached ones are not printed).
    build_log="$cache_root/.testcluster-build.log"
    if ! go build -v -trimpath -p "$TESTCLUSTER_BUILD_JOBS" -ldflags "$ldflags" -o "$tmp" . 2>&1 |
        tee "$build_log" | throttle 10 "packages compiled" "$total" || [[ ! -s "$tmp" ]]; then
        tail -n 30 "$build_log" >&2
        die "go build failed; full output in $build_log"
    fi

    mkdir -p "$out_dir"
    chmod 755 "$tmp"
    mv -f "$tmp" "$bin"
    say "built in $(elapsed): $bin"
    # Keep the three newest builds (other clones may use older ones).
    ls -1dt "$cache_root"/testcluster-v*/ 2>/dev/null | tail -n +4 | xargs -r rm -rf
    echo "$bin"
}

main "$@"
