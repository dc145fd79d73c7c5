//! Scenario 5: each user's two notebooks spawned at the same moment, all users at once, through
//! two replicas: each home claim is created once, both of a user's pods mount it, and no pod
//! mounts anyone else's.

use std::collections::BTreeMap;
use std::time::Instant;

use futures::future::join_all;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, PostParams};
use notebook_volumes::keys;

use super::stream::{Row, Sample};
use super::support::webhook::notebook_pod;
use super::{Report, Scale, Setup};

/// The claim a pod's `nv-home` volume names.
fn home_claim(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    let volume = spec
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == "nv-home")?;
    Some(volume.persistent_volume_claim.as_ref()?.claim_name.clone())
}

pub async fn run(scale: Scale, report: &mut Report) {
    let setup = Setup::start(2, &[]).await;
    let pods = setup.pods();
    let users: Vec<String> = (0..scale.racing_users)
        .map(|i| format!("racer{i}"))
        .collect();
    let creations = users.iter().flat_map(|user| {
        ["one", "two"].map(|which| {
            let pods = pods.clone();
            let user = user.clone();
            async move {
                let pod = notebook_pod(&format!("{user}-{which}"), &user, &[]);
                let started = Instant::now();
                let result = pods
                    .create(&PostParams::default(), &pod)
                    .await
                    .map_err(|e| e.to_string());
                (
                    user,
                    Sample {
                        started,
                        latency: started.elapsed(),
                        result,
                    },
                )
            }
        })
    });
    let results = join_all(creations).await;

    // Claims as stored: name → owner.
    let claims: BTreeMap<String, String> = setup
        .claims()
        .list(&ListParams::default().labels(&format!("{}=true", keys::HOME_LABEL)))
        .await
        .expect("list claims")
        .items
        .into_iter()
        .map(|c| {
            let owner = c
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(keys::OWNER_ANNOTATION).cloned())
                .unwrap_or_default();
            (c.metadata.name.unwrap_or_default(), owner)
        })
        .collect();
    let mut wrong = Vec::new();
    for (user, sample) in &results {
        let Ok(pod) = &sample.result else { continue };
        match home_claim(pod) {
            Some(claim) if claims.get(&claim) == Some(user) => {}
            other => wrong.push(format!("{user}: {other:?}")),
        }
    }
    let owners: Vec<&String> = claims.values().collect();
    let mut distinct = owners.clone();
    distinct.sort();
    distinct.dedup();
    let samples: Vec<Sample> = results.into_iter().map(|(_, s)| s).collect();
    let row = Row::of(
        "5  two notebooks per user at once (home claim race)",
        &samples,
        format!(
            "{} users, {} home claims created",
            users.len(),
            claims.len()
        ),
    );
    report.goal(
        row.failed == 0,
        format!("5: {} failed creations", row.failed),
    );
    report.goal(
        claims.len() == users.len() && distinct.len() == owners.len(),
        format!(
            "5: {} home claims for {} users (owners {:?})",
            claims.len(),
            users.len(),
            owners
        ),
    );
    report.goal(
        wrong.is_empty(),
        format!("5: pods mounting no or another user's home: {wrong:?}"),
    );
    report.row(row);
    let panics = setup.panics();
    report.goal(panics.is_empty(), format!("5: panics: {panics:?}"));
}
