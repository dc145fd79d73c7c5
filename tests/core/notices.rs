//! Events users see, from real decisions: which object each goes on, its type and reason.

use k8s_openapi::api::core::v1::Pod;
use notebook_volumes::admission::notices::{self, Notice};
use notebook_volumes::admission::request::pod_request;

use crate::fixtures::{Case, HUB, NS, controller_ref, example_pod, examples};

fn events(case: &Case, pod: &Pod) -> Vec<Notice> {
    let req = pod_request(pod, NS, &case.requester, case.dry_run, false).expect("request");
    notices::for_admission(&req, &case.review(pod))
}

fn reasons(notices: &[Notice]) -> Vec<(&'static str, bool)> {
    notices.iter().map(|n| (n.reason, n.warning)).collect()
}

#[test]
fn a_readers_read_write_mount_made_read_only_is_a_normal_event_on_the_pod() {
    let got = events(
        &Case::new(examples(), "bob"),
        &example_pod("batch-reads-finance"),
    );
    assert_eq!(reasons(&got), vec![(notices::FORCED_READ_ONLY, false)]);
    let n = &got[0];
    assert_eq!(n.regarding.kind.as_deref(), Some("Pod"));
    assert_eq!(n.regarding.name.as_deref(), Some("finance-report"));
    assert_eq!(n.regarding.namespace.as_deref(), Some(NS));
    assert!(n.wait_for_pod, "the pod is created after the answer");
    assert!(n.note.contains("finance"), "{}", n.note);
}

#[test]
fn a_writer_keeping_read_write_hears_nothing() {
    let got = events(
        &Case::new(examples(), "alice"),
        &example_pod("batch-reads-finance"),
    );
    assert!(got.is_empty(), "{got:?}");
}

#[test]
fn a_denied_bare_pod_is_a_warning_on_its_name() {
    let got = events(
        &Case::new(examples(), "mallory"),
        &example_pod("batch-reads-finance"),
    );
    assert_eq!(reasons(&got), vec![(notices::DENIED, true)]);
    let n = &got[0];
    assert_eq!(n.regarding.kind.as_deref(), Some("Pod"));
    assert_eq!(n.regarding.name.as_deref(), Some("finance-report"));
    assert!(!n.wait_for_pod, "a denied pod never exists");
    assert!(n.note.contains("pod 'finance-report' denied"), "{}", n.note);
}

#[test]
fn a_denied_controller_pod_is_a_warning_on_its_owner() {
    let mut pod = example_pod("batch-reads-finance");
    pod.metadata.owner_references = Some(vec![controller_ref("apps/v1", "StatefulSet", "reports")]);
    let got = events(&Case::new(examples(), "mallory"), &pod);
    assert_eq!(reasons(&got), vec![(notices::DENIED, true)]);
    let r = &got[0].regarding;
    assert_eq!(r.kind.as_deref(), Some("StatefulSet"));
    assert_eq!(r.api_version.as_deref(), Some("apps/v1"));
    assert_eq!(r.name.as_deref(), Some("reports"));
    assert_eq!(
        r.uid.as_deref(),
        Some("00000000-0000-0000-0000-000000000001")
    );
}

#[test]
fn a_secret_notebook_hears_of_its_home_and_of_write_protection() {
    let got = events(
        &Case::new(examples(), HUB),
        &example_pod("kubespawner-alice-secret"),
    );
    let kinds = reasons(&got);
    assert!(kinds.contains(&(notices::HOME_CREATED, false)), "{got:?}");
    assert!(
        kinds.contains(&(notices::WRITE_PROTECTED, false)),
        "{got:?}"
    );
    assert!(got.iter().all(|n| n.wait_for_pod));
    let home = got
        .iter()
        .find(|n| n.reason == notices::HOME_CREATED)
        .expect("home");
    assert!(home.note.contains("'alice'"), "{}", home.note);
}

#[test]
fn a_skipped_mount_is_a_warning() {
    let mut pod = example_pod("kubespawner-alice");
    let spec = pod.spec.as_mut().expect("spec");
    spec.volumes = Some(vec![
        serde_saphyr::from_str("{name: scratch, emptyDir: {}}").expect("volume"),
    ]);
    spec.containers[0].volume_mounts = Some(vec![
        serde_saphyr::from_str("{name: scratch, mountPath: /opt/apps}").expect("mount"),
    ]);
    let got = events(&Case::new(examples(), HUB), &pod);
    let skipped = got
        .iter()
        .find(|n| n.reason == notices::MOUNT_SKIPPED)
        .expect("skipped");
    assert!(skipped.warning);
    assert!(
        skipped.note.contains("library:apps not mounted"),
        "{}",
        skipped.note
    );
}

#[test]
fn dry_runs_record_nothing() {
    let mut case = Case::new(examples(), "mallory");
    case.dry_run = true;
    assert!(events(&case, &example_pod("batch-reads-finance")).is_empty());
}
