//! The offline commands as a platform engineer runs them: exit codes, output shapes, messages.

use std::process::{Command, Output};

use crate::fixtures::repo;

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_notebook-volumes"))
        .args(args)
        .current_dir(repo(""))
        .output()
        .expect("binary runs")
}

/// `audit` over the example policies for `pod`, with more flags.
fn audit(pod: &str, flags: &[&str]) -> Output {
    let base = ["audit", "--policies", "examples/policies", "--pod", pod];
    run(&[&base[..], flags].concat())
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn temp_file(name: &str, text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    (dir, path.display().to_string())
}

#[test]
fn check_accepts_the_examples() {
    let o = run(&["check", "examples/policies"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert_contains(&stdout(&o), "4 share(s), 1 library(ies); 0 error(s)");
}

#[test]
fn check_reports_file_line_and_field_and_exits_1() {
    let (_d, path) = temp_file(
        "bad.yaml",
        "kind: Share\nname: a\nclaimName: a\nmountPath: a\nlevel: public\n",
    );
    let o = run(&["check", &path]);
    assert_eq!(o.status.code(), Some(1));
    assert_contains(&stdout(&o), &format!("{path}:4: error: field 'mountPath'"));
}

/// A file with several mistakes gives all of them in one run, each with its line: an unknown
/// field, a wrong type, an unknown kind, a bad value inside a flow mapping spread over two lines,
/// and a second mistake in the same document.
#[test]
fn check_reports_every_shape_error_of_a_file_in_one_run() {
    let text = "kind: Share\nname: data\nclaimName: data\nmountPath: /data\nlevel: public\nreaders:\n  users: [alice]\n  grups: [analysts]\n---\nkind: Home\nclaimNameTemplate: home-{user}\nmountPath: [/home]\n---\nkind: Libary\nname: apps\n---\nkind: Settings\ntrustedSpawners: [hub]\nadministrators: {users: [root],\n  groups: admins}\nusernameAnnotation: [x]\n";
    let (_d, path) = temp_file("typos.yaml", text);
    let o = run(&["check", &path]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    for (line, field, words) in [
        (8, "readers.grups", "unknown field `grups`"),
        (12, "mountPath", "invalid type: sequence, expected a string"),
        (14, "kind", "unknown kind 'Libary'"),
        (
            20,
            "administrators.groups",
            "invalid type: string \"admins\", expected a sequence",
        ),
        (
            21,
            "usernameAnnotation",
            "unknown field `usernameAnnotation`",
        ),
    ] {
        let prefix = format!("{path}:{line}: error: field '{field}': ");
        assert!(
            out.lines()
                .any(|l| l.starts_with(&prefix) && l.contains(words)),
            "{prefix}... {words}\n{out}"
        );
    }
    assert!(out.contains("; 5 error(s), 0 warning(s)"), "{out}");
}

#[test]
fn check_reads_config_map_manifests() {
    let manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: p\n  namespace: nv\n  labels: {notebook-volumes.io/policy: \"true\"}\ndata:\n  a.yaml: |\n    kind: Share\n    name: a\n    claimName: a\n    mountPath: /a\n    level: public\n    readers: {users: [x]}\n";
    let (_d, path) = temp_file("cm.yaml", manifest);
    let o = run(&["check", "--policy-namespace", "nv", &path]);
    assert_eq!(o.status.code(), Some(1));
    assert_contains(
        &stdout(&o),
        "(ConfigMap nv/p, key a.yaml, line 6): error: field 'readers'",
    );
}

/// The server reads only labelled ConfigMaps in its own namespace; so do the offline commands,
/// and they say which manifests they skipped and why.
#[test]
fn offline_commands_read_config_maps_as_the_server_does() {
    let cm = |name: &str, namespace: Option<&str>, labelled: bool| {
        let ns = namespace.map_or(String::new(), |n| format!("  namespace: {n}\n"));
        let label = if labelled {
            "  labels: {notebook-volumes.io/policy: \"true\"}\n"
        } else {
            ""
        };
        format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n{ns}{label}data:\n  p.yaml: |\n    kind: Share\n    name: {name}\n    claimName: {name}\n    mountPath: /data/{name}\n    level: private\n    readers: {{users: [mallory]}}\n"
        )
    };
    let text = [
        cm("served", Some("notebook-volumes"), true),
        cm("unnamespaced", None, true),
        cm("user-ns", Some("ds-team"), true),
        cm("unlabelled", Some("notebook-volumes"), false),
    ]
    .concat();
    let (_d, path) = temp_file("cms.yaml", &text);
    let o = run(&["access", "--policies", &path, "--output", "csv"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let header = stdout(&o).lines().next().unwrap_or_default().to_string();
    assert_eq!(header, "principal,served,unnamespaced");
    let err = stderr(&o);
    assert!(
        err.contains("ConfigMap user-ns skipped: it is in namespace 'ds-team'; the webhook reads policy only from 'notebook-volumes'"),
        "{err}"
    );
    assert!(
        err.contains("ConfigMap unlabelled skipped: it has no label"),
        "{err}"
    );
    let o = run(&[
        "access",
        "--policies",
        &path,
        "--policy-namespace",
        "ds-team",
        "--output",
        "csv",
    ]);
    let header = stdout(&o).lines().next().unwrap_or_default().to_string();
    assert_eq!(header, "principal,unnamespaced,user-ns");
}

/// A rejected unit's claims are listed as protected, found even in YAML that does not parse.
#[test]
fn check_lists_the_claims_a_rejected_unit_keeps_protected() {
    let (_d, path) = temp_file(
        "broken.yaml",
        "kind: share\nname: finance\nclaimName: finance-data\nmountPath: /f\nlevel: private\n---\nkind: Home\nclaimNameTemplate: home-{user}\nmountPath: /home\nreaders: [\n",
    );
    let o = run(&["check", &path]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains(&format!("rejected {path}: protected until it is fixed (every pod that references them is denied): claims finance-data; home claims of home-{{user}}")),
        "{out}"
    );
}

#[test]
fn check_missing_path_exits_2_with_a_message() {
    let o = run(&["check", "does/not/exist"]);
    assert_eq!(o.status.code(), Some(2));
    assert_contains(&stderr(&o), "cannot read does/not/exist");
}

#[test]
fn audit_json_has_the_documented_shape() {
    let o = audit(
        "examples/pods/kubespawner-alice.yaml",
        &[
            "--requester",
            "system:serviceaccount:jupyterhub:hub",
            "--output",
            "json",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        vec![
            "allowed",
            "auditAnnotations",
            "message",
            "mounts",
            "patch",
            "user",
            "warnings"
        ]
    );
    assert_eq!(v["allowed"], true);
    assert_eq!(v["user"], "alice");
    assert!(v["message"].is_null());
    let home = &v["mounts"][0];
    assert_eq!(home["volume"], "nv-home");
    assert_eq!(home["claimName"], "home-alice");
    assert_eq!(home["mountPath"], "/opt/app-root/src");
    assert_eq!(home["readOnly"], false);
    assert_eq!(home["source"], "home");
    assert!(
        v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["source"] == "share:finance")
    );
    assert!(
        v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["source"] == "library:apps" && m["readOnly"] == true)
    );
    assert!(
        v["patch"]
            .as_array()
            .unwrap()
            .iter()
            .all(|op| op["op"] == "add")
    );
    assert_eq!(v["auditAnnotations"]["user"], "alice");
}

#[test]
fn audit_denied_exits_1_with_the_reason() {
    let o = audit(
        "examples/pods/carol-claims-bob.yaml",
        &["--requester", "carol", "--output", "json"],
    );
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["allowed"], false);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("pod claims user 'bob'")
    );
    assert!(v["auditAnnotations"]["reason"].as_str().is_some());
}

#[test]
fn audit_dry_run_says_would_create() {
    let o = audit(
        "examples/pods/kubespawner-alice.yaml",
        &["--dry-run", "--output", "json"],
    );
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        v["auditAnnotations"]["mounts"]
            .as_str()
            .unwrap()
            .starts_with("home=would-create")
    );
}

#[test]
fn a_statefulset_controller_pod_without_a_stamp_gets_nobodys_volumes() {
    // The example pod names bob by annotation; the StatefulSet controller is a trusted
    // controller, so only a stamp the webhook wrote could name him.
    let o = audit(
        "examples/pods/odh-bob.yaml",
        &["--requester", crate::fixtures::STS],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert_contains(&stdout(&o), "allowed for user: (anonymous)");
    assert_contains(&stdout(&o), "no stamp notebook-volumes wrote");
}

#[test]
fn audit_of_a_statefulset_shows_the_stamp_and_its_pods_mounts() {
    let o = audit(
        "examples/workloads/odh-bob-statefulset.yaml",
        &["--requester", "bob"],
    );
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("StatefulSet 'bob-workbench': stamped for user bob"),
        "{out}"
    );
    assert!(out.contains("allowed for user: bob"), "{out}");
    assert!(out.contains("share:finance"), "{out}");
    // Another user's name in the template: denied at the StatefulSet.
    let o = audit(
        "examples/workloads/odh-bob-statefulset.yaml",
        &["--requester", "carol"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("DENIED"), "{}", stdout(&o));
}

#[test]
fn audit_of_a_notebook_follows_the_notebook_controllers_copy_rule() {
    let o = audit(
        "examples/workloads/alice-notebook.yaml",
        &["--requester", "alice"],
    );
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("Notebook 'alice-notebook': stamped for user alice"),
        "{out}"
    );
    assert!(out.contains("allowed for user: alice"), "{out}");
    // The secret share asked for under nb-volumes.io/ reaches the pod; the notebook-volumes.io/
    // opt-out on the Notebook does not (the controller drops keys containing "notebook").
    assert!(out.contains("share:mergers"), "{out}");
}

#[test]
fn audit_pod_output_is_the_mutated_pod() {
    let o = run(&[
        "audit",
        "--policies",
        "examples/policies",
        "--pod",
        "examples/pods/kubespawner-alice.yaml",
        "--output",
        "pod",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let pod: k8s_openapi::api::core::v1::Pod = serde_saphyr::from_slice(&o.stdout).unwrap();
    let mounts = pod.spec.unwrap().containers[0]
        .volume_mounts
        .clone()
        .unwrap();
    assert!(
        mounts
            .iter()
            .any(|m| m.name == "nv-lib-apps" && m.read_only == Some(true))
    );
}

#[test]
fn audit_patch_output_is_a_json_patch_and_text_is_readable() {
    let pod = "examples/pods/kubespawner-alice.yaml";
    let o = audit(pod, &["--output", "patch"]);
    let patch: json_patch::Patch = serde_json::from_slice(&o.stdout).unwrap();
    assert!(!patch.0.is_empty());
    let o = audit(pod, &[]);
    assert_contains(&stdout(&o), "allowed for user: alice");
    assert!(stdout(&o).contains("ro  /opt/apps"), "{}", stdout(&o));
}

#[test]
fn audit_bad_pod_yaml_exits_2() {
    let (_d, path) = temp_file("pod.yaml", "spec: [not, a, pod\n");
    let o = audit(&path, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert_contains(&stderr(&o), "is not a valid Pod manifest");
}

#[test]
fn audit_bad_flags_exit_2() {
    let o = audit("x.yaml", &["--output", "xml"]);
    assert_eq!(o.status.code(), Some(2));
    let o = audit(
        "examples/pods/odh-bob.yaml",
        &["--namespace-labels", "novalue"],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not key=value"), "{}", stderr(&o));
    let o = run(&["audit", "--pod", "examples/pods/odh-bob.yaml"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn audit_claims_file_supplies_existing_home_claims() {
    let claims = "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: home-alice\n  namespace: ds-team\n  labels: {notebook-volumes.io/home: \"true\"}\n  annotations: {notebook-volumes.io/owner: mallory}\n";
    let (_d, path) = temp_file("claims.yaml", claims);
    let o = audit("examples/pods/kubespawner-alice.yaml", &["--claims", &path]);
    assert_eq!(o.status.code(), Some(1));
    assert_contains(&stdout(&o), "belongs to user 'mallory'");
}

#[test]
fn access_matrix_in_every_format() {
    let o = run(&[
        "access",
        "--policies",
        "examples/policies",
        "--output",
        "csv",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let csv = stdout(&o);
    assert!(
        csv.starts_with("principal,datasets,team-notebooks,finance,mergers\n"),
        "{csv}"
    );
    assert!(csv.contains("user:alice,ro,rw,rw,rw\n"), "{csv}");
    assert!(csv.contains("user:bob,ro,rw,ro,-\n"), "{csv}");
    assert!(csv.contains("anyone:*,ro,ro,-,-\n"), "{csv}");
    let o = run(&[
        "access",
        "--policies",
        "examples/policies",
        "--output",
        "json",
        "--namespace",
        "ds-team",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let dave = v["principals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "dave")
        .unwrap();
    assert_eq!(dave["access"]["mergers"], "ro");
    let o = run(&[
        "access",
        "--policies",
        "examples/policies",
        "--namespace",
        "elsewhere",
    ]);
    assert!(
        stdout(&o).lines().next().unwrap().trim() == "PRINCIPAL",
        "{}",
        stdout(&o)
    );
}

#[test]
fn audit_claims_listing_judges_share_and_library_claims() {
    let claim = |name: &str, mode: &str, phase: &str| {
        format!(
            "---\napiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: {name}, namespace: ds-team}}\nspec: {{accessModes: [{mode}]}}\nstatus: {{phase: {phase}, accessModes: [{mode}]}}\n"
        )
    };
    let listing = [
        claim("shared-datasets", "ReadWriteMany", "Bound"),
        claim("team-notebooks", "ReadWriteMany", "Pending"),
        claim("finance-data", "ReadWriteOnce", "Bound"),
        claim("apps", "ReadOnlyMany", "Bound"),
    ]
    .concat();
    let out = audit_alice_with_claims(&listing);
    let sources: Vec<&str> = out["mounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .filter_map(|m| m["source"].as_str())
        .collect();
    assert!(
        sources.contains(&"share:datasets") && sources.contains(&"library:apps"),
        "{sources:?}"
    );
    assert!(
        !sources.contains(&"share:notebooks") && !sources.contains(&"share:finance"),
        "{sources:?}"
    );
    let warnings = out["warnings"].to_string();
    assert!(
        warnings
            .contains("its claim 'team-notebooks' in namespace 'ds-team' is Pending, not Bound")
            && warnings.contains("[ReadWriteOnce]"),
        "{warnings}"
    );
    // Without a listing, claims are not judged.
    let o = audit(
        "examples/pods/kubespawner-alice.yaml",
        &["--output", "json"],
    );
    assert!(stdout(&o).contains("share:finance"), "{}", stdout(&o));
}

#[test]
fn access_for_one_user_names_the_grant_and_the_source_of_each_group() {
    let o = run(&[
        "access",
        "--policies",
        "examples/policies",
        "--user",
        "frank",
        "--hub-groups",
        "analysts",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("group analysts: from hub annotation"), "{out}");
    let finance = out
        .lines()
        .find(|l| l.starts_with("finance"))
        .expect("finance row");
    assert!(
        finance.contains(" ro ")
            && finance.contains("readers.groups 'analysts' (from hub annotation)"),
        "{finance}"
    );
    let o = run(&[
        "access",
        "--policies",
        "examples/policies",
        "--user",
        "alice",
        "--output",
        "json",
    ]);
    let out: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    let finance = out["shares"]
        .as_array()
        .expect("shares")
        .iter()
        .find(|s| s["name"] == "finance")
        .expect("finance");
    assert_eq!(finance["access"], "rw");
    assert_eq!(finance["grantedBy"], "writers.users");
    assert_eq!(
        out["groups"]["finance-admins"][0],
        "Groups document in examples/policies/settings.yaml"
    );
}

#[test]
fn check_validates_the_groups_annotation_and_unusable_claims() {
    check_refuses(
        "kind: Settings\ngroupsAnnotation: notebook-volumes.io/groups\n",
        &["groupsAnnotation", "webhook's own prefix"],
    );
    check_refuses(
        "kind: Settings\nunusableClaims: wait\n",
        &["unusableClaims"],
    );
    let (_d, path) = temp_file(
        "settings.yaml",
        "kind: Settings\ngroupsAnnotation: example.org/groups\nunusableClaims: deny\n",
    );
    assert_eq!(run(&["check", &path]).status.code(), Some(0));
}

#[test]
fn check_validates_openshift_groups() {
    check_refuses(
        "kind: Settings\nopenshiftGroups: sometimes\n",
        &[
            "settings.yaml:2: error: field 'openshiftGroups'",
            "expected `auto` or `off`",
        ],
    );
    for mode in ["auto", "off"] {
        let (_d, path) = temp_file(
            "settings.yaml",
            &format!("kind: Settings\nopenshiftGroups: {mode}\n"),
        );
        assert_eq!(run(&["check", &path]).status.code(), Some(0), "{mode}");
    }
    // With auto, a group defined in no Groups document may come from OpenShift: the warning says so.
    let (_d, path) = temp_file(
        "p.yaml",
        "kind: Settings\nopenshiftGroups: auto\n---\nkind: Share\nname: lab\nclaimName: lab\nmountPath: /lab\nlevel: private\nreaders: {groups: [lab-team]}\n",
    );
    let o = run(&["check", &path]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert_contains(
        &stdout(&o),
        "only members of an OpenShift Group of that name",
    );
}

/// A policy whose Settings say `openshiftGroups: MODE`, with a share for the group `lab-team`.
fn openshift_policy(dir: &std::path::Path, mode: &str) -> String {
    let path = dir.join("policy.yaml");
    std::fs::write(
        &path,
        format!(
            "kind: Settings\nopenshiftGroups: {mode}\n---\nkind: Groups\ngroups:\n  lab-team: [erin]\n---\n\
             kind: Share\nname: lab\nclaimName: lab\nmountPath: /lab\nlevel: private\n\
             writers: {{groups: [lab-team]}}\nreaders: {{groups: [lab-readers]}}\n"
        ),
    )
    .unwrap();
    path.display().to_string()
}

#[test]
fn access_names_openshift_groups_as_the_source_and_only_with_auto() {
    let dir = tempfile::tempdir().unwrap();
    let groups_dir = dir.path().join("groups");
    std::fs::create_dir(&groups_dir).unwrap();
    // As `oc get groups -o yaml` prints them.
    std::fs::write(
        groups_dir.join("groups.yaml"),
        "apiVersion: v1\nkind: List\nitems:\n\
         - apiVersion: user.openshift.io/v1\n  kind: Group\n  metadata: {name: lab-team}\n  users: [alice, erin]\n\
         - apiVersion: user.openshift.io/v1\n  kind: Group\n  metadata: {name: lab-readers}\n  users: [bob, 'system:serviceaccount:ds-team:runner']\n\
         - apiVersion: user.openshift.io/v1\n  kind: Group\n  metadata: {name: broken}\n  users: alice\n",
    )
    .unwrap();
    let groups = groups_dir.display().to_string();
    let auto = openshift_policy(dir.path(), "auto");
    let user = |name: &str, policy: &str| {
        let o = run(&[
            "access",
            "--policies",
            policy,
            "--user",
            name,
            "--openshift-groups",
            &groups,
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        o
    };
    let o = user("alice", &auto);
    let out = stdout(&o);
    assert!(
        out.contains("group lab-team: from OpenShift Group"),
        "{out}"
    );
    let lab = out.lines().find(|l| l.starts_with("lab")).expect("lab row");
    assert!(
        lab.contains(" rw ") && lab.contains("writers.groups 'lab-team' (from OpenShift Group)"),
        "{lab}"
    );
    // A service account in a Group is every namespace editor's.
    assert_contains(
        &stderr(&o),
        "OpenShift Groups list service account 'system:serviceaccount:ds-team:runner': everyone with edit in namespace 'ds-team'",
    );
    assert!(
        stderr(&o).contains("OpenShift Group 'broken' skipped")
            && stderr(&o).contains("`users` is not a list of strings"),
        "{}",
        stderr(&o)
    );
    let out = stdout(&user("bob", &auto));
    let lab = out.lines().find(|l| l.starts_with("lab")).expect("lab row");
    assert!(
        lab.contains(" ro ") && lab.contains("(from OpenShift Group)"),
        "{lab}"
    );
    // Both sources of one group are named.
    let out = stdout(&user("erin", &auto));
    assert!(
        out.contains(&format!(
            "group lab-team: from Groups document in {auto}, OpenShift Group"
        )),
        "{out}"
    );

    // The matrix has a row for a user only an OpenShift Group names.
    let o = run(&["access", "--policies", &auto, "--openshift-groups", &groups]);
    let out = stdout(&o);
    let bob = out
        .lines()
        .find(|l| l.starts_with("user:bob"))
        .expect("bob's row");
    assert!(bob.split_whitespace().nth(1) == Some("ro"), "{out}");

    // Off: the same Groups grant nothing, and stderr says why.
    let off_dir = tempfile::tempdir().unwrap();
    let off = openshift_policy(off_dir.path(), "off");
    let o = user("alice", &off);
    let lab = stdout(&o)
        .lines()
        .find(|l| l.starts_with("lab"))
        .map(str::to_string);
    assert!(
        lab.as_deref()
            .is_some_and(|l| l.contains(" - ") || l.trim_end().ends_with('-')),
        "{lab:?}"
    );
    assert!(!stdout(&o).contains("OpenShift Group"), "{}", stdout(&o));
    assert_contains(&stderr(&o), "openshiftGroups: off");

    // Not a Group: an error naming the file and line.
    let (_d, bad) = temp_file(
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
    );
    let o = run(&["access", "--policies", &auto, "--openshift-groups", &bad]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "an error, as for an unreadable policy"
    );
    assert_contains(&stderr(&o), "cm.yaml:1: not an OpenShift Group");
}

/// A claim the reconciler provisioned for a share the policy no longer has (or no longer
/// provisions here) is listed by `audit --claims`: kept with its data, to delete by hand.
#[test]
fn audit_claims_listing_reports_provisioned_claims_no_longer_in_policy() {
    let managed = |name: &str, share: &str| {
        format!(
            "---\napiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: {name}, namespace: ds-team, labels: {{notebook-volumes.io/managed-by: notebook-volumes, notebook-volumes.io/share: {share}}}}}\nspec: {{accessModes: [ReadWriteMany]}}\nstatus: {{phase: Bound, accessModes: [ReadWriteMany]}}\n"
        )
    };
    // `archive` is in no policy; `finance` is, without `storage` (an administrator's claim now).
    let listing = [
        managed("old-archive", "archive"),
        managed("finance-data", "finance"),
    ]
    .concat();
    let out = audit_alice_with_claims(&listing);
    assert_eq!(
        out["orphanedClaims"],
        serde_json::json!([
            {"namespace": "ds-team", "claim": "old-archive", "owner": "share archive"},
            {"namespace": "ds-team", "claim": "finance-data", "owner": "share finance"}
        ])
    );
    let (_d, path) = temp_file("claims.yaml", &listing);
    let text = audit("examples/pods/kubespawner-alice.yaml", &["--claims", &path]);
    assert_contains(
        &stdout(&text),
        "provisioned claim no longer in policy: 'old-archive' in namespace 'ds-team' (made for share archive)",
    );
}

/// `audit --output json` of alice's KubeSpawner pod with `listing` as the namespace's claims;
/// it must exit 0.
fn audit_alice_with_claims(listing: &str) -> serde_json::Value {
    let (_d, path) = temp_file("claims.yaml", listing);
    let o = audit(
        "examples/pods/kubespawner-alice.yaml",
        &["--claims", &path, "--output", "json"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    serde_json::from_str(&stdout(&o)).expect("JSON")
}

/// `check` of a settings.yaml holding `text` exits 1 with every one of `says` in its report.
#[track_caller]
fn check_refuses(text: &str, says: &[&str]) {
    let (_d, path) = temp_file("settings.yaml", text);
    let o = run(&["check", &path]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    for part in says {
        assert_contains(&stdout(&o), part);
    }
}

/// Fails with the whole text when `text` does not contain `part`.
#[track_caller]
fn assert_contains(text: &str, part: &str) {
    assert!(text.contains(part), "{part:?} not in:\n{text}");
}
