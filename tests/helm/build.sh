#!/usr/bin/env bash
# Builds the helm binary the chart tests use (tests/helm.rs) from the Go module proxy, once,
# and caches it outside the repository, keyed by the Helm version pinned in go.mod and a hash of
# go.mod, go.sum, this script and the Go toolchain. Later runs, from any clone on the same
# machine, reuse the cached binary.
#
# The version is the `require helm.sh/helm/v3` line of go.mod (its `tool` directive names the
# command); `go mod tidy` chose every other module version. To move to another Helm release,
# change that line and run `go mod tidy` here.
#
# Progress goes to stderr; the last line on stdout is the binary's path.
#
# Environment:
#   NOTEBOOK_VOLUMES_CACHE_DIR   cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/notebook-volumes)
#   NOTEBOOK_VOLUMES_HELM_BIN    a prebuilt helm: printed as is, nothing is built
set -euo pipefail

# Everything runs inside main, so that bash has read the whole script before
# it starts: editing the file during a long build cannot break that build.

BUILD_NAME="helm build"
# shellcheck source=tests/build-progress.sh
. "$(dirname "${BASH_SOURCE[0]}")/../build-progress.sh"

main() {
    if [[ -n "${NOTEBOOK_VOLUMES_HELM_BIN:-}" ]]; then
        [[ -x "$NOTEBOOK_VOLUMES_HELM_BIN" ]] ||
            die "NOTEBOOK_VOLUMES_HELM_BIN=$NOTEBOOK_VOLUMES_HELM_BIN is not an executable file; unset it to build helm"
        echo "$NOTEBOOK_VOLUMES_HELM_BIN"
        exit 0
    fi
    local src
    src="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
    command -v go >/dev/null ||
        die "'go' not found on PATH. helm is built from the Go module proxy; install Go 1.26 or newer, or set NOTEBOOK_VOLUMES_HELM_BIN to a helm v3 binary."

    version="$(awk '$1 == "helm.sh/helm/v3" && $2 ~ /^v/ { print $2; exit }' "$src/go.mod")"
    [[ -n "$version" ]] || die "cannot find the helm.sh/helm/v3 version in $src/go.mod"

    key="$(
        cd "$src"
        {
            cat go.mod go.sum build.sh
            go env GOVERSION GOOS GOARCH
        } | sha256sum | cut -c1-16
    )"
    cache_root="${NOTEBOOK_VOLUMES_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/notebook-volumes}"
    out_dir="$cache_root/helm-$version-$key"
    bin="$out_dir/helm"

    if [[ -x "$bin" ]]; then
        echo "$bin"
        exit 0
    fi

    mkdir -p "$cache_root"
    # One build at a time per cache; a second caller waits, then finds the binary.
    exec 9>"$cache_root/helm.lock"
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
    jobs="$(nproc 2>/dev/null || echo 2)"
    say "building helm $version (first time only; takes a few minutes)"
    say "cache: $out_dir"

    export GOFLAGS="-mod=readonly -buildvcs=false"
    cd "$src"

    say "step 1/2: downloading Go modules from the module proxy"
    # -x prints one "# get URL: 200 OK" line per finished fetch.
    download_log="$cache_root/.helm-download.log"
    if ! go mod download -x 2>&1 | tee "$download_log" |
        sed -un 's/^# get \(.*\): 200 OK.*/\1/p' | throttle 5 "files fetched"; then
        grep -v '^# get' "$download_log" | tail -n 20 >&2
        die "go mod download failed (GOPROXY=$(go env GOPROXY)); full output in $download_log"
    fi
    say "modules ready ($(elapsed))"

    total="$(go list -deps helm.sh/helm/v3/cmd/helm | grep -c . || true)"
    say "step 2/2: compiling $total packages with $jobs parallel jobs"
    tmp="$(mktemp "$cache_root/.helm-build.XXXXXX")"
    trap 'rm -f "$tmp"' EXIT
    # As Helm's own Makefile: the version (else `helm version` says v3.22 only), and the
    # Kubernetes version of the client-go it links as the default for `helm template` and
    # `helm lint` (else v1.20, which the chart's kubeVersion refuses).
    client_go="$(go list -m -f '{{.Version}}' k8s.io/client-go)"
    k8s_minor="$(cut -d. -f2 <<<"$client_go")"
    ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$version"
    for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
        ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$k8s_minor"
    done
    # -v prints each package as it is compiled (cached ones are not printed).
    build_log="$cache_root/.helm-build.log"
    if ! go build -v -trimpath -p "$jobs" -ldflags "$ldflags" -o "$tmp" helm.sh/helm/v3/cmd/helm 2>&1 |
        tee "$build_log" | throttle 10 "packages compiled" "$total" || [[ ! -s "$tmp" ]]; then
        tail -n 30 "$build_log" >&2
        die "go build failed; full output in $build_log"
    fi

    mkdir -p "$out_dir"
    chmod 755 "$tmp"
    mv -f "$tmp" "$bin"
    say "built in $(elapsed): $bin"
    # Keep the three newest builds (other clones may use older ones).
    ls -1dt "$cache_root"/helm-v*/ 2>/dev/null | tail -n +4 | xargs -r rm -rf
    echo "$bin"
}

main "$@"
