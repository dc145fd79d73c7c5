#!/usr/bin/env bash
# Builds the test node's container images without any registry, once, and
# caches them outside the repository (keyed by this script, the Debian
# packages and pause.c):
#
#   pause.tar      the pod sandbox: build/pause/linux/pause.c of the
#                  k8s.io/kubernetes module, compiled with gcc -static
#   busybox.tar    a shell and coreutils (busybox-static)
#   notebook.tar   a notebook-like image: busybox, bash, lua 5.3 and the lua
#                  modules Lmod needs (no Lmod: that comes from the library)
#   lmod/          Debian's lmod package unpacked, for tests to install on a
#                  library volume
#   images.txt     the image names, one a line
#
# Each image is a docker-archive tarball written by hand (one layer, a config
# JSON, manifest.json) for `ctr images import`. The Debian packages come from
# tests/cluster/install-node-deps.sh. The last line on stdout is the output
# directory.
set -euo pipefail

say() { printf 'test images: %s\n' "$*" >&2; }
die() {
    say "error: $*"
    exit 1
}

# Registry-less names: pods use them with imagePullPolicy: Never.
readonly REPO=notebook-volumes.test
readonly TAG=1

deb() {
    local f
    f="$(compgen -G "$debs/${1}_*.deb" | head -n 1)" ||
        die "Debian package $1 not downloaded: run 'make node-deps' (tests/cluster/install-node-deps.sh, as root)"
    echo "$f"
}

main() {
    local src cache_root debs pause_c key out tmp
    src="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
    cache_root="${NOTEBOOK_VOLUMES_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/notebook-volumes}"
    debs="$cache_root/debs"
    for tool in gcc dpkg-deb tar sha256sum go; do
        command -v "$tool" >/dev/null || die "'$tool' not found on PATH (needed to build the test images)"
    done
    # shellcheck source=layer-image.sh
    source "$src/layer-image.sh"
    local k8s_version
    k8s_version="$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ { print $2; exit }' "$src/go.mod")"
    pause_c="$(go env GOMODCACHE)/k8s.io/kubernetes@$k8s_version/build/pause/linux/pause.c"
    if [[ ! -f "$pause_c" ]]; then
        (cd "$src" && GOFLAGS=-mod=readonly go mod download k8s.io/kubernetes >&2) || true
    fi
    [[ -f "$pause_c" ]] || die "$pause_c not found: run 'make cluster-bin' first (it downloads the k8s.io/kubernetes module)"

    local packages=(busybox-static bash-static libc6 libreadline8 libtinfo6 readline-common
        lua5.3 lua-posix libcrypt1 lua-bit32 lua-filesystem lua-term lua-json lua-lpeg lmod)
    local files=()
    for p in "${packages[@]}"; do files+=("$(deb "$p")"); done
    key="$({
        cat "$src/images.sh" "$src/layer-image.sh" "$pause_c"
        printf '%s\n' "${files[@]##*/}"
    } | sha256sum | cut -c1-16)"
    out="$cache_root/images-$key"
    if [[ -f "$out/images.txt" ]]; then
        echo "$out"
        return 0
    fi

    say "building pause, busybox and notebook images (first time only)"
    mkdir -p "$cache_root"
    tmp="$(mktemp -d "$cache_root/.images.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT

    # pause
    mkdir -p "$tmp/pause"
    gcc -static -Os -DVERSION="$k8s_version" -o "$tmp/pause/pause" "$pause_c"
    strip "$tmp/pause/pause" 2>/dev/null || true
    layer_image pause "$tmp/pause" '{"Entrypoint":["/pause"]}' "$tmp/pause.tar"

    # busybox: one symlink per applet
    local bb="$tmp/busybox"
    mkdir -p "$bb"
    dpkg-deb -x "$(deb busybox-static)" "$bb"
    for applet in $("$bb/bin/busybox" --list); do
        [[ -e "$bb/bin/$applet" ]] || ln -s busybox "$bb/bin/$applet"
    done
    mkdir -p "$bb/tmp" "$bb/etc" "$bb/root"
    chmod 1777 "$bb/tmp"
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n' >"$bb/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$bb/etc/group"
    local env='"Env":["PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"]'
    cp -a "$bb" "$tmp/notebook"
    rm -rf "$bb/usr/share"
    layer_image busybox "$bb" "{$env,\"Cmd\":[\"sh\"]}" "$tmp/busybox.tar"

    # notebook: busybox + bash + lua and the modules Lmod loads
    local nb="$tmp/notebook"
    for p in bash-static libc6 libreadline8 libtinfo6 readline-common lua5.3 lua-posix libcrypt1 \
        lua-bit32 lua-filesystem lua-term lua-json lua-lpeg; do
        dpkg-deb -x "$(deb "$p")" "$nb"
    done
    ln -sf bash-static "$nb/bin/bash"
    ln -sf lua5.3 "$nb/usr/bin/lua"
    rm -rf "$nb/usr/share/doc" "$nb/usr/share/man" "$nb/usr/share/info" "$nb/usr/share/locale" "$nb/usr/share/lintian"
    "$nb/bin/busybox" chroot "$nb" /usr/bin/lua5.3 -e 'require("posix"); require("lfs")' ||
        die "the notebook image's lua cannot load its modules"
    layer_image notebook "$nb" "{$env,\"Cmd\":[\"bash\"]}" "$tmp/notebook.tar"

    # Lmod, unpacked for tests to install on a library volume
    dpkg-deb -x "$(deb lmod)" "$tmp/lmod"

    mv "$tmp/images.txt.tmp" "$tmp/images.txt"
    chmod 755 "$tmp"
    rm -rf "$bb" "$nb" "$tmp/pause"
    rm -rf "$out"
    mv "$tmp" "$out"
    trap - EXIT
    say "built in ${SECONDS}s: $out"
    # Keep the three newest sets.
    ls -1dt "$cache_root"/images-*/ 2>/dev/null | tail -n +4 | xargs -r rm -rf
    echo "$out"
}

main "$@"
