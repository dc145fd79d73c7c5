//! The monitoring bundle (manifests/components/monitoring): the component renders with the base,
//! the dashboard is valid Grafana JSON, and every metric the alert rules and the dashboard
//! panels query is one a running server exports on /metrics (the names are taken from the
//! PromQL expressions by a small lexer, not from a list).

use nv_test_support as support;

use std::collections::BTreeSet;

use serde_json::Value;
use support::env::{Env, claim_pod};
use support::webhook::{HUB, notebook_pod};

/// Series Prometheus records itself for every target rather than reading them from /metrics.
const SYNTHETIC: &[&str] = &["up"];

const KEYWORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
    "sum",
    "min",
    "max",
    "avg",
    "count",
    "group",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
    "limitk",
    "limit_ratio",
];

/// The keywords a label list follows.
const LABEL_LISTS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// The metric names a PromQL expression selects: identifiers that are not functions (followed
/// by `(`), keywords, label names (inside `{...}` or the `(...)` after by/without/on/ignoring),
/// string contents, numbers or durations.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let mut braces = 0usize;
    let mut label_list = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => {
                i += 1;
                while i < chars.len() && chars[i] != c {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
            }
            '{' => {
                braces += 1;
                i += 1;
            }
            '}' => {
                braces = braces.saturating_sub(1);
                i += 1;
            }
            '[' => {
                while i < chars.len() && chars[i] != ']' {
                    i += 1;
                }
                i += 1;
            }
            ')' => {
                label_list = false;
                i += 1;
            }
            c if c.is_ascii_digit() || c == '.' => {
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let next = chars[i..].iter().find(|c| !c.is_whitespace());
                if KEYWORDS.contains(&word.as_str()) {
                    label_list = LABEL_LISTS.contains(&word.as_str());
                } else if braces == 0 && !label_list && next != Some(&'(') {
                    names.insert(word);
                }
            }
            _ => i += 1,
        }
    }
    names
}

/// Names a scrape offers: from the `# TYPE` lines, with the suffixes of each type's samples.
fn exported(metrics: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let mut parts = rest.split_whitespace();
        let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
            continue;
        };
        let suffixes: &[&str] = match kind {
            "counter" => &["_total"],
            "histogram" => &["_bucket", "_sum", "_count"],
            _ => &[""],
        };
        names.extend(suffixes.iter().map(|s| format!("{name}{s}")));
    }
    names
}

fn read_yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(support::repo(path)).expect(path);
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every expression of the PrometheusRule's rules, with its alert name.
fn rule_expressions() -> Vec<(String, String)> {
    let rule = read_yaml("manifests/components/monitoring/prometheusrule.yaml");
    assert_eq!(rule["kind"], "PrometheusRule");
    rule["spec"]["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().expect("rules").clone())
        .map(|r| {
            let name = r["alert"].as_str().or(r["record"].as_str()).expect("name");
            (
                name.to_string(),
                r["expr"].as_str().expect("expr").to_string(),
            )
        })
        .collect()
}

fn dashboard() -> Value {
    let path = support::repo("manifests/components/monitoring/dashboard.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("dashboard")).expect("JSON")
}

/// Every query of every dashboard panel, with its panel title.
fn dashboard_expressions() -> Vec<(String, String)> {
    let dash = dashboard();
    dash["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| {
            let title = p["title"].as_str().unwrap_or_default().to_string();
            p["targets"]
                .as_array()
                .expect("targets")
                .iter()
                .map(move |t| (title.clone(), t["expr"].as_str().expect("expr").to_string()))
        })
        .collect()
}

#[test]
fn the_lexer_finds_metrics_and_only_metrics() {
    let names = metric_names(
        r#"histogram_quantile(0.99, sum by (le, webhook) (rate(a_bucket{webhook="mutate", x=~"b|c"}[5m]))) > 2 or absent(up{job="x"}) and on(le) b:recorded - time() < 14 * 86400"#,
    );
    let expected: BTreeSet<String> = ["a_bucket", "up", "b:recorded"].map(String::from).into();
    assert_eq!(names, expected);
}

#[test]
fn the_dashboard_is_grafana_json_with_unique_panels() {
    let dash = dashboard();
    assert_eq!(dash["uid"], "notebook-volumes");
    let panels = dash["panels"].as_array().expect("panels");
    let ids: BTreeSet<u64> = panels
        .iter()
        .map(|p| p["id"].as_u64().expect("id"))
        .collect();
    assert_eq!(ids.len(), panels.len(), "panel ids are unique");
    for p in panels {
        assert!(p["gridPos"]["w"].as_u64().is_some(), "{}", p["title"]);
        assert!(!p["targets"].as_array().expect("targets").is_empty());
    }
    for want in [
        "admissions",
        "denials",
        "latency",
        "policy",
        "certificate",
        "home",
        "events",
    ] {
        assert!(
            panels.iter().any(|p| p["title"]
                .as_str()
                .unwrap_or_default()
                .to_lowercase()
                .contains(want)),
            "a panel about {want}"
        );
    }
}

#[test]
fn the_component_renders_with_the_base() {
    let yaml = support::kustomize_base_with("manifests/components/monitoring")
        .unwrap_or_else(|e| panic!("{e}"));
    let docs: Vec<Value> = serde_saphyr::from_multiple(&yaml).expect("yaml");
    let kinds: Vec<(&str, &str)> = docs
        .iter()
        .map(|d| {
            (
                d["kind"].as_str().unwrap_or_default(),
                d["metadata"]["name"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    for want in [
        ("ServiceMonitor", "notebook-volumes"),
        ("PrometheusRule", "notebook-volumes"),
        ("ConfigMap", "notebook-volumes-dashboard"),
        ("Deployment", "notebook-volumes"),
    ] {
        assert!(kinds.contains(&want), "{want:?} in {kinds:?}");
    }
    let cm = docs
        .iter()
        .find(|d| d["metadata"]["name"] == "notebook-volumes-dashboard")
        .expect("dashboard ConfigMap");
    assert_eq!(cm["metadata"]["labels"]["grafana_dashboard"], "1");
    let embedded: Value =
        serde_json::from_str(cm["data"]["notebook-volumes.json"].as_str().expect("data"))
            .expect("JSON");
    assert_eq!(embedded, dashboard());
    // The ServiceMonitor scrapes a port the Service has.
    let sm = docs
        .iter()
        .find(|d| d["kind"] == "ServiceMonitor")
        .expect("ServiceMonitor");
    let svc = docs
        .iter()
        .find(|d| d["kind"] == "Service")
        .expect("Service");
    let port = sm["spec"]["endpoints"][0]["port"].as_str().expect("port");
    assert!(
        svc["spec"]["ports"]
            .as_array()
            .expect("ports")
            .iter()
            .any(|p| p["name"] == port)
    );
}

/// A webhook against the real API server, after a notebook start (a home claim created, Events
/// written) and a denial, so every family has samples; then its /metrics.
async fn scrape_after_traffic() -> String {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::PostParams;
    let env = Env::start().await;
    let hub: kube::Api<Pod> = env.pods_as(HUB);
    hub.create(
        &PostParams::default(),
        &notebook_pod("jupyter-alice", "alice", &[]),
    )
    .await
    .expect("alice's notebook");
    let mallory = env.pods_as_user("mallory", &[]);
    assert!(
        mallory
            .create(&PostParams::default(), &claim_pod("steal", "finance-data"))
            .await
            .is_err()
    );
    env.wait_for_sample("notebook_volumes_events_written_total", 1.0)
        .await;
    let metrics = env.metrics().await;
    env.stop().await;
    metrics
}

#[tokio::test]
async fn every_metric_the_rules_and_dashboard_query_is_exported() {
    let metrics = scrape_after_traffic().await;
    let exported = exported(&metrics);
    assert!(
        exported.contains("notebook_volumes_admissions_total"),
        "{exported:?}"
    );
    let mut checked = 0;
    for (what, expr) in rule_expressions()
        .into_iter()
        .chain(dashboard_expressions())
    {
        let names = metric_names(&expr);
        assert!(!names.is_empty(), "{what}: no metric in {expr}");
        for name in names {
            assert!(
                exported.contains(&name) || SYNTHETIC.contains(&name.as_str()),
                "{what}: `{name}` is not exported by the server\n{expr}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 20, "{checked}");
    // The expiry the rule watches is the certificate being served.
    let expiry = metrics
        .lines()
        .find_map(|l| l.strip_prefix("notebook_volumes_certificate_expiry_timestamp_seconds "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .expect("expiry gauge");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    assert!(expiry > now && expiry < now + 2.0 * 86_400.0, "{expiry}");
}
