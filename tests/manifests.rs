//! The shipped manifests: every file of the base parses as its Kubernetes type, the webhook
//! configurations say what the design requires, and the example policy ConfigMaps are valid
//! copies of examples/policies.

use std::path::{Path, PathBuf};

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use notebook_volumes::files::load_policies;
use notebook_volumes::policy::{PolicySnapshot, Severity};
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `resources:` of a kustomization, resolved against its directory.
fn resources(dir: &Path) -> Vec<PathBuf> {
    let k: Value = serde_saphyr::from_str(&read(&dir.join("kustomization.yaml"))).expect("yaml");
    k["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| dir.join(r.as_str().expect("resource path")))
        .collect()
}

/// Every document of every base resource file.
fn base_documents() -> Vec<Value> {
    let mut docs = Vec::new();
    for file in resources(&root().join("manifests/base")) {
        let text = read(&file);
        let file_docs: Vec<Value> = serde_saphyr::from_multiple(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        docs.extend(file_docs.into_iter().filter(|v| !v.is_null()));
    }
    docs
}

fn one<T: serde::de::DeserializeOwned>(kind: &str) -> T {
    let docs: Vec<Value> = base_documents()
        .into_iter()
        .filter(|d| d["kind"].as_str() == Some(kind))
        .collect();
    assert_eq!(docs.len(), 1, "exactly one {kind} in the base");
    serde_json::from_value(docs[0].clone()).unwrap_or_else(|e| panic!("{kind}: {e}"))
}

#[test]
fn base_documents_have_kind_name_and_namespace_where_namespaced() {
    let cluster_scoped = [
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ];
    let docs = base_documents();
    assert!(docs.len() >= 12, "{} documents", docs.len());
    for d in docs {
        let kind = d["kind"].as_str().expect("kind");
        assert!(d["apiVersion"].as_str().is_some(), "{kind} has apiVersion");
        assert!(
            d["metadata"]["name"].as_str().is_some(),
            "{kind} has a name"
        );
        if !cluster_scoped.contains(&kind) {
            assert_eq!(
                d["metadata"]["namespace"].as_str(),
                Some("notebook-volumes"),
                "{kind} namespace"
            );
        }
    }
}

#[test]
fn mutating_webhook_matches_the_design() {
    let cfg: MutatingWebhookConfiguration = one("MutatingWebhookConfiguration");
    let hooks = cfg.webhooks.expect("webhooks");
    assert_eq!(hooks.len(), 2, "pods and workloads");
    let h = &hooks[0];
    assert_eq!(h.name, "pods.notebook-volumes.io");
    assert_eq!(h.side_effects, "NoneOnDryRun");
    assert_eq!(h.failure_policy.as_deref(), Some("Fail"));
    assert_eq!(h.reinvocation_policy.as_deref(), Some("IfNeeded"));
    assert_eq!(h.match_policy.as_deref(), Some("Equivalent"));
    assert_eq!(h.timeout_seconds, Some(15));
    assert_eq!(h.admission_review_versions, vec!["v1".to_string()]);
    let service = h.client_config.service.as_ref().expect("service");
    assert_eq!(service.path.as_deref(), Some("/mutate"));
    assert_eq!(service.name, "notebook-volumes");
    let rules = h.rules.as_ref().expect("rules");
    let ops: Vec<(String, String)> = rules
        .iter()
        .flat_map(|r| {
            let ops = r.operations.clone().unwrap_or_default();
            let res = r.resources.clone().unwrap_or_default();
            ops.into_iter()
                .flat_map(move |o| res.clone().into_iter().map(move |x| (o.clone(), x)))
        })
        .collect();
    assert!(ops.contains(&("CREATE".into(), "pods".into())));
    assert!(ops.contains(&("UPDATE".into(), "pods/ephemeralcontainers".into())));
    assert!(ops.contains(&("UPDATE".into(), "pods".into())));
    assert_eq!(ops.len(), 3, "{ops:?}");
    let sel = h.namespace_selector.as_ref().expect("namespaceSelector");
    assert_eq!(
        sel.match_labels.as_ref().expect("matchLabels")["notebook-volumes.io/inject"],
        "enabled"
    );
    let exprs = sel.match_expressions.as_ref().expect("matchExpressions");
    assert_eq!(exprs[0].key, "kubernetes.io/metadata.name");
    assert_eq!(exprs[0].operator, "NotIn");
    let excluded = exprs[0].values.clone().unwrap_or_default();
    assert!(excluded.contains(&"kube-system".to_string()));
    assert!(excluded.contains(&"notebook-volumes".to_string()));
}

#[test]
fn validating_webhook_matches_the_design() {
    let cfg: ValidatingWebhookConfiguration = one("ValidatingWebhookConfiguration");
    let hooks = cfg.webhooks.expect("webhooks");
    let h = hooks
        .iter()
        .find(|h| h.name == "policies.notebook-volumes.io")
        .expect("policies webhook");
    assert_eq!(h.side_effects, "None");
    assert_eq!(h.failure_policy.as_deref(), Some("Fail"));
    let service = h.client_config.service.as_ref().expect("service");
    assert_eq!(service.path.as_deref(), Some("/validate"));
    let object = h.object_selector.as_ref().expect("objectSelector");
    assert_eq!(
        object.match_labels.as_ref().expect("matchLabels")["notebook-volumes.io/policy"],
        "true"
    );
    let ns = h.namespace_selector.as_ref().expect("namespaceSelector");
    assert_eq!(
        ns.match_labels.as_ref().expect("matchLabels")["kubernetes.io/metadata.name"],
        "notebook-volumes"
    );
}

#[test]
fn claims_webhook_matches_the_design() {
    let cfg: ValidatingWebhookConfiguration = one("ValidatingWebhookConfiguration");
    let hooks = cfg.webhooks.expect("webhooks");
    assert_eq!(hooks.len(), 3, "policies, connect and claims");
    let h = hooks
        .iter()
        .find(|h| h.name == "claims.notebook-volumes.io")
        .expect("claims webhook");
    assert_eq!(h.side_effects, "None");
    assert_eq!(h.failure_policy.as_deref(), Some("Fail"));
    assert_eq!(h.match_policy.as_deref(), Some("Equivalent"));
    assert_eq!(h.admission_review_versions, vec!["v1".to_string()]);
    assert!(
        h.object_selector.is_none(),
        "labels are the user's to choose"
    );
    let service = h.client_config.service.as_ref().expect("service");
    assert_eq!(service.path.as_deref(), Some("/claims"));
    let ops: Vec<(String, String, String)> = h
        .rules
        .iter()
        .flatten()
        .flat_map(|r| {
            let groups = r.api_groups.clone().unwrap_or_default();
            let ops = r.operations.clone().unwrap_or_default();
            let res = r.resources.clone().unwrap_or_default();
            groups.into_iter().flat_map(move |g| {
                let res = res.clone();
                ops.clone().into_iter().flat_map(move |o| {
                    let g = g.clone();
                    res.clone()
                        .into_iter()
                        .map(move |x| (g.clone(), o.clone(), x))
                })
            })
        })
        .collect();
    let expected = [
        ("", "CREATE", "persistentvolumeclaims"),
        ("", "UPDATE", "persistentvolumeclaims"),
        ("snapshot.storage.k8s.io", "CREATE", "volumesnapshots"),
        ("snapshot.storage.k8s.io", "UPDATE", "volumesnapshots"),
    ];
    for (g, o, r) in expected {
        assert!(ops.contains(&(g.into(), o.into(), r.into())), "{ops:?}");
    }
    assert_eq!(ops.len(), expected.len(), "{ops:?}");
    // The same namespaces as the pods webhook.
    let pods: MutatingWebhookConfiguration = one("MutatingWebhookConfiguration");
    let pods = pods.webhooks.expect("webhooks");
    assert_eq!(h.namespace_selector, pods[0].namespace_selector);
    // Only the webhook's own requests skip the call: its service account, by full name.
    let deployment: Deployment = one("Deployment");
    let account = format!(
        "system:serviceaccount:{}:{}",
        deployment.metadata.namespace.as_deref().expect("namespace"),
        deployment
            .spec
            .and_then(|s| s.template.spec)
            .and_then(|s| s.service_account_name)
            .expect("service account")
    );
    let conditions = h.match_conditions.as_ref().expect("matchConditions");
    assert_eq!(conditions.len(), 1);
    assert_eq!(
        conditions[0].expression,
        format!("request.userInfo.username != '{account}'")
    );
}

#[test]
fn deployment_serves_with_the_mounted_certificate() {
    let d: Deployment = one("Deployment");
    let spec = d.spec.expect("spec");
    assert_eq!(spec.replicas, Some(2));
    let pod = spec.template.spec.expect("pod spec");
    let c = &pod.containers[0];
    let args = c.args.clone().expect("args").join(" ");
    assert_eq!(
        args,
        "serve --tls-cert /etc/notebook-volumes/tls/tls.crt --tls-key /etc/notebook-volumes/tls/tls.key"
    );
    let sc = c.security_context.as_ref().expect("securityContext");
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    let tls = pod
        .volumes
        .expect("volumes")
        .into_iter()
        .find(|v| v.name == "tls")
        .expect("tls volume");
    assert_eq!(
        tls.secret.and_then(|s| s.secret_name).as_deref(),
        Some("notebook-volumes-tls")
    );
    let svc: Service = one("Service");
    let port = svc.spec.expect("spec").ports.expect("ports");
    assert!(port.iter().any(|p| p.port == 443));
}

#[test]
fn example_policy_configmaps_are_valid_copies_of_the_examples() {
    let dir = root().join("manifests/examples");
    let k: Value = serde_saphyr::from_str(&read(&dir.join("kustomization.yaml"))).expect("yaml");
    assert_eq!(
        k["generatorOptions"]["labels"]["notebook-volumes.io/policy"].as_str(),
        Some("true")
    );
    let generators = k["configMapGenerator"].as_array().expect("generators");
    let mut files = Vec::new();
    for g in generators {
        for f in g["files"].as_array().expect("files") {
            files.push(f.as_str().expect("file").to_string());
        }
    }
    assert!(!files.is_empty());
    for f in &files {
        assert_eq!(
            read(&dir.join(f)),
            read(&root().join("examples/policies").join(f)),
            "manifests/examples/{f} differs from examples/policies/{f}"
        );
    }
    let paths: Vec<PathBuf> = files.iter().map(|f| dir.join(f)).collect();
    let loaded = load_policies(&paths).expect("load");
    let policy = PolicySnapshot::compile(&loaded.units);
    let errors: Vec<String> = loaded
        .findings
        .iter()
        .chain(policy.findings())
        .filter(|f| f.severity == Severity::Error)
        .map(ToString::to_string)
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn connect_webhook_guards_exec_attach_port_forward_and_proxy_in_enabled_namespaces() {
    let cfg: ValidatingWebhookConfiguration = one("ValidatingWebhookConfiguration");
    let hooks = cfg.webhooks.expect("webhooks");
    let h = hooks
        .iter()
        .find(|h| h.name == "connect.notebook-volumes.io")
        .expect("connect webhook");
    assert_eq!(h.failure_policy.as_deref(), Some("Fail"));
    assert_eq!(h.side_effects, "None");
    let service = h.client_config.service.as_ref().expect("service");
    assert_eq!(service.path.as_deref(), Some("/connect"));
    let rules = h.rules.clone().expect("rules");
    assert_eq!(rules.len(), 1);
    assert_eq!(
        rules[0].operations.as_deref(),
        Some(&["CONNECT".to_string()][..])
    );
    let resources = rules[0].resources.clone().unwrap_or_default();
    for r in ["pods/exec", "pods/attach", "pods/portforward", "pods/proxy"] {
        assert!(resources.contains(&r.to_string()), "{r}");
    }
    let ns = h.namespace_selector.as_ref().expect("namespaceSelector");
    assert_eq!(
        ns.match_labels.as_ref().expect("matchLabels")["notebook-volumes.io/inject"],
        "enabled"
    );
}

#[test]
fn workloads_webhook_stamps_statefulsets_and_notebooks_in_the_pods_namespaces() {
    let cfg: MutatingWebhookConfiguration = one("MutatingWebhookConfiguration");
    let hooks = cfg.webhooks.expect("webhooks");
    let h = hooks
        .iter()
        .find(|h| h.name == "workloads.notebook-volumes.io")
        .expect("workloads webhook");
    assert_eq!(h.side_effects, "None");
    assert_eq!(h.failure_policy.as_deref(), Some("Fail"));
    assert_eq!(h.reinvocation_policy.as_deref(), Some("IfNeeded"));
    assert_eq!(h.match_policy.as_deref(), Some("Equivalent"));
    let service = h.client_config.service.as_ref().expect("service");
    assert_eq!(service.path.as_deref(), Some("/workloads"));
    let rules = h.rules.as_ref().expect("rules");
    let mut seen: Vec<(String, String, String, String)> = Vec::new();
    for r in rules {
        for g in r.api_groups.iter().flatten() {
            for v in r.api_versions.iter().flatten() {
                for o in r.operations.iter().flatten() {
                    for x in r.resources.iter().flatten() {
                        seen.push((g.clone(), v.clone(), o.clone(), x.clone()));
                    }
                }
            }
        }
    }
    for (g, v, x) in [
        ("apps", "v1", "statefulsets"),
        ("kubeflow.org", "v1", "notebooks"),
        ("kubeflow.org", "v1beta1", "notebooks"),
    ] {
        for o in ["CREATE", "UPDATE"] {
            assert!(
                seen.contains(&(g.into(), v.into(), o.into(), x.into())),
                "{g}/{v} {o} {x}: {seen:?}"
            );
        }
    }
    assert!(
        seen.iter().all(|(_, _, _, x)| !x.contains('/')),
        "no subresources (scale, status): {seen:?}"
    );
    assert_eq!(h.namespace_selector, hooks[0].namespace_selector);
}

#[test]
fn rbac_reads_only_the_stamp_key_secret_and_notebooks() {
    let docs: Vec<serde_json::Value> = base_documents()
        .iter()
        .map(|d| serde_json::to_value(d).expect("json"))
        .collect();
    let rules = |kind: &str| -> Vec<serde_json::Value> {
        docs.iter()
            .filter(|d| d["kind"] == kind)
            .flat_map(|d| d["rules"].as_array().cloned().unwrap_or_default())
            .collect()
    };
    let role = rules("Role");
    let secret_get = role
        .iter()
        .find(|r| {
            r["resources"] == serde_json::json!(["secrets"])
                && r["verbs"] == serde_json::json!(["get"])
        })
        .expect("secrets get in the webhook's namespace");
    assert_eq!(
        secret_get["resourceNames"],
        serde_json::json!(["notebook-volumes-stamp-key"])
    );
    let cluster = rules("ClusterRole");
    assert!(
        cluster.iter().all(|r| !r["resources"]
            .as_array()
            .unwrap()
            .contains(&"secrets".into())),
        "no cluster-wide secrets"
    );
    assert!(
        cluster
            .iter()
            .any(|r| r["apiGroups"] == serde_json::json!(["kubeflow.org"])
                && r["resources"] == serde_json::json!(["notebooks"])
                && r["verbs"] == serde_json::json!(["get"]))
    );
    // OpenShift Group membership: read only.
    assert!(cluster.iter().any(
        |r| r["apiGroups"] == serde_json::json!(["user.openshift.io"])
            && r["resources"] == serde_json::json!(["groups"])
            && r["verbs"] == serde_json::json!(["get", "list", "watch"])
    ));
}

/// Provisioned share volumes: the webhook may create and read PersistentVolumes, never change or
/// delete one (data stays when a share leaves the policy).
#[test]
fn rbac_creates_persistent_volumes_and_never_changes_or_deletes_them() {
    let docs: Vec<serde_json::Value> = base_documents()
        .iter()
        .map(|d| serde_json::to_value(d).expect("json"))
        .collect();
    let verbs: Vec<String> = docs
        .iter()
        .filter(|d| d["kind"] == "ClusterRole" || d["kind"] == "Role")
        .flat_map(|d| d["rules"].as_array().cloned().unwrap_or_default())
        .filter(|r| {
            r["resources"]
                .as_array()
                .is_some_and(|a| a.contains(&"persistentvolumes".into()))
        })
        .flat_map(|r| r["verbs"].as_array().cloned().unwrap_or_default())
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    assert_eq!(verbs, ["get", "create"]);
}
