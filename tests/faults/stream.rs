//! A steady stream of notebook pod creations from a few clients, bounded in count and time, and
//! what came of each.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::PostParams;
use tokio::task::JoinHandle;

/// Rate and length of a stream.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    pub clients: usize,
    /// Creations per second, all clients together.
    pub per_second: f64,
    pub duration: Duration,
}

impl Load {
    pub fn lasting(self, duration: Duration) -> Load {
        Load { duration, ..self }
    }
}

/// One creation: when it started, how long it took, and the pod or the error.
pub struct Sample {
    pub started: Instant,
    pub latency: Duration,
    pub result: Result<Pod, String>,
}

impl Sample {
    pub fn ended(&self) -> Instant {
        self.started + self.latency
    }
}

/// A running stream; `finish` waits for it and returns every sample.
pub struct Stream {
    clients: Vec<JoinHandle<Vec<Sample>>>,
}

/// Starts `load.clients` clients, each creating `make(client, i)` through `pods` at its share of
/// the rate (a creation slower than the period delays the next: at most one in flight per client).
pub fn start(
    pods: Api<Pod>,
    load: Load,
    make: Arc<dyn Fn(usize, usize) -> Pod + Send + Sync>,
) -> Stream {
    let period = Duration::from_secs_f64(load.clients as f64 / load.per_second);
    let count = (load.duration.as_secs_f64() / period.as_secs_f64()).ceil() as usize;
    // Bounded in time as well: a stalled API server cannot keep the stream going for long.
    let deadline = Instant::now() + load.duration * 3 + Duration::from_secs(20);
    let clients = (0..load.clients)
        .map(|client| {
            let pods = pods.clone();
            let make = Arc::clone(&make);
            tokio::spawn(async move {
                // Clients start spread over one period, as independent users would.
                let offset = period.mul_f64(client as f64 / load.clients as f64);
                tokio::time::sleep(offset).await;
                let mut ticker = tokio::time::interval(period);
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut samples = Vec::with_capacity(count);
                for i in 0..count {
                    ticker.tick().await;
                    if Instant::now() > deadline {
                        break;
                    }
                    let started = Instant::now();
                    let result = pods
                        .create(&PostParams::default(), &make(client, i))
                        .await
                        .map_err(|e| e.to_string());
                    samples.push(Sample {
                        started,
                        latency: started.elapsed(),
                        result,
                    });
                }
                samples
            })
        })
        .collect();
    Stream { clients }
}

impl Stream {
    pub async fn finish(self) -> Vec<Sample> {
        let mut all = Vec::new();
        for client in self.clients {
            all.extend(client.await.expect("stream client"));
        }
        all.sort_by_key(|s| s.started);
        all
    }
}

/// One line of the report.
#[derive(Clone, Debug)]
pub struct Row {
    pub scenario: String,
    pub attempted: usize,
    pub failed: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub note: String,
    /// Distinct error messages, for the report.
    pub errors: Vec<String>,
}

impl Row {
    pub fn of(scenario: &str, samples: &[Sample], note: impl Into<String>) -> Row {
        let mut latencies: Vec<Duration> = samples.iter().map(|s| s.latency).collect();
        latencies.sort();
        let at = |q: f64| -> Duration {
            if latencies.is_empty() {
                return Duration::ZERO;
            }
            let i = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1;
            latencies[i]
        };
        // The API's message is repeated inside its Status: the first part says it all.
        let mut errors: Vec<String> = samples
            .iter()
            .filter_map(|s| s.result.as_ref().err())
            .map(|e| e.chars().take(200).collect())
            .collect();
        let failed = errors.len();
        errors.sort();
        errors.dedup();
        errors.truncate(5);
        Row {
            scenario: scenario.into(),
            attempted: samples.len(),
            failed,
            p50: at(0.5),
            p99: at(0.99),
            max: latencies.last().copied().unwrap_or_default(),
            note: note.into(),
            errors,
        }
    }

    pub fn print(&self) {
        println!(
            "{:<52} {:>9} {:>6} {:>8.0} {:>8.0} {:>8.0}  {}",
            self.scenario,
            self.attempted,
            self.failed,
            ms(self.p50),
            ms(self.p99),
            ms(self.max),
            self.note
        );
        for e in &self.errors {
            println!("{:<52} error: {e}", "");
        }
    }
}

pub fn print_header() {
    println!(
        "{:<52} {:>9} {:>6} {:>8} {:>8} {:>8}  note",
        "scenario", "attempted", "failed", "p50 ms", "p99 ms", "max ms"
    );
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
