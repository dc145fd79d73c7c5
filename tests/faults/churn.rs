//! Scenario 4: a policy ConfigMap rewritten 10 times a second while pods are created. Its three
//! shares carry the version in their mount paths, so a pod mounting paths of two versions would
//! show an admission that mixed snapshots. Every seventh write is invalid (an unknown field): the
//! validating webhook refuses it and no pod may ever show its version.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use super::stream::{self, Row, ms};
use super::support::pod::mounts;
use super::{Report, Scale, Setup, notebooks};

const SHARES: [&str; 3] = ["a", "b", "c"];

fn churn_policy(ns: &str, version: u32, valid: bool) -> BTreeMap<String, String> {
    let docs: Vec<String> = SHARES
        .iter()
        .map(|s| {
            let typo = if valid { "" } else { "mountPth: /typo\n" };
            format!(
                "kind: Share\nname: churn-{s}\nnamespaces: [{ns}]\nclaimName: churn-{s}\nmountPath: /srv/churn/v{version}/{s}\nlevel: public\n{typo}"
            )
        })
        .collect();
    [("churn.yaml".to_string(), docs.join("---\n"))].into()
}

/// The versions of the churn shares a pod mounts.
fn versions(pod: &Pod) -> BTreeSet<u32> {
    mounts(pod, "notebook")
        .into_iter()
        .filter_map(|(path, _)| {
            let rest = path.strip_prefix("/srv/churn/v")?;
            rest.split('/').next()?.parse().ok()
        })
        .collect()
}

fn churn_mounts(pod: &Pod) -> usize {
    mounts(pod, "notebook")
        .iter()
        .filter(|(p, _)| p.starts_with("/srv/churn/"))
        .count()
}

pub async fn run(scale: Scale, report: &mut Report) {
    let setup = Setup::start(2, &[]).await;
    let config_maps = Api::<ConfigMap>::namespaced(setup.admin.clone(), setup.policy_ns.name());
    let ns = setup.ns.name().to_string();
    let write = |version: u32, valid: bool| {
        let config_maps = config_maps.clone();
        let data = churn_policy(&ns, version, valid);
        async move {
            let patch = json!({"data": data});
            config_maps
                .patch("churn", &PatchParams::default(), &Patch::Merge(&patch))
                .await
        }
    };
    // Version 1 in place (through the validating webhook) before the stream starts.
    config_maps
        .create(
            &Default::default(),
            &super::support::webhook::policy_config_map("churn", churn_policy(&ns, 1, true)),
        )
        .await
        .expect("churn ConfigMap");
    tokio::time::sleep(Duration::from_secs(1)).await;

    let load = scale.load;
    let running = stream::start(setup.pods(), load, notebooks("churn"));
    let mut written: Vec<(u32, Instant)> = Vec::new();
    let mut refused = BTreeSet::new();
    let mut accepted_invalid = Vec::new();
    let mut ticker = tokio::time::interval(Duration::from_millis(100));
    let end = Instant::now() + load.duration;
    let mut version = 1;
    while Instant::now() < end {
        ticker.tick().await;
        version += 1;
        let valid = version % 7 != 0;
        match (write(version, valid).await, valid) {
            (Ok(_), true) => written.push((version, Instant::now())),
            (Err(e), true) => panic!("valid policy version {version} refused: {e}"),
            (Err(_), false) => {
                refused.insert(version);
            }
            (Ok(_), false) => accepted_invalid.push(version),
        }
    }
    let samples = running.finish().await;

    let mut mixed = 0;
    let mut incomplete = 0;
    let mut shown_refused = 0;
    for pod in samples.iter().filter_map(|s| s.result.as_ref().ok()) {
        let seen = versions(pod);
        if seen.len() > 1 {
            mixed += 1;
        }
        if churn_mounts(pod) != SHARES.len() {
            incomplete += 1;
        }
        if seen.iter().any(|v| refused.contains(v)) {
            shown_refused += 1;
        }
    }
    // Propagation: from a write's return to the end of the first creation, started after it,
    // whose pod shows that version or a later one.
    let mut propagation: Vec<Duration> = written
        .iter()
        .filter_map(|(v, at)| {
            samples
                .iter()
                .filter(|s| s.started >= *at)
                .filter(|s| {
                    s.result
                        .as_ref()
                        .is_ok_and(|p| versions(p).iter().any(|seen| seen >= v))
                })
                .map(|s| s.ended() - *at)
                .min()
        })
        .collect();
    propagation.sort();
    let q = |f: f64| {
        propagation
            .get(((propagation.len() as f64 * f).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or_default()
    };
    let p99 = q(0.99);
    let row = Row::of(
        "4  policy ConfigMap rewritten 10/s",
        &samples,
        format!(
            "{} writes ({} invalid, refused); propagation p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms over {} versions",
            written.len() + refused.len() + accepted_invalid.len(),
            refused.len(),
            ms(q(0.5)),
            ms(p99),
            ms(propagation.last().copied().unwrap_or_default()),
            propagation.len()
        ),
    );
    report.goal(
        row.failed == 0,
        format!("4: {} failed creations", row.failed),
    );
    report.goal(
        mixed == 0,
        format!("4: {mixed} pods mixed two policy versions"),
    );
    report.goal(
        incomplete == 0,
        format!("4: {incomplete} pods lacked some churn share"),
    );
    report.goal(
        accepted_invalid.is_empty(),
        format!("4: invalid versions accepted: {accepted_invalid:?}"),
    );
    report.goal(
        shown_refused == 0,
        format!("4: {shown_refused} pods decided by a refused version"),
    );
    report.goal(!propagation.is_empty(), "4: no propagation measured");
    if p99 > Duration::from_secs(1) {
        // A timing on a shared machine: reported, not asserted.
        report.note(format!(
            "4: propagation p99 {:.0} ms is over the 1 s goal",
            ms(p99)
        ));
    }
    report.row(row);
    let panics = setup.panics();
    report.goal(panics.is_empty(), format!("4: panics: {panics:?}"));
}
