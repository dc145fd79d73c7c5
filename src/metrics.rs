//! Prometheus metrics of the webhook, served as text on the probe port. One registry per server,
//! so in-process tests do not share counters.

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Metric;
use prometheus_client::registry::Registry;

type HistogramFamily = Family<WebhookLabel, Histogram, fn() -> Histogram>;

/// The route an admission came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Webhook {
    Mutate,
    Validate,
    Connect,
    Claims,
    Workloads,
}

impl Webhook {
    pub fn as_str(self) -> &'static str {
        match self {
            Webhook::Mutate => "mutate",
            Webhook::Validate => "validate",
            Webhook::Connect => "connect",
            Webhook::Claims => "claims",
            Webhook::Workloads => "workloads",
        }
    }
}

/// A label value written as its `as_str`.
macro_rules! label_value {
    ($($t:ty),*) => {$(
        impl EncodeLabelValue for $t {
            fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
                std::fmt::Write::write_str(encoder, self.as_str())
            }
        }
    )*};
}
label_value!(Webhook, Decision);

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct AdmissionLabels {
    webhook: Webhook,
    /// `CREATE`, `UPDATE`, `DELETE`, `CONNECT`, or `unknown` for a request that did not decode.
    operation: &'static str,
    decision: Decision,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct WebhookLabel {
    webhook: Webhook,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DenialLabels {
    webhook: Webhook,
    /// The rule that refused (`Denial::reason`).
    reason: &'static str,
}

/// Outcome of one admission, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    Allowed,
    Denied,
    /// Malformed request, or a cluster call that failed (the pod was denied with a message).
    Error,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allowed => "allowed",
            Decision::Denied => "denied",
            Decision::Error => "error",
        }
    }
}

/// Why an Event users see was not recorded (`notebook_volumes_events_dropped_total`).
pub const EVENT_DROP_REASONS: [&str; 5] = [
    "queue_full",
    "rate_limited",
    "pod_absent",
    "write_failed",
    "writer_stopped",
];

/// A counter family with one label whose values are fixed strings. The known values are
/// created at 0, so `increase()` and the alerts see the first event.
struct Tally {
    key: &'static str,
    family: Family<[(&'static str, &'static str); 1], Counter>,
}

impl Tally {
    fn inc(&self, value: &'static str) {
        self.family.get_or_create(&[(self.key, value)]).inc();
    }
}

/// Registers metrics under their names and help texts.
struct Registrar(Registry);

impl Registrar {
    fn add<M: Metric + Clone>(&mut self, name: &str, help: &str, metric: M) -> M {
        self.0.register(name, help, metric.clone());
        metric
    }

    fn tally(
        &mut self,
        name: &str,
        help: &str,
        key: &'static str,
        known: &[&'static str],
    ) -> Tally {
        let tally = Tally {
            key,
            family: self.add(name, help, Family::default()),
        };
        for value in known {
            let _ = tally.family.get_or_create(&[(key, *value)]);
        }
        tally
    }
}

pub struct Metrics {
    registry: Registry,
    admissions: Family<AdmissionLabels, Counter>,
    denials: Family<DenialLabels, Counter>,
    latency: HistogramFamily,
    policy_reloads: Counter,
    invalid_units: Gauge,
    invalid_seen: Counter,
    claims_created: Counter,
    home_touches: Counter,
    home_touches_dropped: Counter,
    home_growths: Tally,
    cert_reloads: Tally,
    client_ca_reloads: Tally,
    rejected: Tally,
    events_written: Counter,
    events_dropped: Tally,
    certificate_expiry: Gauge,
    exceeding: Family<ShareLabel, Gauge>,
    home_lookups: Tally,
    provisioned: Tally,
    provision_failures: Counter,
    provision_conflicts: Gauge,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ShareLabel {
    share: String,
}

fn latency_histogram() -> Histogram {
    // 0.25 ms .. ~4 s
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

const RELOAD_RESULTS: [&str; 2] = ["ok", "error"];

fn reload_result(ok: bool) -> &'static str {
    if ok { "ok" } else { "error" }
}

impl Metrics {
    pub fn new() -> Self {
        let mut r = Registrar(Registry::default());
        Metrics {
            exceeding: r.add(
                "notebook_volumes_pods_exceeding_policy",
                "Running notebooks that mount a share beyond what current policy grants their user, by share (counted after each policy change)",
                Family::default(),
            ),
            provisioned: r.tally(
                "notebook_volumes_provisioned",
                "Share and library claims and PersistentVolumes the reconciler created, by object (claim, volume)",
                "object",
                &["claim", "volume"],
            ),
            provision_failures: r.add(
                "notebook_volumes_provision_failures",
                "Creations of provisioned claims or volumes the API server refused (retried on the next pass)",
                Counter::default(),
            ),
            provision_conflicts: r.add(
                "notebook_volumes_provision_conflicts",
                "Provisioned share or library claims whose name is taken by a claim notebook-volumes did not make (left alone; counted after each pass)",
                Gauge::default(),
            ),
            admissions: r.add(
                "notebook_volumes_admissions",
                "Admission requests answered, by webhook (mutate, validate), operation and decision (allowed, denied, error)",
                Family::default(),
            ),
            denials: r.add(
                "notebook_volumes_denials",
                "Admission requests denied, by webhook and by the rule that refused (share_access, others_home, unavailable, ...)",
                Family::default(),
            ),
            latency: r.add(
                "notebook_volumes_admission_duration_seconds",
                "Time to answer an admission request, including the home claim lookup and creation",
                HistogramFamily::new_with_constructor(latency_histogram),
            ),
            policy_reloads: r.add(
                "notebook_volumes_policy_reloads",
                "Policy snapshots compiled (startup and every change of a policy ConfigMap)",
                Counter::default(),
            ),
            invalid_units: r.add(
                "notebook_volumes_policy_invalid_units",
                "Policy ConfigMaps (or files) currently rejected; their shares are absent and protected",
                Gauge::default(),
            ),
            invalid_seen: r.add(
                "notebook_volumes_policy_invalid",
                "Invalid policy ConfigMap versions observed",
                Counter::default(),
            ),
            claims_created: r.add(
                "notebook_volumes_home_claims_created",
                "Home PersistentVolumeClaims created by the webhook",
                Counter::default(),
            ),
            home_touches: r.add(
                "notebook_volumes_home_last_used_written",
                "Last-used stamps written on home claims (at most one a day per claim)",
                Counter::default(),
            ),
            home_touches_dropped: r.add(
                "notebook_volumes_home_last_used_dropped",
                "Last-used stamps dropped because the background queue was full",
                Counter::default(),
            ),
            home_growths: r.tally(
                "notebook_volumes_home_growths",
                "Home claim growths to the policy's size, by reason (grown, refused, dropped: queue full)",
                "reason",
                &["grown", "refused", "dropped"],
            ),
            cert_reloads: r.tally(
                "notebook_volumes_certificate_reloads",
                "Serving certificate reloads from disk, by result (ok, error)",
                "result",
                &RELOAD_RESULTS,
            ),
            client_ca_reloads: r.tally(
                "notebook_volumes_client_ca_reloads",
                "Client CA (--client-ca-file) reloads from disk, by result (ok, error)",
                "result",
                &RELOAD_RESULTS,
            ),
            rejected: r.tally(
                "notebook_volumes_requests_rejected",
                "Requests to the webhook port refused before a decision, by reason (body_timeout)",
                "reason",
                &["body_timeout"],
            ),
            home_lookups: r.tally(
                "notebook_volumes_home_lookups",
                "Home claim lookups of notebook admissions, by source (cache: the cache vouched for the user's claim; absent: the cache knew no such claim and it was created directly; live: read from the API server)",
                "source",
                &["cache", "absent", "live"],
            ),
            events_written: r.add(
                "notebook_volumes_events_written",
                "Events users see (denials, read-only mounts, skipped mounts, homes created) recorded",
                Counter::default(),
            ),
            events_dropped: r.tally(
                "notebook_volumes_events_dropped",
                "Events users see that were not recorded, by reason (queue_full, rate_limited, pod_absent, write_failed, writer_stopped)",
                "reason",
                &EVENT_DROP_REASONS,
            ),
            certificate_expiry: r.add(
                "notebook_volumes_certificate_expiry_timestamp_seconds",
                "When the serving certificate being served expires (notAfter, seconds since the epoch)",
                Gauge::default(),
            ),
            registry: r.0,
        }
    }

    pub fn admission(
        &self,
        webhook: Webhook,
        operation: &'static str,
        decision: Decision,
        secs: f64,
    ) {
        self.admissions
            .get_or_create(&AdmissionLabels {
                webhook,
                operation,
                decision,
            })
            .inc();
        self.latency
            .get_or_create(&WebhookLabel { webhook })
            .observe(secs);
    }

    /// A denial, by the rule that refused (`Denial::reason`).
    pub fn denial(&self, webhook: Webhook, reason: &'static str) {
        self.denials
            .get_or_create(&DenialLabels { webhook, reason })
            .inc();
    }

    /// A new snapshot was compiled with `invalid` rejected units.
    pub fn policy_reloaded(&self, invalid: usize) {
        self.policy_reloads.inc();
        self.invalid_units
            .set(i64::try_from(invalid).unwrap_or(i64::MAX));
    }

    /// Replaces the per-share counts of notebooks exceeding policy (`(share, pods)`).
    pub fn set_exceeding(&self, counts: &[(String, usize)]) {
        self.exceeding.clear();
        for (share, pods) in counts {
            self.exceeding
                .get_or_create(&ShareLabel {
                    share: share.clone(),
                })
                .set(i64::try_from(*pods).unwrap_or(i64::MAX));
        }
    }

    pub fn invalid_policy_seen(&self) {
        self.invalid_seen.inc();
    }

    /// Where a notebook admission found its home claim: `cache` or `live`.
    pub fn home_lookup(&self, source: &'static str) {
        self.home_lookups.inc(source);
    }

    pub fn claim_created(&self) {
        self.claims_created.inc();
    }

    pub fn home_touched(&self) {
        self.home_touches.inc();
    }

    pub fn home_touch_dropped(&self) {
        self.home_touches_dropped.inc();
    }

    pub fn home_growth(&self, reason: &'static str) {
        self.home_growths.inc(reason);
    }

    pub fn certificate_reload(&self, ok: bool) {
        self.cert_reloads.inc(reload_result(ok));
    }

    pub fn client_ca_reload(&self, ok: bool) {
        self.client_ca_reloads.inc(reload_result(ok));
    }

    /// A request refused before any decision (slow body).
    pub fn request_rejected(&self, reason: &'static str) {
        self.rejected.inc(reason);
    }

    /// The serving certificate now served expires at `unix_seconds`.
    pub fn certificate_expires(&self, unix_seconds: i64) {
        self.certificate_expiry.set(unix_seconds);
    }

    /// An Event users see was recorded.
    pub fn event_written(&self) {
        self.events_written.inc();
    }

    /// An Event users see was dropped (queue full, over the rate, pod never created, write failed).
    pub fn event_dropped(&self, reason: &'static str) {
        self.events_dropped.inc(reason);
    }

    /// The reconciler created a provisioned `object` (`claim` or `volume`).
    pub fn provisioned(&self, object: &'static str) {
        self.provisioned.inc(object);
    }

    pub fn provision_failed(&self) {
        self.provision_failures.inc();
    }

    /// Claims of provisioned shares taken by someone else's claim, after a pass.
    pub fn set_provision_conflicts(&self, conflicts: usize) {
        self.provision_conflicts
            .set(i64::try_from(conflicts).unwrap_or(i64::MAX));
    }

    /// OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
