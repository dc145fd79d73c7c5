#!/usr/bin/env bash
# What `make load` and `make profile` need, from Debian packages when missing (apt-get, as root):
# wrk (HTTP load), linux-perf (perf record/report), and taskset (util-linux, normally present).
set -euo pipefail
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v perf >/dev/null || missing+=(linux-perf)
command -v taskset >/dev/null || missing+=(util-linux)
if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
        echo "missing ${missing[*]}: install them (Debian: apt-get install ${missing[*]})" >&2
        exit 2
    fi
    echo "installing ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
