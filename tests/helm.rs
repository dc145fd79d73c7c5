//! The Helm chart (charts/notebook-volumes), with a real helm (tests/helm/build.sh builds it from
//! the Go module proxy): it lints strictly, its schema refuses bad values with helm's message,
//! it renders the same objects as the kustomize base and each overlay for the same settings
//! (compared field by field after dropping Helm's own labels and the generated certificate), and
//! its render is server-side applied to a real API server and read back; helm itself installs,
//! upgrades (keeping the self-signed pair through `lookup`) and uninstalls it there.
//!
//! The cluster test is one sequential test, on purpose: the webhook configurations are
//! cluster-wide objects with fixed names. This binary has its own API server, so they cannot
//! intercept another test binary's requests.

use nv_test_support as support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret, Service};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{DynamicObject, ListParams, PostParams};
use kube::{Api, Client};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use serde_json::{Value, json};
use support::apply::{apply_all, gvk};
use support::{DeleteOnDrop, Helm, HelmOutput, TestCluster};

const RELEASE: &str = "notebook-volumes";
const NAMESPACE: &str = "notebook-volumes";
const NAME: &str = "notebook-volumes";
const MANAGER: &str = "notebook-volumes-helm-test";
const POLICY_LABEL: &str = "notebook-volumes.io/policy";
/// Labels only the chart puts on objects (Helm's conventions); kustomize has none of them.
const HELM_LABELS: [&str; 4] = [
    "helm.sh/chart",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
];
const SOURCES: [&str; 3] = ["selfSigned", "certManager", "openshiftServiceCA"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn chart() -> PathBuf {
    root().join("charts/notebook-volumes")
}

fn examples_values() -> PathBuf {
    chart().join("ci/examples-values.yaml")
}

fn helm() -> &'static Helm {
    static HELM: OnceLock<Helm> = OnceLock::new();
    HELM.get_or_init(|| Helm::new().unwrap_or_else(|e| panic!("{e}")))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `helm template` of the chart into `namespace`, with these values files and then `values`
/// (a JSON document, which is YAML), plus raw arguments.
fn template_in(namespace: &str, files: &[PathBuf], values: &Value, args: &[&str]) -> HelmOutput {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("values.json");
    std::fs::write(&path, values.to_string()).expect("write values");
    let mut all: Vec<String> = vec![
        "template".into(),
        RELEASE.into(),
        chart().display().to_string(),
        "--namespace".into(),
        namespace.into(),
    ];
    for f in files.iter().chain([&path]) {
        all.push("--values".into());
        all.push(f.display().to_string());
    }
    all.extend(args.iter().map(|a| a.to_string()));
    helm().run(&all, None)
}

/// The rendered documents, for values that must render.
fn render(files: &[PathBuf], values: &Value) -> Vec<Value> {
    let out = template_in(NAMESPACE, files, values, &[]);
    assert!(out.success, "helm template with {values}: {}", out.stderr);
    documents(&out.stdout)
}

fn documents(yaml: &str) -> Vec<Value> {
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(yaml).unwrap_or_else(|e| panic!("rendered YAML: {e}"));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

fn kustomize(dir: &str) -> Vec<Value> {
    documents(&support::kustomize(&root().join(dir)).unwrap_or_else(|e| panic!("{e}")))
}

/// The base plus a component.
fn kustomize_with_component(component: &str) -> Vec<Value> {
    documents(&support::kustomize_base_with(component).unwrap_or_else(|e| panic!("{e}")))
}

fn key(obj: &Value) -> String {
    let kind = obj["kind"].as_str().unwrap_or("?");
    let name = obj["metadata"]["name"].as_str().unwrap_or("?");
    match obj["metadata"]["namespace"].as_str() {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}

/// Objects by kind, namespace and name, without the labels only Helm adds.
fn normalise(docs: Vec<Value>) -> BTreeMap<String, Value> {
    let mut objects = BTreeMap::new();
    for mut doc in docs {
        if let Some(labels) = doc["metadata"]["labels"].as_object_mut() {
            for label in HELM_LABELS {
                labels.remove(label);
            }
        }
        let k = key(&doc);
        assert!(objects.insert(k.clone(), doc).is_none(), "{k} twice");
    }
    objects
}

/// Removes the certificate the chart made (certificate.source selfSigned): the Secret, and the
/// caBundle of every webhook, after checking each caBundle is the Secret's CA.
fn drop_generated_certificate(objects: &mut BTreeMap<String, Value>) {
    let secret = objects
        .remove(&format!("Secret {NAMESPACE}/notebook-volumes-tls"))
        .expect("the generated Secret notebook-volumes-tls");
    let ca = secret["data"]["ca.crt"]
        .as_str()
        .expect("ca.crt")
        .to_owned();
    let mut bundles = 0;
    for kind in [
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ] {
        let cfg = objects
            .get_mut(&format!("{kind} {NAME}"))
            .unwrap_or_else(|| panic!("{kind}"));
        for hook in cfg["webhooks"].as_array_mut().expect("webhooks") {
            let client = hook["clientConfig"].as_object_mut().expect("clientConfig");
            let bundle = client.remove("caBundle").expect("caBundle");
            assert_eq!(bundle.as_str(), Some(ca.as_str()), "caBundle is the CA");
            bundles += 1;
        }
    }
    assert_eq!(bundles, 5, "every webhook has the caBundle");
}

/// Every field where `a` (kustomize) and `b` (Helm) differ, as JSON pointers.
fn differences(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let p = format!("{path}/{}", k.replace('~', "~0").replace('/', "~1"));
                match (x.get(k), y.get(k)) {
                    (Some(v), Some(w)) => differences(&p, v, w, out),
                    (Some(v), None) => out.push(format!("{p}: only kustomize has {v}")),
                    (None, Some(w)) => out.push(format!("{p}: only Helm has {w}")),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                differences(&format!("{path}/{i}"), v, w, out);
            }
        }
        _ if a != b => out.push(format!("{path}: kustomize {a}, Helm {b}")),
        _ => {}
    }
}

fn assert_same(what: &str, kustomize: &BTreeMap<String, Value>, helm: &BTreeMap<String, Value>) {
    let mut out = Vec::new();
    for (k, v) in kustomize {
        match helm.get(k) {
            Some(w) => differences(k, v, w, &mut out),
            None => out.push(format!("{k}: only kustomize renders it")),
        }
    }
    for k in helm.keys().filter(|k| !kustomize.contains_key(*k)) {
        out.push(format!("{k}: only Helm renders it"));
    }
    assert!(
        out.is_empty(),
        "{what}: kustomize and Helm differ:\n{}",
        out.join("\n")
    );
}

// --- lint and template -------------------------------------------------------------------

#[test]
fn the_chart_lints_strictly_with_every_certificate_source_and_the_optional_parts() {
    let chart = chart().display().to_string();
    let examples = examples_values().display().to_string();
    let mut cases: Vec<Vec<String>> = vec![vec![]];
    for source in SOURCES {
        cases.push(vec!["--set".into(), format!("certificate.source={source}")]);
    }
    cases.push(vec![
        "--set".into(),
        "monitoring.enabled=true,namespace.create=true".into(),
    ]);
    cases.push(vec!["--values".into(), examples.clone()]);
    for extra in cases {
        let mut args = vec![
            "lint".to_owned(),
            "--strict".to_owned(),
            chart.clone(),
            "--namespace".to_owned(),
            NAMESPACE.to_owned(),
        ];
        args.extend(extra.iter().cloned());
        let out = helm().run(&args, None);
        assert!(
            out.success && out.stdout.contains("1 chart(s) linted, 0 chart(s) failed"),
            "helm lint --strict {extra:?}:\n{}\n{}",
            out.stdout,
            out.stderr
        );
    }
}

#[test]
fn each_certificate_source_renders_its_certificate_and_ca_bundle() {
    let kinds = |docs: &[Value]| -> BTreeSet<String> { docs.iter().map(key).collect() };
    let annotations = |docs: &[Value], kind: &str| -> Value {
        docs.iter()
            .find(|d| d["kind"] == kind)
            .map(|d| d["metadata"]["annotations"].clone())
            .unwrap_or(Value::Null)
    };
    let bundles = |docs: &[Value]| -> Vec<Value> {
        docs.iter()
            .filter(|d| {
                d["kind"]
                    .as_str()
                    .is_some_and(|k| k.ends_with("WebhookConfiguration"))
            })
            .flat_map(|d| d["webhooks"].as_array().cloned().unwrap_or_default())
            .map(|h| h["clientConfig"]["caBundle"].clone())
            .collect()
    };
    let secret = format!("Secret {NAMESPACE}/notebook-volumes-tls");

    let cert_manager = render(&[], &json!({"certificate": {"source": "certManager"}}));
    let names = kinds(&cert_manager);
    for want in [
        "Issuer notebook-volumes/notebook-volumes-selfsigned",
        "Certificate notebook-volumes/notebook-volumes-ca",
        "Issuer notebook-volumes/notebook-volumes-ca",
        "Certificate notebook-volumes/notebook-volumes-tls",
    ] {
        assert!(names.contains(want), "certManager: {want} in {names:?}");
    }
    assert!(
        !names.contains(&secret),
        "certManager: cert-manager writes the Secret"
    );
    for kind in [
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ] {
        assert_eq!(
            annotations(&cert_manager, kind),
            json!({"cert-manager.io/inject-ca-from": "notebook-volumes/notebook-volumes-tls"})
        );
    }
    assert!(bundles(&cert_manager).iter().all(Value::is_null));

    let openshift = render(
        &[],
        &json!({"certificate": {"source": "openshiftServiceCA"}}),
    );
    let names = kinds(&openshift);
    assert!(!names.contains(&secret) && !names.iter().any(|n| n.starts_with("Certificate")));
    assert_eq!(
        annotations(&openshift, "Service"),
        json!({"service.beta.openshift.io/serving-cert-secret-name": "notebook-volumes-tls"})
    );
    for kind in [
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ] {
        assert_eq!(
            annotations(&openshift, kind),
            json!({"service.beta.openshift.io/inject-cabundle": "true"})
        );
    }
    assert!(bundles(&openshift).iter().all(Value::is_null));

    // selfSigned (the default): a working pair, and its CA in every caBundle.
    let self_signed = render(&[], &json!({}));
    let tls = self_signed
        .iter()
        .find(|d| key(d) == secret)
        .expect("selfSigned: the Secret");
    assert_eq!(tls["type"], "kubernetes.io/tls");
    let ca = tls["data"]["ca.crt"].as_str().expect("ca.crt");
    let all = bundles(&self_signed);
    assert_eq!(all.len(), 5);
    assert!(all.iter().all(|b| b.as_str() == Some(ca)), "{all:?}");
    assert!(annotations(&self_signed, "MutatingWebhookConfiguration").is_null());
    let pem = |field: &str| decode_base64(tls["data"][field].as_str().expect(field));
    check_serving_pair(&pem("ca.crt"), &pem("tls.crt"), &pem("tls.key"), NAMESPACE);
}

/// The serving certificate chains to the CA for the Service's DNS names (and no other), and
/// rustls, which the webhook serves with, accepts the key for it.
fn check_serving_pair(ca: &str, cert: &str, key: &str, namespace: &str) {
    let der = |pem: &str| -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).expect("a PEM certificate")
    };
    let ca_der = der(ca);
    let anchor = webpki::anchor_from_trusted_cert(&ca_der).expect("a CA certificate");
    let cert_der = der(cert);
    let ee = webpki::EndEntityCert::try_from(&cert_der).expect("an end-entity certificate");
    ee.verify_for_usage(
        &[webpki::ring::ECDSA_P256_SHA256],
        &[anchor],
        &[],
        UnixTime::now(),
        webpki::KeyUsage::server_auth(),
        None,
        None,
    )
    .expect("the serving certificate chains to the CA (ECDSA P-256)");
    let service = format!("notebook-volumes.{namespace}.svc");
    for name in [service.clone(), format!("{service}.cluster.local")] {
        let server_name = ServerName::try_from(name.clone()).expect("a DNS name");
        ee.verify_is_valid_for_subject_name(&server_name)
            .unwrap_or_else(|e| panic!("valid for {name}: {e:?}"));
    }
    let other = ServerName::try_from("notebook-volumes.other.svc").expect("a DNS name");
    assert!(ee.verify_is_valid_for_subject_name(&other).is_err());
    support::install_crypto_provider();
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("a PEM private key");
    rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert_der], key)
        .expect("rustls serves this certificate with this key");
}

fn decode_base64(text: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text
        .bytes()
        .filter(|c| *c != b'=' && !c.is_ascii_whitespace())
    {
        let v = ALPHABET
            .iter()
            .position(|a| *a == c)
            .unwrap_or_else(|| panic!("not base64: {c}"));
        bits = (bits << 6) | v as u32;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    String::from_utf8(out).expect("UTF-8 PEM")
}

#[test]
fn every_namespace_reference_follows_the_release_namespace() {
    let ns = "jupyterhub-webhook";
    let out = template_in(
        ns,
        &[examples_values()],
        &json!({"namespace": {"create": true}, "monitoring": {"enabled": true},
                "certificate": {"source": "certManager"}}),
        &[],
    );
    assert!(out.success, "{}", out.stderr);
    let docs = documents(&out.stdout);
    // Every field named `namespace` (metadata, clientConfig.service, subjects) is the release's.
    fn namespaces(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    match x {
                        Value::String(s) if k == "namespace" => out.push(s.clone()),
                        _ => namespaces(x, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| namespaces(x, out)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    docs.iter().for_each(|d| namespaces(d, &mut found));
    assert!(found.len() > 20, "{found:?}");
    assert!(found.iter().all(|n| n == ns), "{found:?}");
    assert!(
        docs.iter()
            .any(|d| d["kind"] == "Namespace" && d["metadata"]["name"] == ns)
    );
    // ... and where it is data: the selectors, the certificate's names, the CA injection.
    let text = out.stdout;
    for want in [
        format!("kubernetes.io/metadata.name: {ns}"),
        format!("[\"kube-system\",\"{ns}\"]"),
        format!("notebook-volumes.{ns}.svc.cluster.local"),
        format!("cert-manager.io/inject-ca-from: {ns}/notebook-volumes-tls"),
        format!("matchNames: [{ns}]"),
        // The claims webhook skips the webhook's own service account, in this namespace only.
        format!("request.userInfo.username != 'system:serviceaccount:{ns}:notebook-volumes'"),
    ] {
        assert!(text.contains(&want), "{want}");
    }
    assert!(
        !text.contains("notebook-volumes.notebook-volumes")
            && !text.contains("system:serviceaccount:notebook-volumes:"),
        "{text}"
    );
}

// --- the schema --------------------------------------------------------------------------

#[test]
fn the_schema_refuses_bad_values_with_a_message_naming_them() {
    let cases: [(Value, &str); 8] = [
        (
            json!({"failurePolicy": "Maybe"}),
            "at '/failurePolicy': value must be one of 'Fail', 'Ignore'",
        ),
        (
            json!({"replicaCount": 3}),
            "additional properties 'replicaCount' not allowed",
        ),
        (
            json!({"certificate": {"source": "vault"}}),
            "at '/certificate/source': value must be one of 'certManager', 'openshiftServiceCA', 'selfSigned'",
        ),
        (
            json!({"certificate": {"selfSigend": {"days": 30}}}),
            "at '/certificate': additional properties 'selfSigend' not allowed",
        ),
        (
            json!({"policies": {"team-a": {"shares.txt": "kind: Groups\n"}}}),
            "'shares.txt' does not match pattern",
        ),
        (
            json!({"policies": {"Team_A": {"shares.yaml": "kind: Groups\n"}}}),
            "'Team_A' does not match pattern",
        ),
        (
            json!({"namespaceSelector": {"extraMatchLabels": {"notebook-volumes.io/inject": "yes"}}}),
            "at '/namespaceSelector/extraMatchLabels'",
        ),
        // A quote would end the CEL string literal the key is rendered into.
        (
            json!({"matchConditions": {"notebookLabelKeys": ["it's"]}}),
            "at '/matchConditions/notebookLabelKeys/0'",
        ),
    ];
    for (values, message) in cases {
        let out = template_in(NAMESPACE, &[], &values, &[]);
        assert!(!out.success, "{values} was accepted");
        assert!(
            out.stderr
                .contains("values don't meet the specifications of the schema")
                && out.stderr.contains(message),
            "{values}: expected {message:?} in:\n{}",
            out.stderr
        );
    }
    // The same values files are fine without the mistake.
    let fine = template_in(
        NAMESPACE,
        &[],
        &json!({"failurePolicy": "Ignore", "policies": {"team-a": {"shares.yaml": "kind: Groups\n"}}}),
        &[],
    );
    assert!(fine.success, "{}", fine.stderr);
}

/// `notebook-volumes check` of a policy render: its exit status and output.
fn check(yaml: &str) -> (bool, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("policies.yaml");
    std::fs::write(&file, yaml).expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_notebook-volumes"))
        .arg("check")
        .arg(&file)
        .output()
        .expect("run notebook-volumes check");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn the_zero_to_jupyterhub_values_of_the_install_guide_render_valid_policy() {
    let guide = read(&root().join("docs/install.md"));
    let start = guide
        .find("# notebook-volumes-values.yaml\n")
        .expect("the Z2JH values file in docs/install.md");
    let block = &guide[start..];
    let values = &block[..block.find("```").expect("end of the block")];
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("z2jh.yaml");
    std::fs::write(&file, values).expect("write");
    let out = template_in(
        NAMESPACE,
        &[file],
        &json!({}),
        &["--show-only", "templates/policies.yaml"],
    );
    assert!(out.success, "{}", out.stderr);
    let (ok, report) = check(&out.stdout);
    assert!(
        ok && report.contains("3 unit(s): 1 share(s), 0 library(ies); 0 error(s), 0 warning(s)"),
        "{report}"
    );
}

// --- the same objects as kustomize ---------------------------------------------------------

/// kustomize `dir` against the chart with `values` (and the namespace rendered, as the base has
/// it); `self_signed`: the chart makes a certificate that the kustomize side gets elsewhere.
fn assert_equivalent(dir: &str, kustomized: Vec<Value>, values: Value, self_signed: bool) {
    let mut values = values;
    values["namespace"] = json!({"create": true});
    let mut helm = normalise(render(&[], &values));
    if self_signed {
        drop_generated_certificate(&mut helm);
    }
    assert_same(dir, &normalise(kustomized), &helm);
}

#[test]
fn the_chart_renders_what_the_base_renders() {
    assert_equivalent(
        "manifests/base",
        kustomize("manifests/base"),
        json!({}),
        true,
    );
}

#[test]
fn the_chart_renders_what_the_cert_manager_overlay_renders() {
    let dir = "manifests/overlays/cert-manager";
    let values = json!({"certificate": {"source": "certManager"}});
    assert_equivalent(dir, kustomize(dir), values, false);
}

#[test]
fn the_chart_renders_what_the_openshift_overlay_renders() {
    let dir = "manifests/overlays/openshift";
    let values = json!({
        "certificate": {"source": "openshiftServiceCA"},
        "podSecurityContext": {"runAsUser": null, "runAsGroup": null},
        "networkPolicy": {"metricsNamespace": "openshift-user-workload-monitoring"},
    });
    assert_equivalent(dir, kustomize(dir), values, false);
}

#[test]
fn the_chart_renders_what_the_dev_overlay_renders() {
    let dir = "manifests/overlays/dev";
    let values = json!({
        "replicas": 1,
        "image": {"tag": "dev", "pullPolicy": "Never"},
        "logFormat": "text",
        "logLevel": "info,notebook_volumes=debug",
    });
    assert_equivalent(dir, kustomize(dir), values, true);
}

#[test]
fn the_chart_renders_what_the_monitoring_component_renders() {
    let component = "manifests/components/monitoring";
    assert_eq!(
        read(&chart().join("files/dashboard.json")),
        read(&root().join(component).join("dashboard.json")),
        "charts/notebook-volumes/files/dashboard.json is a copy of {component}/dashboard.json"
    );
    let values = json!({"monitoring": {"enabled": true}});
    assert_equivalent(component, kustomize_with_component(component), values, true);
}

#[test]
fn the_example_values_render_the_example_policy_config_maps() {
    let kustomized = normalise(kustomize("manifests/examples"));
    let helm: BTreeMap<String, Value> = normalise(render(&[examples_values()], &json!({})))
        .into_iter()
        .filter(|(_, v)| v["kind"] == "ConfigMap")
        .collect();
    assert_eq!(kustomized.len(), 3);
    assert_same("manifests/examples", &kustomized, &helm);
}

#[test]
fn the_comparison_finds_a_changed_field() {
    // What the equivalence tests rely on: one changed field anywhere is reported with its path.
    let base = normalise(kustomize("manifests/base"));
    let mut changed = base.clone();
    let d = changed
        .get_mut(&format!("Deployment {NAMESPACE}/{NAME}"))
        .expect("Deployment");
    d["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] =
        json!(false);
    let result = std::panic::catch_unwind(|| assert_same("check", &base, &changed));
    let message = result
        .err()
        .and_then(|e| e.downcast_ref::<String>().cloned())
        .expect("a difference is a failure");
    assert!(
        message.contains(
            "Deployment notebook-volumes/notebook-volumes/spec/template/spec/containers/0/securityContext/readOnlyRootFilesystem: kustomize true, Helm false"
        ),
        "{message}"
    );
}

// --- on a real API server ------------------------------------------------------------------

fn cleanup() -> Vec<DeleteOnDrop> {
    vec![
        DeleteOnDrop::cluster_scoped::<MutatingWebhookConfiguration>(NAME),
        DeleteOnDrop::cluster_scoped::<ValidatingWebhookConfiguration>(NAME),
        DeleteOnDrop::cluster_scoped::<ClusterRole>(NAME),
        DeleteOnDrop::cluster_scoped::<ClusterRoleBinding>(NAME),
        DeleteOnDrop::cluster_scoped::<Namespace>(NAMESPACE),
    ]
}

fn helm_on(cluster: &TestCluster, args: &[&str]) {
    let out = helm().run(args, Some(cluster.kubeconfig_path()));
    assert!(
        out.success,
        "helm {args:?}:\n{}\n{}",
        out.stdout, out.stderr
    );
}

/// The stored Secret's (ca.crt, tls.crt, tls.key), and every stored webhook's caBundle.
async fn stored_certificate(client: &Client) -> ([String; 3], Vec<Option<String>>) {
    let secret = Api::<Secret>::namespaced(client.clone(), NAMESPACE)
        .get("notebook-volumes-tls")
        .await
        .expect("Secret notebook-volumes-tls");
    let data = secret.data.expect("data");
    let field = |k: &str| String::from_utf8(data[k].0.clone()).expect("PEM");
    let mut bundles = Vec::new();
    let m = Api::<MutatingWebhookConfiguration>::all(client.clone())
        .get(NAME)
        .await
        .expect("MutatingWebhookConfiguration");
    for h in m.webhooks.unwrap_or_default() {
        bundles.push(
            h.client_config
                .ca_bundle
                .map(|b| String::from_utf8_lossy(&b.0).into()),
        );
    }
    let v = Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .get(NAME)
        .await
        .expect("ValidatingWebhookConfiguration");
    for h in v.webhooks.unwrap_or_default() {
        bundles.push(
            h.client_config
                .ca_bundle
                .map(|b| String::from_utf8_lossy(&b.0).into()),
        );
    }
    (
        [field("ca.crt"), field("tls.crt"), field("tls.key")],
        bundles,
    )
}

/// `helm install`, `helm upgrade` (the self-signed pair kept through `lookup`), `helm uninstall`.
async fn install_upgrade_uninstall(cluster: &TestCluster, client: &Client) {
    let chart = chart().display().to_string();
    helm_on(
        cluster,
        &[
            "install",
            RELEASE,
            &chart,
            "--namespace",
            NAMESPACE,
            "--create-namespace",
        ],
    );
    let (pair, bundles) = stored_certificate(client).await;
    check_serving_pair(&pair[0], &pair[1], &pair[2], NAMESPACE);
    assert_eq!(bundles.len(), 5);
    assert!(
        bundles
            .iter()
            .all(|b| b.as_deref() == Some(pair[0].as_str())),
        "{bundles:?}"
    );

    // Offline renders make a new pair each time; an upgrade keeps the installed one.
    let offline = |_: u8| {
        let docs = render(&[], &json!({}));
        docs.iter()
            .find(|d| d["kind"] == "Secret")
            .map(|d| d["data"]["ca.crt"].clone())
            .expect("Secret")
    };
    assert_ne!(offline(1), offline(2), "each offline render makes a new CA");
    helm_on(
        cluster,
        &[
            "upgrade",
            RELEASE,
            &chart,
            "--namespace",
            NAMESPACE,
            "--set",
            "replicas=3",
        ],
    );
    let d = Api::<Deployment>::namespaced(client.clone(), NAMESPACE)
        .get(NAME)
        .await
        .expect("Deployment");
    assert_eq!(
        d.spec.and_then(|s| s.replicas),
        Some(3),
        "the upgrade applied"
    );
    let (after, bundles_after) = stored_certificate(client).await;
    assert_eq!(after, pair, "the upgrade kept the serving pair and its CA");
    assert_eq!(bundles_after, bundles, "... and the caBundle");

    helm_on(cluster, &["uninstall", RELEASE, "--namespace", NAMESPACE]);
    let gone = Api::<MutatingWebhookConfiguration>::all(client.clone())
        .get_opt(NAME)
        .await
        .expect("get");
    assert!(
        gone.is_none(),
        "uninstall removes the webhook configurations"
    );
}

/// Renders with `values` (selfSigned by default) and server-side applies everything but the
/// cert-manager.io objects (no cert-manager CRDs here), policy ConfigMaps before the webhook
/// configurations (once those exist, with no replica serving, policy ConfigMaps are refused).
async fn apply_render(client: &Client, files: &[PathBuf], values: &Value) -> Vec<Value> {
    let docs = render(files, values);
    let objects: Vec<DynamicObject> = docs
        .iter()
        .map(|d| serde_json::from_value(d.clone()).expect("an object"))
        .collect();
    let (cert_manager, rest): (Vec<DynamicObject>, Vec<DynamicObject>) = objects
        .into_iter()
        .partition(|o| gvk(o).group == "cert-manager.io");
    if !cert_manager.is_empty() {
        assert_eq!(cert_manager.len(), 4, "two Issuers and two Certificates");
    }
    let (webhooks, rest): (Vec<DynamicObject>, Vec<DynamicObject>) = rest
        .into_iter()
        .partition(|o| gvk(o).kind.ends_with("WebhookConfiguration"));
    let ordered: Vec<DynamicObject> = rest.into_iter().chain(webhooks).collect();
    apply_all(client, MANAGER, &ordered)
        .await
        .unwrap_or_else(|e| panic!("applying the render of {values}:\n{e}"));
    docs
}

/// The stored Deployment: the probes, security contexts and image as rendered, and a replica of
/// its template is admitted under the namespace's Pod Security `restricted`.
async fn check_deployment(client: &Client, image: &str, run_as_user: Option<i64>) {
    let d = Api::<Deployment>::namespaced(client.clone(), NAMESPACE)
        .get(NAME)
        .await
        .expect("Deployment");
    let spec = d.spec.expect("spec");
    let pod = spec.template.spec.clone().expect("pod spec");
    let c = &pod.containers[0];
    assert_eq!(c.image.as_deref(), Some(image));
    for probe in [&c.startup_probe, &c.liveness_probe, &c.readiness_probe] {
        let get = probe
            .as_ref()
            .and_then(|p| p.http_get.clone())
            .expect("httpGet");
        assert_eq!(get.port, IntOrString::String("http".into()));
    }
    let sc = c.security_context.clone().expect("securityContext");
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    let pod_sc = pod.security_context.clone().expect("pod securityContext");
    assert_eq!(pod_sc.run_as_user, run_as_user);
    assert_eq!(pod_sc.run_as_non_root, Some(true));
    let replica = Pod {
        metadata: kube::api::ObjectMeta {
            name: Some(format!("{NAME}-pod-security-check")),
            labels: spec.template.metadata.and_then(|m| m.labels),
            ..Default::default()
        },
        spec: Some(pod),
        ..Default::default()
    };
    let dry_run = PostParams {
        dry_run: true,
        ..Default::default()
    };
    Api::<Pod>::namespaced(client.clone(), NAMESPACE)
        .create(&dry_run, &replica)
        .await
        .unwrap_or_else(|e| panic!("a replica would be refused: {e}"));
}

async fn webhook_annotations(client: &Client) -> [BTreeMap<String, String>; 2] {
    let m = Api::<MutatingWebhookConfiguration>::all(client.clone())
        .get(NAME)
        .await
        .expect("MutatingWebhookConfiguration");
    let v = Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .get(NAME)
        .await
        .expect("ValidatingWebhookConfiguration");
    [
        m.metadata.annotations.unwrap_or_default(),
        v.metadata.annotations.unwrap_or_default(),
    ]
}

/// The stored policy ConfigMaps hold the documents from values, and `notebook-volumes check`
/// accepts them as the cluster keeps them.
async fn check_policies(client: &Client) {
    let stored = Api::<ConfigMap>::namespaced(client.clone(), NAMESPACE)
        .list(&ListParams::default().labels(&format!("{POLICY_LABEL}=true")))
        .await
        .expect("list policy ConfigMaps");
    let by_name: BTreeMap<String, BTreeMap<String, String>> = stored
        .items
        .iter()
        .map(|cm| {
            (
                cm.metadata.name.clone().unwrap_or_default(),
                cm.data.clone().unwrap_or_default(),
            )
        })
        .collect();
    for (name, file) in [
        ("notebook-volumes-settings", "settings.yaml"),
        ("notebook-volumes-shares", "shares.yaml"),
        ("notebook-volumes-storage", "storage.yaml"),
    ] {
        assert_eq!(
            by_name.get(name).and_then(|d| d.get(file)),
            Some(&read(&root().join("examples/policies").join(file))),
            "{name}: the text from values, verbatim"
        );
    }
    // The list form: documents rendered as YAML.
    let listed = &by_name["team-auditors"]["groups.yaml"];
    let docs: Vec<Value> = serde_saphyr::from_multiple(listed).expect("YAML");
    assert_eq!(
        docs,
        [
            json!({"kind": "Groups", "groups": {"auditors": ["zoe"]}}),
            json!({"kind": "Groups", "groups": {"stewards": ["yann"]}})
        ]
    );

    // As `kubectl get -o yaml` prints them (block YAML: `check` refuses deeply nested flow
    // collections, which the JSON of managedFields would be).
    let text: Vec<String> = stored
        .items
        .iter()
        .map(|cm| serde_saphyr::to_string(cm).expect("YAML"))
        .collect();
    let (ok, report) = check(&text.join("\n---\n"));
    assert!(
        ok && report.contains("4 unit(s): 4 share(s), 1 library(ies); 0 error(s), 0 warning(s)"),
        "check of the stored policy ConfigMaps:\n{report}"
    );
}

#[tokio::test]
async fn the_chart_installs_upgrades_and_applies_to_a_real_api_server() {
    let cluster = TestCluster::shared();
    let client = cluster.admin_client();
    let _cleanup = cleanup();

    install_upgrade_uninstall(cluster, &client).await;

    // The render, applied: self-signed, the example policies and one policy given as a list.
    let extra = json!({
        "namespace": {"create": true},
        "policies": {"team-auditors": {"groups.yaml": [
            {"kind": "Groups", "groups": {"auditors": ["zoe"]}},
            {"kind": "Groups", "groups": {"stewards": ["yann"]}}
        ]}}
    });
    let docs = apply_render(&client, &[examples_values()], &extra).await;
    let rendered_ca = docs
        .iter()
        .find(|d| d["kind"] == "Secret")
        .and_then(|d| d["data"]["ca.crt"].as_str())
        .map(decode_base64)
        .expect("rendered ca.crt");
    let (pair, bundles) = stored_certificate(&client).await;
    assert_eq!(
        pair[0], rendered_ca,
        "the applied Secret is the rendered one"
    );
    assert_eq!(bundles.len(), 5);
    assert!(
        bundles
            .iter()
            .all(|b| b.as_deref() == Some(rendered_ca.as_str()))
    );
    let m = Api::<MutatingWebhookConfiguration>::all(client.clone())
        .get(NAME)
        .await
        .expect("MutatingWebhookConfiguration");
    let pods = &m.webhooks.expect("webhooks")[0];
    assert_eq!(pods.failure_policy.as_deref(), Some("Fail"));
    let conditions = pods
        .match_conditions
        .clone()
        .expect("matchConditions stored");
    assert!(
        conditions[0]
            .expression
            .contains("'hub.jupyter.org/username'")
    );
    let ns = Api::<Namespace>::all(client.clone())
        .get(NAMESPACE)
        .await
        .expect("Namespace");
    assert_eq!(
        ns.metadata.labels.unwrap_or_default()["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
    check_deployment(&client, "notebook-volumes:0.1.0", Some(65532)).await;
    check_policies(&client).await;

    // cert-manager: the CA injection annotation instead of a caBundle (one field manager: the
    // previous apply's caBundle is removed).
    apply_render(
        &client,
        &[],
        &json!({"certificate": {"source": "certManager"}}),
    )
    .await;
    for a in webhook_annotations(&client).await {
        assert_eq!(
            a.get("cert-manager.io/inject-ca-from").map(String::as_str),
            Some("notebook-volumes/notebook-volumes-tls")
        );
    }
    let (_, bundles) = stored_certificate(&client).await;
    assert!(bundles.iter().all(Option::is_none), "{bundles:?}");

    // OpenShift: the service CA's annotations, the UID left to the SCC.
    let openshift = json!({
        "certificate": {"source": "openshiftServiceCA"},
        "podSecurityContext": {"runAsUser": null, "runAsGroup": null},
    });
    apply_render(&client, &[], &openshift).await;
    for a in webhook_annotations(&client).await {
        assert_eq!(
            a.get("service.beta.openshift.io/inject-cabundle")
                .map(String::as_str),
            Some("true")
        );
        assert!(!a.contains_key("cert-manager.io/inject-ca-from"), "{a:?}");
    }
    let service = Api::<Service>::namespaced(client.clone(), NAMESPACE)
        .get(NAME)
        .await
        .expect("Service");
    assert_eq!(
        service.metadata.annotations.unwrap_or_default()["service.beta.openshift.io/serving-cert-secret-name"],
        "notebook-volumes-tls"
    );
    check_deployment(&client, "notebook-volumes:0.1.0", None).await;
}
