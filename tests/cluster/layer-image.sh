# Sourced by tests/cluster/images.sh and tests/hub/install.sh: writes an image without a registry.
# Needs REPO and TAG set (the image name is $REPO/NAME:$TAG).

# layer_image NAME ROOTFS CONFIG_JSON_FRAGMENT OUT: a docker-archive tarball
# of ROOTFS as a single layer.
layer_image() {
    local name="$1" rootfs="$2" config="$3" out="$4" work layer_id diff config_json config_id
    work="$(mktemp -d "$out.XXXXXX")"
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$rootfs" -cf "$work/layer.tar" .
    diff="$(sha256sum "$work/layer.tar" | cut -d' ' -f1)"
    layer_id="$diff"
    mkdir "$work/$layer_id"
    mv "$work/layer.tar" "$work/$layer_id/layer.tar"
    config_json="$(printf '{"architecture":"amd64","os":"linux","created":"1970-01-01T00:00:00Z","config":%s,"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$config" "$diff")"
    config_id="$(printf '%s' "$config_json" | sha256sum | cut -d' ' -f1)"
    printf '%s' "$config_json" >"$work/$config_id.json"
    printf '[{"Config":"%s.json","RepoTags":["%s/%s:%s"],"Layers":["%s/layer.tar"]}]' \
        "$config_id" "$REPO" "$name" "$TAG" "$layer_id" >"$work/manifest.json"
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$work" -cf "$out" manifest.json "$config_id.json" "$layer_id"
    rm -rf "$work"
    echo "$REPO/$name:$TAG" >>"$(dirname "$out")/images.txt.tmp"
}
