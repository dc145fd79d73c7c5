//! Builds the RFC 6902 patch. Changes are collected first and emitted last, so that a missing
//! array or map is created once with all its entries instead of appended to while absent.

use std::collections::{BTreeMap, BTreeSet};

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, PatchOperation, RemoveOperation};
use k8s_openapi::api::core::v1::{Container, Pod};
use serde_json::{Map, Value};

use super::pod::ContainerKind;

#[derive(Debug, Default)]
pub struct PatchBuilder {
    annotations: BTreeMap<String, String>,
    volumes: Vec<Value>,
    mounts: BTreeMap<usize, Vec<Value>>,
    env: BTreeMap<usize, Vec<Value>>,
    read_only_volumes: BTreeSet<usize>,
    read_only_mounts: BTreeSet<(ContainerKind, usize, usize)>,
    removed_annotations: BTreeSet<String>,
}

fn pointer(tokens: &[&str]) -> PointerBuf {
    PointerBuf::from_tokens(tokens.iter().copied())
}

fn add(path: PointerBuf, value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation { path, value })
}

/// A JSON object from fields, skipping absent ones (built directly: the hot path of admission).
fn object<const N: usize>(fields: [(&str, Option<Value>); N]) -> Value {
    let mut map = Map::with_capacity(N);
    for (k, v) in fields {
        if let Some(v) = v {
            map.insert(k.to_string(), v);
        }
    }
    Value::Object(map)
}

impl PatchBuilder {
    pub fn annotate(&mut self, key: &str, value: &str) {
        self.annotations.insert(key.to_string(), value.to_string());
    }

    /// Adds a `persistentVolumeClaim` volume.
    pub fn add_claim_volume(&mut self, name: &str, claim: &str, read_only: bool) {
        let source = object([
            ("claimName", Some(Value::from(claim))),
            ("readOnly", read_only.then_some(Value::Bool(true))),
        ]);
        self.volumes.push(object([
            ("name", Some(Value::from(name))),
            ("persistentVolumeClaim", Some(source)),
        ]));
    }

    /// Adds a mount to a regular container.
    pub fn add_mount(
        &mut self,
        container: usize,
        volume: &str,
        mount_path: &str,
        sub_path: Option<&str>,
        read_only: bool,
    ) {
        let mount = object([
            ("name", Some(Value::from(volume))),
            ("mountPath", Some(Value::from(mount_path))),
            ("subPath", sub_path.map(Value::from)),
            ("readOnly", read_only.then_some(Value::Bool(true))),
        ]);
        self.mounts.entry(container).or_default().push(mount);
    }

    /// Adds an environment variable to a regular container.
    pub fn add_env(&mut self, container: usize, name: &str, value: &str) {
        let var = object([
            ("name", Some(Value::from(name))),
            ("value", Some(Value::from(value))),
        ]);
        self.env.entry(container).or_default().push(var);
    }

    /// Sets `persistentVolumeClaim.readOnly: true` on an existing volume.
    pub fn read_only_volume(&mut self, index: usize) {
        self.read_only_volumes.insert(index);
    }

    /// Sets `readOnly: true` on an existing mount.
    pub fn read_only_mount(&mut self, kind: ContainerKind, container: usize, mount: usize) {
        self.read_only_mounts.insert((kind, container, mount));
    }

    /// Removes an annotation the pod carries (one only the webhook may write).
    pub fn remove_annotation(&mut self, key: &str) {
        self.removed_annotations.insert(key.to_string());
    }

    /// Emits the operations against `pod`; annotations already holding the value are skipped.
    pub fn build(self, pod: &Pod) -> Vec<PatchOperation> {
        let mut ops = Vec::new();
        for i in &self.read_only_volumes {
            ops.push(add(
                pointer(&[
                    "spec",
                    "volumes",
                    &i.to_string(),
                    "persistentVolumeClaim",
                    "readOnly",
                ]),
                Value::Bool(true),
            ));
        }
        for (kind, c, m) in &self.read_only_mounts {
            ops.push(add(
                pointer(&[
                    "spec",
                    kind.field(),
                    &c.to_string(),
                    "volumeMounts",
                    &m.to_string(),
                    "readOnly",
                ]),
                Value::Bool(true),
            ));
        }
        let existing = pod.metadata.annotations.as_ref();
        for key in &self.removed_annotations {
            if existing.is_some_and(|a| a.contains_key(key)) && !self.annotations.contains_key(key)
            {
                ops.push(PatchOperation::Remove(RemoveOperation {
                    path: pointer(&["metadata", "annotations", key]),
                }));
            }
        }
        let changed: BTreeMap<&String, &String> = self
            .annotations
            .iter()
            .filter(|(k, v)| existing.and_then(|a| a.get(*k)) != Some(*v))
            .collect();
        if existing.is_none() && !changed.is_empty() {
            let map = changed
                .into_iter()
                .map(|(k, v)| (k.clone(), Value::from(v.as_str())));
            ops.push(add(
                pointer(&["metadata", "annotations"]),
                Value::Object(map.collect()),
            ));
        } else {
            for (k, v) in changed {
                ops.push(add(
                    pointer(&["metadata", "annotations", k]),
                    Value::String(v.clone()),
                ));
            }
        }
        let spec = pod.spec.as_ref();
        append(
            &mut ops,
            &["spec", "volumes"],
            spec.and_then(|s| s.volumes.as_ref()).is_some(),
            self.volumes,
        );
        let containers: &[Container] = spec.map(|s| s.containers.as_slice()).unwrap_or_default();
        for (c, mounts) in self.mounts {
            let present = containers
                .get(c)
                .and_then(|x| x.volume_mounts.as_ref())
                .is_some();
            append(
                &mut ops,
                &["spec", "containers", &c.to_string(), "volumeMounts"],
                present,
                mounts,
            );
        }
        for (c, env) in self.env {
            let present = containers.get(c).and_then(|x| x.env.as_ref()).is_some();
            append(
                &mut ops,
                &["spec", "containers", &c.to_string(), "env"],
                present,
                env,
            );
        }
        ops
    }
}

/// Appends to an array, or creates it with all items when the pod has none.
fn append(ops: &mut Vec<PatchOperation>, path: &[&str], present: bool, items: Vec<Value>) {
    if items.is_empty() {
        return;
    }
    if present {
        let mut end = pointer(path);
        end.push_back("-");
        for item in items {
            ops.push(add(end.clone(), item));
        }
    } else {
        ops.push(add(pointer(path), Value::Array(items)));
    }
}
