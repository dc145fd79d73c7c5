//! End-to-end, through the real API server: every path to a claim's data that a user with edit
//! rights in an enabled namespace could take around the guard is refused (docs/security.md lists
//! them): squatting a home before its first launch, generic ephemeral volumes that clone a share
//! or take a home's name, inline volumes, raw block devices, debug containers that target another
//! user's notebook, and exec/attach/port-forward/proxy into it.

use nv_test_support as support;

use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::env::*;
use support::webhook::*;

fn pod(value: Value) -> Pod {
    serde_json::from_value(value).expect("pod")
}

fn ephemeral_pod(name: &str, template: Value) -> Pod {
    pod(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {
            "containers": [{"name": "job", "image": "busybox", "volumeMounts": [{"name": "scratch", "mountPath": "/s"}]}],
            "volumes": [{"name": "scratch", "ephemeral": {"volumeClaimTemplate": template}}]
        }
    }))
}

fn volume_pod(name: &str, volume: Value) -> Pod {
    let mut volume = volume;
    volume["name"] = json!("v");
    pod(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"containers": [{"name": "job", "image": "busybox"}], "volumes": [volume]}
    }))
}

fn assert_contains(message: &str, words: &[&str]) {
    for w in words {
        assert!(message.contains(w), "{message:?} lacks {w:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_home_cannot_be_squatted_before_its_first_launch() {
    let env = Env::start().await;
    // bob mounts the claim alice's first launch will create, before she ever started.
    let bob = env.pods_as_user("bob", &[]);
    let message = denial(
        bob.create(&PostParams::default(), &claim_pod("squat", "home-alice"))
            .await,
    );
    assert_contains(
        &message,
        &[
            "'home-alice'",
            "slugs to 'alice'",
            "may only mount their own home",
        ],
    );
    // So alice's first launch gets a home nobody else holds.
    env.pods_as(HUB)
        .create(
            &PostParams::default(),
            &notebook_pod("jupyter-alice", "alice", &[]),
        )
        .await
        .expect("alice's notebook starts");
    let home = env.claims().get("home-alice").await.expect("home created");
    assert_eq!(
        home.metadata.annotations.unwrap()[notebook_volumes::keys::OWNER_ANNOTATION],
        "alice"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generic_ephemeral_volumes_cannot_clone_shares_or_take_home_names() {
    let env = Env::start().await;
    let carol = env.pods_as_user("carol", &[]);
    let spec = |extra: Value| {
        let mut spec = json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}});
        if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
            s.extend(e.clone());
        }
        spec
    };
    // A clone of the secret share (carol may not read it) and of the private one (she reads it:
    // the copy would still leave the policy).
    for (claim, share) in [
        ("mergers-data", "secret share 'mergers'"),
        ("finance-data", "private share 'finance'"),
    ] {
        for field in ["dataSource", "dataSourceRef"] {
            let template = json!({"spec": spec(json!({field: {"kind": "PersistentVolumeClaim", "name": claim}}))});
            let message = denial(
                carol
                    .create(&PostParams::default(), &ephemeral_pod("clone", template))
                    .await,
            );
            assert_contains(&message, &[&format!("clones claim '{claim}'"), share]);
        }
    }
    // A claim marked as someone's home.
    let template = json!({
        "metadata": {"labels": {"notebook-volumes.io/home": "true"}, "annotations": {"notebook-volumes.io/owner": "dave"}},
        "spec": spec(json!({}))
    });
    let message = denial(
        carol
            .create(&PostParams::default(), &ephemeral_pod("marked", template))
            .await,
    );
    assert_contains(&message, &["marks its claim as a home"]);
    // Pod `home` + volume `scratch` = claim `home-scratch`, the home name of user `scratch`.
    let message = denial(
        carol
            .create(
                &PostParams::default(),
                &ephemeral_pod("home", json!({"spec": spec(json!({}))})),
            )
            .await,
    );
    assert_contains(&message, &["would create claim 'home-scratch'"]);
    // An ordinary ephemeral volume is fine.
    carol
        .create(
            &PostParams::default(),
            &ephemeral_pod("ok", json!({"spec": spec(json!({}))})),
        )
        .await
        .expect("a plain ephemeral volume is admitted");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_volumes_and_raw_devices_cannot_reach_share_data() {
    let env = Env::start().await;
    let bob = env.pods_as_user("bob", &[]);
    for (name, volume, words) in [
        (
            "nfs",
            json!({"nfs": {"server": "nfs.example", "path": "/exports/finance"}}),
            vec!["inline 'nfs' volume", "allowedVolumeTypes"],
        ),
        (
            "csi",
            json!({"csi": {"driver": "nfs.csi.k8s.io", "volumeAttributes": {"server": "nfs.example", "share": "/finance"}}}),
            vec!["driver 'nfs.csi.k8s.io'"],
        ),
        (
            "host",
            json!({"hostPath": {"path": "/srv/finance"}}),
            vec!["inline 'hostPath' volume"],
        ),
    ] {
        let message = denial(
            bob.create(&PostParams::default(), &volume_pod(name, volume))
                .await,
        );
        assert_contains(&message, &words);
    }
    // bob only reads finance: as a raw block device it could not be kept read-only.
    let device = pod(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "block"},
        "spec": {
            "containers": [{"name": "job", "image": "busybox", "volumeDevices": [{"name": "f", "devicePath": "/dev/xvdf"}]}],
            "volumes": [{"name": "f", "persistentVolumeClaim": {"claimName": "finance-data"}}]
        }
    }));
    let message = denial(bob.create(&PostParams::default(), &device).await);
    assert_contains(&message, &["raw block device", "'ro'"]);
    // alice writes finance: she may.
    env.pods_as_user("alice", &[])
        .create(&PostParams::default(), &device)
        .await
        .expect("a writer may map the share as a device");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_containers_are_judged_alone_and_need_their_targets_rights() {
    let env = Env::start().await;
    env.pods_as(HUB)
        .create(
            &PostParams::default(),
            &notebook_pod("jupyter-alice", "alice", &[]),
        )
        .await
        .expect("alice's notebook");
    // bob may not share the processes (and files, tokens) of alice's notebook.
    let bob = env.pods_as_user("bob", &[]);
    let message = denial(
        add_debug(
            &bob,
            "jupyter-alice",
            json!({"name": "peek", "image": "busybox", "targetContainerName": "notebook"}),
        )
        .await,
    );
    assert_contains(
        &message,
        &["targets container 'notebook'", "notebook of user 'alice'"],
    );
    // Nor without a target: the debug container would still join the notebook's network (Jupyter
    // on localhost) and could mount its emptyDir, Secret and token volumes.
    let message = denial(
        add_debug(
            &bob,
            "jupyter-alice",
            json!({"name": "peek2", "image": "busybox", "command": ["wget", "-O-", "http://127.0.0.1:8888/api/contents/"]}),
        )
        .await,
    );
    assert_contains(
        &message,
        &["debug container 'peek2'", "notebook of user 'alice'"],
    );
    // alice may debug her own notebook.
    let alice = env.pods_as_user("alice", &[]);
    add_debug(
        &alice,
        "jupyter-alice",
        json!({"name": "mine", "image": "busybox", "targetContainerName": "notebook"}),
    )
    .await
    .expect("alice debugs her notebook");
    // alice's earlier debug container mounted the finance share in her job; an administrator
    // without access to finance adds one that mounts nothing from the policy: judged alone, it is
    // allowed. One that mounts the share is not (debug containers get the adder's rights).
    alice
        .create(&PostParams::default(), &claim_pod("report", "finance-data"))
        .await
        .expect("alice's job");
    add_debug(&alice, "report", json!({"name": "d1", "image": "busybox", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}))
        .await
        .expect("alice's debug container");
    let admin = env.pods_as_admin();
    add_debug(&admin, "report", json!({"name": "d2", "image": "busybox"}))
        .await
        .expect("an administrator adds a debug container without mounts");
    let message = denial(
        add_debug(&admin, "report", json!({"name": "d3", "image": "busybox", "volumeMounts": [{"name": "data", "mountPath": "/data"}]})).await,
    );
    assert_contains(&message, &["finance", "may not access"]);
    // erin (no access) may not add even a bare one: it would share the pod's network, its
    // other volumes and, with shareProcessNamespace, its processes.
    let erin = env.pods_as_user("erin", &[]);
    let message =
        denial(add_debug(&erin, "report", json!({"name": "d4", "image": "busybox"})).await);
    assert_contains(&message, &["debug container 'd4'", "may not access"]);
    env.stop().await;
}

/// Opens `sub_resource` of a pod as `client`; the error text (no node runs here, so even an
/// admitted connection fails later, but not with the webhook's denial).
async fn open(client: &Client, ns: &str, pod: &str, sub_resource: &str) -> String {
    let query = if sub_resource == "exec" {
        "?command=ls&stdout=true"
    } else {
        ""
    };
    let mut request = kube::core::Request::new(format!("/api/v1/namespaces/{ns}/pods"))
        .get_subresource(sub_resource, "placeholder")
        .expect("request");
    *request.uri_mut() = format!("/api/v1/namespaces/{ns}/pods/{pod}/{sub_resource}{query}")
        .parse()
        .expect("uri");
    match client.request_text(request).await {
        Ok(text) => text,
        Err(e) => e.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_attach_port_forward_and_proxy_into_another_users_notebook_are_refused() {
    let env = Env::start().await;
    allow_connections(&env.admin, env.ns.name()).await;
    env.pods_as(HUB)
        .create(
            &PostParams::default(),
            &notebook_pod("jupyter-alice", "alice", &[]),
        )
        .await
        .expect("alice's notebook");
    // bob cannot rewrite whose notebook it is to pass as alice.
    let forged = json!({"metadata": {"annotations": {"notebook-volumes.io/user": "bob"}}});
    let message = denial(
        env.pods_as_user("bob", &[])
            .patch(
                "jupyter-alice",
                &PatchParams::default(),
                &Patch::Merge(&forged),
            )
            .await,
    );
    assert_contains(
        &message,
        &["notebook-volumes.io/user", "only administrators"],
    );
    let ns = env.ns.name();
    let bob = env.cluster.client_as("bob", &[]);
    let alice = env.cluster.client_as("alice", &[]);
    for sub in ["exec", "proxy", "portforward", "attach"] {
        let denied = open(&bob, ns, "jupyter-alice", sub).await;
        assert_contains(&denied, &["notebook of user 'alice'"]);
        // alice and an administrator pass the webhook (the connection then fails for want of a
        // node, with another message).
        for (who, client) in [("alice", &alice), ("admin", &env.admin)] {
            let passed = open(client, ns, "jupyter-alice", sub).await;
            assert!(
                !passed.contains("notebook of user"),
                "{who} {sub}: {passed}"
            );
        }
    }
    // `pods/proxy` also names its target as `[scheme:]pod[:port]`: the same pod, the same rule.
    for name in [
        "jupyter-alice:8888",
        "http:jupyter-alice:8888",
        "https:jupyter-alice:",
        "jupyter-alice:",
    ] {
        let denied = open(&bob, ns, name, "proxy").await;
        assert_contains(&denied, &["notebook of user 'alice'"]);
    }
    env.stop().await;
}

/// A home claim re-owned by an administrator is refused to its former owner, although later
/// launches read the home from the webhook's cache: the cache vouches only for the user's own
/// claim, and another owner is read live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reowned_home_is_refused_to_its_former_owner() {
    let env = Env::start().await;
    let hub = env.pods_as(HUB);
    hub.create(
        &PostParams::default(),
        &notebook_pod("jupyter-alice", "alice", &[]),
    )
    .await
    .expect("alice's first launch creates her home");
    wait_until(
        "alice's next launch finds her home in the cache",
        std::time::Duration::from_secs(10),
        || {
            let (hub, env) = (hub.clone(), &env);
            async move {
                let again = hub
                    .create(&dry_run(), &notebook_pod("jupyter-alice-1", "alice", &[]))
                    .await;
                again.is_ok()
                    && env
                        .sample("notebook_volumes_home_lookups_total{source=\"cache\"}")
                        .await
                        > 0.0
            }
        },
    )
    .await;
    let reowned = json!({"metadata": {"annotations": {"notebook-volumes.io/owner": "mallory"}}});
    env.claims()
        .patch(
            "home-alice",
            &PatchParams::default(),
            &Patch::Merge(&reowned),
        )
        .await
        .expect("an administrator re-owns the claim");
    wait_until(
        "alice's next notebook is refused",
        std::time::Duration::from_secs(10),
        || {
            let hub = hub.clone();
            async move {
                match hub
                    .create(&dry_run(), &notebook_pod("jupyter-alice-2", "alice", &[]))
                    .await
                {
                    Err(kube::Error::Api(status)) => {
                        status.message.contains("belongs to user 'mallory'")
                    }
                    _ => false,
                }
            }
        },
    )
    .await;
    env.stop().await;
}

/// A first launch creates the home claim without reading it first when the cache of home claims
/// knows none of that name; the creation is the check (atomic: it fails if the name is taken).
/// A claim the cache does not hold (no home label: made before the namespace was enabled, or
/// by an administrator) is still read live and its owner still refuses another user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_launch_creates_the_home_directly_and_a_claim_outside_the_cache_is_read_live() {
    let env = Env::start().await;
    let hub = env.pods_as(HUB);
    // (Registering the webhook made dry runs, each read live.)
    let (absent, live) = (
        home_lookups(&env, "absent").await,
        home_lookups(&env, "live").await,
    );
    let reviewed = claim_reviews(&env).await;
    hub.create(
        &PostParams::default(),
        &notebook_pod("jupyter-alice", "alice", &[]),
    )
    .await
    .expect("alice's first launch");
    let home = env.claims().get("home-alice").await.expect("home created");
    assert_eq!(
        home.metadata.annotations.unwrap()[notebook_volumes::keys::OWNER_ANNOTATION],
        "alice"
    );
    assert_eq!(
        home_lookups(&env, "absent").await,
        absent + 1.0,
        "created without a read"
    );
    assert_eq!(home_lookups(&env, "live").await, live);
    // The API server did not ask the claim guard about the webhook's own claim
    // (matchConditions), and still asks about a user's.
    assert_eq!(claim_reviews(&env).await, reviewed);
    allow_everyone_to_edit_claims(&env.admin, env.ns.name()).await;
    let scratch = claim(json!({"name": "bobs-scratch"}));
    kube::Api::<k8s_openapi::api::core::v1::PersistentVolumeClaim>::namespaced(
        env.cluster.client_as("bob", &[]),
        env.ns.name(),
    )
    .create(&PostParams::default(), &scratch)
    .await
    .expect("bob's own claim");
    assert_eq!(claim_reviews(&env).await, reviewed + 1.0);

    // An administrator made carol's claim for mallory, without the home label.
    let taken = claim(
        json!({"name": "home-carol", "annotations": {"notebook-volumes.io/owner": "mallory"}}),
    );
    env.claims()
        .create(&PostParams::default(), &taken)
        .await
        .expect("an administrator creates the claim");
    let message = denial(
        hub.create(
            &PostParams::default(),
            &notebook_pod("jupyter-carol", "carol", &[]),
        )
        .await,
    );
    assert_contains(&message, &["'home-carol'", "belongs to user 'mallory'"]);
    assert_eq!(
        home_lookups(&env, "live").await,
        live + 1.0,
        "the taken name was read live"
    );
    assert_eq!(home_lookups(&env, "absent").await, absent + 1.0);

    // A dry run creates nothing, so it is decided from a live read.
    hub.create(&dry_run(), &notebook_pod("jupyter-dave", "dave", &[]))
        .await
        .expect("dave's dry run");
    assert_eq!(home_lookups(&env, "live").await, live + 2.0);
    assert!(
        env.claims()
            .get_opt("home-dave")
            .await
            .expect("read")
            .is_none()
    );
    env.stop().await;
}

/// The direct creation of a first launch against claims the cache of home claims cannot vouch
/// for: a user racing the webhook for a home name nobody has yet (the claim guard reserves the
/// name, and its secret-level name, whether or not the claim exists, so only the webhook's
/// create can succeed), and a claim of the home's name that is unlabelled, another user's and
/// being deleted (Terminating: the create answers AlreadyExists, and the live read's owner
/// refuses).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_launch_never_takes_a_name_held_outside_the_home_cache() {
    use k8s_openapi::api::core::v1::PersistentVolumeClaim;
    let env = Env::start().await;
    let hub = env.pods_as(HUB);
    allow_everyone_to_edit_claims(&env.admin, env.ns.name()).await;
    let mallory = kube::Api::<PersistentVolumeClaim>::namespaced(
        env.cluster.client_as("mallory", &[]),
        env.ns.name(),
    );
    for name in ["home-erin", "home-erin--secret"] {
        let refused = mallory
            .create(&PostParams::default(), &claim(json!({"name": name})))
            .await;
        let Err(kube::Error::Api(status)) = refused else {
            panic!("mallory took {name}: {refused:?}");
        };
        assert_eq!(status.code, 403, "{status:?}");
        assert_contains(&status.message, &["reserved"]);
    }
    hub.create(
        &PostParams::default(),
        &notebook_pod("jupyter-erin", "erin", &[]),
    )
    .await
    .expect("erin's first launch");
    let home = env.claims().get("home-erin").await.expect("erin's home");
    assert_eq!(
        home.metadata.annotations.unwrap()[notebook_volumes::keys::OWNER_ANNOTATION],
        "erin"
    );

    // An administrator's claim of carol's home name for mallory, without the home label, held
    // by a finalizer and deleted: Terminating, and in no cache of home claims.
    let held = claim(json!({
        "name": "home-carol",
        "annotations": {"notebook-volumes.io/owner": "mallory"},
        "finalizers": ["example.com/hold"]
    }));
    env.claims()
        .create(&PostParams::default(), &held)
        .await
        .expect("an administrator creates the claim");
    env.claims()
        .delete("home-carol", &Default::default())
        .await
        .expect("delete");
    let (absent, live) = (
        home_lookups(&env, "absent").await,
        home_lookups(&env, "live").await,
    );
    let message = denial(
        hub.create(
            &PostParams::default(),
            &notebook_pod("jupyter-carol", "carol", &[]),
        )
        .await,
    );
    assert_contains(&message, &["'home-carol'", "belongs to user 'mallory'"]);
    // Presumed absent, the create found the name taken, and the live read decided.
    assert_eq!(home_lookups(&env, "live").await, live + 1.0);
    assert_eq!(home_lookups(&env, "absent").await, absent);
    let still = env.claims().get("home-carol").await.expect("still there");
    assert!(still.metadata.deletion_timestamp.is_some());
    env.claims()
        .patch(
            "home-carol",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .expect("release the claim");
    env.stop().await;
}

/// The claims webhook skips only requests whose username is the webhook's service account
/// (matchConditions, by its full name, namespace included). A project member with the built-in
/// `edit` role cannot become that identity: neither impersonate it (as a service account or as a
/// user of that name), nor mint a token for it, nor run a pod in its namespace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_editor_cannot_act_as_the_webhooks_service_account() {
    use k8s_openapi::api::authorization::v1::SubjectAccessReview;
    use k8s_openapi::api::rbac::v1::RoleBinding;
    let env = Env::start().await;
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "mallory-edit"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "mallory"}]
    }))
    .expect("binding");
    kube::Api::<RoleBinding>::namespaced(env.admin.clone(), env.ns.name())
        .create(&PostParams::default(), &binding)
        .await
        .expect("mallory edits the namespace");
    let admin = env.admin.clone();
    let may = move |attributes: Value| {
        let admin = admin.clone();
        async move {
            let review: SubjectAccessReview = serde_json::from_value(json!({
                "spec": {"user": "mallory", "groups": ["system:authenticated"], "resourceAttributes": attributes}
            }))
            .expect("review");
            kube::Api::<SubjectAccessReview>::all(admin)
                .create(&PostParams::default(), &review)
                .await
                .expect("SubjectAccessReview")
                .status
                .is_some_and(|s| s.allowed)
        }
    };
    // The binding is in place: she creates pods in her namespace.
    let own = json!({"verb": "create", "resource": "pods", "namespace": env.ns.name()});
    wait_until(
        "mallory's binding",
        std::time::Duration::from_secs(10),
        || may(own.clone()),
    )
    .await;
    let webhook = [
        json!({"verb": "impersonate", "resource": "serviceaccounts", "namespace": "notebook-volumes", "name": "notebook-volumes"}),
        json!({"verb": "impersonate", "resource": "users", "name": "system:serviceaccount:notebook-volumes:notebook-volumes"}),
        json!({"verb": "create", "resource": "serviceaccounts", "subresource": "token", "namespace": "notebook-volumes", "name": "notebook-volumes"}),
        json!({"verb": "create", "resource": "pods", "namespace": "notebook-volumes"}),
    ];
    for attributes in webhook {
        assert!(!may(attributes.clone()).await, "mallory may {attributes}");
    }
    env.stop().await;
}

/// Installed where the claims webhook's `matchConditions` do not name the webhook's own service
/// account (another namespace, an edited manifest), the webhook's own claim creation is sent to
/// the claim guard, which allows it: a first launch still gets its home, only one round trip later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_claims_match_condition_the_guard_allows_the_webhooks_own_home_claim() {
    use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
    let env = Env::start().await;
    let name = format!("nv-{}", env.ns.name());
    let configs = kube::Api::<ValidatingWebhookConfiguration>::all(env.admin.clone());
    let stored = configs.get(&name).await.expect("registration");
    let index = stored
        .webhooks
        .iter()
        .flatten()
        .position(|w| w.name == "claims.notebook-volumes.io")
        .expect("claims webhook");
    let patch = json!([{"op": "remove", "path": format!("/webhooks/{index}/matchConditions")}]);
    configs
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::<()>::Json(serde_json::from_value(patch).expect("patch")),
        )
        .await
        .expect("matchConditions removed");
    let hub = env.pods_as(HUB);
    // The API server picks the change up asynchronously: launch users until a home claim
    // creation reaches the claim guard.
    let mut n = 0;
    wait_until(
        "the webhook's own claim creation reaches the claim guard",
        std::time::Duration::from_secs(20),
        || {
            n += 1;
            let user = format!("user{n}");
            let hub = hub.clone();
            let env = &env;
            async move {
                let before = claim_reviews(env).await;
                hub.create(
                    &PostParams::default(),
                    &notebook_pod(&format!("jupyter-{user}"), &user, &[]),
                )
                .await
                .expect("the first launch is allowed, its home created");
                claim_reviews(env).await > before
            }
        },
    )
    .await;
    env.stop().await;
}

/// `kubectl set image` on another user's notebook: the container would restart as the
/// requester's code with the notebook's mounts and environment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notebooks_image_is_changed_only_by_its_user() {
    let env = Env::start().await;
    env.pods_as(HUB)
        .create(
            &PostParams::default(),
            &notebook_pod(
                "jupyter-alice",
                "alice",
                &[("notebook-volumes.io/secret-shares", "mergers")],
            ),
        )
        .await
        .expect("alice's notebook");
    let swap =
        |image: &str| json!({"spec": {"containers": [{"name": "notebook", "image": image}]}});
    let message = denial(
        env.pods_as_user("bob", &[])
            .patch(
                "jupyter-alice",
                &PatchParams::default(),
                &Patch::Strategic(&swap("evil.example.com/exfiltrate:latest")),
            )
            .await,
    );
    assert_contains(
        &message,
        &[
            "changing the image of container 'notebook'",
            "notebook of user 'alice'",
        ],
    );
    env.pods_as_user("alice", &[])
        .patch(
            "jupyter-alice",
            &PatchParams::default(),
            &Patch::Strategic(&swap("quay.io/jupyter/scipy-notebook:newer")),
        )
        .await
        .expect("alice updates her own notebook's image");
    env.stop().await;
}

/// Home claim lookups of notebook admissions from `source` so far (`cache`, `absent`, `live`).
async fn home_lookups(env: &Env, source: &str) -> f64 {
    env.sample(&format!(
        "notebook_volumes_home_lookups_total{{source=\"{source}\"}}"
    ))
    .await
}

/// Claim CREATEs the claim guard has allowed so far (requests the API server sent it).
async fn claim_reviews(env: &Env) -> f64 {
    env.sample(
        "notebook_volumes_admissions_total{webhook=\"claims\",operation=\"CREATE\",decision=\"allowed\"}",
    )
    .await
}

/// A 1 GiB ReadWriteOnce claim with `metadata`.
fn claim(metadata: Value) -> k8s_openapi::api::core::v1::PersistentVolumeClaim {
    serde_json::from_value(json!({
        "metadata": metadata,
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    }))
    .expect("claim")
}
