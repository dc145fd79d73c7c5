//! Inline volumes on provisioned storage. `allowedVolumeTypes` and `allowedCSIDrivers` let pods
//! mount NFS exports, host paths or CSI volumes directly; where a share or library has `storage`,
//! the policy knows exactly where its data lives, so an inline volume reaching it (the export
//! itself, a directory inside it, or a parent of it) would be that data without the claim, the
//! share's access rules and read-only enforcement. Those are denied whatever the share's scope:
//! the files are the same in every namespace.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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
/// through a CSI driver for NFS (`nfs.csi.k8s.io` takes `server` and `share` attributes), a CSI
/// share through another driver for the same server, and a CSI share on an NFS server through
/// plain NFS: across kinds and drivers, naming the server is enough, since what the other
/// attributes mean is the driver's business.
fn reaches(volume: &Volume, source: &StorageSource) -> bool {
    let inline_hosts = || {
        volume
            .csi
            .iter()
            .flat_map(|c| c.volume_attributes.iter().flat_map(|a| a.values()))
            .flat_map(|value| hosts_in(value))
    };
    let nfs_host = volume.nfs.as_ref().and_then(|nfs| host_of(&nfs.server));
    match source {
        StorageSource::Class(_) => false,
        StorageSource::Nfs { server, path } => {
            let Some(server) = host_of(server) else {
                return false;
            };
            volume.nfs.as_ref().is_some_and(|nfs| {
                nfs_host
                    .as_ref()
                    .is_some_and(|h| h.same_server(&server, true))
                    && export_reached(&nfs.path, path)
            }) || inline_hosts().any(|h| h.same_server(&server, false))
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
            let same_driver = volume
                .csi
                .as_ref()
                .is_some_and(|c| c.driver.eq_ignore_ascii_case(driver));
            // Attribute values that name a host in so many words (a dot or a colon): a CSI
            // share's `fsName: lab` or `mountPermissions: "0777"` are not servers.
            let servers: Vec<Host> = volume_attributes
                .values()
                .filter(|v| v.contains(['.', ':']))
                .flat_map(|v| hosts_in(v))
                .collect();
            let all: Vec<Host> = volume_attributes
                .values()
                .flat_map(|v| hosts_in(v))
                .collect();
            same_driver
                || inline_hosts().any(|h| servers.iter().any(|s| h.same_server(s, false)))
                // Any value naming the NFS server exactly; a short name only for a host.
                || nfs_host.as_ref().is_some_and(|h| {
                    all.contains(h) || servers.iter().any(|s| h.same_server(s, true))
                })
        }
    }
}

/// A server as a mount would reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Host {
    Ip(IpAddr),
    Name(String),
}

impl Host {
    /// The same server, as far as can be told without DNS. With `short_names` (two fields that
    /// are certainly host names), a name also matches its first labels (`nfs` is
    /// `nfs.example.org` under a search domain).
    fn same_server(&self, other: &Host, short_names: bool) -> bool {
        match (self, other) {
            (Host::Name(a), Host::Name(b)) if short_names => {
                let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
                long.strip_prefix(short.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
            }
            _ => self == other,
        }
    }
}

/// Every host an attribute value names: drivers take lists (`mon1:6789,mon2:6789`) and may try
/// each, so every item counts, not only the first.
fn hosts_in(value: &str) -> impl Iterator<Item = Host> + '_ {
    value.split([',', ';', ' ']).filter_map(host_of)
}

/// The host a server field or attribute value names, the way mount helpers read it: after a
/// scheme (`nfs://`), `//` or `\\` (SMB), and user info (`user@`); before a path, a port, or a
/// comma (`mount.nfs` takes the first of `a,b`); without IPv6 brackets or zone, case, or a final
/// dot. Addresses are compared as numbers, in every form the resolver accepts (`10.1`,
/// `0x0a000001`, `012.0.0.1`, `::ffff:10.0.0.1` are 10.0.0.1). `None` for a value that is a path
/// or empty. Linear in the value's length.
fn host_of(value: &str) -> Option<Host> {
    let mut v = value.trim();
    if let Some((scheme, rest)) = v.split_once("://")
        && !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        v = rest;
    } else if let Some(rest) = v.strip_prefix("//").or_else(|| v.strip_prefix("\\\\")) {
        v = rest;
    }
    let authority = v.split(['/', '\\']).next().unwrap_or_default();
    let authority = authority.rsplit('@').next().unwrap_or_default();
    let authority = authority.split(',').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(inner) => inner.split(']').next().unwrap_or_default(),
        // Two colons or more: an IPv6 address without brackets; one: a port or `:path`.
        None if authority.matches(':').count() > 1 => authority,
        None => authority.split(':').next().unwrap_or_default(),
    };
    let host = host.split('%').next().unwrap_or_default();
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.is_empty() {
        return None;
    }
    if let Some(v4) = inet_aton(&host) {
        return Some(Host::Ip(IpAddr::V4(v4)));
    }
    if let Ok(v6) = host.parse::<Ipv6Addr>() {
        return Some(Host::Ip(
            v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        ));
    }
    Some(Host::Name(host))
}

/// An IPv4 address in the forms `inet_aton` (and so the resolver behind a mount) accepts: one
/// to four parts, each decimal, octal (`0` prefix) or hexadecimal (`0x`), the last filling the
/// bytes left.
fn inet_aton(s: &str) -> Option<Ipv4Addr> {
    let mut parts = [0u32; 4];
    let mut count = 0;
    for part in s.split('.') {
        *parts.get_mut(count)? = c_number(part)?;
        count += 1;
    }
    let (last, head) = parts.get(..count)?.split_last()?;
    let mut address = 0u32;
    for (i, byte) in head.iter().enumerate() {
        if *byte > 255 {
            return None;
        }
        address |= byte << (24 - 8 * i);
    }
    let rest_bits = 32 - 8 * head.len();
    if rest_bits < 32 && *last >= 1 << rest_bits {
        return None;
    }
    Some(Ipv4Addr::from(address | last))
}

fn c_number(part: &str) -> Option<u32> {
    let (digits, radix) =
        if let Some(hex) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
            (hex, 16)
        } else if part.len() > 1
            && let Some(octal) = part.strip_prefix('0')
        {
            (octal, 8)
        } else {
            (part, 10)
        };
    if part.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    if digits.is_empty() {
        return Some(0);
    }
    u32::from_str_radix(digits, radix).ok()
}

/// Whether one path is the other, or inside it, after the clean-up a server does (repeated and
/// trailing slashes, `.`). A `..` after a directory name may climb out of a symbolic link
/// anywhere (`/var/run/..` is `/`, not `/var`): such a path is taken to overlap everything. A
/// relative path is taken from the root.
pub fn paths_overlap(a: &str, b: &str) -> bool {
    let (Some(a), Some(b)) = (components(a), components(b)) else {
        return true;
    };
    let shorter = a.len().min(b.len());
    a[..shorter] == b[..shorter]
}

/// Whether an NFS mount of `inline` can reach `export` on the same server. Besides the paths
/// overlapping, an NFSv4 server with a pseudo-root (`fsid=0` on `/exports`) serves
/// `/exports/archive` as `/archive`: a path overlapping any tail of the export's names may be it.
/// Names compare without ASCII case, as some servers (Windows) export them. Quadratic in the
/// export's names only (the policy's path); linear in the inline path.
fn export_reached(inline: &str, export: &str) -> bool {
    let (Some(inline), Some(export)) = (components(inline), components(export)) else {
        return true;
    };
    let overlap = |tail: &[&str]| {
        inline
            .iter()
            .zip(tail)
            .all(|(a, b)| a.eq_ignore_ascii_case(b))
    };
    export.is_empty() || (0..export.len()).any(|k| export.get(k..).is_some_and(overlap))
}

/// The path's names, or `None` when a `..` follows one.
fn components(path: &str) -> Option<Vec<&str>> {
    let mut out = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            // `..` at the root is the root.
            ".." if out.is_empty() => {}
            ".." => return None,
            other => out.push(other),
        }
    }
    Some(out)
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
            // A climb out of a directory may be anywhere: /var/run is a link to /run on most
            // hosts, so /var/run/../srv is /srv.
            ("/var/run/../srv/apps", "/srv/apps"),
            ("/srv/apps", "/exports/l/../../x"),
        ] {
            assert!(paths_overlap(a, b), "{a} {b}");
            assert!(paths_overlap(b, a), "{b} {a}");
        }
        for (a, b) in [
            ("/exports/ab", "/exports/a"),
            ("/exports/b", "/exports/a"),
            ("/srv", "/exports/a"),
            // At the root, `..` stays there.
            ("/../srv/other", "/srv/apps"),
        ] {
            assert!(!paths_overlap(a, b), "{a} {b}");
        }
    }

    #[test]
    fn an_export_is_reached_under_any_nfs4_pseudo_root() {
        for inline in [
            "/exports/archive",
            "/archive",
            "/archive/2024",
            "/",
            "/exports",
            "/Exports/ARCHIVE",
        ] {
            assert!(export_reached(inline, "/exports/archive"), "{inline}");
        }
        for inline in ["/exports/other", "/other", "/exports/archive-old", "/2024"] {
            assert!(!export_reached(inline, "/exports/archive"), "{inline}");
        }
        assert!(export_reached("/anything", "/"));
    }

    #[test]
    fn hosts_compare_as_a_mount_reads_them() {
        let host = |v: &str| host_of(v).unwrap_or_else(|| panic!("{v}"));
        let spellings: [(&str, &[&str]); 3] = [
            (
                "nfs.example.org",
                &[
                    "NFS.example.org.",
                    " nfs.example.org ",
                    "nfs.example.org,decoy.example.org",
                    "nfs.example.org:/exports",
                    "nfs.example.org:2049",
                    "//nfs.example.org/share",
                    "\\\\nfs.example.org\\share",
                    "nfs://nfs.example.org/exports",
                    "smb://user@nfs.example.org/share",
                ],
            ),
            (
                "10.0.0.7",
                &[
                    "167772167",
                    "0x0a000007",
                    "0XA.0.0.7",
                    "10.7",
                    "10.0.7",
                    "012.0.0.07",
                    "::ffff:10.0.0.7",
                    "[::ffff:a00:7]:/exports",
                    "10.0.0.7.",
                ],
            ),
            (
                "fd00::7",
                &["[FD00::0007]", "fd00:0:0:0:0:0:0:7", "[fd00::7%eth0]:/x"],
            ),
        ];
        for (canonical, same) in &spellings {
            for s in *same {
                assert_eq!(host(s), host(canonical), "{s}");
            }
        }
        for other in [
            "nfs2.example.org",
            "10.0.0.8",
            "0x0a000008",
            "fd00::8",
            "10.256",
        ] {
            assert!(
                spellings.iter().all(|(c, _)| host(other) != host(c)),
                "{other}"
            );
        }
        for none in ["", "  ", "/vol/files", "[]"] {
            assert_eq!(host_of(none), None, "{none}");
        }
        // Bytes past their part, or five parts, are not an address.
        for not_address in ["10.0.0.256", "1.2.3.4.5", "10.0x1000000", "08.0.0.1"] {
            assert!(matches!(host(not_address), Host::Name(_)), "{not_address}");
        }
    }

    #[test]
    fn every_host_of_an_attribute_list_counts() {
        let hosts: Vec<Host> =
            hosts_in("decoy.example.org:6789, nfs.example.org:6789;10.7").collect();
        assert_eq!(
            hosts,
            [
                Host::Name("decoy.example.org".into()),
                Host::Name("nfs.example.org".into()),
                Host::Ip(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7))),
            ]
        );
    }

    #[test]
    fn a_short_name_is_its_server_only_between_host_fields() {
        let host = |v: &str| host_of(v).unwrap_or_else(|| panic!("{v}"));
        let full = host("nfs.example.org");
        assert!(host("nfs").same_server(&full, true));
        assert!(host("nfs.example").same_server(&full, true));
        assert!(!host("nfs").same_server(&full, false));
        assert!(!host("nfs.exam").same_server(&full, true));
        assert!(!host("nfs2").same_server(&full, true));
    }
}
