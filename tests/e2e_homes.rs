//! End-to-end: homes over their life, against a real API server with the webhook registered:
//! `adopt` (migration from a spawner's claims), then what the webhook trusts afterwards.

use nv_test_support as support;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::Api;
use kube::api::PostParams;
use notebook_volumes::admission::adoption::Verdict;
use notebook_volumes::cli::adopt::{AdoptArgs, execute};
use notebook_volumes::cli::policy_args::PolicyNamespace;
use notebook_volumes::keys;
use serde_json::json;
use support::env::{Env, claim_pod, denial};
use support::webhook::*;

fn adopt_args(env: &Env, pattern: &str, dry_run: bool) -> AdoptArgs {
    AdoptArgs {
        namespace: env.ns.name().to_string(),
        preset: None,
        pattern: Some(pattern.into()),
        policies: vec![],
        policy_namespace: PolicyNamespace {
            policy_namespace: notebook_volumes::policy::DEFAULT_POLICY_NAMESPACE.into(),
        },
        dry_run,
        kubeconfig: None,
    }
}

/// An unmarked 1Gi claim, made by an administrator (as a spawner did before the webhook).
async fn old_claim(env: &Env, name: &str) {
    let claim: PersistentVolumeClaim = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    }))
    .unwrap();
    env.claims()
        .create(&PostParams::default(), &claim)
        .await
        .unwrap_or_else(|e| panic!("claim {name}: {e}"));
}

fn dry() -> PostParams {
    PostParams {
        dry_run: true,
        ..Default::default()
    }
}

fn marks(claim: &PersistentVolumeClaim) -> (Option<String>, Option<String>) {
    (
        claim
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(keys::HOME_LABEL).cloned()),
        claim
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(keys::OWNER_ANNOTATION).cloned()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopt_marks_spawner_claims_as_homes_and_refuses_claims_another_user_mounts() {
    let env = Env::start().await;
    for name in ["claim-alice", "claim-dave", "home-erin"] {
        old_claim(&env, name).await;
    }
    // bob uses dave's old claim (it is an ordinary claim until adopted).
    let bob: Api<Pod> = env.pods_as_user("bob", &[]);
    let mut job = claim_pod("bobs-job", "claim-dave");
    job.metadata.annotations =
        Some([("hub.jupyter.org/username".to_string(), "bob".to_string())].into());
    bob.create(&PostParams::default(), &job)
        .await
        .expect("bob's pod mounting an unmarked claim");
    // An unmarked claim under the Home template's name is never trusted.
    let hub = env.pods_as(HUB);
    let refused = denial(
        hub.create(&dry(), &notebook_pod("jupyter-erin", "erin", &[]))
            .await,
    );
    assert!(refused.contains("home-erin"), "{refused}");

    // The plan, changing nothing.
    let plan = execute(&env.admin, &adopt_args(&env, "claim-{username}", true))
        .await
        .expect("dry run");
    let verdicts: Vec<(String, Verdict)> = plan
        .iter()
        .map(|r| (r.claim.name.clone(), r.verdict.clone()))
        .collect();
    assert_eq!(verdicts.len(), 2, "{verdicts:?}");
    assert_eq!(verdicts[0], ("claim-alice".into(), Verdict::Adopt));
    assert!(
        matches!(&verdicts[1], (c, Verdict::Conflict(why)) if c == "claim-dave" && why.contains("'bob'")),
        "{verdicts:?}"
    );
    let untouched = env.claims().get("claim-alice").await.unwrap();
    assert_eq!(marks(&untouched), (None, None), "a dry run marks nothing");

    // Applied: alice's claim carries the webhook's marks; dave's is left alone.
    execute(&env.admin, &adopt_args(&env, "claim-{username}", false))
        .await
        .expect("adopt");
    let adopted = env.claims().get("claim-alice").await.unwrap();
    assert_eq!(marks(&adopted), (Some("true".into()), Some("alice".into())));
    assert_eq!(
        marks(&env.claims().get("claim-dave").await.unwrap()),
        (None, None)
    );
    // The webhook now treats it as alice's home: bob may no longer mount it, alice may.
    let refused = denial(bob.create(&dry(), &claim_pod("grab", "claim-alice")).await);
    assert!(refused.contains("alice"), "{refused}");
    env.pods_as_user("alice", &[])
        .create(&dry(), &claim_pod("mine", "claim-alice"))
        .await
        .expect("alice mounts her adopted home");

    // Under the Home template's own name: once adopted, erin's notebook starts with it.
    let rows = execute(&env.admin, &adopt_args(&env, "home-{username}", false))
        .await
        .expect("adopt home-erin");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].verdict, Verdict::Adopt);
    hub.create(&dry(), &notebook_pod("jupyter-erin", "erin", &[]))
        .await
        .expect("erin's notebook with her adopted home");
    // Adopting again changes nothing.
    let again = execute(&env.admin, &adopt_args(&env, "home-{username}", true))
        .await
        .unwrap();
    assert_eq!(again[0].verdict, Verdict::Already);
    env.stop().await;
}

/// Each launch offers the home claim a last-used stamp, written in the background at most once a
/// day; `homes` lists it with its owner and size, and prints (never runs) the commands to review
/// a home whose owner the policy no longer names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launches_stamp_the_last_use_once_a_day_and_homes_lists_them() {
    let env = Env::start().await;
    let hub = env.pods_as(HUB);
    hub.create(
        &PostParams::default(),
        &notebook_pod("jupyter-frank", "frank", &[]),
    )
    .await
    .expect("frank's notebook");
    let claims = env.claims();
    wait_until(
        "the last-used stamp is written",
        std::time::Duration::from_secs(30),
        || {
            let claims = claims.clone();
            async move {
                claims.get("home-frank").await.ok().is_some_and(|c| {
                    c.metadata
                        .annotations
                        .is_some_and(|a| a.contains_key(keys::LAST_USED_ANNOTATION))
                })
            }
        },
    )
    .await;
    let first = claims
        .get("home-frank")
        .await
        .unwrap()
        .metadata
        .annotations
        .unwrap()[keys::LAST_USED_ANNOTATION]
        .clone();
    assert!(first.ends_with('Z') && first.len() >= 20, "{first}");
    // A second launch the same day: no second write.
    hub.create(
        &PostParams::default(),
        &notebook_pod("jupyter-frank-2", "frank", &[]),
    )
    .await
    .expect("frank's second notebook");
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let second = claims
        .get("home-frank")
        .await
        .unwrap()
        .metadata
        .annotations
        .unwrap()[keys::LAST_USED_ANNOTATION]
        .clone();
    assert_eq!(first, second, "stamped at most once a day");
    let metrics = env.metrics().await;
    assert!(
        metrics.contains("notebook_volumes_home_last_used_written_total 1\n"),
        "{metrics}"
    );
    assert!(metrics.contains("notebook_volumes_home_last_used_dropped_total 0\n"));

    let policies = tempfile::tempdir().unwrap();
    std::fs::write(
        policies.path().join("groups.yaml"),
        "kind: Groups\ngroups: {team: [alice]}\n",
    )
    .unwrap();
    let args = notebook_volumes::cli::homes::HomesArgs {
        namespace: env.ns.name().to_string(),
        policies: vec![policies.path().to_path_buf()],
        policy_namespace: PolicyNamespace {
            policy_namespace: notebook_volumes::policy::DEFAULT_POLICY_NAMESPACE.into(),
        },
        unused_days: 90,
        kubeconfig: None,
    };
    let rows = notebook_volumes::cli::homes::execute(&env.admin, &args)
        .await
        .expect("homes");
    let frank = rows
        .iter()
        .find(|r| r.claim.name == "home-frank")
        .expect("frank's home is listed");
    assert_eq!(frank.claim.user.as_deref(), Some("frank"));
    assert_eq!(frank.claim.size, "2Gi");
    assert_eq!(frank.last_used.as_deref(), Some(first.as_str()));
    assert_eq!(frank.in_policy, notebook_volumes::cli::homes::InPolicy::No);
    assert!(frank.review.is_some());
    // Listing deletes nothing.
    assert!(claims.get_opt("home-frank").await.unwrap().is_some());
    env.stop().await;
}

/// A home claim smaller than its policy size (the example Home creates 2Gi) is grown in the
/// background when its StorageClass allows expansion, and otherwise keeps its size with the reason
/// noted on the claim (the next launch's warning). Nothing here provisions volumes, so the claim's
/// requested size is what is checked, not a resized filesystem.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_home_smaller_than_its_policy_size_grows_only_where_its_storage_class_allows() {
    use k8s_openapi::api::storage::v1::StorageClass;
    use kube::api::{Patch, PatchParams};
    let env = Env::start().await;
    let suffix = env.ns.name().to_string();
    let classes: Api<StorageClass> = Api::all(env.admin.clone());
    for (name, expand) in [("growable", true), ("fixed", false)] {
        let sc: StorageClass = serde_json::from_value(json!({
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": format!("{name}-{suffix}")},
            "provisioner": "example.com/none",
            "allowVolumeExpansion": expand,
        }))
        .unwrap();
        classes.create(&PostParams::default(), &sc).await.unwrap();
    }
    for (user, class) in [("bob", "growable"), ("alice", "fixed")] {
        let claim: PersistentVolumeClaim = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {
                "name": format!("home-{user}"),
                "labels": {keys::HOME_LABEL: "true"},
                "annotations": {keys::OWNER_ANNOTATION: user},
            },
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": format!("{class}-{suffix}"),
                "resources": {"requests": {"storage": "1Gi"}}
            }
        }))
        .unwrap();
        env.claims()
            .create(&PostParams::default(), &claim)
            .await
            .unwrap();
        // The API server expands only bound claims; nothing binds them here.
        env.claims()
            .patch_status(
                &format!("home-{user}"),
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"phase": "Bound"}})),
            )
            .await
            .unwrap();
    }
    for user in ["bob", "alice"] {
        env.pods_as_user(user, &[])
            .create(
                &PostParams::default(),
                &notebook_pod(&format!("jupyter-{user}"), user, &[]),
            )
            .await
            .unwrap_or_else(|e| panic!("{user}'s notebook: {e}"));
    }
    let claims = env.claims();
    let requested = |c: &PersistentVolumeClaim| {
        c.spec
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
    };
    wait_until(
        "bob's home is grown to 2Gi",
        std::time::Duration::from_secs(30),
        || {
            let claims = claims.clone();
            async move {
                claims
                    .get("home-bob")
                    .await
                    .is_ok_and(|c| requested(&c) == "2Gi")
            }
        },
    )
    .await;
    wait_until(
        "alice's home notes why it cannot grow",
        std::time::Duration::from_secs(30),
        || {
            let claims = claims.clone();
            async move {
                claims.get("home-alice").await.is_ok_and(|c| {
                    c.metadata
                        .annotations
                        .is_some_and(|a| a.contains_key(keys::GROWTH_REFUSED_ANNOTATION))
                })
            }
        },
    )
    .await;
    let alice = claims.get("home-alice").await.unwrap();
    assert_eq!(requested(&alice), "1Gi", "never grown without expansion");
    let note = &alice.metadata.annotations.unwrap()[keys::GROWTH_REFUSED_ANNOTATION];
    assert!(
        note.starts_with("2Gi: ") && note.contains("does not allow volume expansion"),
        "{note}"
    );
    let metrics = env.metrics().await;
    assert!(
        metrics.contains("notebook_volumes_home_growths_total{reason=\"grown\"} 1\n"),
        "{metrics}"
    );
    for name in ["growable", "fixed"] {
        let _ = classes
            .delete(&format!("{name}-{suffix}"), &Default::default())
            .await;
    }
    env.stop().await;
}
