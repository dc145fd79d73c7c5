//! Test support shared by the end-to-end tests, the demo and the cluster benchmark (the dev-only
//! crate `nv-test-support`): a real Kubernetes API server per test binary, clients acting as
//! chosen users, and throw-away namespaces.
//!
//! ```ignore
//! use nv_test_support as support;
//! use support::{TestCluster, TestNamespace};
//!
//! #[tokio::test]
//! async fn example() {
//!     let cluster = TestCluster::shared(); // started once per test binary
//!     let admin = cluster.admin_client(); // clients per test: bound to its runtime
//!     let ns = TestNamespace::new("example").await; // unique, deleted on drop
//!     let alice = cluster.client_as("alice", &["notebook-users"]);
//!     let robot = cluster.client_as_service_account(ns.name(), "default");
//! }
//! ```

pub mod apply;
pub mod cleanup;
pub mod cluster;
pub mod env;
pub mod helm;
pub mod http;
pub mod hub;
pub mod namespace;
pub mod node;
pub mod openshift;
pub mod pod;
pub mod process;
pub mod recording_webhook;
pub mod server_config;
pub mod tls;
pub mod webhook;

/// A path in the repository (this crate sits in `tests/support`).
pub fn repo(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

pub use cleanup::DeleteOnDrop;
pub use cluster::{KUBECONFIG_ENV, TestCluster};
pub use helm::{Helm, HelmOutput};
pub use namespace::TestNamespace;
pub use process::{kustomize, kustomize_base_with};
pub use recording_webhook::{AdmissionCall, RecordingWebhook, WEBHOOK_ANNOTATION};
pub use tls::{TestTls, install_crypto_provider};
