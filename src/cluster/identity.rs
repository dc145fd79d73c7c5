//! The webhook's own username, as the API server authenticates it: the webhook creates home
//! claims through the same API server, and its claim guard must recognise those requests.

use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use kube::api::PostParams;
use kube::{Api, Client};

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(
        "cannot learn the webhook's own username with a SelfSubjectReview: {0}; the API server must be Kubernetes 1.28 or newer, or pass --webhook-username (for example system:serviceaccount:notebook-volumes:notebook-volumes)"
    )]
    Review(#[source] Box<kube::Error>),
    #[error(
        "the API server's SelfSubjectReview names no user; pass --webhook-username with the webhook's service account username"
    )]
    NoUsername,
}

/// Asks the API server who this client is.
pub async fn whoami(client: &Client) -> Result<String, IdentityError> {
    let api: Api<SelfSubjectReview> = Api::all(client.clone());
    let review = api
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .map_err(|e| IdentityError::Review(Box::new(e)))?;
    review
        .status
        .and_then(|s| s.user_info)
        .and_then(|u| u.username)
        .filter(|u| !u.is_empty())
        .ok_or(IdentityError::NoUsername)
}
