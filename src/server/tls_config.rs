//! The rustls configuration of the webhook port: the reloading serving pair and, with
//! `--client-ca-file`, the reloading client verifier.

use std::sync::Arc;

use rustls::ServerConfig;

use super::client_auth::ReloadingClientVerifier;
use super::tls::ReloadingResolver;
use super::tls_files::{TlsError, provider};

/// TLS 1.2 and 1.3 with rustls' safe defaults, certificates from the resolver. With a client
/// verifier (`--client-ca-file`) a client certificate is required; without, any client may
/// connect (the API server authenticates the webhook, not the other way round).
pub fn server_config(
    resolver: Arc<ReloadingResolver>,
    clients: Option<Arc<ReloadingClientVerifier>>,
) -> Result<ServerConfig, TlsError> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?;
    let builder = match clients {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    Ok(builder.with_cert_resolver(resolver))
}
