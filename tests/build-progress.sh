# Progress and errors of the long builds of test tools (tests/cluster/build.sh,
# tests/helm/build.sh), sourced by them. The sourcing script sets BUILD_NAME (the prefix of every
# line) and `started` (the value of SECONDS when the build began) before calling these.
# shellcheck shell=bash

say() { printf '%s: %s\n' "$BUILD_NAME" "$*" >&2; }
die() {
    say "error: $*"
    exit 1
}
elapsed() { printf '%dm%02ds' $(((SECONDS - started) / 60)) $(((SECONDS - started) % 60)); }

# Reads progress lines on stdin and prints a summary at most every $1
# seconds, also when no line arrived (a big package can take a minute).
throttle() {
    local every="$1" what="$2" total="${3:-0}" n=0 last="" shown=$SECONDS line status
    report() {
        if ((total > 0)); then
            say "$(printf '[%3d%%] %d/%d %s, %s, last: %s' $((100 * n / total)) "$n" "$total" "$what" "$(elapsed)" "$last")"
        else
            say "$n $what, $(elapsed), last: $last"
        fi
    }
    while :; do
        if IFS= read -r -t "$every" line; then
            n=$((n + 1))
            last="${line##* }"
        else
            status=$?
            ((status > 128)) || break # EOF (a timeout returns > 128)
        fi
        if ((SECONDS - shown >= every)); then
            report
            shown=$SECONDS
        fi
    done
    ((n == 0)) || report
}
