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
        .map(|r| (r.claim.clone(), r.verdict.clone()))
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
