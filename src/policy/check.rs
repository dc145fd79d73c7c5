//! Field rules of docs/design.md, "Policy", for one document, turning a parsed document into a model item.

use std::collections::BTreeMap;

use super::document::{
    Document, HomeDoc, LevelDoc, LibraryDoc, MountedClaim, PrincipalsDoc, SecretHomeDoc,
    SettingsDoc, ShareDoc, UnusableClaimsDoc,
};
use super::model::{
    Home, HomeCreate, Level, Library, Principals, Scope, SecretHome, Settings, Share, SizeTier,
    UnusableClaims,
};
use super::origin::Finding;
use super::parse::ParsedDoc;
use super::rules;
use super::selector::LabelSelector;
use super::storage::storage;
use crate::keys;

/// A validated document.
#[derive(Debug, Clone)]
pub enum Item {
    Share(Share),
    Home(Home),
    Library(Library),
    Groups(BTreeMap<String, Vec<String>>),
    Settings(Settings),
}

/// Collects the findings of one document.
struct Checker<'a> {
    doc: &'a ParsedDoc,
    findings: Vec<Finding>,
}

impl Checker<'_> {
    fn rule(&mut self, field: &str, result: Result<(), String>) {
        if let Err(message) = result {
            self.findings.push(self.doc.error(field, message));
        }
    }

    /// An empty string in a list of names would match nobody, or (as a username) anybody
    /// unauthenticated: each one is an error at its index.
    fn none_empty(&mut self, field: &str, names: &[String], message: &str) {
        for (i, _) in names.iter().enumerate().filter(|(_, n)| n.is_empty()) {
            self.error(&format!("{field}[{i}]"), message);
        }
    }

    fn error(&mut self, field: &str, message: impl Into<String>) {
        self.findings.push(self.doc.error(field, message));
    }

    fn warning(&mut self, field: &str, message: impl Into<String>) {
        self.findings
            .push(self.doc.finding(super::Severity::Warning, field, message));
    }

    fn scope(
        &mut self,
        namespaces: &Option<Vec<String>>,
        selector: &Option<LabelSelector>,
    ) -> Scope {
        match (namespaces, selector) {
            (Some(_), Some(_)) => {
                self.error(
                    "namespaceSelector",
                    "set either `namespaces` or `namespaceSelector`, not both",
                );
                Scope::Everywhere
            }
            (Some(names), None) => {
                if names.is_empty() {
                    self.error(
                        "namespaces",
                        "an empty list reaches no namespace; omit the field to mean every enabled namespace",
                    );
                }
                for (i, n) in names.iter().enumerate() {
                    self.rule(&format!("namespaces[{i}]"), rules::dns1123_label(n));
                }
                Scope::Namespaces(names.iter().cloned().collect())
            }
            (None, Some(sel)) => {
                for p in sel.problems() {
                    self.error("namespaceSelector", p);
                }
                Scope::Selector(sel.clone())
            }
            (None, None) => Scope::Everywhere,
        }
    }

    fn principals(&mut self, field: &str, p: &Option<PrincipalsDoc>) -> Principals {
        let p = p.clone().unwrap_or_default();
        self.none_empty(&format!("{field}.users"), &p.users, "empty username");
        self.none_empty(&format!("{field}.groups"), &p.groups, "empty group name");
        Principals {
            users: p.users.into_iter().collect(),
            groups: p.groups.into_iter().collect(),
        }
    }
}

/// Checks one document; the item is returned only when it has no error.
pub fn check_document(doc: &ParsedDoc) -> (Option<Item>, Vec<Finding>) {
    let mut c = Checker {
        doc,
        findings: Vec::new(),
    };
    let item = match &doc.doc {
        Document::Share(s) => Item::Share(share(&mut c, s)),
        Document::Home(h) => Item::Home(home(&mut c, h)),
        Document::Library(l) => Item::Library(library(&mut c, l)),
        Document::Groups(g) => {
            for (name, members) in &g.groups {
                if name.is_empty() {
                    c.error("groups", "empty group name");
                }
                for (i, m) in members.iter().enumerate() {
                    if m.is_empty() {
                        c.error(&format!("groups.{name}[{i}]"), "empty username");
                    }
                }
            }
            Item::Groups(g.groups.clone())
        }
        Document::Settings(s) => Item::Settings(settings(&mut c, s)),
    };
    let ok = c.findings.is_empty();
    (ok.then_some(item), c.findings)
}

/// What a Share and a Library both name: a volume `<volume_prefix><name>` (so the name must
/// leave room for the prefix in a DNS-1123 label), the namespaces in scope, the claim and the
/// mount path.
fn mounted(c: &mut Checker<'_>, volume_prefix: &str, m: MountedClaim<'_>) -> Scope {
    c.rule("name", rules::dns1123_label(m.name));
    let max = 63 - volume_prefix.len();
    if m.name.len() > max {
        c.error(
            "name",
            format!("at most {max} characters, so that the volume name {volume_prefix}<name> is a valid name"),
        );
    }
    let scope = c.scope(m.namespaces, m.namespace_selector);
    c.rule("claimName", rules::dns1123_subdomain(m.claim_name));
    c.rule("mountPath", rules::absolute_path(m.mount_path));
    scope
}

fn share(c: &mut Checker<'_>, s: &ShareDoc) -> Share {
    let scope = mounted(c, keys::SHARE_VOLUME_PREFIX, s.mounted_claim());
    let sub_path = s.sub_path.clone().filter(|p| !p.is_empty());
    if let Some(p) = &sub_path {
        c.rule("subPath", rules::relative_path(p));
    }
    let level = match s.level {
        LevelDoc::Public => Level::Public,
        LevelDoc::Private => Level::Private,
        LevelDoc::Secret => Level::Secret,
    };
    let readers = c.principals("readers", &s.readers);
    let writers = c.principals("writers", &s.writers);
    let storage = s
        .storage
        .as_ref()
        .map(|d| storage(d, &mut |f, m| c.error(f, m)));
    if let Some(st) = &storage
        && st.access_mode == "ReadOnlyMany"
        && (!writers.users.is_empty() || !writers.groups.is_empty())
    {
        c.error(
            "storage.accessMode",
            "a ReadOnlyMany claim cannot be written, yet the share has writers: use ReadWriteMany (the default), or remove `writers`",
        );
    }
    if level == Level::Public && s.readers.is_some() {
        c.error(
            "readers",
            "a public share is readable by every notebook user; remove `readers` or make the share private",
        );
    }
    Share {
        name: s.name.clone(),
        scope,
        claim_name: s.claim_name.clone(),
        mount_path: s.mount_path.clone(),
        sub_path,
        level,
        readers,
        writers,
        storage,
        origin: c.doc.origin.clone(),
    }
}

fn home(c: &mut Checker<'_>, h: &HomeDoc) -> Home {
    let scope = c.scope(&h.namespaces, &h.namespace_selector);
    if h.claim_name_template.matches("{user}").count() != 1 {
        c.error(
            "claimNameTemplate",
            "must contain {user} exactly once: without it every user would share one home claim, and with it twice a claim name no longer tells whose home it is",
        );
    } else if h.claim_name_template == "{user}" {
        c.error(
            "claimNameTemplate",
            "needs fixed text around {user} (for example home-{user}): every claim name the template can produce is reserved as a home, so '{user}' alone would reserve every claim in the namespace",
        );
    } else {
        let sample = h.claim_name_template.replace("{user}", "user");
        c.rule("claimNameTemplate", rules::dns1123_subdomain(&sample));
    }
    c.rule("mountPath", rules::absolute_path(&h.mount_path));
    let create = h.create.as_ref().map(|cr| {
        c.rule("create.size", rules::quantity(&cr.size));
        if let Some(sc) = &cr.storage_class_name {
            c.rule("create.storageClassName", rules::dns1123_subdomain(sc));
        }
        let access_modes = cr
            .access_modes
            .clone()
            .unwrap_or_else(|| vec!["ReadWriteOnce".to_string()]);
        for (i, m) in access_modes.iter().enumerate() {
            if !rules::ACCESS_MODES.contains(&m.as_str()) {
                c.error(
                    &format!("create.accessModes[{i}]"),
                    format!("'{m}' is not one of {}", rules::ACCESS_MODES.join(", ")),
                );
            }
        }
        HomeCreate {
            size: cr.size.clone(),
            storage_class_name: cr.storage_class_name.clone(),
            access_modes,
        }
    });
    Home {
        scope,
        claim_name_template: h.claim_name_template.clone(),
        mount_path: h.mount_path.clone(),
        create,
        sizes: size_tiers(c, h),
        secret_home: match h.secret_home {
            None | Some(SecretHomeDoc::Separate) => SecretHome::Separate,
            Some(SecretHomeDoc::ReadOnly) => SecretHome::ReadOnly,
        },
        origin: c.doc.origin.clone(),
    }
}

/// `Home.sizes`: each a quantity for at least one group, only with `create` (sizes apply to the
/// claims the webhook creates).
fn size_tiers(c: &mut Checker<'_>, h: &HomeDoc) -> Vec<SizeTier> {
    if !h.sizes.is_empty() && h.create.is_none() {
        c.error(
            "sizes",
            "sizes apply to the home claims the webhook creates: add `create` (its size is the default), or remove `sizes`",
        );
    }
    h.sizes
        .iter()
        .enumerate()
        .map(|(i, t)| {
            c.rule(&format!("sizes[{i}].size"), rules::quantity(&t.size));
            if t.groups.is_empty() {
                c.error(
                    &format!("sizes[{i}].groups"),
                    "name at least one group: a tier without groups would never match",
                );
            }
            for (j, g) in t.groups.iter().enumerate() {
                if g.is_empty() {
                    c.error(&format!("sizes[{i}].groups[{j}]"), "empty group name");
                }
            }
            SizeTier {
                groups: t.groups.iter().cloned().collect(),
                size: t.size.clone(),
            }
        })
        .collect()
}

/// Variable names the `lmod` block sets, which `env` may not repeat.
const LMOD_VARIABLES: &[&str] = &[
    "MODULEPATH",
    "LMOD_PKG",
    "MODULESHOME",
    "LMOD_DIR",
    "LMOD_CMD",
    "BASH_ENV",
    "ENV",
    "LMOD_SYSTEM_DEFAULT_MODULES",
];

fn library(c: &mut Checker<'_>, l: &LibraryDoc) -> Library {
    let scope = mounted(c, keys::LIBRARY_VOLUME_PREFIX, l.mounted_claim());
    let mut env = Vec::new();
    if let Some(lmod) = &l.lmod {
        let module_path = lmod
            .module_path
            .clone()
            .unwrap_or_else(|| vec![format!("{}/modulefiles", l.mount_path)]);
        if module_path.is_empty() {
            c.error("lmod.modulePath", "needs at least one directory");
        }
        for (i, p) in module_path.iter().enumerate() {
            c.rule(&format!("lmod.modulePath[{i}]"), rules::absolute_path(p));
        }
        let root = lmod
            .lmod_root
            .clone()
            .unwrap_or_else(|| format!("{}/lmod/lmod", l.mount_path));
        c.rule("lmod.lmodRoot", rules::absolute_path(&root));
        env.push(("MODULEPATH".to_string(), module_path.join(":")));
        env.push(("LMOD_PKG".to_string(), root.clone()));
        env.push(("MODULESHOME".to_string(), root.clone()));
        env.push(("LMOD_DIR".to_string(), format!("{root}/libexec")));
        env.push(("LMOD_CMD".to_string(), format!("{root}/libexec/lmod")));
        env.push(("BASH_ENV".to_string(), format!("{root}/init/bash")));
        env.push(("ENV".to_string(), format!("{root}/init/profile")));
        if let Some(defaults) = lmod.default_modules.as_ref().filter(|d| !d.is_empty()) {
            for (i, m) in defaults.iter().enumerate() {
                if m.is_empty() || m.contains(':') {
                    c.error(
                        &format!("lmod.defaultModules[{i}]"),
                        format!("'{m}' is not a module name"),
                    );
                }
            }
            env.push((
                "LMOD_SYSTEM_DEFAULT_MODULES".to_string(),
                defaults.join(":"),
            ));
        }
    }
    for name in l.env.keys() {
        let field = format!("env.{name}");
        c.rule(&field, rules::env_name(name));
        if l.lmod.is_some() && LMOD_VARIABLES.contains(&name.as_str()) {
            c.error(
                &field,
                format!("{name} is set by the lmod block; change the lmod settings instead"),
            );
        }
    }
    env.extend(l.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    Library {
        name: l.name.clone(),
        scope,
        claim_name: l.claim_name.clone(),
        mount_path: l.mount_path.clone(),
        env,
        storage: l
            .storage
            .as_ref()
            .map(|d| storage(d, &mut |f, m| c.error(f, m))),
        origin: c.doc.origin.clone(),
    }
}

fn settings(c: &mut Checker<'_>, s: &SettingsDoc) -> Settings {
    let defaults = Settings::default();
    c.none_empty("trustedSpawners", &s.trusted_spawners, "empty username");
    c.none_empty(
        "trustedControllers",
        &s.trusted_controllers,
        "empty username",
    );
    for (i, controller) in s.trusted_controllers.iter().enumerate() {
        if s.trusted_spawners.contains(controller) {
            c.error(
                &format!("trustedControllers[{i}]"),
                format!("'{controller}' is also a trusted spawner, which would let anyone who can make it create a pod name any user; list it only under trustedControllers"),
            );
        }
    }
    for (i, spawner) in s.trusted_spawners.iter().enumerate() {
        if spawner.ends_with(":statefulset-controller") {
            c.warning(
                &format!("trustedSpawners[{i}]"),
                format!("'{spawner}' creates pods from StatefulSets that users with `edit` can write: as a trusted spawner it lets them name any user; move it to trustedControllers, where only the webhook's stamp names the user"),
            );
        }
    }
    let username_annotations = s
        .username_annotations
        .clone()
        .unwrap_or(defaults.username_annotations);
    for (i, key) in username_annotations.iter().enumerate() {
        c.rule(
            &format!("usernameAnnotations[{i}]"),
            rules::qualified_key(key),
        );
    }
    let notebook_selector = s
        .notebook_selector
        .clone()
        .unwrap_or(defaults.notebook_selector);
    for (i, sel) in notebook_selector.iter().enumerate() {
        for p in sel.problems() {
            c.error(&format!("notebookSelector[{i}]"), p);
        }
    }
    let administrators = match &s.administrators {
        Some(doc) => c.principals("administrators", &Some(doc.clone())),
        None => defaults.administrators,
    };
    for (i, kind) in s.allowed_volume_types.iter().enumerate() {
        if !rules::INLINE_VOLUME_TYPES.contains(&kind.as_str()) {
            c.error(
                &format!("allowedVolumeTypes[{i}]"),
                format!(
                    "'{kind}' is not a pod volume type this webhook can allow; one of {}",
                    rules::INLINE_VOLUME_TYPES.join(", ")
                ),
            );
        }
    }
    for (i, driver) in s.allowed_csi_drivers.iter().enumerate() {
        c.rule(
            &format!("allowedCSIDrivers[{i}]"),
            rules::dns1123_subdomain(driver),
        );
    }
    let groups_annotation = match &s.groups_annotation {
        None => defaults.groups_annotation,
        Some(key) if key.is_empty() => None,
        Some(key) => {
            c.rule("groupsAnnotation", rules::qualified_key(key));
            if username_annotations.contains(key) {
                c.error(
                    "groupsAnnotation",
                    format!("'{key}' is also a username annotation; use a key of its own"),
                );
            }
            if key.starts_with(keys::PREFIX) {
                c.error(
                    "groupsAnnotation",
                    format!("'{key}' is in the webhook's own prefix {}, whose annotations the webhook writes; use the hub's key (e.g. {})", keys::PREFIX, super::model::DEFAULT_GROUPS_ANNOTATION),
                );
            }
            Some(key.clone())
        }
    };
    let unusable_claims = match s.unusable_claims {
        None | Some(UnusableClaimsDoc::Skip) => UnusableClaims::Skip,
        Some(UnusableClaimsDoc::Deny) => UnusableClaims::Deny,
    };
    Settings {
        groups_annotation,
        unusable_claims,
        trusted_spawners: s.trusted_spawners.clone(),
        trusted_controllers: s.trusted_controllers.clone(),
        username_annotations,
        notebook_selector,
        administrators,
        allowed_volume_types: s.allowed_volume_types.iter().cloned().collect(),
        allowed_csi_drivers: s.allowed_csi_drivers.iter().cloned().collect(),
    }
}
