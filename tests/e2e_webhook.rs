//! End-to-end: the webhook server in this process, registered with a real kube-apiserver through
//! real Mutating/ValidatingWebhookConfigurations (url to 127.0.0.1 with a caBundle), and pods
//! created as the hub's service account, the StatefulSet controller and impersonated users.

use nv_test_support as support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, PersistentVolumeClaim, Pod};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use notebook_volumes::keys;
use notebook_volumes::server::{self, Config, PolicySource};
use serde_json::json;
use support::env::*;
use support::pod::{env_of, volume_read_only};
use support::webhook::*;
use support::{DeleteOnDrop, TestCluster, TestNamespace, install_crypto_provider};

const HOME: &str = "/opt/app-root/src";
fn share(name: &str) -> String {
    format!("{HOME}/shares/{name}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubespawner_and_odh_pods_get_home_shares_and_library() {
    let env = Env::start().await;
    let pod = env
        .pods_as(HUB)
        .create(
            &PostParams::default(),
            &notebook_pod("jupyter-alice", "alice", &[]),
        )
        .await
        .expect("created");
    assert_eq!(
        annotation(&pod, keys::USER_ANNOTATION).as_deref(),
        Some("alice")
    );
    assert_eq!(
        mounts(&pod, "notebook"),
        vec![
            (HOME.into(), false),
            (share("datasets"), true),
            (share("notebooks"), false),
            (share("finance"), false),
            ("/opt/apps".into(), true),
        ]
    );
    assert_eq!(volume_read_only(&pod, "nv-lib-apps"), Some(true));
    assert_eq!(volume_read_only(&pod, "nv-share-datasets"), Some(true));
    assert_eq!(
        env_of(&pod, "notebook", "LMOD_CMD").as_deref(),
        Some("/opt/apps/lmod/lmod/libexec/lmod")
    );
    assert_eq!(
        env_of(&pod, "notebook", "MODULEPATH").as_deref(),
        Some("/opt/apps/modulefiles/Core:/opt/apps/modulefiles/Linux")
    );
    let home = env
        .claims()
        .get("home-alice")
        .await
        .expect("home claim created on first launch");
    assert_eq!(
        home.metadata.annotations.unwrap()[keys::OWNER_ANNOTATION],
        "alice"
    );
    assert_eq!(home.metadata.labels.unwrap()[keys::HOME_LABEL], "true");

    // An Open Data Hub workbench, created by the StatefulSet controller.
    let odh: Pod = serde_saphyr::from_str(
        &std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/pods/odh-bob.yaml"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut odh = odh;
    odh.metadata.namespace = None;
    // Its StatefulSet was stamped for bob (the pod's username annotation alone is not believed).
    let key = cluster_stamp_key(&env.admin, env.policy_ns.name()).await;
    let odh = stamped_by(odh, &key, env.ns.name(), "bob-workbench", "bob");
    let pod = env
        .pods_as(STS)
        .create(&PostParams::default(), &odh)
        .await
        .expect("created");
    assert_eq!(
        annotation(&pod, keys::USER_ANNOTATION).as_deref(),
        Some("bob")
    );
    assert!(mounts(&pod, "bob-workbench").contains(&(share("finance"), true)));
    assert!(mounts(&pod, "oauth-proxy").is_empty());
    assert!(env_of(&pod, "oauth-proxy", "MODULEPATH").is_none());
    assert_eq!(
        odh.spec.as_ref().unwrap().containers[1].image,
        pod.spec.as_ref().unwrap().containers[1].image
    );
    assert!(env.claims().get("home-bob").await.is_ok());

    // A pod that already carries everything is not changed (reinvocation is a no-op).
    let mut again = env.pods_as_admin().get("jupyter-alice").await.unwrap();
    again.metadata = ObjectMeta {
        name: Some("jupyter-alice-2".into()),
        labels: again.metadata.labels.clone(),
        annotations: again.metadata.annotations.clone(),
        ..Default::default()
    };
    again.status = None;
    let created = env
        .pods_as(HUB)
        .create(&PostParams::default(), &again)
        .await
        .unwrap();
    assert_eq!(
        created.spec.as_ref().unwrap().volumes,
        again.spec.as_ref().unwrap().volumes
    );
    assert_eq!(mounts(&created, "notebook"), mounts(&again, "notebook"));

    // The API server's audit log carries the decision.
    let audit = audit_annotations(env.ns.name(), "jupyter-alice").await;
    assert_eq!(
        audit
            .get("pods.notebook-volumes.io/user")
            .map(String::as_str),
        Some("alice"),
        "{audit:?}"
    );
    assert_eq!(
        audit
            .get("pods.notebook-volumes.io/mounts")
            .map(String::as_str),
        Some("home=rw,datasets=ro,finance=rw,team-notebooks=rw,apps=ro"),
        "{audit:?}"
    );

    // What happened is counted.
    let metrics = env.metrics().await;
    assert!(
        metrics.contains("notebook_volumes_home_claims_created_total 2"),
        "{metrics}"
    );
    assert!(metrics.contains("decision=\"allowed\""), "{metrics}");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_get_their_own_rights_and_cannot_claim_someone_else() {
    let env = Env::start().await;
    // carol is an analyst by policy; her identity provider also says finance-admins.
    let carol = env.pods_as_user("carol", &["finance-admins"]);
    let pod = carol
        .create(
            &PostParams::default(),
            &notebook_pod("carol-nb", "carol", &[]),
        )
        .await
        .expect("created");
    assert_eq!(
        annotation(&pod, keys::USER_ANNOTATION).as_deref(),
        Some("carol")
    );
    assert!(mounts(&pod, "notebook").contains(&(share("finance"), false)));
    let message = denial(
        carol
            .create(
                &PostParams::default(),
                &notebook_pod("fake-bob", "bob", &[]),
            )
            .await,
    );
    assert!(
        message.contains("pod claims user 'bob' but was created by 'carol'; only trusted spawners may create notebooks for other users"),
        "{message}"
    );
    let audit = audit_annotations(env.ns.name(), "fake-bob").await;
    let reason = audit
        .get("pods.notebook-volumes.io/reason")
        .expect("denial reason in the audit log");
    assert!(reason.starts_with("pod claims user 'bob'"), "{reason}");
    // Nothing was created on carol's behalf: bob's home waits for bob's own first launch.
    assert!(
        env.claims()
            .get_opt("home-bob")
            .await
            .expect("read")
            .is_none(),
        "a denied pod naming bob made his home"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_share_only_on_request_and_everything_else_read_only() {
    let env = Env::start().await;
    let hub = env.pods_as(HUB);
    let secret = [(keys::SECRET_SHARES_ANNOTATION, "mergers")];
    let pod = hub
        .create(
            &PostParams::default(),
            &notebook_pod("alice-secret", "alice", &secret),
        )
        .await
        .expect("created");
    let m = mounts(&pod, "notebook");
    assert!(m.contains(&(share("mergers"), false)), "{m:?}");
    assert!(
        m.contains(&(share("finance"), true)) && m.contains(&(share("notebooks"), true)),
        "{m:?}"
    );
    assert!(m.contains(&(HOME.into(), false)), "home stays writable");
    let message = denial(
        hub.create(
            &PostParams::default(),
            &notebook_pod("bob-secret", "bob", &secret),
        )
        .await,
    );
    assert!(message.contains("secret share 'mergers'"), "{message}");
    let pod = hub
        .create(&PostParams::default(), &notebook_pod("bob-nb", "bob", &[]))
        .await
        .unwrap();
    assert!(
        !mounts(&pod, "notebook")
            .iter()
            .any(|(p, _)| p.ends_with("mergers"))
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guard_denies_or_forces_read_only_on_every_pod() {
    let env = Env::start().await;
    let message = denial(
        env.pods_as_user("erin", &[])
            .create(&PostParams::default(), &claim_pod("report", "finance-data"))
            .await,
    );
    assert!(
        message.contains("claim 'finance-data'") && message.contains("user 'erin'"),
        "{message}"
    );

    let bob = env.pods_as_user("bob", &[]);
    let pod = bob
        .create(&PostParams::default(), &claim_pod("report", "finance-data"))
        .await
        .expect("reader allowed");
    assert_eq!(mounts(&pod, "job"), vec![("/data".to_string(), true)]);
    assert_eq!(volume_read_only(&pod, "data"), Some(true));

    // Another user's home claim.
    env.pods_as(HUB)
        .create(
            &PostParams::default(),
            &notebook_pod("jupyter-alice", "alice", &[]),
        )
        .await
        .unwrap();
    let message = denial(
        bob.create(&PostParams::default(), &claim_pod("steal", "home-alice"))
            .await,
    );
    assert!(
        message.contains("the home claim of user 'alice'"),
        "{message}"
    );

    // A debug container added to bob's pod cannot write to the read-only share.
    let debug = json!({"spec": {"ephemeralContainers": [{
        "name": "debug", "image": "busybox", "volumeMounts": [{"name": "data", "mountPath": "/data"}]
    }]}});
    let pod = bob
        .patch_subresource(
            "ephemeralcontainers",
            "report",
            &PatchParams::default(),
            &Patch::Strategic(debug),
        )
        .await
        .expect("debug container added");
    let ephemeral = &pod.spec.unwrap().ephemeral_containers.unwrap()[0];
    assert_eq!(
        ephemeral.volume_mounts.as_ref().unwrap()[0].read_only,
        Some(true)
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_dry_run_shows_the_mutation_and_creates_nothing() {
    let env = Env::start().await;
    let dry = dry_run();
    let pod = env
        .pods_as(HUB)
        .create(&dry, &notebook_pod("jupyter-dave", "dave", &[]))
        .await
        .expect("dry run");
    assert_eq!(
        annotation(&pod, keys::USER_ANNOTATION).as_deref(),
        Some("dave")
    );
    assert!(mounts(&pod, "notebook").contains(&(HOME.into(), false)));
    assert!(
        env.claims().get_opt("home-dave").await.unwrap().is_none(),
        "dry run must not create the home claim"
    );
    let audit = audit_annotations(env.ns.name(), "jupyter-dave").await;
    let mounts = &audit["pods.notebook-volumes.io/mounts"];
    assert!(mounts.starts_with("home=would-create,"), "{mounts}");
    assert!(
        env.pods_as_admin()
            .get_opt("jupyter-dave")
            .await
            .unwrap()
            .is_none()
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_labelled_namespaces_are_touched() {
    let env = Env::start().await;
    let namespaces = Api::<Namespace>::all(env.admin.clone());
    let remove = json!({"metadata": {"labels": {keys::INJECT_LABEL: null}}});
    namespaces
        .patch(
            env.ns.name(),
            &PatchParams::default(),
            &Patch::Merge(remove),
        )
        .await
        .unwrap();
    let pods = env.pods_as(HUB);
    wait_until(
        "injection stops without the label",
        Duration::from_secs(20),
        || {
            let pods = pods.clone();
            async move {
                let dry = dry_run();
                let pod = pods
                    .create(&dry, &notebook_pod("unlabelled", "alice", &[]))
                    .await
                    .unwrap();
                annotation(&pod, keys::USER_ANNOTATION).is_none()
            }
        },
    )
    .await;
    let pod = pods
        .create(&PostParams::default(), &notebook_pod("plain", "alice", &[]))
        .await
        .unwrap();
    assert!(
        pod.spec
            .unwrap()
            .volumes
            .unwrap_or_default()
            .iter()
            .all(|v| !v.name.starts_with("nv-"))
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_changes_apply_to_the_next_pod_and_invalid_policy_is_refused() {
    let env = Env::start().await;
    // The new share's claim exists and is bound: only the policy change is timed.
    ready_claims(&env.admin, env.ns.name(), &["scratch"], "ReadWriteMany").await;
    let config_maps = Api::<ConfigMap>::namespaced(env.admin.clone(), env.policy_ns.name());
    let extra = format!(
        "kind: Share\nname: scratch\nnamespaces: [{}]\nclaimName: scratch\nmountPath: /scratch\nlevel: public\n",
        env.ns.name()
    );
    config_maps
        .create(
            &PostParams::default(),
            &policy_config_map("extra", [("scratch.yaml".to_string(), extra)].into()),
        )
        .await
        .expect("valid policy accepted");
    let changed = Instant::now();
    let pods = env.pods_as(HUB);
    let mut seen = None;
    while changed.elapsed() < Duration::from_secs(1) {
        let dry = dry_run();
        let pod = pods
            .create(&dry, &notebook_pod("next", "alice", &[]))
            .await
            .unwrap();
        if mounts(&pod, "notebook").contains(&("/scratch".to_string(), true)) {
            seen = Some(changed.elapsed());
            break;
        }
    }
    assert!(
        seen.is_some(),
        "the new share was not mounted within one second of the change"
    );

    let bad =
        "kind: Share\nname: broken\nclaimName: broken\nmountPath: relative/path\nlevel: public\n";
    let err = config_maps
        .create(
            &PostParams::default(),
            &policy_config_map("bad", [("bad.yaml".to_string(), bad.to_string())].into()),
        )
        .await
        .expect_err("invalid policy refused");
    let message = err.to_string();
    assert!(
        message.contains("key bad.yaml, line 4") && message.contains("field 'mountPath'"),
        "{message}"
    );
    // An update that breaks a valid ConfigMap is refused too.
    let broken = json!({"data": {"scratch.yaml": "kind: Share\nname: scratch\nclaimName: scratch\nmountPath: /scratch\nlevel: public\nreaders: {users: [x]}\n"}});
    let err = config_maps
        .patch("extra", &PatchParams::default(), &Patch::Merge(broken))
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("field 'readers'"), "{err}");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_replaced_on_disk_while_pods_are_created() {
    let env = Env::start().await;
    // Rotation as a platform would do it: trust the new CA first, then swap the serving pair.
    let next = loopback_certificates();
    let bundle = format!("{}{}", env.ca_bundle, next.ca_cert_pem);
    let name = format!("nv-{}", env.ns.name());
    set_ca_bundle(&env.admin, &name, &bundle).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pods = env.pods_as(HUB);
    let creating = tokio::spawn(async move {
        let mut allowed = 0;
        for i in 0..30 {
            let dry = dry_run();
            let pod = pods
                .create(&dry, &notebook_pod(&format!("rotate-{i}"), "alice", &[]))
                .await
                .expect("admission during rotation");
            allowed += usize::from(annotation(&pod, keys::USER_ANNOTATION).is_some());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        allowed
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let dir = env.certs.path();
    std::fs::write(dir.join("tls.key.new"), &next.key_pem).unwrap();
    std::fs::write(dir.join("tls.crt.new"), &next.cert_pem).unwrap();
    std::fs::rename(dir.join("tls.key.new"), dir.join("tls.key")).unwrap();
    std::fs::rename(dir.join("tls.crt.new"), dir.join("tls.crt")).unwrap();
    assert_eq!(
        creating.await.unwrap(),
        30,
        "every admission during the rotation succeeded"
    );
    let metrics = env.metrics().await;
    assert!(
        metrics.contains("notebook_volumes_certificate_reloads_total{result=\"ok\"}"),
        "{metrics}"
    );
    // The new certificate is what the API server now verifies against.
    set_ca_bundle(&env.admin, &name, &next.ca_cert_pem).await;
    let pods = env.pods_as(HUB);
    wait_until(
        "pods are admitted with only the new CA trusted",
        Duration::from_secs(20),
        || {
            let pods = pods.clone();
            async move {
                let dry = dry_run();
                pods.create(&dry, &notebook_pod("after", "alice", &[]))
                    .await
                    .is_ok_and(|p| annotation(&p, keys::USER_ANNOTATION).is_some())
            }
        },
    )
    .await;
    env.stop().await;
}

/// Replaces the CA the API server trusts for the pod webhook.
async fn set_ca_bundle(admin: &Client, configuration: &str, pem: &str) {
    use base64::Engine;
    let bundle = base64::engine::general_purpose::STANDARD.encode(pem);
    let patch = json!({"webhooks": [{"name": "pods.notebook-volumes.io", "clientConfig": {"caBundle": bundle}}]});
    Api::<MutatingWebhookConfiguration>::all(admin.clone())
        .patch(
            configuration,
            &PatchParams::default(),
            &Patch::Strategic(patch),
        )
        .await
        .expect("caBundle updated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_waits_for_the_first_sync() {
    install_crypto_provider();
    let cluster = TestCluster::shared();
    let admin = cluster.admin_client();
    let policy_ns = TestNamespace::new("nv-ready").await;
    // The webhook's own identity, with no rights yet: its caches cannot list anything.
    let account = format!("nv-ready-{}", policy_ns.name());
    let client = cluster.client_as(
        &format!("system:serviceaccount:{}:{account}", policy_ns.name()),
        &[],
    );
    let certs = tempfile::tempdir().unwrap();
    loopback_certificates()
        .write_to(certs.path(), true)
        .unwrap();
    let mut config = Config::new(
        certs.path().join("tls.crt"),
        certs.path().join("tls.key"),
        PolicySource::Cluster {
            client,
            namespace: policy_ns.name().into(),
        },
    );
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.probe_listen = "127.0.0.1:0".parse().unwrap();
    config.workers = 1;
    let server = server::start(config).await.unwrap();
    assert_eq!(http_get(server.probe_addr, "/healthz").await.0, 200);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (status, body) = http_get(server.probe_addr, "/readyz").await;
    assert_eq!(status, 503, "{body}");

    // Grant what the shipped RBAC grants; the caches sync and the webhook becomes ready.
    let role = ClusterRole {
        metadata: ObjectMeta {
            name: Some(account.clone()),
            ..Default::default()
        },
        rules: Some(vec![
            PolicyRule {
                api_groups: Some(vec!["".into()]),
                resources: Some(vec![
                    "configmaps".into(),
                    "namespaces".into(),
                    "persistentvolumeclaims".into(),
                ]),
                verbs: vec!["get".into(), "list".into(), "watch".into()],
                ..Default::default()
            },
            PolicyRule {
                // The stamp key Secret (the shipped Role grants it in the webhook's namespace).
                api_groups: Some(vec!["".into()]),
                resources: Some(vec!["secrets".into()]),
                verbs: vec!["get".into(), "create".into()],
                ..Default::default()
            },
        ]),
        ..Default::default()
    };
    Api::<ClusterRole>::all(admin.clone())
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let _role = DeleteOnDrop::cluster_scoped::<ClusterRole>(&account);
    let binding = ClusterRoleBinding {
        metadata: ObjectMeta {
            name: Some(account.clone()),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "ClusterRole".into(),
            name: account.clone(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: account.clone(),
            namespace: Some(policy_ns.name().into()),
            api_group: None,
        }]),
    };
    Api::<ClusterRoleBinding>::all(admin.clone())
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    let _binding = DeleteOnDrop::cluster_scoped::<ClusterRoleBinding>(&account);
    let probe = server.probe_addr;
    wait_until(
        "/readyz turns 200 after the first sync",
        Duration::from_secs(60),
        || async move { http_get(probe, "/readyz").await.0 == 200 },
    )
    .await;
    server.stop(false).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_claim_is_trusted_as_a_home_only_once_an_administrator_marked_it() {
    let env = Env::start().await;
    let claim = |name: &str, owner: Option<&str>| -> PersistentVolumeClaim {
        let annotations: BTreeMap<String, String> = owner
            .map(|o| (keys::OWNER_ANNOTATION.to_string(), o.to_string()))
            .into_iter()
            .collect();
        let labels: BTreeMap<String, String> = owner
            .map(|_| (keys::HOME_LABEL.to_string(), "true".to_string()))
            .into_iter()
            .collect();
        serde_json::from_value(json!({
            "metadata": {"name": name, "annotations": annotations, "labels": labels},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
        }))
        .unwrap()
    };
    // A claim the spawner (or an earlier setup) made for erin, without our marks: not trusted,
    // since anyone with edit rights could have made it (and filled it) under erin's name.
    env.claims()
        .create(&PostParams::default(), &claim("home-erin", None))
        .await
        .unwrap();
    let hub = env.pods_as(HUB);
    let message = denial(
        hub.create(
            &PostParams::default(),
            &notebook_pod("jupyter-erin", "erin", &[]),
        )
        .await,
    );
    assert!(
        message.contains("was not created by notebook-volumes")
            && message.contains("an administrator must check its contents"),
        "{message}"
    );
    let untouched = env.claims().get("home-erin").await.unwrap();
    assert!(untouched.metadata.labels.unwrap_or_default().is_empty());
    // An administrator checks it and marks it as erin's home: then it is her home.
    let marks = json!({"metadata": {
        "labels": {keys::HOME_LABEL: "true"},
        "annotations": {keys::OWNER_ANNOTATION: "erin"},
    }});
    env.claims()
        .patch("home-erin", &PatchParams::default(), &Patch::Merge(&marks))
        .await
        .expect("an administrator marks the claim");
    hub.create(
        &PostParams::default(),
        &notebook_pod("jupyter-erin", "erin", &[]),
    )
    .await
    .expect("erin's notebook starts with her marked home");
    // A claim that belongs to someone else is never mounted as a home.
    env.claims()
        .create(&PostParams::default(), &claim("home-dave", Some("mallory")))
        .await
        .unwrap();
    let message = denial(
        hub.create(
            &PostParams::default(),
            &notebook_pod("jupyter-dave", "dave", &[]),
        )
        .await,
    );
    assert!(message.contains("belongs to user 'mallory'"), "{message}");
    env.stop().await;
}

/// The in-process app (as in tests/http.rs) answers an AdmissionReview exactly as the API server
/// sends it: captured here from the real API server, then replayed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_captured_from_the_api_server_is_answered_in_process() {
    install_crypto_provider();
    let cluster = TestCluster::shared();
    let admin = cluster.admin_client();
    let tls = support::TestTls::generate();
    let recorder = support::RecordingWebhook::start(&tls);
    let ns =
        TestNamespace::with_labels("capture", &[(keys::INJECT_LABEL, keys::INJECT_ENABLED)]).await;
    allow_everyone_to_edit(&admin, ns.name()).await;
    let base = format!("https://127.0.0.1:{}", recorder.port());
    let name = format!("capture-{}", ns.name());
    let _registrations = register_webhooks(
        &admin,
        &name,
        &base,
        &tls.ca_pem,
        ns.name(),
        "no-policy-here",
    )
    .await;
    let hub = Api::<Pod>::namespaced(cluster.client_as_service_account(HUB.0, HUB.1), ns.name());
    wait_until(
        "the API server calls the recording webhook",
        Duration::from_secs(30),
        || {
            let hub = hub.clone();
            async move {
                let dry = dry_run();
                hub.create(&dry, &notebook_pod("probe", "alice", &[]))
                    .await
                    .is_ok()
            }
        },
    )
    .await;
    hub.create(
        &PostParams::default(),
        &notebook_pod("jupyter-alice", "alice", &[]),
    )
    .await
    .expect("created");
    let call = recorder
        .calls()
        .into_iter()
        .rev()
        .find(|c| c.name == "jupyter-alice" && !c.dry_run)
        .expect("the API server sent the review");
    assert_eq!(
        call.user.as_deref(),
        Some("system:serviceaccount:jupyterhub:hub")
    );

    let units = vec![notebook_volumes::policy::unit_from_config_map(
        &policy_config_map("policy", example_policy(ns.name())),
    )];
    let state = notebook_volumes::server::AppState::offline(units, "notebook-volumes");
    let app = actix_web::test::init_service(
        actix_web::App::new().configure(|c| notebook_volumes::server::app::configure(c, &state)),
    )
    .await;
    let request = actix_web::test::TestRequest::post()
        .uri("/mutate")
        .set_json(&call.review)
        .to_request();
    let answer: serde_json::Value = actix_web::test::call_and_read_body_json(&app, request).await;
    let response = &answer["response"];
    assert_eq!(response["uid"], call.review["request"]["uid"]);
    assert_eq!(response["allowed"], true, "{answer}");
    use base64::Engine;
    let patch = base64::engine::general_purpose::STANDARD
        .decode(response["patch"].as_str().expect("base64 patch"))
        .unwrap();
    let patch: json_patch::Patch = serde_json::from_slice(&patch).unwrap();
    let mut pod = call.review["request"]["object"].clone();
    json_patch::patch(&mut pod, &patch.0)
        .expect("the patch applies to the pod the API server sent");
    let volumes: Vec<&str> = pod["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert!(
        volumes.contains(&"nv-home") && volumes.contains(&"nv-share-finance"),
        "{volumes:?}"
    );
}
