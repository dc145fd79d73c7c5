//! The one computation of a user's home claim name, shared by injection, the guard and entering.

use super::identity::slug;
use crate::policy::Home;
use crate::policy::home_template::claim_for;

/// The home claim name of a user under a `Home` document.
pub fn home_claim(home: &Home, user: &str) -> String {
    claim_for(&home.claim_name_template, &slug(user))
}
