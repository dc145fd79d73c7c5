//! End-to-end, through the real API server: policy that would hand one claim to two purposes is
//! refused at `kubectl apply`, policy text is read as every YAML tool reads it, and two users
//! whose names slug alike still get distinct homes.

use nv_test_support as support;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::PostParams;
use notebook_volumes::keys;
use support::env::*;
use support::webhook::*;

async fn apply_policy(env: &Env, name: &str, key: &str, text: &str) -> Result<ConfigMap, String> {
    let data = BTreeMap::from([(key.to_string(), text.to_string())]);
    Api::<ConfigMap>::namespaced(env.admin.clone(), env.policy_ns.name())
        .create(&PostParams::default(), &policy_config_map(name, data))
        .await
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_library_or_home_that_would_take_a_shares_claim_is_refused() {
    let env = Env::start().await;
    let ns = env.ns.name();
    // The examples' secret share `mergers` uses claim mergers-data.
    let library = format!(
        "kind: Library\nname: tools\nnamespaces: [{ns}]\nclaimName: mergers-data\nmountPath: /opt/tools\n"
    );
    let refused = apply_policy(&env, "tools", "tools.yaml", &library)
        .await
        .expect_err("a library on a share's claim would give every notebook the secret data");
    assert!(refused.contains("mergers-data"), "{refused}");
    let home = format!(
        "kind: Home\nnamespaces: [{ns}-other]\nclaimNameTemplate: \"{{user}}-data\"\nmountPath: /home/jovyan\n"
    );
    let text = format!(
        "kind: Share\nname: vault\nnamespaces: [{ns}-other]\nclaimName: vault-data\nmountPath: /data/vault\nlevel: secret\n---\n{home}"
    );
    let refused = apply_policy(&env, "vault", "vault.yaml", &text)
        .await
        .expect_err("user `vault`'s home would be the secret share's claim");
    assert!(refused.contains("vault-data"), "{refused}");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_standard_yaml_reads_as_a_string_is_refused_not_read_as_policy() {
    let env = Env::start().await;
    // To yq, kubectl and every YAML library the second document is a string, not a grant.
    let text = "kind: Groups\ngroups: {analysts: [bob]}\n--- |\nkind: Groups\ngroups: {mergers-team: [mallory]}\n";
    let refused = apply_policy(&env, "groups", "groups.yaml", text)
        .await
        .expect_err("a hidden grant");
    assert!(refused.contains("groups.yaml"), "{refused}");
    assert!(
        refused.contains("not a mapping") || refused.contains("mapping"),
        "{refused}"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_whose_names_slug_alike_get_distinct_homes() {
    let env = Env::start().await;
    let hub = env.pods_as(HUB);
    let hashed = notebook_volumes::admission::slug("Alice");
    // `Alice` launches first; then a user literally named like her slug.
    for (pod, user) in [("nb-upper", "Alice"), ("nb-lookalike", hashed.as_str())] {
        hub.create(&PostParams::default(), &notebook_pod(pod, user, &[]))
            .await
            .unwrap_or_else(|e| panic!("{user}'s notebook: {e}"));
    }
    let homes: Vec<(String, String)> = env
        .claims()
        .list(&Default::default())
        .await
        .expect("claims")
        .items
        .into_iter()
        .filter_map(|c| {
            let owner = c.metadata.annotations?.get(keys::OWNER_ANNOTATION)?.clone();
            Some((c.metadata.name?, owner))
        })
        .collect();
    assert_eq!(homes.len(), 2, "{homes:?}");
    assert_ne!(homes[0].0, homes[1].0, "{homes:?}");
    assert!(homes.iter().any(|(_, o)| o == "Alice"), "{homes:?}");
    assert!(homes.iter().any(|(_, o)| *o == hashed), "{homes:?}");
    env.stop().await;
}
