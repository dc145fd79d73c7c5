//! The support module's clients act as the identities they claim: checked
//! with SelfSubjectReview, which returns the user the API server saw.
//!
//! A second test binary on purpose: it starts its own API server, showing
//! that binaries run one after the other each get a working cluster.

use nv_test_support as support;

use k8s_openapi::api::authentication::v1::{SelfSubjectReview, UserInfo};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::Api;
use kube::api::PostParams;

use support::{TestCluster, TestNamespace};

async fn whoami(client: kube::Client) -> UserInfo {
    let review = Api::<SelfSubjectReview>::all(client)
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .expect("create SelfSubjectReview");
    review
        .status
        .and_then(|s| s.user_info)
        .expect("SelfSubjectReview returns the user")
}

#[tokio::test]
async fn admin_is_in_system_masters() {
    let user = whoami(TestCluster::shared().admin_client()).await;
    let groups = user.groups.unwrap_or_default();
    assert!(groups.iter().any(|g| g == "system:masters"), "{groups:?}");
}

#[tokio::test]
async fn client_as_impersonates_user_and_groups() {
    let client = TestCluster::shared().client_as("bob", &["notebook-users"]);
    let user = whoami(client).await;
    assert_eq!(user.username.as_deref(), Some("bob"));
    let mut groups = user.groups.unwrap_or_default();
    groups.sort();
    assert_eq!(groups, ["notebook-users", "system:authenticated"]);
}

#[tokio::test]
async fn client_as_service_account_carries_its_groups() {
    let ns = TestNamespace::new("identity-sa").await;
    let client = TestCluster::shared().client_as_service_account(ns.name(), "default");
    let user = whoami(client).await;
    assert_eq!(
        user.username,
        Some(format!("system:serviceaccount:{}:default", ns.name()))
    );
    let groups = user.groups.unwrap_or_default();
    for expected in [
        "system:serviceaccounts".to_owned(),
        format!("system:serviceaccounts:{}", ns.name()),
        "system:authenticated".to_owned(),
    ] {
        assert!(
            groups.contains(&expected),
            "{expected} missing from {groups:?}"
        );
    }
}

#[tokio::test]
async fn test_namespaces_are_unique_labelled_and_have_a_default_service_account() {
    let labels = [("notebook-volumes.test/purpose", "identity")];
    let first = TestNamespace::with_labels("identity-ns", &labels).await;
    let second = TestNamespace::with_labels("identity-ns", &labels).await;
    assert_ne!(first.name(), second.name());
    assert!(first.name().starts_with("identity-ns-"), "{}", first.name());

    let client = TestCluster::shared().admin_client();
    let stored = Api::<Namespace>::all(client.clone())
        .get(first.name())
        .await
        .expect("get test namespace");
    let stored_labels = stored.metadata.labels.unwrap_or_default();
    assert_eq!(
        stored_labels
            .get("notebook-volumes.test/purpose")
            .map(String::as_str),
        Some("identity")
    );
    Api::<ServiceAccount>::namespaced(client, first.name())
        .get("default")
        .await
        .expect("the default ServiceAccount exists");
}

#[tokio::test]
async fn dropped_test_namespace_is_deleted() {
    let client = TestCluster::shared().admin_client();
    let name = {
        let ns = TestNamespace::new("identity-drop").await;
        ns.name().to_owned()
    };
    // Without a namespace controller the namespace stays Terminating; on a
    // real cluster it may already be gone.
    match Api::<Namespace>::all(client).get(&name).await {
        Ok(ns) => assert!(
            ns.metadata.deletion_timestamp.is_some(),
            "{name} was not deleted"
        ),
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 404, "{status:?}"),
        Err(e) => panic!("get namespace {name}: {e}"),
    }
}
