//! Where a policy document came from, so every finding can name the file or ConfigMap, the key and
//! the line a platform engineer has to fix.

use std::fmt;

/// A piece of policy text: one file of documents, or one data key of a ConfigMap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// What is accepted or rejected as a whole: `ConfigMap <ns>/<name>` or a file path.
    pub unit: String,
    /// The ConfigMap data key holding the text, when it came from a ConfigMap.
    pub key: Option<String>,
    /// The file the text was read from and the file line just before its first line.
    pub file: Option<(String, usize)>,
}

impl Origin {
    pub fn file(path: impl Into<String>) -> Self {
        let path = path.into();
        Origin {
            unit: path.clone(),
            key: None,
            file: Some((path, 0)),
        }
    }

    pub fn config_map(namespace: &str, name: &str, key: &str) -> Self {
        Origin {
            unit: config_map_unit(namespace, name),
            key: Some(key.to_string()),
            file: None,
        }
    }

    /// Human-readable position of `line` (1-based, within this text).
    pub fn at(&self, line: usize) -> String {
        match (&self.file, &self.key) {
            (Some((path, offset)), None) => format!("{path}:{}", offset + line),
            (Some((path, offset)), Some(key)) => format!(
                "{path}:{} ({}, key {key}, line {line})",
                offset + line,
                self.unit
            ),
            (None, Some(key)) => format!("{}, key {key}, line {line}", self.unit),
            (None, None) => format!("{}, line {line}", self.unit),
        }
    }
}

pub fn config_map_unit(namespace: &str, name: &str) -> String {
    format!("ConfigMap {namespace}/{name}")
}

/// How serious a finding is: errors reject the whole unit, warnings only inform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

/// One problem found in the policy, pinned to its origin, line and field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub origin: Origin,
    pub line: usize,
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{}: {level}", self.origin.at(self.line))?;
        if let Some(field) = &self.field {
            write!(f, ": field '{field}'")?;
        }
        write!(f, ": {}", self.message)
    }
}
