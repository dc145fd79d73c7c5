//! Stamps on StatefulSets and Notebooks, and the pods trusted controllers make from them: each
//! way a user with `edit` could try to get a stamp the webhook did not write for them.

use k8s_openapi::api::core::v1::Pod;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, Operation};
use notebook_volumes::admission::request::{Requester, workload_request};
use notebook_volumes::admission::workload::{
    StampAction, WorkloadContext, WorkloadKind, WorkloadReview, first_pod, review_workload,
};
use notebook_volumes::keys;
use serde_json::{Value, json};

use crate::fixtures::*;

const NB_CONTROLLER: &str = "system:serviceaccount:kubeflow:notebook-controller-service-account";

fn statefulset(name: &str, annotations: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "serviceName": name,
            "selector": {"matchLabels": {"statefulset": name}},
            "template": {
                "metadata": {"labels": {"statefulset": name, "notebook-name": name}, "annotations": annotations},
                "spec": {"containers": [{"name": name, "image": "jupyter"}]}
            }
        }
    })
}

fn notebook(name: &str, annotations: Value) -> Value {
    json!({
        "apiVersion": "kubeflow.org/v1", "kind": "Notebook",
        "metadata": {"name": name, "namespace": NS, "annotations": annotations},
        "spec": {"template": {"spec": {"containers": [{"name": name, "image": "jupyter"}]}}}
    })
}

fn request(object: &Value, requester: &str) -> AdmissionRequest<DynamicObject> {
    let who = Requester {
        username: requester.into(),
        groups: vec![],
    };
    workload_request(object, NS, &who, false).expect("request")
}

fn update(old: &Value, new: &Value, requester: &str) -> AdmissionRequest<DynamicObject> {
    let mut req = request(new, requester);
    req.operation = Operation::Update;
    req.old_object = Some(serde_json::from_value(old.clone()).expect("old"));
    req
}

fn decide(req: &AdmissionRequest<DynamicObject>, owner: Option<&Value>) -> WorkloadReview {
    let policy = examples();
    let key = stamp_key();
    let ctx = WorkloadContext {
        policy: &policy,
        namespace: NS,
        stamp_key: Some(&key),
    };
    let owner: Option<DynamicObject> =
        owner.map(|o| serde_json::from_value(o.clone()).expect("owner"));
    review_workload(ctx, req, owner.as_ref())
}

/// The object after the review's patch.
fn patched(object: &Value, outcome: &WorkloadReview) -> Value {
    let mut v = object.clone();
    json_patch::patch(&mut v, &outcome.patch()).expect("patch applies");
    v
}

fn template_stamp(sts: &Value) -> Option<String> {
    sts.pointer("/spec/template/metadata/annotations")?
        .get(keys::STAMP_ANNOTATION)?
        .as_str()
        .map(str::to_string)
}

/// Whose pod the StatefulSet controller's first pod of `sts` is, and what it mounts.
fn pod_of(kind: WorkloadKind, object: &Value) -> (Option<String>, Vec<String>) {
    let pod: Pod = first_pod(kind, object).expect("pod");
    let outcome = Case::new(examples(), STS).review(&pod);
    assert!(outcome.allowed(), "{:?}", outcome.message());
    (
        outcome.user.clone(),
        outcome
            .mounts
            .iter()
            .map(|m| m.source.to_string())
            .collect(),
    )
}

#[test]
fn a_user_creating_a_statefulset_stamps_it_for_themself() {
    let sts = statefulset("bobs", json!({}));
    let outcome = decide(&request(&sts, "bob"), None);
    assert!(outcome.allowed(), "{:?}", outcome.message());
    assert_eq!(outcome.action, StampAction::Stamped("bob".into()));
    let stamped = patched(&sts, &outcome);
    assert_eq!(
        template_stamp(&stamped),
        Some(stamp_key().sign(NS, "bobs", "bob"))
    );
    let (user, mounts) = pod_of(WorkloadKind::StatefulSet, &stamped);
    assert_eq!(user.as_deref(), Some("bob"));
    assert!(mounts.contains(&"home".to_string()), "{mounts:?}");
}

#[test]
fn a_statefulset_template_naming_another_user_is_denied() {
    let sts = statefulset("evil", json!({"opendatahub.io/username": "alice"}));
    let outcome = decide(&request(&sts, "carol"), None);
    assert!(!outcome.allowed());
    assert!(
        outcome.message().unwrap().contains("alice"),
        "{:?}",
        outcome.message()
    );
}

#[test]
fn a_stamp_written_by_the_user_is_overwritten_with_their_own() {
    // carol copies alice's valid stamp (of another StatefulSet) and types one of her own.
    let alices = stamp_key().sign(NS, "alices", "alice");
    for forged in [
        alices.clone(),
        stamp_key().sign(NS, "evil", "alice"),
        "alice:AAAA".into(),
    ] {
        let sts = statefulset("evil", json!({ keys::STAMP_ANNOTATION: forged }));
        let outcome = decide(&request(&sts, "carol"), None);
        assert_eq!(outcome.action, StampAction::Stamped("carol".into()));
        let (user, _) = pod_of(WorkloadKind::StatefulSet, &patched(&sts, &outcome));
        assert_eq!(user.as_deref(), Some("carol"));
    }
}

#[test]
fn a_statefulset_the_webhook_never_saw_makes_anonymous_pods() {
    // Created before the namespace was enabled, or while the webhook was bypassed: its stamp
    // names alice but was not signed for this StatefulSet (copied) or not signed at all.
    for forged in [
        stamp_key().sign(NS, "alices", "alice"),
        "alice:forged".into(),
        "alice".into(),
    ] {
        let sts = statefulset(
            "evil",
            json!({ keys::STAMP_ANNOTATION: forged, "opendatahub.io/username": "alice" }),
        );
        let (user, mounts) = pod_of(WorkloadKind::StatefulSet, &sts);
        assert_eq!(user, None, "{forged}");
        assert!(mounts.is_empty(), "{mounts:?}");
    }
}

#[test]
fn editing_another_users_statefulset_template_is_denied_and_the_owner_keeps_it() {
    let alices = statefulset(
        "alices",
        json!({ keys::STAMP_ANNOTATION: stamp_key().sign(NS, "alices", "alice") }),
    );
    let mut poisoned = alices.clone();
    poisoned["spec"]["template"]["spec"]["containers"][0]["image"] = json!("carol-evil");
    let by_carol = decide(&update(&alices, &poisoned, "carol"), None);
    assert!(!by_carol.allowed(), "{:?}", by_carol.action);
    let message = by_carol.message().unwrap_or_default();
    assert!(message.contains("belongs to 'alice'"), "{message}");
    // Nor can a stamp rewritten in the same write make it someone else's.
    let mut forged = poisoned.clone();
    forged["spec"]["template"]["metadata"]["annotations"][keys::STAMP_ANNOTATION] =
        json!(stamp_key().sign(NS, "alices", "carol"));
    assert!(!decide(&update(&alices, &forged, "carol"), None).allowed());
    // The owner's own routine write (a restart) still works and stays hers.
    let mut restarted = alices.clone();
    restarted["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] =
        json!("2026-11-28T02:40:00Z");
    let by_alice = decide(&update(&alices, &restarted, "alice"), None);
    assert_eq!(by_alice.action, StampAction::Stamped("alice".into()));
    let (user, _) = pod_of(WorkloadKind::StatefulSet, &patched(&restarted, &by_alice));
    assert_eq!(user.as_deref(), Some("alice"));
}

#[test]
fn a_controller_rewriting_an_unowned_statefulset_template_clears_its_stamp() {
    // Orphaned from its Notebook (or never owned): the controller's new spec is nobody's.
    let alices = statefulset(
        "alices",
        json!({ keys::STAMP_ANNOTATION: stamp_key().sign(NS, "alices", "alice") }),
    );
    let mut rewritten = alices.clone();
    rewritten["spec"]["template"]["spec"]["containers"][0]["image"] = json!("carol-evil");
    let outcome = decide(&update(&alices, &rewritten, NB_CONTROLLER), None);
    assert_ne!(outcome.action, StampAction::Stamped("alice".into()));
    if outcome.allowed() {
        let (user, mounts) = pod_of(WorkloadKind::StatefulSet, &patched(&rewritten, &outcome));
        assert_eq!(user, None);
        assert!(mounts.is_empty(), "{mounts:?}");
    }
    // A write by the controller that leaves the template alone keeps the stamp.
    let mut scaled = alices.clone();
    scaled["spec"]["replicas"] = json!(0);
    let outcome = decide(&update(&alices, &scaled, NB_CONTROLLER), None);
    assert_eq!(outcome.action, StampAction::Stamped("alice".into()));
}

#[test]
fn the_notebook_controller_marking_a_notebook_keeps_its_stamp() {
    // The culler stops a Notebook with an annotation: alice's Notebook stays alice's.
    let alices = notebook(
        "alices",
        json!({ keys::STAMP_ANNOTATION: stamp_key().sign(NS, "alices", "alice") }),
    );
    let mut stopped = alices.clone();
    stopped["metadata"]["annotations"]["kubeflow-resource-stopped"] = json!("2026-11-28T03:00:00Z");
    let outcome = decide(&update(&alices, &stopped, NB_CONTROLLER), None);
    assert!(outcome.allowed(), "{:?}", outcome.message());
    assert_eq!(outcome.action, StampAction::Stamped("alice".into()));
    assert!(outcome.patch().is_empty());
}

#[test]
fn an_update_that_leaves_the_template_alone_keeps_the_stamp() {
    let alices = statefulset(
        "alices",
        json!({ keys::STAMP_ANNOTATION: stamp_key().sign(NS, "alices", "alice") }),
    );
    let mut scaled = alices.clone();
    scaled["spec"]["replicas"] = json!(0);
    scaled["metadata"]["finalizers"] = json!(["example.com/keep"]);
    let outcome = decide(
        &update(
            &alices,
            &scaled,
            "system:serviceaccount:kube-system:generic-garbage-collector",
        ),
        None,
    );
    assert_eq!(outcome.action, StampAction::Kept);
    assert!(outcome.patch().is_empty());
}

#[test]
fn an_untrusted_controller_or_system_identity_stamps_nobody() {
    let sts = statefulset("made-by-a-controller", json!({}));
    let outcome = decide(
        &request(&sts, "system:serviceaccount:ds-team:pipeline-runner"),
        None,
    );
    assert!(outcome.allowed());
    assert!(matches!(outcome.action, StampAction::Cleared(_)));
    assert_eq!(template_stamp(&patched(&sts, &outcome)), None);
}

#[test]
fn generate_name_gets_no_stamp() {
    let mut sts = statefulset("x", json!({}));
    sts["metadata"] = json!({"generateName": "nb-", "namespace": NS});
    let outcome = decide(&request(&sts, "bob"), None);
    assert!(outcome.allowed());
    assert!(
        matches!(outcome.action, StampAction::Cleared(_)),
        "{:?}",
        outcome.action
    );
    assert!(outcome.response.warnings.unwrap_or_default()[0].contains("generateName"));
}

#[test]
fn a_notebook_is_stamped_in_the_annotations_its_controller_copies() {
    let nb = notebook(
        "alices",
        json!({ keys::RELAYED_SECRET_SHARES_ANNOTATION: "mergers" }),
    );
    let outcome = decide(&request(&nb, "alice"), None);
    assert_eq!(outcome.action, StampAction::Stamped("alice".into()));
    let stamped = patched(&nb, &outcome);
    assert_eq!(
        stamped["metadata"]["annotations"][keys::STAMP_ANNOTATION],
        json!(stamp_key().sign(NS, "alices", "alice"))
    );
    // Relayed by the notebook controller's copy rule into a StatefulSet, then into a pod.
    let (user, mounts) = pod_of(WorkloadKind::Notebook, &stamped);
    assert_eq!(user.as_deref(), Some("alice"));
    assert!(mounts.contains(&"share:mergers".to_string()), "{mounts:?}");
    // The key keeps its prefix through the copy rule; notebook-volumes.io/ would not.
    assert!(
        !keys::STAMP_ANNOTATION.contains("notebook") && !keys::STAMP_ANNOTATION.contains("kubectl")
    );
}

#[test]
fn the_relay_carries_the_notebooks_current_stamp_not_the_template_it_writes() {
    let alices_nb = notebook(
        "nb",
        json!({ keys::STAMP_ANNOTATION: stamp_key().sign(NS, "nb", "alice") }),
    );
    let mut alices_nb = alices_nb;
    alices_nb["metadata"]["uid"] = json!("u");
    let mut sts = statefulset("nb", json!({ keys::STAMP_ANNOTATION: "mallory:forged" }));
    sts["metadata"]["ownerReferences"] = json!([{
        "apiVersion": "kubeflow.org/v1", "kind": "Notebook", "name": "nb", "uid": "u", "controller": true
    }]);
    let outcome = decide(&request(&sts, NB_CONTROLLER), Some(&alices_nb));
    assert_eq!(outcome.action, StampAction::Stamped("alice".into()));
    // A namesake Notebook made after the one the reference names (another uid) relays nothing.
    let mut namesake = alices_nb.clone();
    namesake["metadata"]["uid"] = json!("later");
    let outcome_namesake = decide(&request(&sts, NB_CONTROLLER), Some(&namesake));
    assert!(matches!(outcome_namesake.action, StampAction::Cleared(_)));
    assert_eq!(
        template_stamp(&patched(&sts, &outcome)),
        Some(stamp_key().sign(NS, "nb", "alice"))
    );
    // The Notebook is gone, or its stamp is not the webhook's: the StatefulSet gets none.
    let outcome = decide(&request(&sts, NB_CONTROLLER), None);
    assert!(matches!(outcome.action, StampAction::Cleared(_)));
    let forged_nb = notebook("nb", json!({ keys::STAMP_ANNOTATION: "alice:forged" }));
    let outcome = decide(&request(&sts, NB_CONTROLLER), Some(&forged_nb));
    assert!(matches!(outcome.action, StampAction::Cleared(_)));
    assert_eq!(template_stamp(&patched(&sts, &outcome)), None);
}

#[test]
fn a_trusted_controllers_pod_ignores_username_annotations() {
    let pod = example_pod("odh-bob");
    let outcome = Case::new(examples(), STS).review(&pod);
    assert!(outcome.allowed());
    assert_eq!(outcome.user, None);
    assert!(outcome.mounts.is_empty());
    // With bob's stamp for its StatefulSet it is bob's.
    let outcome = Case::new(examples(), STS).review(&stamped(pod, "bob-workbench", "bob"));
    assert_eq!(outcome.user.as_deref(), Some("bob"));
}
