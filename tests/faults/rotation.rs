//! Scenario 2: the serving pair replaced on disk mid-stream (a new CA, as when cert-manager or the
//! OpenShift service CA rotates), with the CA bundle of the webhook configurations updated the
//! safe way: old and new CA trusted, then the new pair on disk, then only the new CA.

use std::time::{Duration, Instant};

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use kube::Api;
use kube::api::PostParams;

use super::replicas::counter;
use super::stream::{self, Row};
use super::support::webhook::loopback_certificates;
use super::{Report, Scale, Setup, notebooks};

pub async fn run(scale: Scale, report: &mut Report) {
    let mut setup = Setup::start(2, &[]).await;
    let load = scale.load;
    let running = stream::start(setup.pods(), load, notebooks("rotate"));
    tokio::time::sleep(load.duration / 4).await;

    let old = setup.pair.clone();
    let new = loopback_certificates();
    let started = Instant::now();
    set_ca_bundle(&setup, &format!("{}{}", old.ca_cert_pem, new.ca_cert_pem)).await;
    // The API server reads webhook configurations through an informer: give it a moment.
    tokio::time::sleep(Duration::from_secs(1)).await;
    setup.volume.update(&new);
    let reloaded = wait_reloaded(&setup).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    set_ca_bundle(&setup, &new.ca_cert_pem).await;
    setup.pair = new;
    let took = started.elapsed();
    let samples = running.finish().await;
    let row = Row::of(
        "2  serving pair and CA rotated mid-stream",
        &samples,
        format!(
            "replicas served the new pair {:.1} s after the symlink swap; rotation done in {:.1} s",
            reloaded.as_secs_f64(),
            took.as_secs_f64()
        ),
    );
    report.goal(
        row.failed == 0,
        format!("2: {} failed creations during rotation", row.failed),
    );
    report.row(row);
    // After the bundle holds only the new CA, creations still pass: the new pair is served.
    let after = stream::start(
        setup.pods(),
        load.lasting(Duration::from_secs(2)),
        notebooks("rotated"),
    )
    .finish()
    .await;
    let row = Row::of("2  after rotation: only the new CA trusted", &after, "");
    report.goal(
        row.failed == 0,
        format!(
            "2: {} failed creations trusting only the new CA",
            row.failed
        ),
    );
    report.row(row);
    let panics = setup.panics();
    report.goal(panics.is_empty(), format!("2: panics: {panics:?}"));
}

/// Waits until every replica reports a certificate reload; how long after the swap.
async fn wait_reloaded(setup: &Setup) -> Duration {
    let start = Instant::now();
    loop {
        let mut all = true;
        for r in &setup.replicas {
            let m = r.metrics().await;
            all &= counter(&m, "notebook_volumes_certificate_reloads_total{", "ok") >= 1.0;
        }
        if all {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "replicas did not reload the swapped certificate in 20 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sets `caBundle` (PEM) in every webhook of both configurations, as a CA injector does.
async fn set_ca_bundle(setup: &Setup, pem: &str) {
    let bundle = ByteString(pem.as_bytes().to_vec());
    let mutating = Api::<MutatingWebhookConfiguration>::all(setup.admin.clone());
    let mut m = mutating.get(&setup.registration).await.expect("mutating");
    for w in m.webhooks.iter_mut().flatten() {
        w.client_config.ca_bundle = Some(bundle.clone());
    }
    mutating
        .replace(&setup.registration, &PostParams::default(), &m)
        .await
        .expect("update mutating caBundle");
    let validating = Api::<ValidatingWebhookConfiguration>::all(setup.admin.clone());
    let mut v = validating
        .get(&setup.registration)
        .await
        .expect("validating");
    for w in v.webhooks.iter_mut().flatten() {
        w.client_config.ca_bundle = Some(bundle.clone());
    }
    validating
        .replace(&setup.registration, &PostParams::default(), &v)
        .await
        .expect("update validating caBundle");
}
