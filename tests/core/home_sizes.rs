//! `Home.sizes`: size tiers by group for the claims the webhook creates, first match wins.

use notebook_volumes::admission::Effect;

use crate::fixtures::*;

const POLICY: &str = "kind: Home
claimNameTemplate: home-{user}
mountPath: /home/jovyan
create: {size: 2Gi}
sizes:
- {groups: [gpu-users], size: 50Gi}
- {groups: [analysts, gpu-users], size: 10Gi}
";

fn created_size(user: &str, groups: &[&str]) -> String {
    let case = Case::new(policy(POLICY), user).groups(groups);
    let pod = pod(&format!(
        "metadata:\n  name: nb\n  labels: {{component: singleuser-server}}\n  annotations: {{hub.jupyter.org/username: {user}}}\nspec:\n  containers: [{{name: notebook, image: x}}]\n"
    ));
    let outcome = case.review(&pod);
    assert!(outcome.allowed(), "{:?}", outcome.message());
    let [Effect::CreateClaim(pvc)] = outcome.effects.as_slice() else {
        panic!("expected a home creation, got {:?}", outcome.effects)
    };
    pvc.spec
        .as_ref()
        .unwrap()
        .resources
        .as_ref()
        .unwrap()
        .requests
        .as_ref()
        .unwrap()["storage"]
        .0
        .clone()
}

#[test]
fn the_first_tier_naming_one_of_the_users_groups_gives_the_size() {
    assert_eq!(created_size("alice", &[]), "2Gi");
    assert_eq!(created_size("bob", &["analysts"]), "10Gi");
    // In both tiers: the first wins.
    assert_eq!(created_size("carol", &["analysts", "gpu-users"]), "50Gi");
}

#[test]
fn check_validates_every_tier() {
    let errors = |text: &str| -> Vec<String> {
        policy(text)
            .findings()
            .map(|f| format!("{} {}", f.field.clone().unwrap_or_default(), f.message))
            .collect()
    };
    let bad_size = errors(
        "kind: Home\nclaimNameTemplate: home-{user}\nmountPath: /h\ncreate: {size: 2Gi}\nsizes: [{groups: [a], size: lots}]\n",
    );
    assert!(
        bad_size.iter().any(|e| e.starts_with("sizes[0].size")),
        "{bad_size:?}"
    );
    let no_groups = errors(
        "kind: Home\nclaimNameTemplate: home-{user}\nmountPath: /h\ncreate: {size: 2Gi}\nsizes: [{groups: [], size: 5Gi}]\n",
    );
    assert!(
        no_groups.iter().any(|e| e.starts_with("sizes[0].groups")),
        "{no_groups:?}"
    );
    let no_create = errors(
        "kind: Home\nclaimNameTemplate: home-{user}\nmountPath: /h\nsizes: [{groups: [a], size: 5Gi}]\n",
    );
    assert!(
        no_create.iter().any(|e| e.starts_with("sizes ")),
        "{no_create:?}"
    );
    assert!(errors(POLICY).is_empty());
}

/// An existing home of alice's, requesting `requested`, with an earlier refusal if any.
fn existing(requested: &str, refused: Option<&str>) -> Case {
    let mut case = Case::new(policy(POLICY), "alice").groups(&["analysts"]);
    case.claims.insert(
        (NS.into(), "home-alice".into()),
        notebook_volumes::admission::ClaimInfo {
            home: true,
            owner: Some("alice".into()),
            requested: Some(requested.into()),
            growth_refused: refused.map(str::to_string),
            ..Default::default()
        },
    );
    case
}

fn alices_notebook() -> k8s_openapi::api::core::v1::Pod {
    pod(
        "metadata:\n  name: nb\n  labels: {component: singleuser-server}\n  annotations: {hub.jupyter.org/username: alice}\nspec:\n  containers: [{name: notebook, image: x}]\n",
    )
}

#[test]
fn a_home_smaller_than_its_tier_is_grown_with_a_warning_never_shrunk() {
    let outcome = existing("2Gi", None).review(&alices_notebook());
    assert!(outcome.allowed());
    assert_eq!(
        outcome.effects,
        vec![Effect::GrowClaim {
            namespace: NS.into(),
            claim: "home-alice".into(),
            size: "10Gi".into()
        }]
    );
    assert!(
        outcome.warnings.iter().any(|w| w.contains("growing it")),
        "{:?}",
        outcome.warnings
    );
    // Larger than the tier already (in another unit): left alone.
    let bigger = existing("20000M", None).review(&alices_notebook());
    assert!(
        bigger.effects.is_empty() && bigger.warnings.is_empty(),
        "{:?}",
        bigger.warnings
    );
    // A dry run queues nothing.
    let mut dry = existing("2Gi", None);
    dry.dry_run = true;
    assert!(dry.review(&alices_notebook()).effects.is_empty());
}

#[test]
fn a_refused_growth_is_a_warning_and_not_queued_again() {
    let outcome = existing(
        "2Gi",
        Some("10Gi: StorageClass 'fixed' does not allow volume expansion (allowVolumeExpansion)"),
    )
    .review(&alices_notebook());
    assert!(outcome.allowed() && outcome.effects.is_empty());
    assert!(
        outcome
            .warnings
            .iter()
            .any(|w| w.contains("cannot be grown") && w.contains("does not allow volume expansion")),
        "{:?}",
        outcome.warnings
    );
    // A refusal for another size (the policy changed since) is tried again.
    let retried = existing("2Gi", Some("5Gi: no")).review(&alices_notebook());
    assert_eq!(retried.effects.len(), 1);
}
