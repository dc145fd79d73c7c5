//! Stamps: the identity the webhook decided for whoever last wrote a StatefulSet or Notebook,
//! carried to the pods a trusted controller makes from it. A stamp is `<user>:<MAC>`, the MAC an
//! HMAC-SHA256 over the namespace, the owning object's name and the user, keyed with a secret only
//! the webhook holds: a stamp the webhook did not write (typed by a user, copied from another
//! object, or left on an object admitted while the webhook was not called) names nobody.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use k8s_openapi::api::authentication::v1::UserInfo;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use ring::hmac;

use super::identity::{self, Identity, IdentitySource, ImpersonationDenied, Subject};
use super::pod;
use crate::keys;
use crate::policy::PolicySnapshot;

/// Bytes of a generated key.
pub const KEY_BYTES: usize = 32;
/// Longest stamp value read; a username is far shorter (the MAC is 43 characters).
const MAX_STAMP: usize = 1024;
/// Domain separation: a MAC of this webhook's stamps is never valid for anything else.
const CONTEXT: &[u8] = b"notebook-volumes stamp v1";

/// The secret that makes a stamp unforgeable. Shared by every replica (a Secret in the webhook's
/// namespace); replacing it invalidates every stamp.
pub struct StampKey(hmac::Key);

impl std::fmt::Debug for StampKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StampKey(..)")
    }
}

/// A key that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the stamp key has {0} bytes; it needs at least {KEY_BYTES} random bytes (delete the Secret to let the webhook generate one)"
)]
pub struct ShortKey(pub usize);

/// The system's random source failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read random bytes from the operating system for a stamp key")]
pub struct NoRandom;

impl StampKey {
    pub fn new(bytes: &[u8]) -> Result<StampKey, ShortKey> {
        if bytes.len() < KEY_BYTES {
            return Err(ShortKey(bytes.len()));
        }
        Ok(StampKey(hmac::Key::new(hmac::HMAC_SHA256, bytes)))
    }

    /// Fresh random key bytes, for a new Secret or a process without a cluster.
    pub fn generate() -> Result<[u8; KEY_BYTES], NoRandom> {
        let mut bytes = [0u8; KEY_BYTES];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
            .map_err(|_| NoRandom)?;
        Ok(bytes)
    }

    fn message(namespace: &str, name: &str, user: &str) -> Vec<u8> {
        // Namespaces and names never contain a newline; the user comes last.
        let mut m =
            Vec::with_capacity(CONTEXT.len() + namespace.len() + name.len() + user.len() + 3);
        for part in [CONTEXT, namespace.as_bytes(), name.as_bytes()] {
            m.extend_from_slice(part);
            m.push(b'\n');
        }
        m.extend_from_slice(user.as_bytes());
        m
    }

    /// The stamp for `user` on the object `namespace/name`.
    pub fn sign(&self, namespace: &str, name: &str, user: &str) -> String {
        let tag = hmac::sign(&self.0, &Self::message(namespace, name, user));
        format!("{user}:{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// The user a stamp names, when the webhook wrote it for `namespace/name`.
    pub fn verify(&self, namespace: &str, name: &str, stamp: &str) -> Option<String> {
        if stamp.len() > MAX_STAMP {
            return None;
        }
        let (user, mac) = stamp.rsplit_once(':')?;
        let mac = URL_SAFE_NO_PAD.decode(mac).ok()?;
        if user.is_empty() || name.is_empty() {
            return None;
        }
        hmac::verify(&self.0, &Self::message(namespace, name, user), &mac).ok()?;
        Some(user.to_string())
    }
}

/// The owner reference of the controller that manages an object (`controller: true`).
pub fn controller_of(owners: Option<&Vec<OwnerReference>>) -> Option<&OwnerReference> {
    owners?.iter().find(|o| o.controller == Some(true))
}

/// Whether the requester is listed in `Settings.trustedControllers`.
pub fn is_trusted_controller(policy: &PolicySnapshot, user_info: &UserInfo) -> bool {
    let requester = user_info.username.as_deref().unwrap_or_default();
    policy
        .settings()
        .trusted_controllers
        .iter()
        .any(|c| c == requester)
}

/// Whose pod is this: §5's rule, and for a trusted controller the user of a valid stamp bound to
/// the pod's controlling owner (its StatefulSet), or nobody. Username annotations on such a pod are
/// not believed: anyone who can write a StatefulSet writes them.
pub fn identify_pod(
    policy: &PolicySnapshot,
    key: Option<&StampKey>,
    namespace: &str,
    user_info: &UserInfo,
    pod: &Pod,
    strict: bool,
) -> Result<Identity, ImpersonationDenied> {
    if !is_trusted_controller(policy, user_info) {
        return identity::identify(policy, user_info, pod::annotations(pod), strict);
    }
    let user = stamped_user(key, namespace, pod);
    let mut identity = match user {
        Some(user) => Identity::new(
            Subject {
                groups: policy.groups_of(&user),
                user: Some(user),
            },
            IdentitySource::Stamp,
        ),
        None => Identity::new(Subject::default(), IdentitySource::Anonymous),
    };
    // The template's groups annotation is as writable as its username annotation.
    if let Some(key) = &policy.settings().groups_annotation
        && pod::annotation(pod, key).is_some()
    {
        identity.ignored_groups = Some(key.clone());
    }
    Ok(identity)
}

/// The user of the pod's stamp, when it is valid for the pod's controlling owner.
fn stamped_user(key: Option<&StampKey>, namespace: &str, pod: &Pod) -> Option<String> {
    let owner = controller_of(pod.metadata.owner_references.as_ref())?;
    let stamp = pod::annotation(pod, keys::STAMP_ANNOTATION)?;
    key?.verify(namespace, &owner.name, stamp)
}

/// Whether a trusted controller's pod carries no stamp the webhook wrote for its owner.
pub fn unstamped(
    policy: &PolicySnapshot,
    key: Option<&StampKey>,
    namespace: &str,
    user_info: &UserInfo,
    pod: &Pod,
) -> bool {
    is_trusted_controller(policy, user_info) && stamped_user(key, namespace, pod).is_none()
}

/// The stamp annotation of a map, when present.
pub fn stamp_in(annotations: Option<&BTreeMap<String, String>>) -> Option<&str> {
    annotations?.get(keys::STAMP_ANNOTATION).map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> StampKey {
        StampKey::new(&[7u8; KEY_BYTES]).unwrap()
    }

    #[test]
    fn a_stamp_names_its_user_only_for_the_object_it_was_signed_for() {
        let k = key();
        let stamp = k.sign("team", "bobs-notebook", "bob");
        assert!(stamp.starts_with("bob:"), "{stamp}");
        assert_eq!(
            k.verify("team", "bobs-notebook", &stamp).as_deref(),
            Some("bob")
        );
        assert_eq!(k.verify("team", "carols-notebook", &stamp), None);
        assert_eq!(k.verify("other", "bobs-notebook", &stamp), None);
    }

    #[test]
    fn a_stamp_with_another_user_or_key_names_nobody() {
        let k = key();
        let stamp = k.sign("team", "nb", "bob");
        let (_, mac) = stamp.rsplit_once(':').unwrap();
        assert_eq!(k.verify("team", "nb", &format!("alice:{mac}")), None);
        assert_eq!(k.verify("team", "nb", "bob"), None);
        assert_eq!(k.verify("team", "nb", "bob:"), None);
        assert_eq!(k.verify("team", "nb", &"a".repeat(5000)), None);
        let other = StampKey::new(&[8u8; KEY_BYTES]).unwrap();
        assert_eq!(other.verify("team", "nb", &stamp), None);
    }

    #[test]
    fn usernames_with_colons_round_trip() {
        let k = key();
        let user = "system:serviceaccount:team:runner";
        let stamp = k.sign("team", "nb", user);
        assert_eq!(k.verify("team", "nb", &stamp).as_deref(), Some(user));
    }

    #[test]
    fn short_keys_are_refused() {
        assert_eq!(StampKey::new(&[1u8; 16]).unwrap_err(), ShortKey(16));
        assert!(StampKey::generate().is_ok());
    }
}
