# Reads `perf script -F ip,sym` output (one sample per blank-line separated block, leaf frame
# first) and prints where the samples go. A sample belongs to the first frame, from the leaf up,
# that names a part of the request path; generic frames (serde_json, alloc, libc) are skipped so
# that, say, malloc called while decoding counts as decoding. Kernel leaf frames are the socket
# and scheduler work, counted on their own.
function classify(frame) {
    if (frame ~ /rustls|ring_core|ring::|aes_gcm|chacha|actix_tls/) return "TLS (rustls, ring)"
    if (frame ~ /tracing_subscriber|tracing_core|tracing::/) return "logging (tracing JSON line)"
    if (frame ~ /prometheus_client|server::metrics/) return "metrics"
    if (frame ~ /app::wire|app::respond|with_patch|base64|HttpResponseBuilder.*json|admission::wire/) return "patch and response encoding"
    if (frame ~ /app::decode|app::envelope|admission::view|k8s_openapi|kube_core::admission.*Deserialize|drop_in_place<kube_core::admission|drop_in_place<k8s_openapi|drop_in_place<alloc::sync::Arc<kube_core/) return "request decoding (and its drop)"
    if (frame ~ /notebook_volumes::admission|notebook_volumes::policy|app::decide|app::admit_pod|scope::/) return "decision (identity, guard, plan, patch ops)"
    if (frame ~ /actix_http|actix_web|actix_server|actix_service|actix_router|actix_codec|bytes::/) return "HTTP (actix)"
    if (frame ~ /tokio::|actix_rt|mio::|std::thread|futures_/) return "runtime (tokio, actix-rt)"
    return ""
}
/^$/ { flush(); next }
/^[^ \t]/ { flush(); in_sample = 1; next }
{
    if (!in_sample) next
    n_frames++
    frames[n_frames] = $0
}
function flush(   i, cat, f) {
    if (!in_sample) return
    in_sample = 0
    total++
    cat = ""
    if (n_frames > 0 && frames[1] ~ /kernel\.kallsyms/) cat = "kernel (TCP on loopback, syscalls, scheduling)"
    for (i = 1; cat == "" && i <= n_frames; i++) cat = classify(frames[i])
    if (cat == "") cat = "unattributed (allocator or serde frames whose caller the unwinder lost)"
    count[cat]++
    n_frames = 0
}
END {
    flush()
    printf "| part | share of the server's CPU samples |\n|---|---|\n"
    for (c in count) printf "%d\t%s\n", count[c], c | "sort -rn > /tmp/.nv-breakdown"
    close("sort -rn > /tmp/.nv-breakdown")
    while ((getline line < "/tmp/.nv-breakdown") > 0) {
        split(line, parts, "\t")
        printf "| %s | %.1f%% |\n", parts[2], 100 * parts[1] / total
    }
    printf "(%d samples)\n", total
}
