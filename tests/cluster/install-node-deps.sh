#!/usr/bin/env bash
# Installs what the test node needs from Debian packages, when missing:
# containerd, runc, the CNI plugins and iptables on the machine, and the
# packages the test images are assembled from (downloaded only, never
# installed). Runs `apt-get update` at most once. Needs root to install.
#
# Prints nothing on stdout; progress on stderr. Safe to run again: a machine
# that has everything is left alone (well under a second).
#
# Environment:
#   NOTEBOOK_VOLUMES_CACHE_DIR   cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/notebook-volumes)
set -euo pipefail

say() { printf 'node deps: %s\n' "$*" >&2; }
die() {
    say "error: $*"
    exit 1
}

# Installed on the machine: the container runtime the kubelet talks to.
machine_packages=(containerd runc containernetworking-plugins iptables)
# Downloaded only, then unpacked into images (tests/cluster/images.sh): a
# shell for checks, and a notebook-like image with bash and what Lmod needs;
# lmod itself goes onto the library volume in the tests.
image_packages=(busybox-static bash-static libc6 libreadline8 libtinfo6 readline-common
    lua5.3 lua-posix libcrypt1 lua-bit32 lua-filesystem lua-term lua-json lua-lpeg lmod)

main() {
    local cache_root debs missing=() want=() updated=0
    cache_root="${NOTEBOOK_VOLUMES_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/notebook-volumes}"
    debs="$cache_root/debs"

    for p in "${machine_packages[@]}"; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
    done
    for p in "${image_packages[@]}"; do
        compgen -G "$debs/${p}_*.deb" >/dev/null || want+=("$p")
    done
    ((${#missing[@]} + ${#want[@]} > 0)) || return 0

    command -v apt-get >/dev/null || die "apt-get not found: the test node needs a Debian-like machine (packages: ${machine_packages[*]})"
    [[ $(id -u) == 0 ]] || die "installing ${missing[*]:-} ${want[*]:-} needs root: run 'sudo make node-deps' once"

    update() {
        ((updated)) && return 0
        say "apt-get update"
        apt-get update -qq >&2 || die "apt-get update failed"
        updated=1
    }
    if ((${#missing[@]})); then
        update
        say "installing ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
            die "apt-get install ${missing[*]} failed"
    fi
    if ((${#want[@]})); then
        # apt-get download needs current package lists; try the ones present first.
        mkdir -p "$debs"
        say "downloading ${want[*]} (for the test images)"
        if ! (cd "$debs" && apt-get download -qq "${want[@]}" >&2); then
            update
            (cd "$debs" && apt-get download -qq "${want[@]}" >&2) || die "apt-get download ${want[*]} failed"
        fi
    fi
    # containerd's Debian package starts a system-wide service where systemd
    # runs; the tests never use it (they run their own containerd).
    say "done"
}

main "$@"
