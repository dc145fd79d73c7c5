//! Policy validation (docs/design.md, "Policy"): each rule has a failing example whose finding names the field and the line.

use notebook_volumes::policy::{Finding, PolicySnapshot, Severity};

use crate::fixtures::{policy, unit};

/// The single error of a policy text, which must name `field` on `line`.
fn error_of(text: &str) -> Finding {
    let snap = policy(text);
    let errors: Vec<Finding> = snap
        .findings()
        .filter(|f| f.severity == Severity::Error)
        .cloned()
        .collect();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(snap.rejected_units().count() == 1);
    errors.into_iter().next().unwrap()
}

fn assert_error(text: &str, field: &str, line: usize, words: &str) {
    let f = error_of(text);
    assert_eq!(f.field.as_deref(), Some(field), "{f}");
    assert_eq!(f.line, line, "{f}");
    assert!(f.message.contains(words), "{f}");
    assert!(
        f.to_string()
            .starts_with(&format!("policy.yaml:{line}: error: field '{field}'")),
        "{f}"
    );
}

const SHARE: &str = "kind: Share\nname: a\nclaimName: a\nmountPath: /a\nlevel: private\n";

#[test]
fn valid_share_is_accepted() {
    let snap = policy(SHARE);
    assert_eq!(snap.findings().count(), 0);
    assert_eq!(snap.shares().len(), 1);
}

#[test]
fn unknown_kind_is_an_error() {
    let f = error_of("kind: Sahre\nname: a\n");
    assert_eq!(f.field.as_deref(), Some("kind"));
    assert_eq!(f.line, 1);
}

#[test]
fn unknown_field_is_an_error() {
    assert_error(
        &format!("{SHARE}readers:\n  users: [a]\n  grups: [b]\n"),
        "readers.grups",
        8,
        "unknown field",
    );
}

/// Positions are those of the key at fault, in flow style as in block style.
#[test]
fn findings_in_flow_style_name_the_line_of_their_key() {
    assert_error(
        &format!("{SHARE}readers: {{users: [a],\n  grups: [b]}}\n"),
        "readers.grups",
        7,
        "unknown field",
    );
    assert_error(
        "{kind: Share, name: a, claimName: a,\n  mountPath: a, level: public}\n",
        "mountPath",
        2,
        "absolute",
    );
    assert_error(
        "kind: Settings\nadministrators: {users: [a],\n  groups: [b, {c: d}]}\n",
        "administrators.groups[1]",
        3,
        "invalid type: map",
    );
}

/// Every mistake of a document is reported at once, not one per run.
#[test]
fn every_shape_error_of_a_document_is_reported() {
    let text = "kind: Share\nname: [a]\nclaimName: a\nmountPath: /a\nlevel: topsecret\nreaders: {users: [x], grups: [y]}\nwritters: {}\n";
    let snap = policy(text);
    let got: Vec<(Option<&str>, usize)> = snap
        .findings()
        .map(|f| (f.field.as_deref(), f.line))
        .collect();
    assert_eq!(
        got,
        [
            (Some("name"), 2),
            (Some("level"), 5),
            (Some("readers.grups"), 6),
            (Some("writters"), 7)
        ],
        "{:#?}",
        snap.findings().collect::<Vec<_>>()
    );
    assert_eq!(snap.rejected_units().count(), 1);
}

/// Untyped scalars follow YAML 1.2's core schema, as the Kubernetes API reads them: `y`, `no`,
/// `on` and `1_000` are names like any other.
#[test]
fn plain_scalars_that_other_yaml_versions_read_as_booleans_are_names() {
    let snap = policy("kind: Groups\ngroups:\n  y: [no, on, off]\n  1_000: [yes]\n");
    assert_eq!(
        snap.findings().count(),
        0,
        "{:?}",
        snap.findings().collect::<Vec<_>>()
    );
    let members = snap.group_members();
    assert!(
        members.contains_key("y") && members.contains_key("1_000"),
        "{members:?}"
    );
}

#[test]
fn missing_kind_is_an_error() {
    let f = error_of("name: a\n");
    assert!(f.message.contains("no `kind`"));
}

#[test]
fn field_types_are_checked() {
    assert_error(
        "kind: Share\nname: a\nclaimName: a\nmountPath: /a\nlevel: confidential\n",
        "level",
        5,
        "unknown variant",
    );
}

#[test]
fn share_name_must_be_dns1123() {
    assert_error(
        &SHARE.replace("name: a", "name: Finance"),
        "name",
        2,
        "DNS-1123",
    );
}

#[test]
fn share_name_must_leave_room_for_the_volume_prefix() {
    assert_error(
        &SHARE.replace("name: a", &format!("name: {}", "a".repeat(60))),
        "name",
        2,
        "nv-share-",
    );
}

#[test]
fn claim_name_must_be_a_dns_subdomain() {
    assert_error(
        &SHARE.replace("claimName: a", "claimName: Data_1"),
        "claimName",
        3,
        "DNS-1123 subdomain",
    );
}

#[test]
fn mount_path_must_be_absolute() {
    assert_error(
        &SHARE.replace("mountPath: /a", "mountPath: data"),
        "mountPath",
        4,
        "absolute",
    );
}

#[test]
fn mount_path_must_be_normalised() {
    assert_error(
        &SHARE.replace("mountPath: /a", "mountPath: /a/../etc"),
        "mountPath",
        4,
        "normalised",
    );
}

#[test]
fn sub_path_must_stay_inside_the_volume() {
    assert_error(
        &format!("{SHARE}subPath: ../other\n"),
        "subPath",
        6,
        "normalised",
    );
}

#[test]
fn namespaces_must_be_dns1123_labels() {
    assert_error(
        &format!("{SHARE}namespaces: [Team_A]\n"),
        "namespaces[0]",
        6,
        "DNS-1123",
    );
}

#[test]
fn namespaces_and_selector_are_exclusive() {
    assert_error(
        &format!("{SHARE}namespaces: [a]\nnamespaceSelector: {{matchLabels: {{x: y}}}}\n"),
        "namespaceSelector",
        7,
        "not both",
    );
}

#[test]
fn selector_operators_need_the_right_values() {
    assert_error(
        &format!("{SHARE}namespaceSelector:\n  matchExpressions: [{{key: a, operator: In}}]\n"),
        "namespaceSelector",
        6,
        "at least one value",
    );
}

#[test]
fn readers_on_a_public_share_is_an_error() {
    assert_error(
        "kind: Share\nname: a\nclaimName: a\nmountPath: /a\nlevel: public\nreaders: {users: [x]}\n",
        "readers",
        6,
        "public",
    );
}

#[test]
fn shares_reaching_one_namespace_must_not_share_a_mount_path() {
    let text =
        format!("{SHARE}---\nkind: Share\nname: b\nclaimName: b\nmountPath: /a\nlevel: public\n");
    assert_error(&text, "mountPath", 10, "collides with share 'a'");
}

#[test]
fn shares_reaching_one_namespace_must_not_nest() {
    let text =
        format!("{SHARE}---\nkind: Share\nname: b\nclaimName: b\nmountPath: /a/b\nlevel: public\n");
    assert_error(&text, "mountPath", 10, "nested");
}

#[test]
fn shares_in_disjoint_namespaces_may_share_a_mount_path() {
    let text = format!(
        "{SHARE}namespaces: [x]\n---\nkind: Share\nname: b\nnamespaces: [y]\nclaimName: b\nmountPath: /a\nlevel: public\n"
    );
    assert_eq!(policy(&text).findings().count(), 0);
}

#[test]
fn share_names_are_unique_across_config_maps() {
    let first = unit("ConfigMap nv/a", SHARE);
    let second = unit(
        "ConfigMap nv/b",
        &SHARE.replace("mountPath: /a", "mountPath: /b"),
    );
    let snap = PolicySnapshot::compile(&[first, second]);
    let rejected: Vec<_> = snap.rejected_units().map(|r| r.unit.clone()).collect();
    assert_eq!(
        rejected,
        vec!["ConfigMap nv/b".to_string()],
        "first come, first served"
    );
    let f = snap.findings().next().unwrap();
    assert!(
        f.message.contains("already defined in ConfigMap nv/a"),
        "{f}"
    );
}

#[test]
fn share_must_not_sit_inside_a_library_mount() {
    let text = "kind: Library\nname: apps\nclaimName: apps\nmountPath: /opt/apps\n---\nkind: Share\nname: a\nclaimName: a\nmountPath: /opt/apps/data\nlevel: public\n";
    assert_error(text, "mountPath", 9, "library");
}

#[test]
fn share_may_sit_inside_the_home_mount() {
    let text = "kind: Home\nclaimNameTemplate: h-{user}\nmountPath: /home/jovyan\n---\nkind: Share\nname: a\nclaimName: a\nmountPath: /home/jovyan/shares/a\nlevel: public\n";
    assert_eq!(policy(text).findings().count(), 0);
}

#[test]
fn home_template_must_name_the_user() {
    assert_error(
        "kind: Home\nclaimNameTemplate: home\nmountPath: /home\n",
        "claimNameTemplate",
        2,
        "{user}",
    );
}

#[test]
fn home_template_must_render_a_claim_name() {
    assert_error(
        "kind: Home\nclaimNameTemplate: Home_{user}\nmountPath: /home\n",
        "claimNameTemplate",
        2,
        "DNS-1123",
    );
}

#[test]
fn home_size_must_be_a_quantity() {
    assert_error(
        "kind: Home\nclaimNameTemplate: h-{user}\nmountPath: /home\ncreate:\n  size: 2GB\n",
        "create.size",
        5,
        "quantity",
    );
}

#[test]
fn home_access_modes_are_checked() {
    assert_error(
        "kind: Home\nclaimNameTemplate: h-{user}\nmountPath: /home\ncreate:\n  size: 2Gi\n  accessModes: [ReadWriteAlways]\n",
        "create.accessModes[0]",
        6,
        "ReadWriteOnce",
    );
}

#[test]
fn two_homes_must_not_reach_one_namespace() {
    let text = "kind: Home\nclaimNameTemplate: h-{user}\nmountPath: /home\n---\nkind: Home\nnamespaces: [a]\nclaimNameTemplate: x-{user}\nmountPath: /x\n";
    assert_error(text, "namespaces", 6, "another Home");
}

#[test]
fn library_env_must_not_repeat_lmod_variables() {
    let text = "kind: Library\nname: apps\nclaimName: apps\nmountPath: /opt/apps\nlmod: {}\nenv:\n  MODULEPATH: /x\n";
    assert_error(text, "env.MODULEPATH", 7, "lmod");
}

#[test]
fn library_lmod_defaults_follow_the_mount_path() {
    let snap = policy("kind: Library\nname: apps\nclaimName: apps\nmountPath: /sw\nlmod: {}\n");
    let env = &snap.libraries()[0].env;
    assert!(env.contains(&("MODULEPATH".into(), "/sw/modulefiles".into())));
    assert!(env.contains(&("LMOD_CMD".into(), "/sw/lmod/lmod/libexec/lmod".into())));
    assert!(!env.iter().any(|(k, _)| k == "LMOD_SYSTEM_DEFAULT_MODULES"));
}

#[test]
fn settings_at_most_one_in_the_whole_set() {
    let a = unit("a.yaml", "kind: Settings\ntrustedSpawners: [x]\n");
    let b = unit("b.yaml", "kind: Settings\ntrustedSpawners: [y]\n");
    let snap = PolicySnapshot::compile(&[a, b]);
    assert_eq!(
        snap.rejected_units()
            .map(|r| r.unit.as_str())
            .collect::<Vec<_>>(),
        vec!["b.yaml"]
    );
    assert_eq!(snap.settings().trusted_spawners, vec!["x".to_string()]);
}

#[test]
fn settings_username_annotations_must_be_keys() {
    assert_error(
        "kind: Settings\nusernameAnnotations: [\"not a key\"]\n",
        "usernameAnnotations[0]",
        2,
        "annotation key",
    );
}

#[test]
fn undefined_group_is_a_warning_not_an_error() {
    let snap = policy(&format!("{SHARE}readers: {{groups: [ghosts]}}\n"));
    assert_eq!(snap.rejected_units().count(), 0);
    let f: Vec<_> = snap.findings().collect();
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].severity, Severity::Warning);
    assert_eq!(f[0].line, 6);
    assert!(f[0].message.contains("ghosts"));
}

#[test]
fn bad_yaml_names_its_line() {
    let f = error_of("kind: Groups\ngroups:\n  a: [x\n");
    assert!(f.message.starts_with("invalid YAML"), "{f}");
    assert!(f.line >= 3, "{f}");
}

#[test]
fn one_bad_unit_does_not_affect_the_others() {
    let good = unit("good.yaml", SHARE);
    let bad = unit("bad.yaml", "kind: Share\nname: b\n");
    let snap = PolicySnapshot::compile(&[good, bad]);
    assert_eq!(snap.shares().len(), 1);
    assert_eq!(snap.rejected_units().count(), 1);
}

#[test]
fn shares_of_one_claim_need_distinct_sub_paths() {
    let text = format!(
        "{SHARE}subPath: team\n---\nkind: Share\nname: b\nclaimName: a\nmountPath: /b\nlevel: public\nsubPath: team/x\n"
    );
    assert_error(&text, "subPath", 13, "non-nested subPaths");
    let text = format!(
        "{SHARE}subPath: one\n---\nkind: Share\nname: b\nclaimName: a\nmountPath: /b\nlevel: public\nsubPath: two\n"
    );
    assert_eq!(policy(&text).findings().count(), 0);
}

#[test]
fn nothing_may_hide_the_home_mount() {
    let text = "kind: Home\nclaimNameTemplate: h-{user}\nmountPath: /home/jovyan\n---\nkind: Share\nname: a\nclaimName: a\nmountPath: /home\nlevel: public\n";
    assert_error(text, "mountPath", 8, "would hide the home volume");
    let text = "kind: Share\nname: a\nclaimName: a\nmountPath: /home\nlevel: public\n---\nkind: Home\nclaimNameTemplate: h-{user}\nmountPath: /home/jovyan\n";
    assert_error(text, "mountPath", 9, "sits inside share 'a'");
}

#[test]
fn libraries_must_not_nest_in_each_other() {
    let text = "kind: Library\nname: apps\nclaimName: apps\nmountPath: /opt/apps\n---\nkind: Library\nname: tools\nclaimName: tools\nmountPath: /opt/apps/tools\n";
    assert_error(text, "mountPath", 9, "collides with library 'apps'");
}

#[test]
fn library_names_are_unique() {
    let text = "kind: Library\nname: apps\nclaimName: apps\nmountPath: /opt/apps\n---\nkind: Library\nname: apps\nclaimName: other\nmountPath: /opt/other\n";
    assert_error(text, "name", 7, "already defined");
}

// Claim-name clashes: a claim is a share's, a library's or a user's home, never two of these.

#[test]
fn library_must_not_use_a_share_claim() {
    let share = unit(
        "ConfigMap nv/shares",
        "kind: Share\nname: mergers\nclaimName: mergers-data\nmountPath: /m\nlevel: secret\n",
    );
    let library = unit(
        "ConfigMap nv/libs",
        "kind: Library\nname: apps\nnamespaces: [ds-team]\nclaimName: mergers-data\nmountPath: /opt/apps\n",
    );
    let snap = PolicySnapshot::compile(&[share.clone(), library.clone()]);
    let f = snap.findings().next().unwrap();
    assert_eq!(f.field.as_deref(), Some("claimName"));
    assert_eq!(f.line, 4);
    assert!(f.origin.unit == "ConfigMap nv/libs", "{f}");
    assert!(
        f.message
            .contains("share 'mergers' (in ConfigMap nv/shares)"),
        "{f}"
    );
    // The other way round, the share is the one rejected.
    let snap = PolicySnapshot::compile(&[library, share]);
    let f = snap.findings().next().unwrap();
    assert_eq!(f.origin.unit, "ConfigMap nv/shares");
    assert!(
        f.message.contains("library 'apps' (in ConfigMap nv/libs)"),
        "{f}"
    );
}

#[test]
fn library_and_share_may_share_a_claim_name_in_disjoint_namespaces() {
    let text = "kind: Share\nname: a\nnamespaces: [x]\nclaimName: data\nmountPath: /a\nlevel: public\n---\nkind: Library\nname: l\nnamespaces: [y]\nclaimName: data\nmountPath: /l\n";
    assert_eq!(policy(text).findings().count(), 0);
}

#[test]
fn home_template_must_not_produce_a_share_claim() {
    let text = "kind: Share\nname: mergers\nclaimName: mergers-data\nmountPath: /m\nlevel: secret\n---\nkind: Home\nclaimNameTemplate: \"{user}-data\"\nmountPath: /home\n";
    assert_error(
        text,
        "claimNameTemplate",
        8,
        "produces 'mergers-data', the claim of share 'mergers' (in policy.yaml), as the home of user slug 'mergers'",
    );
    let shares = unit(
        "ConfigMap nv/shares",
        "kind: Share\nname: mergers\nclaimName: mergers-data\nmountPath: /m\nlevel: secret\n",
    );
    let home = unit(
        "ConfigMap nv/home",
        "kind: Home\nclaimNameTemplate: \"{user}-data\"\nmountPath: /home\n",
    );
    let snap = PolicySnapshot::compile(&[home, shares]);
    let f = snap.findings().next().unwrap();
    assert_eq!(f.origin.unit, "ConfigMap nv/shares");
    assert_eq!(f.field.as_deref(), Some("claimName"));
    assert!(
        f.message
            .contains("Home template '{user}-data' (in ConfigMap nv/home)"),
        "{f}"
    );
    assert!(f.message.contains("share 'mergers' uses it"), "{f}");
}

#[test]
fn home_template_must_not_produce_a_library_claim() {
    let text = "kind: Library\nname: apps\nclaimName: home-apps\nmountPath: /opt/apps\n---\nkind: Home\nclaimNameTemplate: home-{user}\nmountPath: /home\n";
    assert_error(text, "claimNameTemplate", 7, "the claim of library 'apps'");
    let text = "kind: Home\nclaimNameTemplate: home-{user}\nmountPath: /home\n---\nkind: Library\nname: apps\nclaimName: home-apps\nmountPath: /opt/apps\n";
    assert_error(text, "claimName", 7, "library 'apps' uses it");
}

#[test]
fn home_template_that_produces_no_share_claim_is_accepted() {
    let text = "kind: Share\nname: a\nclaimName: home\nmountPath: /a\nlevel: public\n---\nkind: Home\nclaimNameTemplate: home-{user}\nmountPath: /home\n";
    assert_eq!(policy(text).findings().count(), 0);
}

// One reading of YAML, the standard one.

#[test]
fn documents_are_read_as_a_standard_yaml_stream_reads_them() {
    // To every YAML tool the second document is a string; it must not grant anything here.
    let text = "kind: Settings\n--- |\n  kind: Groups\n  groups: {finance-admins: [mallory]}\n";
    let f = error_of(text);
    assert_eq!(f.line, 2);
    assert!(f.message.contains("must be a mapping"), "{f}");
    // A flow mapping on the `---` line is a document, with its line.
    let snap = policy("--- {kind: Groups, groups: {a: [b]}}\n");
    assert_eq!(snap.findings().count(), 0);
    assert!(snap.group_members().contains_key("a"));
}

// Bounded parsing.

#[test]
fn nesting_deeper_than_32_is_an_error() {
    let deep = format!(
        "kind: Groups\ngroups: {{a: {}{}}}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let f = error_of(&deep);
    assert_eq!(f.line, 2);
    assert!(f.message.contains("nested more than 32"), "{f}");
}

/// Aliases are read (a policy may repeat a list), but a text whose aliases would repeat more than
/// 100,000 nodes (an alias bomb: a billion after nine levels of ten) is refused as it is read.
#[test]
fn aliases_are_read_and_alias_bombs_refused() {
    let snap = policy("kind: Groups\ngroups:\n  a: &team [x, y]\n  b: *team\n");
    assert_eq!(snap.findings().count(), 0);
    assert_eq!(snap.group_members().get("b").map(|m| m.len()), Some(2));
    let mut bomb = String::from("kind: Groups\nl0: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let p = i - 1;
        bomb.push_str(&format!(
            "l{i}: &l{i} [*l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}]\n"
        ));
    }
    bomb.push_str("groups: {a: *l9}\n");
    let f = error_of(&bomb);
    assert!(f.message.starts_with("invalid YAML"), "{f}");
    assert!(f.message.contains("alias"), "{f}");
}

#[test]
fn too_many_documents_is_an_error() {
    let text = "---\nkind: Groups\ngroups: {}\n".repeat(10_001);
    let f = error_of(&text);
    assert!(f.message.contains("more than 10000 documents"), "{f}");
}

#[test]
fn overlong_keys_are_an_error() {
    let f = error_of(&format!(
        "kind: Groups\ngroups:\n  ? {}\n  : [a]\n",
        "g".repeat(2000)
    ));
    assert!(f.message.contains("at most 1024"), "{f}");
}

// Settings: administrators and inline volume allowlists.

#[test]
fn settings_administrators_replace_the_default_group() {
    let snap = policy("kind: Settings\nadministrators: {users: [root], groups: [platform]}\n");
    assert_eq!(snap.findings().count(), 0);
    let admins = &snap.settings().administrators;
    assert!(admins.users.contains("root"));
    assert!(admins.groups.contains("platform"));
    assert!(!admins.groups.contains("system:masters"));
    let default = policy("kind: Settings\n");
    assert!(
        default
            .settings()
            .administrators
            .groups
            .contains("system:masters")
    );
}

#[test]
fn settings_administrators_must_not_be_empty_names() {
    assert_error(
        "kind: Settings\nadministrators:\n  users: [\"\"]\n",
        "administrators.users[0]",
        3,
        "empty username",
    );
}

#[test]
fn settings_unknown_volume_type_is_an_error() {
    assert_error(
        "kind: Settings\nallowedVolumeTypes: [nfs, nfz]\n",
        "allowedVolumeTypes[1]",
        2,
        "'nfz' is not a pod volume type",
    );
    let snap = policy("kind: Settings\nallowedVolumeTypes: [nfs, hostPath]\n");
    assert_eq!(snap.findings().count(), 0);
    assert!(snap.settings().allowed_volume_types.contains("hostPath"));
}

#[test]
fn settings_allowed_csi_drivers_must_be_driver_names() {
    assert_error(
        "kind: Settings\nallowedCSIDrivers: [\"Secrets Store\"]\n",
        "allowedCSIDrivers[0]",
        2,
        "DNS-1123 subdomain",
    );
    let snap = policy("kind: Settings\nallowedCSIDrivers: [secrets-store.csi.k8s.io]\n");
    assert!(
        snap.settings()
            .allowed_csi_drivers
            .contains("secrets-store.csi.k8s.io")
    );
}

// Fail closed: what a rejected unit names stays protected.

#[test]
fn rejected_unit_protects_share_and_library_claims_found_by_a_scan() {
    let broken = unit(
        "ConfigMap nv/team",
        "kind: share\nname: finance\nclaimName: finance-data\nmountPath: /f\nlevel: private\n---\nkind: Library\nname: apps\nclaimName: apps\nmountPath: /opt/apps\nreaders: [oops\n",
    );
    let snap = PolicySnapshot::compile(&[broken]);
    assert_eq!(
        snap.protected_claim("finance-data"),
        Some("ConfigMap nv/team")
    );
    assert_eq!(snap.protected_claim("apps"), Some("ConfigMap nv/team"));
    assert_eq!(snap.protected_claim("scratch"), None);
}

#[test]
fn rejected_unit_protects_the_claims_of_its_last_accepted_version() {
    use std::collections::BTreeMap;
    let good = unit(
        "ConfigMap nv/team",
        "kind: Share\nname: finance\nclaimName: finance-data\nmountPath: /f\nlevel: private\n---\nkind: Home\nclaimNameTemplate: home-{user}\nmountPath: /home\n",
    );
    let accepted = PolicySnapshot::compile(&[good]).accepted_protection();
    // The new version names no claim at all: only the last accepted one tells what to protect.
    let broken = unit("ConfigMap nv/team", "kind: Share\n  name: : x\n");
    let without = PolicySnapshot::compile(std::slice::from_ref(&broken));
    assert_eq!(without.protected_claim("finance-data"), None);
    let with = PolicySnapshot::compile_with(&[broken], &accepted);
    assert_eq!(
        with.protected_claim("finance-data"),
        Some("ConfigMap nv/team")
    );
    assert_eq!(with.protected_home("home-alice"), Some("ConfigMap nv/team"));
    assert_eq!(with.protected_home("home-"), None);
    assert_eq!(with.protected_home("scratch"), None);
    let _: &BTreeMap<_, _> = with.rejected_protection();
}

#[test]
fn rejected_unit_protects_home_claims_of_its_templates() {
    let broken = unit(
        "ConfigMap nv/homes",
        "kind: Home\nclaimNameTemplate: nb-{user}-pvc\nmountPath: /home\nsize: 2Gi\n",
    );
    let snap = PolicySnapshot::compile(&[broken]);
    assert_eq!(
        snap.protected_home("nb-alice-pvc"),
        Some("ConfigMap nv/homes")
    );
    assert_eq!(snap.protected_home("nb-alice"), None);
    assert_eq!(snap.protected_claim("nb-alice-pvc"), None);
}

#[test]
fn rejected_unit_protects_claims_an_accepted_share_also_uses() {
    let good = unit(
        "ConfigMap nv/a",
        "kind: Share\nname: a\nclaimName: data\nsubPath: a\nmountPath: /a\nlevel: public\n",
    );
    let broken = unit(
        "ConfigMap nv/b",
        "kind: Share\nname: b\nclaimName: data\nsubPath: b\nmountPath: /b\nlevel: secret\nreaders: {users: [x]\n",
    );
    let snap = PolicySnapshot::compile(&[good, broken]);
    assert_eq!(snap.shares().len(), 1);
    assert_eq!(snap.protected_claim("data"), Some("ConfigMap nv/b"));
}
