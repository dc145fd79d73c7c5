//! Everything a decision reads besides the request: one value, passed down by copy.

use super::claims::ClaimLookup;
use super::stamp::StampKey;
use crate::policy::{NamespaceInfo, PolicySnapshot};

#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub policy: &'a PolicySnapshot,
    pub namespace: &'a NamespaceInfo,
    pub claims: &'a dyn ClaimLookup,
    /// The webhook's own username (it creates home claims), when known.
    pub webhook_user: Option<&'a str>,
    /// The key of the stamps on StatefulSets and Notebooks; without it no stamp is believed.
    pub stamp_key: Option<&'a StampKey>,
}
