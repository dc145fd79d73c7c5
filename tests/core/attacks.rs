//! Attacks found by a security review of the guard, as a user with `edit` rights in an enabled
//! namespace. Each test asserts that the guard refuses the attack (each failed before its fix).
//! See tests/e2e_attacks.rs for the ones that need the real API server.

use k8s_openapi::api::core::v1::Pod;
use notebook_volumes::admission::{MountSource, Review};
use notebook_volumes::keys;

use crate::fixtures::{Case, HUB, STS, examples, pod};

/// A pods UPDATE (or a `pods/ephemeralcontainers` UPDATE) from `old` to `new` by `user`.
fn update(old: &Pod, new: &Pod, user: &str, groups: &[&str], ephemeral: bool) -> Review {
    Case::new(examples(), user)
        .groups(groups)
        .review_update(old, new, ephemeral)
}

/// alice's running secret notebook (the webhook wrote her name), mounting her secret-level home,
/// the secret mergers share read-write, and an emptyDir scratch space with her work in it.
const ALICE_NOTEBOOK: &str = "metadata:
  name: jupyter-alice
  labels: {component: singleuser-server}
  annotations: {notebook-volumes.io/user: alice, hub.jupyter.org/username: alice}
spec:
  containers:
  - name: notebook
    image: quay.io/jupyter/scipy-notebook
    volumeMounts:
    - {name: nv-home, mountPath: /opt/app-root/src}
    - {name: nv-share-mergers, mountPath: /opt/app-root/src/shares/mergers}
    - {name: work, mountPath: /work}
  volumes:
  - {name: nv-home, persistentVolumeClaim: {claimName: home-alice--secret}}
  - {name: nv-share-mergers, persistentVolumeClaim: {claimName: mergers-data}}
  - {name: work, emptyDir: {}}
";

fn with_debug(base: &str, debug: &str) -> Pod {
    pod(&format!("{base}  ephemeralContainers: [{debug}]\n"))
}

// ---------------------------------------------------------------------------------------------
// 1. pods UPDATE: the image of a running container is mutable, and only the two annotations are
//    guarded. bob swaps the image of alice's notebook container for one whose entrypoint copies
//    /opt/app-root/src (her home) and the secret mergers share to stdout (`kubectl logs`) or the
//    network; the kubelet restarts the container with the new image, with all of alice's mounts
//    (read-write) and environment (hub token).
// ---------------------------------------------------------------------------------------------

#[test]
fn attack_pod_update_swaps_the_image_of_another_users_notebook() {
    let old = pod(ALICE_NOTEBOOK);
    let mut new = old.clone();
    new.spec.as_mut().unwrap().containers[0].image = Some("evil.example.com/exfiltrate".into());
    let outcome = update(&old, &new, "bob", &[], false);
    assert!(
        !outcome.allowed(),
        "bob replaced the image of alice's notebook container: it restarts as bob's code with alice's home and secret share"
    );
    // alice herself and administrators may.
    assert!(update(&old, &new, "alice", &[], false).allowed());
    assert!(update(&old, &new, "root", &["system:masters"], false).allowed());
}

#[test]
fn attack_pod_update_swaps_the_image_of_a_pod_mounting_a_share_the_requester_cannot_read() {
    // alice's batch job (not a notebook) writes the finance share; erin has no access to it.
    let job = pod("metadata: {name: report}
spec:
  initContainers: [{name: prep, image: busybox, volumeMounts: [{name: f, mountPath: /f}]}]
  containers: [{name: job, image: busybox, volumeMounts: [{name: f, mountPath: /f}]}]
  volumes: [{name: f, persistentVolumeClaim: {claimName: finance-data}}]
");
    for container in ["job", "prep"] {
        let mut new = job.clone();
        let spec = new.spec.as_mut().unwrap();
        let c = spec
            .containers
            .iter_mut()
            .chain(spec.init_containers.iter_mut().flatten())
            .find(|c| c.name == container)
            .unwrap();
        c.image = Some("evil.example.com/exfiltrate".into());
        assert!(
            !update(&job, &new, "erin", &[], false).allowed(),
            "erin (no access to finance) swapped the image of container '{container}' that mounts it read-write"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 2. A debug container WITHOUT targetContainerName in another user's notebook: only targeting
//    ones are checked against the notebook's owner. The debug container shares the pod's network
//    namespace (Jupyter on localhost:8888, no token behind an oauth-proxy: all of alice's files,
//    read-write, through the Jupyter API) and may mount every non-claim volume of the pod
//    (emptyDir scratch with her work, Secrets, the projected service account token).
// ---------------------------------------------------------------------------------------------

#[test]
fn attack_debug_container_without_target_enters_another_users_notebook() {
    let old = pod(ALICE_NOTEBOOK);
    let mounting = with_debug(
        ALICE_NOTEBOOK,
        "{name: peek, image: busybox, volumeMounts: [{name: work, mountPath: /w}]}",
    );
    assert!(
        !update(&old, &mounting, "bob", &[], true).allowed(),
        "bob mounted the emptyDir of alice's notebook in his debug container"
    );
    let plain = with_debug(
        ALICE_NOTEBOOK,
        "{name: peek, image: curlimages/curl, command: [curl, 'http://127.0.0.1:8888/api/contents/']}",
    );
    assert!(
        !update(&old, &plain, "bob", &[], true).allowed(),
        "bob's debug container runs in alice's notebook's network namespace (Jupyter on localhost)"
    );
    // alice and administrators may.
    assert!(update(&old, &mounting, "alice", &[], true).allowed());
    assert!(update(&old, &mounting, "root", &["system:masters"], true).allowed());
}

#[test]
fn attack_debug_container_in_a_shared_process_namespace_needs_no_target() {
    // alice's job (nobody's notebook) shares its process namespace and writes finance.
    let job = "metadata: {name: report}
spec:
  shareProcessNamespace: true
  containers: [{name: job, image: busybox, volumeMounts: [{name: f, mountPath: /f}]}]
  volumes: [{name: f, persistentVolumeClaim: {claimName: finance-data}}]
";
    // erin may not target the container (checked) ...
    let targeting = with_debug(job, "{name: d, image: busybox, targetContainerName: job}");
    assert!(!update(&pod(job), &targeting, "erin", &[], true).allowed());
    // ... but without a target, the debug container sees every process of the pod anyway, and
    // /proc/<pid>/root/f is the finance share (read-write as the job's user).
    let untargeted = with_debug(job, "{name: d, image: busybox}");
    assert!(
        !update(&pod(job), &untargeted, "erin", &[], true).allowed(),
        "erin joined the shared process namespace of a pod mounting finance read-write"
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Identity: the shipped example Settings trust the StatefulSet controller as a controller: a
//    username annotation in a pod template anyone can write is not believed, only the webhook's
//    stamp on the owning object (tests/core/stamps.rs, tests/e2e_stamps.rs).
// ---------------------------------------------------------------------------------------------

#[test]
fn attack_statefulset_pod_template_names_another_user() {
    // bob's StatefulSet; its pod is created by the StatefulSet controller.
    let forged = pod("metadata:
  name: totally-bob-0
  labels: {notebook-name: nb}
  annotations: {opendatahub.io/username: alice, notebook-volumes.io/secret-shares: mergers}
spec:
  containers: [{name: nb, image: evil.example.com/exfiltrate}]
");
    let outcome = Case::new(examples(), STS).review(&forged);
    let got: Vec<String> = outcome
        .mounts
        .iter()
        .map(|m| format!("{}={}", m.claim_name, if m.read_only { "ro" } else { "rw" }))
        .collect();
    assert!(
        !outcome.allowed() || outcome.mounts.is_empty(),
        "a StatefulSet anyone may create got alice's volumes: {got:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. An untrusted controller (or any shared service account, which `edit` may impersonate) is
//    "a user": every notebook-labelled pod it creates gets ONE home, the controller's. carol's
//    Deployment and dave's Deployment both mount it read-write: carol reads what dave's notebook
//    saved in "his" home (ODH workbenches without a trusted StatefulSet controller all share it).
// ---------------------------------------------------------------------------------------------

#[test]
fn attack_controller_made_notebooks_share_one_home() {
    let rs = "system:serviceaccount:kube-system:replicaset-controller";
    let notebook = pod("metadata:
  name: carol-nb-5d8f-abcde
  labels: {component: singleuser-server}
spec:
  containers: [{name: notebook, image: quay.io/jupyter/scipy-notebook}]
");
    let outcome = Case::new(examples(), rs)
        .groups(&[
            "system:serviceaccounts",
            "system:serviceaccounts:kube-system",
            "system:authenticated",
        ])
        .review(&notebook);
    let homes: Vec<&str> = outcome
        .mounts
        .iter()
        .filter(|m| m.source == MountSource::Home)
        .map(|m| m.claim_name.as_str())
        .collect();
    assert!(
        homes.is_empty(),
        "every pod the ReplicaSet controller creates, for any user, shares home {homes:?}"
    );
}

// 5. (Forged reviews for namespaces that are not enabled: checked at the server's edge, where the
//    namespace's labels are known; see tests/e2e_webhook.rs.)

// ---------------------------------------------------------------------------------------------
// 6. No write-down, generic ephemeral volumes: in a secret notebook every claim but the home must
//    be read-only, but a generic ephemeral volume (a real PVC, `<pod>-<volume>`, that lives as long
//    as the pod) stays read-write. Secret data written there is a claim any namespace member may
//    mount from another pod, or clone/snapshot into a permanent copy (the claim guard sees an
//    ordinary claim).
// ---------------------------------------------------------------------------------------------

#[test]
fn attack_secret_notebook_writes_down_to_a_generic_ephemeral_volume() {
    let mut notebook = crate::fixtures::example_pod("kubespawner-alice-secret");
    let spec = notebook.spec.as_mut().unwrap();
    spec.volumes = Some(vec![
        serde_saphyr::from_str(
            "{name: scratch, ephemeral: {volumeClaimTemplate: {spec: {accessModes: [ReadWriteMany], resources: {requests: {storage: 10Gi}}}}}}",
        )
        .unwrap(),
    ]);
    spec.containers[0].volume_mounts = Some(vec![
        serde_saphyr::from_str("{name: scratch, mountPath: /scratch}").unwrap(),
    ]);
    let outcome = Case::new(examples(), HUB).review(&notebook);
    assert!(outcome.allowed(), "{:?}", outcome.message());
    let patched = crate::fixtures::apply(&notebook, &outcome);
    let mounts = crate::fixtures::mounts_of(&patched, "notebook");
    assert!(
        mounts.contains(&("/scratch".to_string(), true)),
        "the generic ephemeral claim stays writable next to the secret share: {mounts:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 7. The "written" annotations can be forged at creation on pods that are not notebooks: bob's
//    pod claims to be alice's notebook (`notebook-volumes.io/user: alice`, and any `mounts`
//    summary). Tools and auditors that list notebooks by that annotation are misled, and the
//    connect webhook treats the pod as alice's.
// ---------------------------------------------------------------------------------------------

#[test]
fn attack_user_annotation_forged_at_creation_of_a_pod_that_is_not_a_notebook() {
    let forged = pod("metadata:
  name: not-a-notebook
  annotations: {notebook-volumes.io/user: alice, notebook-volumes.io/mounts: 'home=rw'}
spec:
  containers: [{name: c, image: busybox}]
");
    let outcome = Case::new(examples(), "bob").review(&forged);
    let after = crate::fixtures::apply(&forged, &outcome);
    assert!(
        !outcome.allowed()
            || crate::fixtures::annotation(&after, keys::USER_ANNOTATION).as_deref()
                != Some("alice"),
        "bob's pod is recorded as alice's notebook"
    );
}

// ---------------------------------------------------------------------------------------------
// 9. Availability: patch amplification. Every container named `notebook` is a notebook container
//    and gets every injected mount and Lmod variable; duplicate names are refused by the API
//    server only AFTER the mutating webhooks ran. A notebook-labelled pod of 5,000 containers
//    `{name: notebook}` (100 KB) makes an 8 MB patch (~80x); 20,000 (400 KB) make 32 MB and
//    650 MB of memory in the webhook (debug build), past the Deployment's 256Mi limit: the
//    webhook is OOM-killed, and with failurePolicy Fail every pod creation in enabled namespaces
//    fails while it restarts. Any editor (or any TLS client) can repeat it.
// ---------------------------------------------------------------------------------------------

#[test]
fn attack_thousands_of_notebook_containers_amplify_the_patch() {
    let containers: Vec<serde_json::Value> = (0..5_000)
        .map(|_| serde_json::json!({"name": "notebook"}))
        .collect();
    let amp: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "amp", "labels": {"component": "singleuser-server"}},
        "spec": {"containers": containers}
    }))
    .unwrap();
    let input = serde_json::to_vec(&amp).unwrap().len();
    let case = Case::new(examples(), "bob");
    let outcome = case.review(&amp);
    let patch = case.respond(&amp).patch.as_ref().map_or(0, Vec::len);
    assert!(
        !outcome.allowed() || patch < 1024 * 1024,
        "a {input}-byte pod made a {patch}-byte patch"
    );
}

#[test]
fn attack_debug_container_mounts_the_scratch_space_of_a_secret_job() {
    // alice's job (not a notebook, so no user annotation) reads the secret mergers share and
    // keeps intermediate results in an emptyDir. bob may not exec into it (the connect webhook
    // checks the pod's claims), but his debug container mounting the emptyDir is admitted.
    let job = "metadata: {name: merge-report}
spec:
  containers:
  - name: job
    image: busybox
    volumeMounts: [{name: m, mountPath: /m, readOnly: true}, {name: tmp, mountPath: /tmp}]
  volumes:
  - {name: m, persistentVolumeClaim: {claimName: mergers-data, readOnly: true}}
  - {name: tmp, emptyDir: {}}
";
    let debug = with_debug(
        job,
        "{name: d, image: busybox, volumeMounts: [{name: tmp, mountPath: /tmp}]}",
    );
    assert!(
        !update(&pod(job), &debug, "bob", &[], true).allowed(),
        "bob read the scratch space of a pod holding secret data"
    );
}
