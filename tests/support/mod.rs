//! Test support shared by the end-to-end tests (`mod support;`): a real
//! Kubernetes API server per test binary, clients acting as chosen users,
//! and throw-away namespaces.
//!
//! ```ignore
//! mod support;
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
//!
//! Each test binary uses a subset of these helpers.
#![allow(dead_code, unused_imports)]

mod cleanup;
mod cluster;
pub mod env;
mod namespace;
pub mod node;
pub mod process;
mod recording_webhook;
mod tls;
pub mod webhook;

pub use cleanup::DeleteOnDrop;
pub use cluster::{KUBECONFIG_ENV, TestCluster};
pub use namespace::TestNamespace;
pub use process::kustomize;
pub use recording_webhook::{AdmissionCall, RecordingWebhook, WEBHOOK_ANNOTATION};
pub use tls::{TestTls, install_crypto_provider};
