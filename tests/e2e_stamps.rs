//! Identity through the owner chain, against the real API server and the real StatefulSet
//! controller (kube-controller-manager of the test node): users with `edit`-like rights create
//! StatefulSets and Notebooks, a stand-in for the Kubeflow notebook controller (its own service
//! account, the upstream copy rule) relays Notebooks to StatefulSets, and the pods the StatefulSet
//! controller creates belong to the user in the webhook's stamp and to nobody else.

use nv_test_support as support;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube::{Api, Client};
use notebook_volumes::keys;
use serde_json::{Value, json};
use support::TestCluster;
use support::env::*;
use support::node::NOTEBOOK_IMAGE;
use support::pod::*;
use support::webhook::*;

/// The notebook controller's service account, a trusted controller of the example Settings.
const NOTEBOOK_CONTROLLER: (&str, &str) = ("kubeflow", "notebook-controller-service-account");
/// How long the StatefulSet controller may take to create (or replace) a pod.
const POD_TIMEOUT: Duration = Duration::from_secs(120);

struct StampEnv {
    env: Env,
}

impl StampEnv {
    async fn start() -> StampEnv {
        TestCluster::shared_with_node();
        let env = Env::start().await;
        install_notebook_crd(&env.admin).await;
        allow_everyone_to_edit_workloads(&env.admin, env.ns.name()).await;
        StampEnv { env }
    }

    fn statefulsets_as(&self, user: &str) -> Api<StatefulSet> {
        Api::namespaced(self.env.cluster.client_as(user, &[]), self.env.ns.name())
    }

    fn notebooks(&self, client: Client) -> Api<DynamicObject> {
        Api::namespaced_with(client, self.env.ns.name(), &notebook_resource())
    }

    fn notebooks_as(&self, user: &str) -> Api<DynamicObject> {
        self.notebooks(self.env.cluster.client_as(user, &[]))
    }

    /// Deletes pod `name` at once, as a restart or a node drain would; its controller re-creates it.
    async fn delete_pod(&self, name: &str) {
        let now = kube::api::DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        };
        self.env
            .pods_as_admin()
            .delete(name, &now)
            .await
            .expect("delete the pod");
    }

    /// Waits until the StatefulSet controller has created pod `name` and `done` holds for it.
    async fn pod_when(&self, name: &str, what: &str, done: impl Fn(&Pod) -> bool) -> Pod {
        let pods = self.env.pods_as_admin();
        let mut found = None;
        let start = std::time::Instant::now();
        while start.elapsed() < POD_TIMEOUT {
            if let Ok(Some(pod)) = pods.get_opt(name).await
                && pod.metadata.deletion_timestamp.is_none()
                && done(&pod)
            {
                found = Some(pod);
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        found.unwrap_or_else(|| panic!("timed out waiting until pod {name} {what}"))
    }

    async fn pod(&self, name: &str) -> Pod {
        self.pod_when(name, "exists", |_| true).await
    }
}

fn notebook_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kubeflow.org", "v1", "Notebook"),
        "notebooks",
    )
}

/// The Notebook CRD with the essentials of the upstream schema: `kubeflow.org`, namespaced,
/// v1 (stored) and v1beta1, a `spec.template.spec` pod spec, a status subresource.
async fn install_notebook_crd(admin: &Client) {
    let schema = json!({
        "type": "object",
        "properties": {
            "spec": {"type": "object", "properties": {"template": {"type": "object", "properties": {
                "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
            }}}},
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
        }
    });
    let version = |name: &str, storage: bool| {
        json!({
            "name": name, "served": true, "storage": storage,
            "schema": {"openAPIV3Schema": schema},
            "subresources": {"status": {}}
        })
    };
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "notebooks.kubeflow.org"},
        "spec": {
            "group": "kubeflow.org",
            "scope": "Namespaced",
            "names": {"plural": "notebooks", "singular": "notebook", "kind": "Notebook"},
            "versions": [version("v1", true), version("v1beta1", false)]
        }
    }))
    .expect("CRD");
    let crds = Api::<CustomResourceDefinition>::all(admin.clone());
    // Shared by the tests of this binary: the first one creates it.
    let _ = crds
        .patch(
            "notebooks.kubeflow.org",
            &PatchParams::apply("notebook-volumes-tests").force(),
            &Patch::Apply(&crd),
        )
        .await
        .expect("Notebook CRD");
    wait_until(
        "the Notebook CRD is established",
        Duration::from_secs(30),
        || {
            let crds = crds.clone();
            async move {
                crds.get("notebooks.kubeflow.org")
                    .await
                    .ok()
                    .and_then(|c| c.status?.conditions)
                    .is_some_and(|cs| {
                        cs.iter()
                            .any(|c| c.type_ == "Established" && c.status == "True")
                    })
            }
        },
    )
    .await;
}

/// A pod spec that runs on the test node and stops at once when deleted.
fn pod_spec(container: &str) -> Value {
    json!({
        "terminationGracePeriodSeconds": 0,
        "containers": [{
            "name": container, "image": NOTEBOOK_IMAGE, "imagePullPolicy": "Never",
            "command": ["sleep", "3600"]
        }]
    })
}

/// A StatefulSet as a user writes it: `annotations` on its pod template.
fn statefulset(name: &str, annotations: Value) -> StatefulSet {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "serviceName": name,
            "selector": {"matchLabels": {"statefulset": name}},
            "template": {
                "metadata": {
                    "labels": {"statefulset": name, "notebook-name": name},
                    "annotations": annotations
                },
                "spec": pod_spec(name)
            }
        }
    }))
    .expect("StatefulSet")
}

fn notebook(name: &str, annotations: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "kubeflow.org/v1", "kind": "Notebook",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"template": {"spec": pod_spec(name)}}
    }))
    .expect("Notebook")
}

fn template_stamp(sts: &StatefulSet) -> Option<String> {
    sts.spec
        .as_ref()?
        .template
        .metadata
        .as_ref()?
        .annotations
        .as_ref()?
        .get(keys::STAMP_ANNOTATION)
        .cloned()
}

/// The claims a pod's volumes name, by volume.
fn claims_of(pod: &Pod) -> BTreeMap<String, String> {
    pod.spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|v| {
            let claim = v.persistent_volume_claim.as_ref()?;
            Some((v.name.clone(), claim.claim_name.clone()))
        })
        .collect()
}

fn user_of(pod: &Pod) -> Option<String> {
    annotation(pod, keys::USER_ANNOTATION)
}

/// A stand-in for the Kubeflow notebook controller, as its own service account: reads Notebook
/// `name` and creates or updates its StatefulSet exactly as upstream `generateStatefulSet` and
/// `CopyStatefulSetFields` do (labels copied; annotations copied except keys containing
/// `kubectl` or `notebook`; on update only the StatefulSet's own labels and annotations, the
/// replicas and the pod spec change, never the template's annotations).
async fn relay(t: &StampEnv, name: &str) {
    let client = t
        .env
        .cluster
        .client_as_service_account(NOTEBOOK_CONTROLLER.0, NOTEBOOK_CONTROLLER.1);
    let nb = t
        .notebooks(client.clone())
        .get(name)
        .await
        .expect("the notebook controller reads the Notebook");
    let mut labels = json!({"statefulset": name, "notebook-name": name});
    for (k, v) in nb.metadata.labels.iter().flatten() {
        labels[k] = json!(v);
    }
    let mut annotations = json!({});
    for (k, v) in nb.metadata.annotations.iter().flatten() {
        if !k.contains("kubectl") && !k.contains("notebook") {
            annotations[k] = json!(v);
        }
    }
    let stopped = nb
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key("kubeflow-resource-stopped"));
    let mut spec = nb.data["spec"]["template"]["spec"].clone();
    let ns = t.env.ns.name();
    let c = &mut spec["containers"][0];
    if c.get("workingDir").is_none() {
        c["workingDir"] = json!("/home/jovyan");
    }
    if c.get("ports").is_none() {
        c["ports"] = json!([{"containerPort": 8888, "name": "notebook-port", "protocol": "TCP"}]);
    }
    c["env"] = json!([{"name": "NB_PREFIX", "value": format!("/notebook/{ns}/{name}")}]);
    if spec.get("securityContext").is_none() {
        spec["securityContext"] = json!({"fsGroup": 100});
    }
    let desired: StatefulSet = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {
            "name": name,
            "ownerReferences": [{
                "apiVersion": "kubeflow.org/v1", "kind": "Notebook", "name": name,
                "uid": nb.metadata.uid, "controller": true, "blockOwnerDeletion": true
            }]
        },
        "spec": {
            "replicas": if stopped { 0 } else { 1 },
            "selector": {"matchLabels": {"statefulset": name}},
            "template": {"metadata": {"labels": labels, "annotations": annotations}, "spec": spec}
        }
    }))
    .expect("generated StatefulSet");
    let api: Api<StatefulSet> = Api::namespaced(client, ns);
    match api.get_opt(name).await.expect("get StatefulSet") {
        None => {
            api.create(&PostParams::default(), &desired)
                .await
                .expect("the notebook controller creates the StatefulSet");
        }
        Some(mut found) => {
            found.metadata.labels = desired.metadata.labels.clone();
            found.metadata.annotations = desired.metadata.annotations.clone();
            let (to, from) = (
                found.spec.as_mut().expect("spec"),
                desired.spec.as_ref().expect("spec"),
            );
            to.replicas = from.replicas;
            to.template.spec = from.template.spec.clone();
            api.replace(name, &PostParams::default(), &found)
                .await
                .expect("the notebook controller updates the StatefulSet");
        }
    }
}

/// carol has `edit`: a StatefulSet whose pod template names alice is denied at the StatefulSet;
/// one carrying alice's real stamp, copied from alice's StatefulSet (even re-created under the
/// same name after deleting alice's), is admitted but stamped for carol, and the pod the
/// StatefulSet controller creates from it is carol's, with carol's home and never alice's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statefulset_naming_another_user_is_denied_and_a_copied_stamp_makes_the_pod_the_creators()
{
    let t = StampEnv::start().await;
    let by_name = statefulset("evil", json!({"opendatahub.io/username": "alice"}));
    let denied = t
        .statefulsets_as("carol")
        .create(&PostParams::default(), &by_name)
        .await
        .expect_err("a StatefulSet naming another user is denied");
    assert!(denied.to_string().contains("alice"), "{denied}");

    // alice's own StatefulSet: stamped for her, its pod gets her home.
    t.statefulsets_as("alice")
        .create(&PostParams::default(), &statefulset("alices", json!({})))
        .await
        .expect("alice creates her StatefulSet");
    let alices = t
        .statefulsets_as("carol")
        .get("alices")
        .await
        .expect("carol reads it");
    let stamp = template_stamp(&alices).expect("alice's StatefulSet is stamped");
    assert!(stamp.starts_with("alice:"), "{stamp}");
    let pod = t.pod("alices-0").await;
    assert_eq!(user_of(&pod).as_deref(), Some("alice"));
    assert_eq!(
        claims_of(&pod).get("nv-home").map(String::as_str),
        Some("home-alice")
    );

    // carol copies that stamp into her own StatefulSet...
    let copied = statefulset("evil", json!({ keys::STAMP_ANNOTATION: stamp }));
    let created = t
        .statefulsets_as("carol")
        .create(&PostParams::default(), &copied)
        .await
        .expect("admitted, restamped");
    assert!(template_stamp(&created).unwrap().starts_with("carol:"));
    let pod = t.pod("evil-0").await;
    assert_eq!(user_of(&pod).as_deref(), Some("carol"));
    let claims = claims_of(&pod);
    assert!(!claims.values().any(|c| c == "home-alice"), "{claims:?}");
    assert_eq!(
        claims.get("nv-home").map(String::as_str),
        Some("home-carol")
    );

    // ...and under alice's StatefulSet's own name, after deleting alice's.
    t.statefulsets_as("carol")
        .delete("alices", &Default::default())
        .await
        .expect("carol deletes alice's StatefulSet");
    let sts = t.statefulsets_as("carol");
    wait_until(
        "alice's StatefulSet is gone",
        Duration::from_secs(60),
        || {
            let sts = sts.clone();
            async move { sts.get_opt("alices").await.ok().flatten().is_none() }
        },
    )
    .await;
    let same_name = statefulset("alices", json!({ keys::STAMP_ANNOTATION: stamp }));
    t.statefulsets_as("carol")
        .create(&PostParams::default(), &same_name)
        .await
        .expect("admitted, restamped");
    let pod = t
        .pod_when("alices-0", "is the re-created StatefulSet's", |p| {
            user_of(p).as_deref() != Some("alice")
        })
        .await;
    assert_eq!(user_of(&pod).as_deref(), Some("carol"));
    assert!(!claims_of(&pod).values().any(|c| c == "home-alice"));
    t.env.stop().await;
}

/// A StatefulSet made while the namespace was not enabled carries whatever stamp its author typed
/// (here a copy of alice's real stamp for the same name and namespace is impossible to get, so the
/// author types a MAC). Once the namespace is enabled, the pods the StatefulSet controller
/// creates from it get nobody's volumes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statefulset_made_before_the_namespace_was_enabled_gets_nobodys_volumes() {
    let t = StampEnv::start().await;
    let namespaces = Api::<Namespace>::all(t.env.admin.clone());
    let label = |value: Value| json!({"metadata": {"labels": {keys::INJECT_LABEL: value}}});
    namespaces
        .patch(
            t.env.ns.name(),
            &PatchParams::default(),
            &Patch::Merge(&label(Value::Null)),
        )
        .await
        .expect("disable the namespace");
    let hub = t.env.pods_as(HUB);
    wait_until(
        "the webhook is no longer called",
        Duration::from_secs(30),
        || {
            let hub = hub.clone();
            async move {
                let probe = notebook_pod("probe", "alice", &[]);
                hub.create(&dry_run(), &probe)
                    .await
                    .is_ok_and(|p| user_of(&p).is_none())
            }
        },
    )
    .await;
    let forged = statefulset(
        "early",
        json!({
            keys::STAMP_ANNOTATION: "alice:x7PZ0f1hM3Tq3a1p0gNw2m0x5VvJm8X2y8c1v9gk0aQ",
            "opendatahub.io/username": "alice"
        }),
    );
    t.statefulsets_as("carol")
        .create(&PostParams::default(), &forged)
        .await
        .expect("no webhook: admitted as written");
    let early = t.pod("early-0").await;
    assert_eq!(user_of(&early), None, "no webhook, no injection");
    namespaces
        .patch(
            t.env.ns.name(),
            &PatchParams::default(),
            &Patch::Merge(&label(json!(keys::INJECT_ENABLED))),
        )
        .await
        .expect("enable the namespace");
    wait_for_injection(t.env.pods_as(HUB)).await;
    // The pod is replaced (a restart, a node drain): now through the webhook.
    let uid = early.metadata.uid.clone();
    t.delete_pod("early-0").await;
    let pod = t
        .pod_when("early-0", "is re-created", |p| p.metadata.uid != uid)
        .await;
    assert_eq!(user_of(&pod), None, "the typed stamp names nobody");
    assert!(claims_of(&pod).is_empty(), "{:?}", claims_of(&pod));
    t.env.stop().await;
}

/// alice creates a Notebook asking for a secret share under the key the notebook controller
/// copies; the notebook controller (stand-in) creates the StatefulSet; the StatefulSet controller
/// creates the pod: alice's home, the shares, and the secret share. Then dave, who may edit
/// every Notebook of the namespace, tries to change alice's and is denied; alice's own change is
/// relayed by the notebook controller and the pod the StatefulSet controller rolls out stays hers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notebook_relayed_by_the_notebook_controller_gets_its_users_volumes_and_nobody_else_may_change_it()
 {
    let t = StampEnv::start().await;
    let nb = notebook(
        "alice-nb",
        json!({
            keys::RELAYED_SECRET_SHARES_ANNOTATION: "mergers",
            keys::SECRET_SHARES_ANNOTATION: "ignored-by-the-copy-rule",
        }),
    );
    let created = t
        .notebooks_as("alice")
        .create(&PostParams::default(), &nb)
        .await
        .expect("alice creates her Notebook");
    let stamp = created.metadata.annotations.as_ref().unwrap()[keys::STAMP_ANNOTATION].clone();
    assert!(stamp.starts_with("alice:"), "{stamp}");
    relay(&t, "alice-nb").await;
    let pod = t.pod("alice-nb-0").await;
    assert_eq!(user_of(&pod).as_deref(), Some("alice"));
    let claims = claims_of(&pod);
    // A secret notebook: the secret-level home (Home.secretHome: separate, the default).
    assert_eq!(
        claims.get("nv-home").map(String::as_str),
        Some("home-alice--secret"),
        "{claims:?}"
    );
    assert_eq!(
        claims
            .get(&keys::share_volume("mergers"))
            .map(String::as_str),
        Some("mergers-data"),
        "the secret share asked for on the Notebook: {claims:?}"
    );
    assert!(
        claims.contains_key(&keys::share_volume("finance")),
        "{claims:?}"
    );

    // dave may edit every Notebook, but not make alice's run his spec: the write is denied (a
    // restamp to dave would let alice's next routine write carry dave's spec back as hers).
    let change_command = |who: &'static str| {
        let notebooks = t.notebooks_as(who);
        async move {
            let mut edited = notebooks.get("alice-nb").await.expect("get");
            edited.data["spec"]["template"]["spec"]["containers"][0]["command"] =
                json!(["sleep", "3601"]);
            notebooks
                .replace("alice-nb", &PostParams::default(), &edited)
                .await
        }
    };
    let refused = change_command("dave")
        .await
        .expect_err("dave may not change what alice's Notebook runs");
    assert!(
        refused.to_string().contains("belongs to 'alice'"),
        "{refused}"
    );
    // alice makes the same change herself: it stays hers.
    let replaced = change_command("alice")
        .await
        .expect("alice edits her Notebook");
    let new_stamp = replaced.metadata.annotations.as_ref().unwrap()[keys::STAMP_ANNOTATION].clone();
    assert!(new_stamp.starts_with("alice:"), "{new_stamp}");
    relay(&t, "alice-nb").await;
    let sts = Api::<StatefulSet>::namespaced(t.env.admin.clone(), t.env.ns.name())
        .get("alice-nb")
        .await
        .expect("StatefulSet");
    assert_eq!(template_stamp(&sts).as_deref(), Some(new_stamp.as_str()));
    // The pod never becomes ready here (the share claims are not bound), so the StatefulSet
    // controller does not roll it by itself: delete it, as a restart would.
    t.delete_pod("alice-nb-0").await;
    let pod = t
        .pod_when("alice-nb-0", "runs alice's change", |p| {
            p.spec.as_ref().is_some_and(|s| {
                s.containers[0].command.as_deref()
                    == Some(&["sleep".to_string(), "3601".to_string()][..])
            })
        })
        .await;
    assert_eq!(user_of(&pod).as_deref(), Some("alice"));
    let claims = claims_of(&pod);
    assert!(
        !claims.values().any(|c| c.starts_with("home-dave")),
        "{claims:?}"
    );
    assert_eq!(
        claims.get("nv-home").map(String::as_str),
        Some("home-alice--secret")
    );
    t.env.stop().await;
}
