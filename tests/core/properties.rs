//! Property tests over generated policies, users and pods: never more access than the policy
//! grants, read-only never becomes read-write, the patch always applies, the second pass is empty.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Pod;
use notebook_volumes::admission::access::share_access;
use notebook_volumes::admission::{Access, Denial, Subject};
use notebook_volumes::policy::{Level, NamespaceInfo};
use proptest::prelude::*;

use crate::fixtures::{Case, HUB, NS, apply, policy};

const USERS: usize = 5;
const GROUPS: usize = 3;

#[derive(Debug, Clone)]
struct ShareSpec {
    level: u8,
    claim: usize,
    other_namespace: bool,
    readers: (Vec<usize>, Vec<usize>),
    writers: (Vec<usize>, Vec<usize>),
}

#[derive(Debug, Clone)]
struct World {
    shares: Vec<ShareSpec>,
    members: Vec<Vec<usize>>,
    library: bool,
    home: bool,
    user: usize,
    via_hub: bool,
    user_info_groups: Vec<usize>,
    notebook: bool,
    arrays: bool,
    refs: Vec<(usize, bool, bool)>,
    secrets: Vec<usize>,
}

fn share_spec() -> impl Strategy<Value = ShareSpec> {
    let who = || {
        (
            prop::collection::vec(0..USERS, 0..3),
            prop::collection::vec(0..GROUPS, 0..2),
        )
    };
    (0u8..3, 0usize..6, any::<bool>(), who(), who()).prop_map(
        |(level, claim, other_namespace, readers, writers)| ShareSpec {
            level,
            claim,
            other_namespace,
            readers,
            writers,
        },
    )
}

fn world() -> impl Strategy<Value = World> {
    (
        prop::collection::vec(share_spec(), 1..7),
        prop::collection::vec(prop::collection::vec(0..USERS, 0..3), GROUPS),
        (any::<bool>(), any::<bool>()),
        (
            0..USERS,
            any::<bool>(),
            prop::collection::vec(0..GROUPS, 0..2),
        ),
        (any::<bool>(), any::<bool>()),
        prop::collection::vec((0usize..7, any::<bool>(), any::<bool>()), 0..4),
        prop::collection::vec(0usize..7, 0..3),
    )
        .prop_map(
            |(
                shares,
                members,
                (library, home),
                (user, via_hub, groups),
                (notebook, arrays),
                refs,
                secrets,
            )| {
                World {
                    shares,
                    members,
                    library,
                    home,
                    user,
                    via_hub,
                    user_info_groups: groups,
                    notebook,
                    arrays,
                    refs,
                    secrets,
                }
            },
        )
}

fn list(prefix: &str, ids: &[usize]) -> String {
    let names: Vec<String> = ids.iter().map(|i| format!("{prefix}{i}")).collect();
    format!("[{}]", names.join(", "))
}

fn policy_text(w: &World) -> String {
    let mut docs = vec![format!("kind: Settings\ntrustedSpawners: [\"{HUB}\"]\n")];
    let groups: Vec<String> = w
        .members
        .iter()
        .enumerate()
        .map(|(g, m)| format!("  g{g}: {}", list("u", m)))
        .collect();
    docs.push(format!("kind: Groups\ngroups:\n{}\n", groups.join("\n")));
    for (i, s) in w.shares.iter().enumerate() {
        let level = ["public", "private", "secret"][s.level as usize];
        let ns = if s.other_namespace { "other" } else { NS };
        let mut doc = format!(
            "kind: Share\nname: s{i}\nnamespaces: [{ns}]\nclaimName: c{}\nsubPath: d{i}\nmountPath: /shares/s{i}\nlevel: {level}\nwriters: {{users: {}, groups: {}}}\n",
            s.claim,
            list("u", &s.writers.0),
            list("g", &s.writers.1)
        );
        if level != "public" {
            doc.push_str(&format!(
                "readers: {{users: {}, groups: {}}}\n",
                list("u", &s.readers.0),
                list("g", &s.readers.1)
            ));
        }
        docs.push(doc);
    }
    if w.library {
        docs.push("kind: Library\nname: apps\nclaimName: apps\nmountPath: /opt/apps\nlmod: {defaultModules: [StdEnv]}\n".into());
    }
    if w.home {
        docs.push("kind: Home\nclaimNameTemplate: home-{user}\nmountPath: /home/jovyan\ncreate: {size: 1Gi}\n".into());
    }
    docs.join("---\n")
}

fn pod_of(w: &World) -> Pod {
    let mut pod = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "notebook"}, {"name": "sidecar"}]},
    });
    let mut annotations = serde_json::Map::new();
    annotations.insert(
        "hub.jupyter.org/username".into(),
        format!("u{}", w.user).into(),
    );
    if !w.secrets.is_empty() {
        let names: Vec<String> = w.secrets.iter().map(|i| format!("s{i}")).collect();
        annotations.insert(
            "notebook-volumes.io/secret-shares".into(),
            names.join(",").into(),
        );
    }
    pod["metadata"]["annotations"] = annotations.into();
    if w.notebook {
        pod["metadata"]["labels"] = serde_json::json!({"component": "singleuser-server"});
    }
    let mut volumes = Vec::new();
    let mut mounts = Vec::new();
    for (k, (claim, volume_ro, mount_ro)) in w.refs.iter().enumerate() {
        let claim = if *claim == 6 {
            "apps".to_string()
        } else {
            format!("c{claim}")
        };
        volumes.push(serde_json::json!({"name": format!("v{k}"), "persistentVolumeClaim": {"claimName": claim, "readOnly": volume_ro}}));
        mounts.push(serde_json::json!({"name": format!("v{k}"), "mountPath": format!("/data/{k}"), "readOnly": mount_ro}));
    }
    if w.arrays || !volumes.is_empty() {
        pod["spec"]["volumes"] = volumes.into();
        pod["spec"]["containers"][0]["volumeMounts"] = mounts.into();
        pod["spec"]["containers"][0]["env"] = serde_json::json!([]);
    }
    serde_json::from_value(pod).unwrap()
}

fn subject(w: &World, case: &Case) -> Subject {
    let user = if w.via_hub {
        format!("u{}", w.user)
    } else {
        "direct".to_string()
    };
    let mut groups: BTreeSet<String> = case.policy.groups_of(&user);
    if !w.via_hub {
        groups.extend(w.user_info_groups.iter().map(|g| format!("g{g}")));
    }
    Subject {
        user: Some(user),
        groups,
    }
}

/// Read-only as the kubelet sees it: on the volume or on the mount.
fn effective_read_only(pod: &Pod, volume: &str, mount_ro: Option<bool>) -> bool {
    let v = pod
        .spec
        .as_ref()
        .unwrap()
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == volume)
        .unwrap();
    v.persistent_volume_claim
        .as_ref()
        .and_then(|p| p.read_only)
        .unwrap_or(false)
        || mount_ro.unwrap_or(false)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

    #[test]
    fn decisions_never_grant_more_than_the_policy_and_converge(w in world()) {
        let snap = policy(&policy_text(&w));
        prop_assert_eq!(snap.rejected_units().count(), 0, "{:?}", snap.findings().collect::<Vec<_>>());
        let mut w = w;
        if !w.via_hub {
            // A direct creator is its own user; keep the annotation consistent with it.
            w.user = 0;
        }
        let requester = if w.via_hub { HUB.to_string() } else { "direct".to_string() };
        let mut case = Case::new(snap, &requester);
        case.requester.groups = w.user_info_groups.iter().map(|g| format!("g{g}")).collect();
        let mut pod = pod_of(&w);
        if !w.via_hub {
            pod.metadata.annotations.as_mut().unwrap().insert("hub.jupyter.org/username".into(), "direct".into());
        }
        let outcome = case.review(&pod);
        if !outcome.allowed() {
            // The only refusals a well-formed world can earn: a share the user may not access,
            // or a secret share requested that is not theirs.
            let denial = outcome.denial.as_ref().unwrap();
            prop_assert!(
                matches!(denial, Denial::ShareAccess { .. } | Denial::SecretShareUnavailable { .. }),
                "unexpected denial: {}",
                denial
            );
            return Ok(());
        }
        let patched = apply(&pod, &outcome);
        let subject = subject(&w, &case);
        let ns = NamespaceInfo::new(NS);
        let spec = patched.spec.as_ref().unwrap();
        // Shares whose rights apply to a mount: an injected share volume at its own subPath
        // carries that share's rights; any other reference gets the least of the claim's shares.
        let applicable = |volume: &str, sub_path: &Option<String>| {
            let v = spec.volumes.iter().flatten().find(|v| v.name == volume).unwrap();
            let claim = v.persistent_volume_claim.as_ref().map(|p| p.claim_name.clone()).unwrap_or_default();
            let shares = case.policy.shares_for_claim(&ns, &claim);
            let exact: Vec<_> = shares
                .iter()
                .filter(|s| volume == format!("nv-share-{}", s.name) && sub_path == &s.sub_path)
                .copied()
                .collect();
            if exact.is_empty() { shares } else { exact }
        };
        let secret_in_pod = spec.containers.iter().flat_map(|c| c.volume_mounts.iter().flatten()).any(|m| {
            applicable(&m.name, &m.sub_path).iter().any(|s| s.level == Level::Secret)
        });
        for (c, container) in spec.containers.iter().enumerate() {
            for m in container.volume_mounts.iter().flatten() {
                let volume = spec.volumes.iter().flatten().find(|v| v.name == m.name).unwrap();
                let Some(claim) = volume.persistent_volume_claim.as_ref().map(|p| p.claim_name.clone()) else { continue };
                let shares = case.policy.shares_for_claim(&ns, &claim);
                let read_only = effective_read_only(&patched, &m.name, m.read_only);
                if !shares.is_empty() {
                    let applicable = applicable(&m.name, &m.sub_path);
                    let granted = applicable.iter().map(|s| share_access(s, &subject)).min().unwrap();
                    prop_assert!(granted != Access::None, "{claim} mounted without access");
                    let writable_share = granted == Access::Rw
                        && !(secret_in_pod && applicable.iter().any(|s| s.level != Level::Secret));
                    prop_assert!(read_only || writable_share, "{claim} writable in container {c} beyond the policy");
                }
                if claim == "apps" && w.library {
                    prop_assert!(read_only, "library writable");
                }
            }
        }
        // Read-only never becomes read-write: original mounts keep readOnly when it was set.
        let before = pod.spec.as_ref().unwrap();
        for (c, container) in before.containers.iter().enumerate() {
            for (i, m) in container.volume_mounts.iter().flatten().enumerate() {
                if m.read_only == Some(true) {
                    prop_assert_eq!(spec.containers[c].volume_mounts.as_ref().unwrap()[i].read_only, Some(true));
                }
            }
        }
        // The sidecar gets nothing.
        prop_assert_eq!(&spec.containers[1], &before.containers[1]);
        // Second pass: nothing left to do.
        let again = case.review(&patched);
        prop_assert!(again.allowed(), "{:?}", again.message());
        prop_assert!(again.patch.is_empty(), "second pass: {:?}", again.patch);
    }
}

/// Lines that look like policy, in any order and indentation: the parser must answer with
/// findings, never a panic.
fn policy_like_line() -> impl Strategy<Value = String> {
    let keys = prop::sample::select(vec![
        "kind",
        "name",
        "claimName",
        "mountPath",
        "subPath",
        "level",
        "readers",
        "writers",
        "users",
        "groups",
        "namespaces",
        "namespaceSelector",
        "matchLabels",
        "matchExpressions",
        "lmod",
        "env",
        "create",
        "size",
        "claimNameTemplate",
        "trustedSpawners",
        "notebookSelector",
        "---",
    ]);
    let values = prop::sample::select(vec![
        "",
        "Share",
        "Home",
        "Library",
        "Groups",
        "Settings",
        "public",
        "secret",
        "/a",
        "a/../b",
        "[x, y]",
        "{a: b}",
        "- x",
        "2Gi",
        "\"{user}\"",
        "~",
        "12",
        "[",
        "{",
        "'",
        "&a",
        "*a",
        "!!binary x",
    ]);
    (0usize..6, keys, values).prop_map(|(indent, k, v)| {
        if k == "---" {
            k.to_string()
        } else {
            format!("{}{k}: {v}", " ".repeat(indent))
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, .. ProptestConfig::default() })]

    #[test]
    fn any_policy_text_gives_findings_not_panics(lines in prop::collection::vec(policy_like_line(), 0..25)) {
        let text = lines.join("\n");
        let snap = policy(&text);
        for f in snap.findings() {
            prop_assert!(f.line >= 1 && f.line <= lines.len().max(1), "line {} of {}: {f}", f.line, lines.len());
        }
    }
}

/// Usernames built to collide: kept names, case variants, names with `--`, and names shaped like
/// the hashed slugs of other names.
fn colliding_username() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9]{1,6}",
        "[a-zA-Z0-9.@_-]{1,12}",
        "[a-z]{1,4}--[0-9a-f]{16}",
        "[a-z]{38,44}",
        "[a-z]{1,4}".prop_map(|s| notebook_volumes::admission::slug(&s.to_uppercase())),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    /// Two distinct usernames never map to one home claim name.
    #[test]
    fn distinct_usernames_never_share_a_slug(a in colliding_username(), b in colliding_username()) {
        use notebook_volumes::admission::slug;
        prop_assert!(a == b || slug(&a) != slug(&b), "{a:?} and {b:?} both slug to {}", slug(&a));
        // A slug is itself a valid DNS-1123 label part.
        let s = slug(&a);
        prop_assert!(!s.is_empty() && !s.starts_with('-') && !s.ends_with('-'), "{s}");
        prop_assert!(s.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-'), "{s}");
        // The slug of a slug that was hashed is never the slug itself: hashed names are not kept.
        if s != a {
            prop_assert_ne!(slug(&s), s.clone());
        }
    }
}
