//! Home claim I/O on the hot path: the user's home claim from the cache when the cache can
//! vouch for it, else one GET; and creating it. Two notebooks of the same user may start at
//! once, so AlreadyExists and conflicts are expected and resolved by reading the claim again.

use std::sync::Arc;

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::PostParams;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client};

use crate::admission::{ClaimInfo, ClaimLookup};
use crate::keys;

#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error(
        "cannot read PersistentVolumeClaim {namespace}/{name}: {source}; check that the webhook may get persistentvolumeclaims, then start the notebook again"
    )]
    Get {
        namespace: String,
        name: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error(
        "cannot read pod {namespace}/{name} to check a connection into it: {source}; check that the webhook may get pods, then retry"
    )]
    GetPod {
        namespace: String,
        name: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error(
        "cannot create the home PersistentVolumeClaim {namespace}/{name}: {source}; check the webhook's RBAC (create persistentvolumeclaims), the storage class and the namespace quota, then start the notebook again"
    )]
    Create {
        namespace: String,
        name: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error(
        "home PersistentVolumeClaim {namespace}/{name} belongs to '{owner}', not '{user}' (it was claimed at the same moment); an administrator should check its {annotation} annotation",
        annotation = keys::OWNER_ANNOTATION
    )]
    Taken {
        namespace: String,
        name: String,
        owner: String,
        user: String,
    },
}

/// The user's home claim from the cache of home-labelled claims, only when the cache can vouch
/// for it: the claim is there, labelled a home, annotated as `user`'s and not being deleted, and
/// the cache's watch is current (`watch_current`). Anything else (a miss, another owner, a
/// stale watch) is `None`, and the caller reads the claim live: a miss may be a claim created a
/// moment ago, and a denial is never decided from the cache.
///
/// Why a hit is safe: only administrators may change a home claim's labels or owner
/// annotation, or create a claim under a name the policy reserves for a user (the claim guard),
/// so the cache can lag only behind an administrator's re-assignment or a deletion, by the
/// watch's delay (milliseconds); while the watch is failing, every read is live.
pub fn cached_home(
    cache: &Store<PersistentVolumeClaim>,
    watch_current: bool,
    namespace: &str,
    name: &str,
    user: &str,
) -> Option<Arc<PersistentVolumeClaim>> {
    if !watch_current {
        return None;
    }
    let pvc = cache.get(&ObjectRef::new(name).within(namespace))?;
    let info = ClaimInfo::of(&pvc);
    let vouched = info.home
        && info.owner.as_deref() == Some(user)
        && pvc.metadata.deletion_timestamp.is_none();
    vouched.then_some(pvc)
}

/// The cache of home-labelled claims is current and holds no claim named `name`: a first
/// launch, most likely. Only a hint: a claim without the home label (one a spawner made, or
/// created while the namespace was not enabled) is not in this cache, nor one created a moment
/// ago; the caller creates the claim directly and reads it live if the creation finds it there.
pub fn cache_knows_none(
    cache: &Store<PersistentVolumeClaim>,
    watch_current: bool,
    namespace: &str,
    name: &str,
) -> bool {
    watch_current && cache.get(&ObjectRef::new(name).within(namespace)).is_none()
}

/// GET one claim; `None` when it does not exist.
pub async fn get(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<Option<PersistentVolumeClaim>, ClaimError> {
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    api.get_opt(name).await.map_err(|source| ClaimError::Get {
        namespace: namespace.into(),
        name: name.into(),
        source: Box::new(source),
    })
}

/// GET one pod (for a connection into it); `None` when it does not exist.
pub async fn get_pod(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<Option<k8s_openapi::api::core::v1::Pod>, ClaimError> {
    let api: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), namespace);
    api.get_opt(name)
        .await
        .map_err(|source| ClaimError::GetPod {
            namespace: namespace.into(),
            name: name.into(),
            source: Box::new(source),
        })
}

/// What creating the home claim came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// This call made it.
    New,
    /// Another admission of the same user created it first.
    AlreadyOwned,
    /// A claim of that name is there (only from `try_create`, which does not read it).
    Exists,
}

/// Creates the home claim; on AlreadyExists, accepts it only if it belongs to `user`.
pub async fn create(
    client: &Client,
    pvc: &PersistentVolumeClaim,
    user: &str,
) -> Result<Created, ClaimError> {
    match try_create(client, pvc).await? {
        Created::Exists => {
            let (namespace, name) = namespace_and_name(pvc);
            let existing = get(client, &namespace, &name).await?;
            check_owner(&namespace, &name, existing.as_ref(), user).map(|()| Created::AlreadyOwned)
        }
        done => Ok(done),
    }
}

/// Creates the claim, or reports `Created::Exists` (AlreadyExists) without reading it: the
/// API server's create is the atomic "if absent" the caller builds on.
pub async fn try_create(
    client: &Client,
    pvc: &PersistentVolumeClaim,
) -> Result<Created, ClaimError> {
    let (namespace, name) = namespace_and_name(pvc);
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &namespace);
    match api.create(&PostParams::default(), pvc).await {
        Ok(_) => Ok(Created::New),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(Created::Exists),
        Err(source) => Err(ClaimError::Create {
            namespace,
            name,
            source: Box::new(source),
        }),
    }
}

fn namespace_and_name(pvc: &PersistentVolumeClaim) -> (String, String) {
    (
        pvc.metadata.namespace.clone().unwrap_or_default(),
        pvc.metadata.name.clone().unwrap_or_default(),
    )
}

fn check_owner(
    namespace: &str,
    name: &str,
    pvc: Option<&PersistentVolumeClaim>,
    user: &str,
) -> Result<(), ClaimError> {
    let owner = pvc.and_then(|p| ClaimInfo::of(p).owner).unwrap_or_default();
    if owner == user {
        Ok(())
    } else {
        Err(ClaimError::Taken {
            namespace: namespace.into(),
            name: name.into(),
            owner: if owner.is_empty() {
                "nobody (no owner annotation)".into()
            } else {
                owner
            },
            user: user.into(),
        })
    }
}

/// The claims one admission sees: the home claim just fetched, and the cache of home-labelled
/// claims for the guard's owner check of claims the pod mounts itself.
pub struct AdmissionClaims<'a> {
    /// (namespace, name, the claim if it exists).
    pub fetched: Option<(&'a str, &'a str, Option<&'a PersistentVolumeClaim>)>,
    pub cache: Option<&'a Store<PersistentVolumeClaim>>,
    /// Every claim (slimmed), for the readiness of share and library claims.
    pub volumes: Option<&'a Store<PersistentVolumeClaim>>,
}

impl ClaimLookup for AdmissionClaims<'_> {
    fn claim(&self, namespace: &str, name: &str) -> Option<ClaimInfo> {
        if let Some((ns, n, pvc)) = self.fetched
            && ns == namespace
            && n == name
        {
            return pvc.map(ClaimInfo::of);
        }
        self.cache?
            .get(&ObjectRef::new(name).within(namespace))
            .map(|pvc| ClaimInfo::of(&pvc))
    }

    fn volume_claim(&self, namespace: &str, name: &str) -> Option<Option<ClaimInfo>> {
        let store = self.volumes?;
        Some(
            store
                .get(&ObjectRef::new(name).within(namespace))
                .map(|pvc| ClaimInfo::of(&pvc)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::{reflector, watcher};
    use std::collections::BTreeMap;

    fn pvc(namespace: &str, name: &str, owner: Option<&str>) -> PersistentVolumeClaim {
        let mut pvc = PersistentVolumeClaim::default();
        pvc.metadata.namespace = Some(namespace.into());
        pvc.metadata.name = Some(name.into());
        pvc.metadata.labels = Some(BTreeMap::from([(
            keys::HOME_LABEL.to_string(),
            "true".to_string(),
        )]));
        pvc.metadata.annotations =
            owner.map(|o| BTreeMap::from([(keys::OWNER_ANNOTATION.to_string(), o.to_string())]));
        pvc
    }

    #[test]
    fn the_fetched_home_claim_wins_over_the_cache_and_other_claims_come_from_it() {
        let (store, mut writer) = reflector::store();
        writer.apply_watcher_event(&watcher::Event::Apply(pvc("ns", "home-bob", Some("bob"))));
        writer.apply_watcher_event(&watcher::Event::Apply(pvc(
            "ns",
            "home-alice",
            Some("stale"),
        )));
        let fresh = pvc("ns", "home-alice", Some("alice"));
        let claims = AdmissionClaims {
            fetched: Some(("ns", "home-alice", Some(&fresh))),
            cache: Some(&store),
            volumes: None,
        };
        assert_eq!(
            claims
                .claim("ns", "home-alice")
                .and_then(|c| c.owner)
                .as_deref(),
            Some("alice")
        );
        assert_eq!(
            claims
                .claim("ns", "home-bob")
                .and_then(|c| c.owner)
                .as_deref(),
            Some("bob")
        );
        assert!(claims.claim("other", "home-bob").is_none());
        let absent = AdmissionClaims {
            fetched: Some(("ns", "home-bob", None)),
            cache: Some(&store),
            volumes: None,
        };
        assert!(
            absent.claim("ns", "home-bob").is_none(),
            "a fresh 404 beats the cache"
        );
    }

    #[test]
    fn a_claim_taken_by_someone_else_is_refused_with_the_owner() {
        let other = pvc("ns", "home-alice", Some("mallory"));
        let err = check_owner("ns", "home-alice", Some(&other), "alice").unwrap_err();
        assert!(
            err.to_string()
                .contains("belongs to 'mallory', not 'alice'"),
            "{err}"
        );
        assert!(
            check_owner(
                "ns",
                "home-alice",
                Some(&pvc("ns", "home-alice", Some("alice"))),
                "alice"
            )
            .is_ok()
        );
    }

    #[test]
    fn the_cache_vouches_only_for_a_current_home_of_the_same_user() {
        let (store, mut writer) = reflector::store();
        writer.apply_watcher_event(&watcher::Event::Apply(pvc(
            "ns",
            "home-alice",
            Some("alice"),
        )));
        writer.apply_watcher_event(&watcher::Event::Apply(pvc(
            "ns",
            "home-bob",
            Some("mallory"),
        )));
        writer.apply_watcher_event(&watcher::Event::Apply(pvc("ns", "home-carol", None)));
        let mut unlabelled = pvc("ns", "home-dave", Some("dave"));
        unlabelled.metadata.labels = None;
        writer.apply_watcher_event(&watcher::Event::Apply(unlabelled));
        let mut leaving = pvc("ns", "home-erin", Some("erin"));
        leaving.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Default::default()),
        );
        writer.apply_watcher_event(&watcher::Event::Apply(leaving));

        let hit = cached_home(&store, true, "ns", "home-alice", "alice");
        assert_eq!(
            hit.and_then(|p| p.metadata.name.clone()).as_deref(),
            Some("home-alice")
        );
        assert!(
            cached_home(&store, false, "ns", "home-alice", "alice").is_none(),
            "the watch is failing"
        );
        for (namespace, name, user, why) in [
            ("ns", "home-bob", "bob", "owned by someone else"),
            ("ns", "home-carol", "carol", "no owner annotation"),
            ("ns", "home-dave", "dave", "not labelled a home"),
            ("ns", "home-erin", "erin", "being deleted"),
            ("ns", "home-frank", "frank", "not in the cache"),
            ("other", "home-alice", "alice", "another namespace"),
        ] {
            assert!(
                cached_home(&store, true, namespace, name, user).is_none(),
                "{why}"
            );
        }
    }
}
