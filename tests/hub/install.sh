#!/usr/bin/env bash
# Installs what the JupyterHub scenario (tests/e2e_hub.rs, `make hub`) needs, once, cached outside
# the repository like the test API server (keyed by this script and the test images it builds on):
#
#   venv/          JupyterHub and KubeSpawner from PyPI, in a virtualenv (the hub runs on this machine)
#   chp/           configurable-http-proxy from npm (the hub starts it)
#   notebook.tar   the notebook server image: the test notebook image (busybox, bash, lua for
#                  Lmod) plus Debian's python3.11 and, from PyPI, jupyterhub (jupyterhub-singleuser),
#                  JupyterLab and ipykernel; a docker-archive for `ctr images import`, no registry
#
# Debian packages: nodejs and npm, and python3-venv when `python3 -m venv` is missing, are installed
# on the machine (as root); python3.11 and its libraries are downloaded only and unpacked into the
# image. With --chromium, Debian's chromium is installed too (the screenshot of `make hub`).
#
#   install.sh IMAGES_DIR [--chromium]
#
# IMAGES_DIR: the output of tests/cluster/images.sh. The last line on stdout is the cache directory.
#
# Environment:
#   NOTEBOOK_VOLUMES_CACHE_DIR   cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/notebook-volumes)
set -euo pipefail

say() { printf 'hub deps: %s\n' "$*" >&2; }
die() {
    say "error: $*"
    exit 1
}

# Registry-less image names, as tests/cluster/images.sh names its images.
readonly REPO=notebook-volumes.test TAG=1
# Versions the scenario was written against.
readonly JUPYTERHUB=6.1.1 KUBESPAWNER=7.1.0 JUPYTERLAB=4.6.6 IPYKERNEL=7.4.0 CHP=5.3.0
# Unpacked into the image: Python 3.11 and the libraries it and the wheels load (Debian 12 names).
readonly IMAGE_DEBS=(python3.11 python3.11-minimal libpython3.11-minimal libpython3.11-stdlib
    media-types libbz2-1.0 libcom-err2 libdb5.3 libexpat1 libffi8 libgcc-s1 gcc-12-base libgdbm6
    libgssapi-krb5-2 libk5crypto3 libkeyutils1 libkrb5-3 libkrb5support0 liblzma5 libncursesw6
    libnsl2 libsqlite3-0 libssl3 libstdc++6 libtirpc-common libtirpc3 libuuid1 zlib1g)

updated=0
apt_update() {
    ((updated)) && return 0
    say "apt-get update"
    apt-get update -qq >&2 || die "apt-get update failed"
    updated=1
}

apt_install() {
    [[ $(id -u) == 0 ]] || die "installing $* needs root: run 'sudo make hub-deps' once"
    apt_update
    say "installing $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2 ||
        die "apt-get install $* failed"
}

deb() {
    local f
    f="$(compgen -G "$debs/${1}_*.deb" | head -n 1)" || die "Debian package $1 not downloaded"
    echo "$f"
}

main() {
    local images="${1:?usage: install.sh IMAGES_DIR [--chromium]}" chromium="${2:-}"
    local src cache_root key out tmp want=()
    src="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
    cache_root="${NOTEBOOK_VOLUMES_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/notebook-volumes}"
    debs="$cache_root/debs"
    [[ -f "$images/notebook.tar" ]] || die "no notebook.tar in $images: run tests/cluster/images.sh first"

    command -v npm >/dev/null || apt_install nodejs npm
    python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
    if [[ "$chromium" == --chromium ]] && ! command -v chromium >/dev/null; then
        apt_install chromium
    fi

    key="$({
        cat "$src/install.sh"
        echo "${images##*/}"
    } | sha256sum | cut -c1-16)"
    out="$cache_root/hub-$key"
    if [[ -f "$out/ready" ]]; then
        echo "$out"
        return 0
    fi

    for p in "${IMAGE_DEBS[@]}"; do
        compgen -G "$debs/${p}_*.deb" >/dev/null || want+=("$p")
    done
    if ((${#want[@]})); then
        mkdir -p "$debs"
        say "downloading ${want[*]} (for the notebook server image)"
        if ! (cd "$debs" && apt-get download -qq "${want[@]}" >&2); then
            apt_update
            (cd "$debs" && apt-get download -qq "${want[@]}" >&2) || die "apt-get download ${want[*]} failed"
        fi
    fi

    # One install at a time per cache; a second caller waits, then finds it done. Built in place:
    # a virtualenv cannot move.
    mkdir -p "$cache_root"
    exec 9>"$cache_root/hub.lock"
    flock 9
    if [[ -f "$out/ready" ]]; then
        echo "$out"
        return 0
    fi
    say "installing JupyterHub, KubeSpawner, configurable-http-proxy and the notebook server image (first time only)"
    rm -rf "$out"
    mkdir -p "$out"
    tmp="$out"

    python3 -m venv "$tmp/venv"
    "$tmp/venv/bin/pip" install -q --disable-pip-version-check \
        "jupyterhub==$JUPYTERHUB" "jupyterhub-kubespawner==$KUBESPAWNER" >&2 ||
        die "pip install jupyterhub jupyterhub-kubespawner failed"
    npm install -s --no-fund --no-audit --prefix "$tmp/chp" "configurable-http-proxy@$CHP" >&2 ||
        die "npm install configurable-http-proxy failed"

    # The notebook server image: the test notebook image's files, Python from Debian, the
    # notebook server from PyPI (wheels for the image's Python, installed by the venv's pip).
    local root="$tmp/rootfs" site layer
    mkdir -p "$root" "$tmp/base"
    tar -xf "$images/notebook.tar" -C "$tmp/base"
    layer="$(compgen -G "$tmp/base/*/layer.tar" | head -n 1)" || die "no layer in $images/notebook.tar"
    tar -xf "$layer" -C "$root"
    rm -rf "$tmp/base"
    for p in "${IMAGE_DEBS[@]}"; do dpkg-deb -x "$(deb "$p")" "$root"; done
    ln -sf python3.11 "$root/usr/bin/python3"
    site="$root/usr/local/lib/python3.11/dist-packages"
    "$tmp/venv/bin/pip" install -q --disable-pip-version-check --no-compile --target "$site" \
        --python-version 3.11 --implementation cp --abi cp311 --only-binary=:all: \
        --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 --platform linux_x86_64 \
        "jupyterhub==$JUPYTERHUB" "jupyterlab==$JUPYTERLAB" "ipykernel==$IPYKERNEL" >&2 ||
        die "pip install of the notebook server's wheels failed"
    # Data and configuration where Jupyter looks on a Debian Python; scripts would name the
    # venv's interpreter, so the image runs modules (python3 -m jupyterhub.singleuser).
    mkdir -p "$root/usr/local/share" "$root/usr/local/etc"
    mv "$site/share/jupyter" "$root/usr/local/share/jupyter"
    mv "$site/etc/jupyter" "$root/usr/local/etc/jupyter"
    rm -rf "$site/bin" "$site/share" "$site/etc"
    rm -rf "$root/usr/share/doc" "$root/usr/share/man" "$root/usr/share/locale"
    mkdir -p "$root/root"
    "$root/bin/busybox" chroot "$root" /usr/bin/python3 -c \
        'import jupyterhub.singleuser, jupyterlab, ipykernel, zmq, sqlite3, ssl' ||
        die "the notebook server image's python cannot load the notebook server"

    # shellcheck source=../cluster/layer-image.sh
    source "$src/../cluster/layer-image.sh"
    local env='"Env":["PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin","JUPYTERLAB_DIR=/usr/local/share/jupyter/lab","SHELL=/bin/bash"]'
    layer_image notebook-server "$root" "{$env,\"Cmd\":[\"python3\",\"-m\",\"jupyterhub.singleuser\"]}" "$tmp/notebook.tar"
    rm -rf "$root" "$tmp/images.txt.tmp"
    chmod 755 "$out"
    touch "$out/ready"
    say "done in ${SECONDS}s: $out"
    # Keep the two newest.
    ls -1dt "$cache_root"/hub-*/ 2>/dev/null | tail -n +3 | xargs -r rm -rf
    echo "$out"
}

main "$@"
