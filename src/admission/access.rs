//! What a subject may do with a share (docs/design.md, "Access"), and the no-write-down rule for secret data.

use std::fmt;

use super::identity::Subject;
use crate::policy::{Level, Share};

/// Ordered from least to most: `min` of two accesses is the safer one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Access {
    None,
    Ro,
    Rw,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Access::None => "-",
            Access::Ro => "ro",
            Access::Rw => "rw",
        }
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Entitlement of a subject on a share: writers write, readers (or everyone, for public) read.
pub fn share_access(share: &Share, subject: &Subject) -> Access {
    let user = subject.user.as_deref();
    if share.writers.contains(user, &subject.groups) {
        return Access::Rw;
    }
    match share.level {
        Level::Public => Access::Ro,
        Level::Private | Level::Secret => {
            if share.readers.contains(user, &subject.groups) {
                Access::Ro
            } else {
                Access::None
            }
        }
    }
}

/// Access inside a pod: once secret data is mounted, public and private shares turn read-only so
/// that secret data cannot be copied into a less protected share.
pub fn effective_access(share: &Share, subject: &Subject, secret_in_pod: bool) -> Access {
    let access = share_access(share, subject);
    if secret_in_pod && share.level != Level::Secret {
        access.min(Access::Ro)
    } else {
        access
    }
}
