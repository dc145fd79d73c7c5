//! Inline volumes on provisioned storage. `allowedVolumeTypes` and `allowedCSIDrivers` let pods
//! mount NFS exports, host paths or CSI volumes directly; where a share or library has `storage`,
//! the policy knows exactly where its data lives, so an inline volume reaching it (the export
//! itself, a directory inside it, or a parent of it) would be that data without the claim, the
//! share's access rules and read-only enforcement. Those are denied whatever the share's scope:
//! the files are the same in every namespace.

use k8s_openapi::api::core::v1::Volume;

use crate::policy::{PolicySnapshot, StorageSource};

/// The share or library whose provisioned storage `volume` reaches, as `share 'name'` or
/// `library 'name'`, with its claim. Linear in the path's length times the shares with storage.
pub fn provisioned_reach(policy: &PolicySnapshot, volume: &Volume) -> Option<(String, String)> {
    let shares = policy
        .shares()
        .iter()
        .filter_map(|s| Some(("share", &s.name, &s.claim_name, &s.storage.as_ref()?.source)));
    let libraries = policy.libraries().iter().filter_map(|l| {
        Some((
            "library",
            &l.name,
            &l.claim_name,
            &l.storage.as_ref()?.source,
        ))
    });
    shares
        .chain(libraries)
        .find(|(_, _, _, source)| reaches(volume, source))
        .map(|(kind, name, claim, _)| (format!("{kind} '{name}'"), claim.clone()))
}

/// Whether the inline `volume` can see files of `source`. An NFS export is also reachable
/// through a CSI driver for NFS (`nfs.csi.k8s.io` takes `server` and `share` attributes), and a
/// CSI share on an NFS server through plain NFS: across the two kinds, naming the server is
/// enough, since what the other attributes mean is the driver's business.
fn reaches(volume: &Volume, source: &StorageSource) -> bool {
    let inline_attributes = || {
        volume
            .csi
            .iter()
            .flat_map(|c| c.volume_attributes.iter().flat_map(|a| a.values()))
    };
    match source {
        StorageSource::Class(_) => false,
        StorageSource::Nfs { server, path } => {
            volume
                .nfs
                .as_ref()
                .is_some_and(|nfs| same_host(&nfs.server, server) && paths_overlap(&nfs.path, path))
                || inline_attributes().any(|value| same_host(value, server))
        }
        StorageSource::HostPath(path) => volume
            .host_path
            .as_ref()
            .is_some_and(|h| paths_overlap(&h.path, path)),
        // An inline CSI volume is described by driver-specific attributes that cannot be
        // compared with a volume handle: the driver serving a share is enough.
        StorageSource::Csi {
            driver,
            volume_attributes,
            ..
        } => {
            volume
                .csi
                .as_ref()
                .is_some_and(|c| c.driver.eq_ignore_ascii_case(driver))
                || volume.nfs.as_ref().is_some_and(|nfs| {
                    volume_attributes
                        .values()
                        .any(|value| same_host(&nfs.server, value))
                })
        }
    }
}

/// Host names compare without case, a final dot, or IPv6 brackets. (A name and an address of
/// one server cannot be told apart without DNS: docs/security.md says so.)
fn same_host(a: &str, b: &str) -> bool {
    let bare = |h: &str| {
        h.trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .trim_end_matches('.')
            .to_ascii_lowercase()
    };
    bare(a) == bare(b)
}

/// Whether one path is the other, or inside it, after the lexical clean-up a server does
/// (repeated and trailing slashes, `.`, `..`). A relative path is taken from the root.
pub fn paths_overlap(a: &str, b: &str) -> bool {
    let (a, b) = (components(a), components(b));
    let shorter = a.len().min(b.len());
    a[..shorter] == b[..shorter]
}

fn components(path: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_overlap_when_one_holds_the_other() {
        for (a, b) in [
            ("/exports/a", "/exports/a"),
            ("/exports/a/", "/exports/a"),
            ("/exports", "/exports/a"),
            ("/", "/exports/a"),
            ("/exports/a/b/c", "/exports/a"),
            ("//exports/./b/../a", "/exports/a"),
            ("/../exports/a", "/exports/a"),
            ("exports/a", "/exports/a"),
        ] {
            assert!(paths_overlap(a, b), "{a} {b}");
            assert!(paths_overlap(b, a), "{b} {a}");
        }
        for (a, b) in [
            ("/exports/ab", "/exports/a"),
            ("/exports/b", "/exports/a"),
            ("/srv", "/exports/a"),
        ] {
            assert!(!paths_overlap(a, b), "{a} {b}");
        }
    }

    #[test]
    fn hosts_compare_without_case_final_dot_or_brackets() {
        assert!(same_host("NFS.example.org.", "nfs.example.org"));
        assert!(same_host("[fd00::4]", "fd00::4"));
        assert!(!same_host("nfs2.example.org", "nfs.example.org"));
    }
}
