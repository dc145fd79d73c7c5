//! `storage` of a Share or Library: the volume notebook-volumes provisions the claim from. Every
//! field is bounded here, because the reconciler writes it into PersistentVolumes and claims.

use super::document::StorageDoc;
use super::model::{Storage, StorageSource};
use super::quantity;
use super::rules;

/// Modes a provisioned claim may request: notebooks on many nodes mount it.
pub const STORAGE_ACCESS_MODES: &[&str] = &["ReadWriteMany", "ReadOnlyMany"];
/// A static volume's capacity when `size` is not given (NFS and most CSI drivers do not
/// enforce it; the claim's request must only not exceed it).
pub const DEFAULT_STATIC_SIZE: &str = "1Gi";
/// Longest NFS export path or host path (Linux `PATH_MAX`).
pub const MAX_PATH: usize = 4096;
/// Longest CSI volume handle; drivers use ids and URLs far shorter.
pub const MAX_VOLUME_HANDLE: usize = 1024;
/// Most CSI volume attributes, and their longest key and value.
pub const MAX_ATTRIBUTES: usize = 32;
pub const MAX_ATTRIBUTE_KEY: usize = 253;
pub const MAX_ATTRIBUTE_VALUE: usize = 1024;
/// CSI driver names are DNS-1123 subdomains of at most 63 characters.
const MAX_DRIVER: usize = 63;

/// Checks `d`, reporting each finding as (field, message) to `error`.
pub(super) fn storage(d: &StorageDoc, error: &mut dyn FnMut(&str, String)) -> Storage {
    let mut c = Sink(error);
    let mut sources: Vec<StorageSource> = Vec::new();
    if let Some(class) = &d.storage_class_name {
        c.rule("storage.storageClassName", rules::dns1123_subdomain(class));
        sources.push(StorageSource::Class(class.clone()));
    }
    if let Some(nfs) = &d.nfs {
        c.rule("storage.nfs.server", nfs_server(&nfs.server));
        c.rule("storage.nfs.path", export_path(&nfs.path));
        sources.push(StorageSource::Nfs {
            server: nfs.server.clone(),
            path: nfs.path.clone(),
        });
    }
    if let Some(csi) = &d.csi {
        c.rule("storage.csi.driver", csi_driver(&csi.driver));
        c.rule(
            "storage.csi.volumeHandle",
            bounded_text(&csi.volume_handle, MAX_VOLUME_HANDLE),
        );
        if csi.volume_attributes.len() > MAX_ATTRIBUTES {
            c.error(
                "storage.csi.volumeAttributes",
                format!("at most {MAX_ATTRIBUTES} attributes"),
            );
        }
        for (key, value) in &csi.volume_attributes {
            let field = format!("storage.csi.volumeAttributes.{key}");
            c.rule(&field, bounded_text(key, MAX_ATTRIBUTE_KEY));
            if value.len() > MAX_ATTRIBUTE_VALUE || value.chars().any(char::is_control) {
                c.error(
                    &field,
                    format!("the value must be at most {MAX_ATTRIBUTE_VALUE} bytes without control characters"),
                );
            }
        }
        sources.push(StorageSource::Csi {
            driver: csi.driver.clone(),
            volume_handle: csi.volume_handle.clone(),
            volume_attributes: csi.volume_attributes.clone(),
        });
    }
    if let Some(host) = &d.host_path {
        c.rule("storage.hostPath.path", export_path(&host.path));
        sources.push(StorageSource::HostPath(host.path.clone()));
    }
    if sources.len() != 1 {
        c.error(
            "storage",
            "set exactly one of storageClassName (a volume per namespace), nfs, csi or hostPath (one volume every namespace shares)",
        );
    }
    let source = sources
        .into_iter()
        .next()
        .unwrap_or_else(|| StorageSource::Class(String::new()));
    let size = match (&d.size, source.is_static()) {
        (Some(size), _) => {
            c.rule("storage.size", positive_quantity(size));
            size.clone()
        }
        (None, true) => DEFAULT_STATIC_SIZE.to_string(),
        (None, false) => {
            c.error(
                "storage.size",
                "a claim from a StorageClass needs a size (for example 100Gi)",
            );
            String::new()
        }
    };
    let access_mode = d
        .access_mode
        .clone()
        .unwrap_or_else(|| STORAGE_ACCESS_MODES[0].to_string());
    if !STORAGE_ACCESS_MODES.contains(&access_mode.as_str()) {
        c.error(
            "storage.accessMode",
            format!(
                "'{access_mode}' is not one of {}: notebooks on different nodes share the claim",
                STORAGE_ACCESS_MODES.join(", ")
            ),
        );
    }
    Storage {
        size,
        access_mode,
        source,
    }
}

/// Findings of `storage`, in the Checker's shape.
struct Sink<'a>(&'a mut dyn FnMut(&str, String));

impl Sink<'_> {
    fn rule(&mut self, field: &str, result: Result<(), String>) {
        if let Err(message) = result {
            (self.0)(field, message);
        }
    }

    fn error(&mut self, field: &str, message: impl Into<String>) {
        (self.0)(field, message.into());
    }
}

fn positive_quantity(s: &str) -> Result<(), String> {
    rules::quantity(s)?;
    match quantity::bytes(s) {
        Some(b) if b >= 1.0 => Ok(()),
        _ => Err(format!("'{s}' must be at least one byte")),
    }
}

/// A host name (DNS-1123 subdomain, any case), an IPv4 address or an IPv6 address.
pub fn nfs_server(s: &str) -> Result<(), String> {
    if s.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    rules::dns1123_subdomain(&s.to_ascii_lowercase())
        .map_err(|_| format!("'{s}' is not a host name or an IP address"))
}

/// An absolute, normalised path on the server (`/` allowed: an NFSv4 pseudo-root).
pub fn export_path(s: &str) -> Result<(), String> {
    if s.len() > MAX_PATH {
        return Err(format!("at most {MAX_PATH} bytes"));
    }
    if s.chars().any(char::is_control) {
        return Err("no control characters".into());
    }
    if s == "/" {
        return Ok(());
    }
    rules::absolute_path(s)
}

fn csi_driver(s: &str) -> Result<(), String> {
    if s.len() > MAX_DRIVER {
        return Err(format!(
            "a CSI driver name has at most {MAX_DRIVER} characters"
        ));
    }
    rules::dns1123_subdomain(&s.to_ascii_lowercase())
}

fn bounded_text(s: &str, max: usize) -> Result<(), String> {
    if s.is_empty() || s.len() > max || s.chars().any(char::is_control) {
        Err(format!(
            "must be 1 to {max} bytes without control characters"
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_are_host_names_or_addresses() {
        for ok in [
            "nfs.example.org",
            "NFS-1.Example.org",
            "10.0.0.4",
            "fd00::4",
        ] {
            assert_eq!(nfs_server(ok), Ok(()), "{ok}");
        }
        for bad in ["", "nfs server", "nfs;rm", "-nfs", "a/b", &"a".repeat(254)] {
            assert!(nfs_server(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn export_paths_are_absolute_normalised_and_capped() {
        assert_eq!(export_path("/"), Ok(()));
        assert_eq!(export_path("/exports/finance"), Ok(()));
        for bad in ["exports", "/a/../b", "/a/", "/a\nb"] {
            assert!(export_path(bad).is_err(), "{bad:?}");
        }
        assert!(export_path(&format!("/{}", "a".repeat(MAX_PATH))).is_err());
    }
}
