//! Scenario 1: two replicas behind one address; one killed with SIGKILL mid-stream, then one
//! stopped as Kubernetes stops a pod (endpoint removed, preStop sleep, SIGTERM).

use std::time::{Duration, Instant};

use super::replicas::counter;
use super::stream::{self, Row};
use super::{Report, Scale, Setup, notebooks};

const ADMISSIONS: &str = "notebook_volumes_admissions_total{";

pub async fn run(scale: Scale, report: &mut Report) {
    let mut setup = Setup::start(2, &[]).await;
    let load = scale.load;

    // 1a: SIGKILL. The kubelet restarts the container: a new process takes the endpoint's place.
    let running = stream::start(setup.pods(), load, notebooks("kill"));
    tokio::time::sleep(load.duration / 3).await;
    let victim = setup.replicas[0].name.clone();
    setup.replicas[0].kill().await;
    let killed = Instant::now();
    setup.replicas.remove(0);
    setup.add_replica().await;
    setup.balancer.remove(&victim);
    let back = killed.elapsed();
    let samples = running.finish().await;
    let row = Row::of(
        "1a two replicas, one SIGKILLed mid-stream",
        &samples,
        format!(
            "replacement ready after {:.1} s; at most {} creations in flight",
            back.as_secs_f64(),
            load.clients
        ),
    );
    // Each creation calls the webhook once: failures are at most the creations in flight.
    report.goal(
        row.failed <= load.clients,
        format!(
            "1a: {} failed creations after SIGKILL, more than the {} in flight",
            row.failed, load.clients
        ),
    );
    report.row(row);

    // 1b: graceful stops, one replica at a time as a rollout does it (the full form rolls both
    // replicas twice). The stream outlasts the shutdown timeout: a replica that waited for its
    // keep-alive connections to go idle, instead of closing them, would cut requests off when
    // the timeout forced it.
    let timeout = setup.config.shutdown_timeout;
    let rolls: u32 = if scale.full { 4 } else { 1 };
    let busy = (scale.pre_stop + Duration::from_secs(2)) * rolls + timeout;
    let long = load.lasting(load.duration.max(load.duration / 3 + busy));
    let running = stream::start(setup.pods(), long, notebooks("term"));
    tokio::time::sleep(load.duration / 3).await;
    let mut pinned = Vec::new();
    let mut drains = Vec::new();
    for _ in 0..rolls {
        // The oldest replica leaves: its endpoint goes, the preStop sleep runs, then SIGTERM.
        let leaving = setup.replicas[0].name.clone();
        setup.balancer.remove(&leaving);
        let before = counter(&setup.replicas[0].metrics().await, ADMISSIONS, "mutate");
        tokio::time::sleep(scale.pre_stop).await;
        let after = counter(&setup.replicas[0].metrics().await, ADMISSIONS, "mutate");
        pinned.push((after - before) as u64);
        setup.replicas[0].terminate();
        let (drain, status) = setup.replicas[0].wait_exit(timeout * 2).await;
        drains.push(drain);
        // Draining takes as long as the slowest admission in flight; reaching the timeout
        // means connections were waited out and then cut.
        report.goal(
            drain < timeout,
            format!(
                "1b: {leaving} took {:.1} s to exit: its keep-alive connections were not closed but cut at the {} s shutdown timeout",
                drain.as_secs_f64(),
                timeout.as_secs()
            ),
        );
        report.goal(
            status.success(),
            format!(
                "1b: {leaving} exited with {status}; its log:\n{}",
                setup.replicas[0].log_text()
            ),
        );
        setup.replicas.remove(0);
        setup.add_replica().await;
    }
    let samples = running.finish().await;
    let slowest = drains.iter().max().copied().unwrap_or_default();
    let row = Row::of(
        "1b two replicas, stopped in turn (preStop, SIGTERM)",
        &samples,
        format!(
            "{rolls} stop(s); {pinned:?} admissions on a leaving replica's open connections after its endpoint left; exit at most {:.2} s after SIGTERM",
            slowest.as_secs_f64()
        ),
    );
    report.goal(
        row.failed == 0,
        format!(
            "1b: {} failed creations while replicas stopped gracefully",
            row.failed
        ),
    );
    report.row(row);
    let panics = setup.panics();
    report.goal(panics.is_empty(), format!("1: panics: {panics:?}"));
}
