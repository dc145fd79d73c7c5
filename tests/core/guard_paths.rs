//! Every Kubernetes path to a claim's data that the guard closes (docs/security.md lists them):
//! reserved home names, generic ephemeral volumes, inline volumes, raw block devices, debug
//! containers and their targets, connections into running pods, and write-down in secret pods.

use k8s_openapi::api::authentication::v1::UserInfo;
use k8s_openapi::api::core::v1::Pod;
use notebook_volumes::admission::{Context, MountSource, Review, exposure};
use notebook_volumes::keys;

use crate::fixtures::{Case, HUB, apply, example_pod, examples, mounts_of, pod, policy};

fn denied_with(outcome: &Review, words: &[&str]) {
    assert!(!outcome.allowed(), "expected a denial");
    let message = outcome.message().unwrap_or_default();
    for w in words {
        assert!(message.contains(w), "{message:?} lacks {w:?}");
    }
}

fn claim_pod(claim: &str) -> Pod {
    pod(&format!(
        "metadata: {{name: x}}\nspec:\n  containers: [{{name: c, volumeMounts: [{{name: v, mountPath: /v}}]}}]\n  volumes: [{{name: v, persistentVolumeClaim: {{claimName: {claim}}}}}]\n"
    ))
}

#[test]
fn home_names_are_reserved_for_their_user_before_the_claim_exists() {
    // bob mounts the claim alice's first launch will create: denied although it does not exist.
    let outcome = Case::new(examples(), "bob").review(&claim_pod("home-alice"));
    denied_with(
        &outcome,
        &[
            "claim 'home-alice'",
            "slugs to 'alice'",
            "may only mount their own home",
        ],
    );
    // alice may (the webhook creates it on her first notebook launch).
    assert!(
        Case::new(examples(), "alice")
            .review(&claim_pod("home-alice"))
            .allowed()
    );
    // Any name the template can produce is someone's, including names no user has yet.
    denied_with(
        &Case::new(examples(), "bob").review(&claim_pod("home-nobody-yet")),
        &["slugs to 'nobody-yet'"],
    );
    // A pod that names no user (hub without username annotation) reaches no home.
    denied_with(
        &Case::new(examples(), HUB).review(&claim_pod("home-bob")),
        &["an anonymous pod"],
    );
    // Ordinary claims stay ordinary.
    assert!(
        Case::new(examples(), "bob")
            .review(&claim_pod("scratch"))
            .allowed()
    );
}

#[test]
fn home_claim_created_by_a_user_under_someone_elses_name_is_refused_to_the_victim() {
    // carol pre-created `home-dave` (no marks: only the webhook and administrators may set them).
    let case = Case::new(examples(), HUB).claim("home-dave", false, None);
    let mut notebook = example_pod("kubespawner-alice");
    notebook
        .metadata
        .annotations
        .as_mut()
        .unwrap()
        .insert("hub.jupyter.org/username".into(), "dave".into());
    let outcome = case.review(&notebook);
    denied_with(
        &outcome,
        &["'home-dave'", "was not created by notebook-volumes"],
    );
    assert!(outcome.effects.is_empty(), "nothing is adopted");
}

fn ephemeral_pod(name: &str, template: &str) -> Pod {
    pod(&format!(
        "metadata: {{name: {name}}}\nspec:\n  containers: [{{name: c, volumeMounts: [{{name: scratch, mountPath: /s}}]}}]\n  volumes:\n  - name: scratch\n    ephemeral:\n      volumeClaimTemplate:\n{template}"
    ))
}

#[test]
fn ephemeral_volume_may_not_clone_a_share_or_a_home() {
    let clone = |kind_field: &str, claim: &str| {
        ephemeral_pod(
            "x",
            &format!(
                "        spec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 1Gi}}}}, {kind_field}: {{kind: PersistentVolumeClaim, name: {claim}}}}}\n"
            ),
        )
    };
    for field in ["dataSource", "dataSourceRef"] {
        denied_with(
            &Case::new(examples(), "alice").review(&clone(field, "mergers-data")),
            &["clones claim 'mergers-data'", "secret share 'mergers'"],
        );
        denied_with(
            &Case::new(examples(), "bob").review(&clone(field, "finance-data")),
            &["clones claim 'finance-data'", "private share 'finance'"],
        );
        denied_with(
            &Case::new(examples(), "bob").review(&clone(field, "home-alice")),
            &["clones claim 'home-alice'"],
        );
        denied_with(
            &Case::new(examples(), "bob").review(&clone(field, "apps")),
            &["library 'apps'"],
        );
        assert!(
            Case::new(examples(), "bob")
                .review(&clone(field, "scratch-src"))
                .allowed()
        );
    }
    let cross = ephemeral_pod(
        "x",
        "        spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}, dataSourceRef: {kind: PersistentVolumeClaim, name: data, namespace: other}}\n",
    );
    denied_with(
        &Case::new(examples(), "bob").review(&cross),
        &["from namespace 'other'"],
    );
}

#[test]
fn ephemeral_volume_may_not_mark_bind_or_be_named_as_a_reserved_claim() {
    let plain =
        "        spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n";
    let marked = format!(
        "        metadata: {{labels: {{{}: \"true\"}}, annotations: {{{}: dave}}}}\n{plain}",
        keys::HOME_LABEL,
        keys::OWNER_ANNOTATION
    );
    denied_with(
        &Case::new(examples(), "carol").review(&ephemeral_pod("x", &marked)),
        &["marks its claim as a home"],
    );
    let bound = "        spec: {accessModes: [ReadWriteOnce], volumeName: pv-finance, resources: {requests: {storage: 1Gi}}}\n";
    denied_with(
        &Case::new(examples(), "carol").review(&ephemeral_pod("x", bound)),
        &["volumeName", "administrator"],
    );
    // Pod `home` with volume `scratch` makes claim `home-scratch`: user scratch's home.
    denied_with(
        &Case::new(examples(), "carol").review(&ephemeral_pod("home", plain)),
        &["would create claim 'home-scratch'"],
    );
    assert!(
        Case::new(examples(), "carol")
            .review(&ephemeral_pod("x", plain))
            .allowed()
    );
}

const SETTINGS_ALLOWING_NFS: &str =
    "kind: Settings\nallowedVolumeTypes: [nfs]\nallowedCSIDrivers: [nfs.csi.k8s.io]\n";

/// Each inline `volume` is allowed in a pod reviewed with a fresh `case()`.
fn allows_inline(case: impl Fn() -> Case, volumes: &[&str]) {
    for volume in volumes {
        let outcome = case().review(&inline_pod(volume));
        assert!(outcome.allowed(), "{volume}: {:?}", outcome.message());
    }
}

fn inline_pod(volume: &str) -> Pod {
    pod(&format!(
        "metadata: {{name: x}}\nspec:\n  containers: [{{name: c}}]\n  volumes: [{{name: v, {volume}}}]\n"
    ))
}

#[test]
fn inline_volumes_that_reach_storage_directly_are_denied_unless_settings_allow_them() {
    let nfs = inline_pod("nfs: {server: nfs.example, path: /exports/finance}");
    let csi = inline_pod("csi: {driver: nfs.csi.k8s.io, volumeAttributes: {server: nfs.example}}");
    let host = inline_pod("hostPath: {path: /srv/finance}");
    denied_with(
        &Case::new(examples(), "bob").review(&nfs),
        &["inline 'nfs' volume", "allowedVolumeTypes"],
    );
    denied_with(
        &Case::new(examples(), "bob").review(&csi),
        &["driver 'nfs.csi.k8s.io'", "allowedCSIDrivers"],
    );
    denied_with(
        &Case::new(examples(), "bob").review(&host),
        &["inline 'hostPath' volume"],
    );
    let allowing = policy(SETTINGS_ALLOWING_NFS);
    assert!(
        Case::new(policy(SETTINGS_ALLOWING_NFS), "bob")
            .review(&nfs)
            .allowed()
    );
    assert!(
        Case::new(policy(SETTINGS_ALLOWING_NFS), "bob")
            .review(&csi)
            .allowed()
    );
    assert!(!Case::new(allowing, "bob").review(&host).allowed());
    for safe in [
        "emptyDir: {}",
        "configMap: {name: c}",
        "secret: {secretName: s}",
        "downwardAPI: {items: []}",
        "projected: {sources: []}",
        "projected: {sources: [{serviceAccountToken: {path: t}}, {configMap: {name: c}}]}",
        "image: {reference: 'quay.io/org/models:1'}",
    ] {
        assert!(
            Case::new(examples(), "bob")
                .review(&inline_pod(safe))
                .allowed(),
            "{safe}"
        );
    }
    // A volume with no source this webhook knows (a newer API field) fails closed.
    denied_with(
        &Case::new(examples(), "bob").review(&inline_pod("future: {}")),
        &["cannot check"],
    );
}

/// Inline types the Settings allow, and shares and a library whose storage notebook-volumes
/// provisions (one share out of this namespace's scope: its data is the same everywhere).
const PROVISIONED_WITH_INLINE_ALLOWED: &str = "kind: Settings\nallowedVolumeTypes: [nfs, hostPath]\nallowedCSIDrivers: [cephfs.csi.ceph.com, nfs.csi.k8s.io, smb.csi.k8s.io]\n---\nkind: Share\nname: archive\nnamespaces: [elsewhere]\nclaimName: archive-data\nmountPath: /data/archive\nlevel: private\nwriters: {users: [alice]}\nstorage: {nfs: {server: nfs.example.org, path: /exports/archive}}\n---\nkind: Share\nname: lab\nclaimName: lab-data\nmountPath: /data/lab\nlevel: private\nreaders: {users: [alice]}\nstorage: {csi: {driver: cephfs.csi.ceph.com, volumeHandle: lab}}\n---\nkind: Library\nname: apps\nclaimName: apps\nmountPath: /opt/apps\nstorage: {hostPath: {path: /srv/apps}}\n---\nkind: Share\nname: files\nclaimName: files-data\nmountPath: /data/files\nlevel: public\nstorage: {csi: {driver: nfs.csi.example.com, volumeHandle: files, volumeAttributes: {server: files.example.org, share: /vol/files}}}\n";

#[test]
fn inline_volumes_the_settings_allow_may_not_reach_provisioned_storage() {
    let case = || Case::new(policy(PROVISIONED_WITH_INLINE_ALLOWED), "bob");
    for (volume, owner) in [
        (
            "nfs: {server: nfs.example.org, path: /exports/archive}",
            "share 'archive'",
        ),
        (
            "nfs: {server: NFS.Example.org., path: /exports/archive/2024/}",
            "share 'archive'",
        ),
        (
            "nfs: {server: nfs.example.org, path: /exports}",
            "share 'archive'",
        ),
        ("nfs: {server: nfs.example.org, path: /}", "share 'archive'"),
        (
            "nfs: {server: nfs.example.org, path: '//exports/./x/../archive'}",
            "share 'archive'",
        ),
        ("hostPath: {path: /srv/apps}", "library 'apps'"),
        (
            "hostPath: {path: /srv/apps/modulefiles/Core}",
            "library 'apps'",
        ),
        ("hostPath: {path: /}", "library 'apps'"),
        ("hostPath: {path: /srv/./apps}", "library 'apps'"),
        (
            "csi: {driver: cephfs.csi.ceph.com, volumeAttributes: {fsName: lab}}",
            "share 'lab'",
        ),
        // The NFS export through the CSI driver for NFS, and an NFS-backed CSI share through
        // plain NFS.
        (
            "csi: {driver: nfs.csi.k8s.io, volumeAttributes: {server: nfs.example.org, share: /exports}}",
            "share 'archive'",
        ),
        (
            "nfs: {server: files.example.org, path: /vol/other}",
            "share 'files'",
        ),
    ] {
        denied_with(
            &case().review(&inline_pod(volume)),
            &["volume 'v'", owner, "through its claim"],
        );
    }
    // Storage beside the provisioned exports stays as the Settings allow it.
    allows_inline(
        case,
        &[
            "nfs: {server: nfs.example.org, path: /exports/other}",
            "nfs: {server: nfs.example.org, path: /exports/archive-old}",
            "nfs: {server: other.example.org, path: /exports/archive}",
            "hostPath: {path: /srv/other}",
            "csi: {driver: smb.csi.k8s.io, volumeAttributes: {source: //scratch.example.org/s}}",
            "csi: {driver: nfs.csi.k8s.io, volumeAttributes: {server: scratch.example.org}}",
        ],
    );
}

/// Shares on an NFS server named by address, IPv4 and IPv6.
const PROVISIONED_BY_ADDRESS: &str = "---\nkind: Share\nname: ip4\nclaimName: ip4-data\nmountPath: /data/ip4\nlevel: public\nstorage: {nfs: {server: 10.0.0.7, path: /exports/ip4}}\n---\nkind: Share\nname: ip6\nclaimName: ip6-data\nmountPath: /data/ip6\nlevel: public\nstorage: {nfs: {server: 'fd00::7', path: /exports/ip6}}\n";

#[test]
fn inline_volumes_naming_provisioned_storage_another_way_are_denied() {
    let case = || {
        Case::new(
            policy(&format!(
                "{PROVISIONED_WITH_INLINE_ALLOWED}{PROVISIONED_BY_ADDRESS}"
            )),
            "bob",
        )
    };
    for (volume, owner) in [
        // mount.nfs takes the first of several comma-separated names.
        (
            "nfs: {server: 'nfs.example.org,decoy.example.org', path: /exports/archive}",
            "share 'archive'",
        ),
        // A short name under a search domain.
        (
            "nfs: {server: nfs, path: /exports/archive}",
            "share 'archive'",
        ),
        // An address in any form the resolver accepts.
        (
            "nfs: {server: '167772167', path: /exports/ip4}",
            "share 'ip4'",
        ),
        (
            "nfs: {server: '0x0a000007', path: /exports/ip4}",
            "share 'ip4'",
        ),
        ("nfs: {server: '10.7', path: /exports/ip4}", "share 'ip4'"),
        (
            "nfs: {server: '012.0.0.7', path: /exports/ip4}",
            "share 'ip4'",
        ),
        (
            "nfs: {server: '::ffff:10.0.0.7', path: /exports/ip4}",
            "share 'ip4'",
        ),
        (
            "nfs: {server: 'fd00:0:0:0:0:0:0:7', path: /exports/ip6}",
            "share 'ip6'",
        ),
        (
            "nfs: {server: '[FD00::0007]', path: /exports/ip6}",
            "share 'ip6'",
        ),
        // The export under an NFSv4 pseudo-root (`fsid=0` on /exports).
        (
            "nfs: {server: nfs.example.org, path: /archive}",
            "share 'archive'",
        ),
        (
            "nfs: {server: nfs.example.org, path: /archive/2024}",
            "share 'archive'",
        ),
        // `..` after a name climbs out of whatever that name links to.
        (
            "nfs: {server: nfs.example.org, path: /srv/link/../exports/archive}",
            "share 'archive'",
        ),
        ("hostPath: {path: /var/run/../srv/apps}", "library 'apps'"),
        // The hostPath type changes what the kubelet checks, not where the path is.
        (
            "hostPath: {path: /srv/apps/, type: DirectoryOrCreate}",
            "library 'apps'",
        ),
        // The server inside an attribute of another form, or under another key.
        (
            "csi: {driver: nfs.csi.k8s.io, volumeAttributes: {source: 'nfs.example.org:/exports/archive'}}",
            "share 'archive'",
        ),
        (
            "csi: {driver: smb.csi.k8s.io, volumeAttributes: {source: '//NFS.example.org/archive'}}",
            "share 'archive'",
        ),
        // The server second in a list a driver may try in turn.
        (
            "csi: {driver: nfs.csi.k8s.io, volumeAttributes: {server: 'scratch.example.org,nfs.example.org'}}",
            "share 'archive'",
        ),
        (
            "csi: {driver: nfs.csi.k8s.io, volumeAttributes: {server: '167772167', share: /exports/ip4}}",
            "share 'ip4'",
        ),
        // A CSI share's server by its short name, and through another CSI driver.
        ("nfs: {server: files, path: /x}", "share 'files'"),
        (
            "csi: {driver: nfs.csi.k8s.io, volumeAttributes: {server: files.example.org., share: /vol/files}}",
            "share 'files'",
        ),
    ] {
        denied_with(
            &case().review(&inline_pod(volume)),
            &["volume 'v'", owner, "through its claim"],
        );
    }
    // Without Settings, no inline storage volume is allowed at all.
    denied_with(
        &Case::new(policy(PROVISIONED_BY_ADDRESS), "bob")
            .review(&inline_pod("nfs: {server: '10.0.0.8', path: /exports/ip4}")),
        &["inline 'nfs' volume", "allowedVolumeTypes"],
    );
    // Other servers, and attribute values that are no server, stay as the Settings allow them.
    allows_inline(
        case,
        &[
            "nfs: {server: '10.0.0.8', path: /exports/ip4}",
            "nfs: {server: '0x0a000008', path: /exports/ip4}",
            "nfs: {server: 'fd00::8', path: /exports/ip6}",
            "nfs: {server: nfs2, path: /exports/archive}",
            "nfs: {server: nfs.example.org, path: /../exports/other}",
            "nfs: {server: nfs.example.org, path: /other}",
            // The CSI share's `share: /vol/files` names no server; `vol` is not one.
            "nfs: {server: vol.example.org, path: /vol/files}",
            "csi: {driver: nfs.csi.k8s.io, volumeAttributes: {server: scratch.example.org, share: /vol/files, mountPermissions: '0777'}}",
            "csi: {driver: smb.csi.k8s.io, volumeAttributes: {source: '//scratch.example.org/archive'}}",
        ],
    );
}

fn device_pod(claim: &str) -> Pod {
    pod(&format!(
        "metadata: {{name: x}}\nspec:\n  containers: [{{name: c, volumeDevices: [{{name: v, devicePath: /dev/xvda}}]}}]\n  volumes: [{{name: v, persistentVolumeClaim: {{claimName: {claim}}}}}]\n"
    ))
}

#[test]
fn raw_block_devices_need_read_write_access() {
    // bob reads finance: a block device cannot be made read-only, so he may not map it.
    denied_with(
        &Case::new(examples(), "bob").review(&device_pod("finance-data")),
        &["raw block device", "'ro'"],
    );
    denied_with(
        &Case::new(examples(), "erin").review(&device_pod("finance-data")),
        &["may not access"],
    );
    denied_with(
        &Case::new(examples(), "bob").review(&device_pod("apps")),
        &["raw block device"],
    );
    assert!(
        Case::new(examples(), "alice")
            .review(&device_pod("finance-data"))
            .allowed()
    );
    assert!(
        Case::new(examples(), "bob")
            .review(&device_pod("scratch"))
            .allowed()
    );
}

fn request_adding_debug(old: &Pod, new: &Pod, user: &str, groups: &[&str]) -> Review {
    Case::new(examples(), user)
        .groups(groups)
        .review_update(old, new, true)
}

const RUNNING: &str = "metadata:\n  name: nb\n  annotations: {notebook-volumes.io/user: alice}\nspec:\n  containers: [{name: notebook, volumeMounts: [{name: f, mountPath: /f}]}]\n  volumes: [{name: f, persistentVolumeClaim: {claimName: finance-data}}]\n";

fn with_debug(base: &str, debug: &str) -> Pod {
    pod(&format!("{base}  ephemeralContainers: [{debug}]\n"))
}

#[test]
fn debug_containers_are_judged_alone_not_with_earlier_ones() {
    let job = RUNNING.replace("notebook-volumes.io/user: alice", "x: y");
    // alice's earlier debug container mounted the share; an administrator without access to it
    // may still add one that mounts nothing from the policy (only the added one is judged).
    let earlier = with_debug(&job, "{name: d1, volumeMounts: [{name: f, mountPath: /f}]}");
    let later = with_debug(
        &job,
        "{name: d1, volumeMounts: [{name: f, mountPath: /f}]}, {name: d2}",
    );
    assert!(request_adding_debug(&earlier, &later, "root", &["system:masters"]).allowed());
    // But not one that mounts it: debug containers get the rights of whoever adds them.
    let mounting = with_debug(
        &job,
        "{name: d1, volumeMounts: [{name: f, mountPath: /f}]}, {name: d2, volumeMounts: [{name: f, mountPath: /g}]}",
    );
    denied_with(
        &request_adding_debug(&earlier, &mounting, "root", &["system:masters"]),
        &["may not access"],
    );
    // erin (no access) may not add even a bare one: it would share the pod's network, its
    // non-claim volumes and, with shareProcessNamespace, its processes.
    denied_with(
        &request_adding_debug(&earlier, &later, "erin", &[]),
        &["debug container 'd2'", "may not access"],
    );
    // Nor may bob map the share as a raw device with read-only rights.
    let device = with_debug(
        &job,
        "{name: d1, volumeMounts: [{name: f, mountPath: /f}]}, {name: d2, volumeDevices: [{name: f, devicePath: /dev/x}]}",
    );
    denied_with(
        &request_adding_debug(&earlier, &device, "bob", &[]),
        &["raw block device"],
    );
}

#[test]
fn debug_container_targeting_a_container_needs_its_rights() {
    let running = pod(RUNNING);
    let targeting = with_debug(RUNNING, "{name: d, targetContainerName: notebook}");
    // bob is not alice: her notebook's processes carry her files and tokens.
    denied_with(
        &request_adding_debug(&running, &targeting, "bob", &[]),
        &["targets container 'notebook'", "notebook of user 'alice'"],
    );
    assert!(request_adding_debug(&running, &targeting, "alice", &[]).allowed());
    assert!(request_adding_debug(&running, &targeting, "root", &["system:masters"]).allowed());
    // A pod that is nobody's notebook: the target's read-write finance mount needs write access.
    let job = RUNNING.replace("notebook-volumes.io/user: alice", "x: y");
    let targeting_job = with_debug(&job, "{name: d, targetContainerName: notebook}");
    denied_with(
        &request_adding_debug(&pod(&job), &targeting_job, "bob", &[]),
        &["claim 'finance-data'", "read-write", "access is 'ro'"],
    );
    assert!(request_adding_debug(&pod(&job), &targeting_job, "alice", &[]).allowed());
}

fn connect(pod: &Pod, user: &str, groups: &[&str]) -> Option<String> {
    let case = Case::new(examples(), user);
    let ctx = Context {
        policy: &case.policy,
        namespace: &case.ns,
        claims: &case.claims,
        webhook_user: Some("system:serviceaccount:notebook-volumes:notebook-volumes"),
        stamp_key: None,
    };
    let info = UserInfo {
        username: Some(user.into()),
        groups: Some(groups.iter().map(|g| g.to_string()).collect()),
        ..Default::default()
    };
    exposure::connect(ctx, &info, pod, "exec").map(|denial| denial.to_string())
}

#[test]
fn exec_attach_and_port_forward_into_a_notebook_are_for_its_user() {
    let notebook = pod(RUNNING);
    let denial = connect(&notebook, "bob", &[]).expect("bob is denied");
    assert!(
        denial.contains("exec into pod 'nb'") && denial.contains("notebook of user 'alice'"),
        "{denial}"
    );
    assert_eq!(connect(&notebook, "alice", &[]), None);
    assert_eq!(connect(&notebook, "root", &["system:masters"]), None);
    assert_eq!(
        connect(
            &notebook,
            "system:serviceaccount:notebook-volumes:notebook-volumes",
            &[]
        ),
        None
    );
    // Into a pod that is nobody's notebook: the requester needs the rights its containers have.
    let job = pod(&RUNNING.replace("notebook-volumes.io/user: alice", "x: y"));
    let denial = connect(&job, "bob", &[]).expect("bob only reads finance");
    assert!(denial.contains("access is 'ro'"), "{denial}");
    assert!(
        connect(&job, "erin", &[])
            .expect("erin has no access")
            .contains("may not access")
    );
    assert_eq!(connect(&job, "alice", &[]), None);
}

#[test]
fn secret_notebook_makes_claims_outside_the_policy_read_only_too() {
    let case = Case::new(examples(), HUB);
    let mut notebook = example_pod("kubespawner-alice-secret");
    let spec = notebook.spec.as_mut().unwrap();
    spec.volumes = Some(vec![
        serde_saphyr::from_str("{name: scratch, persistentVolumeClaim: {claimName: scratch}}")
            .unwrap(),
    ]);
    spec.containers[0].volume_mounts = Some(vec![
        serde_saphyr::from_str("{name: scratch, mountPath: /scratch}").unwrap(),
    ]);
    let outcome = case.review(&notebook);
    assert!(outcome.allowed(), "{:?}", outcome.message());
    let patched = apply(&notebook, &outcome);
    let container = patched.spec.as_ref().unwrap().containers[0].name.clone();
    assert!(mounts_of(&patched, &container).contains(&("/scratch".to_string(), true)));
    assert!(
        outcome
            .warnings
            .iter()
            .any(|w| w.contains("claim 'scratch'") && w.contains("no write-down")),
        "{:?}",
        outcome.warnings
    );
    // Without secret data, the scratch claim stays read-write.
    let mut plain = example_pod("kubespawner-alice");
    plain.spec = patched.spec.clone();
    plain.spec.as_mut().unwrap().containers[0].volume_mounts = Some(vec![
        serde_saphyr::from_str("{name: scratch, mountPath: /scratch}").unwrap(),
    ]);
    plain.spec.as_mut().unwrap().volumes = Some(vec![
        serde_saphyr::from_str("{name: scratch, persistentVolumeClaim: {claimName: scratch}}")
            .unwrap(),
    ]);
    let outcome = case.review(&plain);
    let patched = apply(&plain, &outcome);
    assert!(mounts_of(&patched, &container).contains(&("/scratch".to_string(), false)));
}

#[test]
fn secret_shares_annotation_is_capped() {
    let mut notebook = example_pod("kubespawner-alice-secret");
    let names: Vec<String> = (0..100_000).map(|i| format!("s{i}")).collect();
    notebook
        .metadata
        .annotations
        .as_mut()
        .unwrap()
        .insert(keys::SECRET_SHARES_ANNOTATION.into(), names.join(","));
    denied_with(
        &Case::new(examples(), HUB).review(&notebook),
        &["more than 64 secret shares"],
    );
    // Repeats of one name count once.
    let repeated = vec!["mergers"; 100_000].join(",");
    notebook
        .metadata
        .annotations
        .as_mut()
        .unwrap()
        .insert(keys::SECRET_SHARES_ANNOTATION.into(), repeated);
    assert!(Case::new(examples(), HUB).review(&notebook).allowed());
}

#[test]
fn the_record_of_whose_notebook_it_is_cannot_be_rewritten_by_users() {
    let old = pod(RUNNING);
    let mut forged = old.clone();
    forged
        .metadata
        .annotations
        .as_mut()
        .unwrap()
        .insert(keys::USER_ANNOTATION.into(), "bob".into());
    let update = |pod: &Pod, user: &str, groups: &[&str]| {
        Case::new(examples(), user)
            .groups(groups)
            .review_update(&old, pod, false)
    };
    denied_with(
        &update(&forged, "bob", &[]),
        &["notebook-volumes.io/user", "only administrators"],
    );
    assert!(update(&forged, "root", &["system:masters"]).allowed());
    // Other changes (labels, other annotations) are not the guard's business.
    let mut relabelled = old.clone();
    relabelled.metadata.labels = Some([("team".to_string(), "x".to_string())].into());
    assert!(update(&relabelled, "bob", &[]).allowed());
}

#[test]
fn home_names_of_a_rejected_home_template_stay_protected_for_everyone() {
    use notebook_volumes::policy::PolicySnapshot;
    // The Home document has a typo: its unit is rejected, yet its names stay reserved.
    let broken = "kind: Home\nclaimNameTemplate: home-{user}\nmountPath: /home\nsize: 1Gi\n";
    let snap = PolicySnapshot::compile(&[crate::fixtures::unit("homes.yaml", broken)]);
    assert!(
        snap.rejected_units().next().is_some(),
        "the unit is rejected"
    );
    for user in ["alice", "bob"] {
        let outcome = Case::new(
            PolicySnapshot::compile(&[crate::fixtures::unit("homes.yaml", broken)]),
            user,
        )
        .review(&claim_pod("home-alice"));
        denied_with(
            &outcome,
            &["'home-alice'", "homes.yaml", "protected until it is fixed"],
        );
    }
    assert!(
        Case::new(snap, "bob")
            .review(&claim_pod("scratch"))
            .allowed(),
        "other claims are not affected"
    );
}

#[test]
fn a_share_whose_claim_a_rejected_unit_names_is_not_injected_but_the_notebook_starts() {
    use notebook_volumes::files::load_policies;
    use notebook_volumes::policy::PolicySnapshot;
    let mut units = load_policies(&[crate::fixtures::repo("examples/policies")])
        .expect("examples")
        .units;
    units.push(crate::fixtures::unit(
        "broken.yaml",
        "kind: share\nname: copy\nclaimName: finance-data\n",
    ));
    let case = Case::new(PolicySnapshot::compile(&units), HUB);
    let outcome = case.review(&example_pod("kubespawner-alice"));
    assert!(outcome.allowed(), "{:?}", outcome.message());
    assert!(
        outcome
            .mounts
            .iter()
            .all(|m| m.claim_name != "finance-data")
    );
    assert!(
        outcome
            .mounts
            .iter()
            .any(|m| m.source == MountSource::Share("datasets".into()))
    );
    assert!(
        outcome
            .warnings
            .iter()
            .any(|w| w.contains("share:finance not mounted") && w.contains("broken.yaml")),
        "{:?}",
        outcome.warnings
    );
}

#[test]
fn secret_notebook_makes_inline_storage_the_settings_allow_read_only_too() {
    use notebook_volumes::files::load_policies;
    use notebook_volumes::policy::PolicySnapshot;
    // The examples, with inline NFS volumes allowed.
    let mut units = load_policies(&[crate::fixtures::repo("examples/policies")])
        .expect("examples")
        .units;
    let settings = units
        .iter_mut()
        .flat_map(|u| u.sources.iter_mut())
        .find(|s| s.text.contains("kind: Settings"))
        .expect("settings");
    settings.text = settings.text.replacen(
        "kind: Settings\n",
        "kind: Settings\nallowedVolumeTypes: [nfs]\n",
        1,
    );
    let case = Case::new(PolicySnapshot::compile(&units), HUB);
    let with_nfs = |name: &str| {
        let mut nb = example_pod(name);
        let spec = nb.spec.as_mut().unwrap();
        spec.volumes = Some(vec![
            serde_saphyr::from_str("{name: out, nfs: {server: nfs.example, path: /exports/out}}")
                .unwrap(),
        ]);
        spec.containers[0].volume_mounts = Some(vec![
            serde_saphyr::from_str("{name: out, mountPath: /out}").unwrap(),
        ]);
        nb
    };
    let secret = with_nfs("kubespawner-alice-secret");
    let outcome = case.review(&secret);
    assert!(outcome.allowed(), "{:?}", outcome.message());
    let patched = apply(&secret, &outcome);
    assert!(mounts_of(&patched, "notebook").contains(&("/out".to_string(), true)));
    // In a notebook without secret data it stays writable.
    let plain = with_nfs("kubespawner-alice");
    let outcome = case.review(&plain);
    assert!(outcome.allowed(), "{:?}", outcome.message());
    let patched = apply(&plain, &outcome);
    assert!(mounts_of(&patched, "notebook").contains(&("/out".to_string(), false)));
}

#[test]
fn a_debug_container_may_not_mount_an_inline_volume_that_now_reaches_provisioned_storage() {
    // A pod admitted before the archive share's storage was in the policy, with inline NFS
    // volumes of its export and of another one; pod UPDATEs cannot add volumes, but a debug
    // container can mount one the pod has.
    let running = "metadata: {name: job}\nspec:\n  containers: [{name: c}]\n  volumes:\n  - {name: archive, nfs: {server: nfs.example.org, path: /exports/archive}}\n  - {name: other, nfs: {server: nfs.example.org, path: /exports/other}}\n";
    let add = |debug: &str| {
        Case::new(policy(PROVISIONED_WITH_INLINE_ALLOWED), "bob").review_update(
            &pod(running),
            &with_debug(running, debug),
            true,
        )
    };
    denied_with(
        &add("{name: d, volumeMounts: [{name: archive, mountPath: /a}]}"),
        &["volume 'archive'", "share 'archive'", "through its claim"],
    );
    let other = add("{name: d, volumeMounts: [{name: other, mountPath: /o}]}");
    assert!(other.allowed(), "{:?}", other.message());
}
