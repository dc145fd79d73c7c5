//! Syntax rules for the values in policy documents: Kubernetes names, paths, quantities.

/// DNS-1123 label: what Kubernetes requires of namespace and volume names.
pub fn dns1123_label(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    ok.then_some(()).ok_or_else(|| format!(
        "'{s}' is not a DNS-1123 label (lowercase letters, digits and '-', starting and ending alphanumeric, at most 63 characters)"
    ))
}

/// DNS-1123 subdomain: what Kubernetes requires of PVC and storage class names.
pub fn dns1123_subdomain(s: &str) -> Result<(), String> {
    let ok =
        !s.is_empty() && s.len() <= 253 && s.split('.').all(|part| dns1123_label(part).is_ok());
    ok.then_some(()).ok_or_else(|| format!(
        "'{s}' is not a DNS-1123 subdomain (lowercase alphanumeric labels separated by '.', at most 253 characters)"
    ))
}

/// An absolute, normalised path other than `/`.
pub fn absolute_path(s: &str) -> Result<(), String> {
    if !s.starts_with('/') {
        return Err(format!("'{s}' must be an absolute path"));
    }
    if s == "/" {
        return Err("mounting over '/' would hide the image's file system".into());
    }
    if s.ends_with('/')
        || s[1..]
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..")
    {
        return Err(format!(
            "'{s}' is not normalised (no empty, '.' or '..' segments, no trailing '/')"
        ));
    }
    Ok(())
}

/// A relative, normalised path that cannot climb out of the volume.
pub fn relative_path(s: &str) -> Result<(), String> {
    if s.starts_with('/') {
        return Err(format!("'{s}' must be relative to the volume root"));
    }
    if s.split('/').any(|p| p.is_empty() || p == "." || p == "..") {
        return Err(format!(
            "'{s}' is not normalised (no empty, '.' or '..' segments, no trailing '/')"
        ));
    }
    Ok(())
}

/// True when `inner` equals `outer` or lies below it.
pub fn path_within(inner: &str, outer: &str) -> bool {
    inner == outer || (inner.starts_with(outer) && inner.as_bytes().get(outer.len()) == Some(&b'/'))
}

/// True when one path equals the other or lies below it: mounting both would hide one of them.
pub fn paths_overlap(a: &str, b: &str) -> bool {
    path_within(a, b) || path_within(b, a)
}

/// A Kubernetes resource quantity such as `2Gi`, `500M` or `1.5e3`.
pub fn quantity(s: &str) -> Result<(), String> {
    let body = s.strip_prefix('+').unwrap_or(s);
    let digits_end = body
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(body.len());
    let (number, suffix) = body.split_at(digits_end);
    let number_ok = !number.is_empty()
        && number.matches('.').count() <= 1
        && number.chars().any(|c| c.is_ascii_digit());
    let suffix_ok = matches!(
        suffix,
        "" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" | "k" | "M" | "G" | "T" | "P" | "E"
    ) || suffix.strip_prefix(['e', 'E']).is_some_and(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && e.chars().all(|c| c.is_ascii_digit())
    });
    if number_ok && suffix_ok {
        Ok(())
    } else {
        Err(format!(
            "'{s}' is not a quantity (for example 2Gi, 500Mi, 10G)"
        ))
    }
}

/// An annotation or label key: optional DNS-subdomain prefix and a name of at most 63 characters.
pub fn qualified_key(s: &str) -> Result<(), String> {
    let (prefix, name) = match s.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric();
    if name_ok && prefix.is_none_or(|p| dns1123_subdomain(p).is_ok()) {
        Ok(())
    } else {
        Err(format!("'{s}' is not a valid annotation key"))
    }
}

/// A container environment variable name.
pub fn env_name(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && !s.as_bytes()[0].is_ascii_digit();
    if ok {
        Ok(())
    } else {
        Err(format!("'{s}' is not a valid environment variable name"))
    }
}

pub const ACCESS_MODES: &[&str] = &[
    "ReadWriteOnce",
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOncePod",
];

/// Pod volume types other than `persistentVolumeClaim` and `ephemeral` (which the guard checks
/// claim by claim). The first group reaches no shared storage and is always allowed; the rest
/// can reach a share's backing storage directly and are denied unless `allowedVolumeTypes` lists
/// them (`csi` inline volumes are allowed per driver through `allowedCSIDrivers`).
pub const SAFE_VOLUME_TYPES: &[&str] = &[
    "configMap",
    "secret",
    "downwardAPI",
    "emptyDir",
    "projected",
    "image",
];

/// Every inline volume type the pod API has that `allowedVolumeTypes` may name.
pub const INLINE_VOLUME_TYPES: &[&str] = &[
    "awsElasticBlockStore",
    "azureDisk",
    "azureFile",
    "cephfs",
    "cinder",
    "fc",
    "flexVolume",
    "flocker",
    "gcePersistentDisk",
    "gitRepo",
    "glusterfs",
    "hostPath",
    "iscsi",
    "nfs",
    "photonPersistentDisk",
    "portworxVolume",
    "quobyte",
    "rbd",
    "scaleIO",
    "storageos",
    "vsphereVolume",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_dns1123() {
        assert!(dns1123_label("finance-2").is_ok());
        assert!(dns1123_label("Finance").is_err());
        assert!(dns1123_label("-x").is_err());
        assert!(dns1123_label(&"a".repeat(64)).is_err());
        assert!(dns1123_subdomain("claim.home-1").is_ok());
        assert!(dns1123_subdomain("claim..x").is_err());
    }

    #[test]
    fn paths_must_be_absolute_and_normalised() {
        assert!(absolute_path("/opt/apps").is_ok());
        for bad in ["opt", "/", "/opt/", "/opt//x", "/opt/./x", "/opt/../etc"] {
            assert!(absolute_path(bad).is_err(), "{bad}");
        }
        assert!(relative_path("team/a").is_ok());
        for bad in ["/a", "../a", "a/../../b", "a/", ""] {
            assert!(relative_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn nesting_is_by_whole_segments() {
        assert!(path_within("/a/b", "/a"));
        assert!(path_within("/a", "/a"));
        assert!(!path_within("/ab", "/a"));
    }

    #[test]
    fn quantities_accept_kubernetes_forms() {
        for good in ["2Gi", "500M", "1.5Gi", "100", "1e3", "+1Ti"] {
            assert!(quantity(good).is_ok(), "{good}");
        }
        for bad in ["2GB", "Gi", "two", "1.2.3Gi", ""] {
            assert!(quantity(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn annotation_keys_and_env_names() {
        assert!(qualified_key("hub.jupyter.org/username").is_ok());
        assert!(qualified_key("bad key").is_err());
        assert!(env_name("LMOD_CMD").is_ok());
        assert!(env_name("A=B").is_err());
        assert!(env_name("1A").is_err());
    }
}
