//! Reading policy from disk (the edge of the CLI and of `serve --policies`): directories, files of
//! documents, and ConfigMap manifests.

use std::path::{Path, PathBuf};

use crate::policy::{DEFAULT_POLICY_NAMESPACE, Finding, Unit, units_from_text};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} holds no .yaml or .yml file")]
    Empty { path: String },
}

/// Units and file-level findings (unreadable YAML, unlabelled ConfigMaps) of the given paths.
#[derive(Debug, Default)]
pub struct Loaded {
    pub units: Vec<Unit>,
    pub findings: Vec<Finding>,
    pub files: usize,
}

/// Loads every `.yaml`/`.yml` file under each path (directories recursively, sorted by name),
/// taking ConfigMap manifests in the default policy namespace as policy.
pub fn load_policies(paths: &[PathBuf]) -> Result<Loaded, LoadError> {
    load_policies_in(paths, DEFAULT_POLICY_NAMESPACE)
}

/// Like `load_policies`, with the server's rule for ConfigMap manifests: only labelled ones in
/// `policy_namespace` are policy.
pub fn load_policies_in(paths: &[PathBuf], policy_namespace: &str) -> Result<Loaded, LoadError> {
    let mut loaded = Loaded::default();
    for path in paths {
        let files = yaml_files(path)?;
        if files.is_empty() {
            return Err(LoadError::Empty {
                path: path.display().to_string(),
            });
        }
        for file in files {
            let text = read(&file)?;
            let (units, findings) =
                units_from_text(&file.display().to_string(), &text, policy_namespace);
            loaded.units.extend(units);
            loaded.findings.extend(findings);
            loaded.files += 1;
        }
    }
    Ok(loaded)
}

pub fn read(path: &Path) -> Result<String, LoadError> {
    std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.display().to_string(),
        source,
    })
}

pub(crate) fn yaml_files(path: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let err = |source| LoadError::Read {
        path: path.display().to_string(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(err)?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(err)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    let mut files = Vec::new();
    for entry in entries {
        let hidden = entry
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if entry.is_dir() {
            files.extend(yaml_files(&entry)?);
        } else if entry
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e == "yaml" || e == "yml")
        {
            files.push(entry);
        }
    }
    Ok(files)
}
