//! Throw-away namespaces, one per test, so tests running in parallel on the
//! shared API server never see each other's objects.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};

use super::TestCluster;
use super::cleanup::DeleteOnDrop;

/// Label on every test namespace, to find leftovers on a long-lived cluster:
/// `kubectl delete namespace -l notebook-volumes.test/e2e`.
pub const TEST_NAMESPACE_LABEL: &str = "notebook-volumes.test/e2e";

/// A namespace with a unique name, deleted (best effort) on drop.
///
/// It gets a `default` ServiceAccount right away: the test API server runs
/// no controller-manager to create one, and the ServiceAccount admission
/// plugin (kept on, as in real clusters) refuses pods without it.
///
/// Note: without the namespace controller, a deleted namespace stays
/// `Terminating` on the test API server; that is harmless there.
pub struct TestNamespace {
    name: String,
    _delete: DeleteOnDrop,
}

impl TestNamespace {
    /// Creates `<prefix>-<unique suffix>`.
    pub async fn new(prefix: &str) -> TestNamespace {
        Self::with_labels(prefix, &[]).await
    }

    /// Creates `<prefix>-<unique suffix>` carrying `labels`, for example to
    /// match a webhook's `namespaceSelector`.
    pub async fn with_labels(prefix: &str, labels: &[(&str, &str)]) -> TestNamespace {
        let client = TestCluster::shared().admin_client();
        let name = unique_name(prefix);
        let mut all_labels: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        all_labels.insert(TEST_NAMESPACE_LABEL.to_owned(), "true".to_owned());
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some(all_labels),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .unwrap_or_else(|e| panic!("cannot create test namespace {name}: {e}"));
        let guard = TestNamespace {
            _delete: DeleteOnDrop::cluster_scoped::<Namespace>(&name),
            name,
        };
        guard.ensure_default_service_account(&client).await;
        guard
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    async fn ensure_default_service_account(&self, client: &Client) {
        let account = ServiceAccount {
            metadata: ObjectMeta {
                name: Some("default".to_owned()),
                ..ObjectMeta::default()
            },
            ..ServiceAccount::default()
        };
        match Api::<ServiceAccount>::namespaced(client.clone(), &self.name)
            .create(&PostParams::default(), &account)
            .await
        {
            Ok(_) => {}
            // A real cluster's controller may have been first.
            Err(kube::Error::Api(status)) if status.is_already_exists() => {}
            Err(e) => panic!("cannot create ServiceAccount default in {}: {e}", self.name),
        }
    }
}

/// `<prefix>-<time and process><counter>`: unique within a run, and across
/// runs against the same long-lived cluster. At most 63 characters.
fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let prefix: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    let prefix = match prefix.trim_matches('-') {
        "" => "test",
        p => p,
    };
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default();
    let seed = (nanos ^ u64::from(std::process::id())).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 16;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}{n}", base36(seed % 36u64.pow(6)))
}

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = vec![b'0'; 6];
    for slot in out.iter_mut().rev() {
        *slot = DIGITS[(n % 36) as usize];
        n /= 36;
    }
    String::from_utf8(out).expect("ASCII digits")
}
