//! The one computation of a user's home claim name, shared by injection, the guard and entering.

use super::context::Context;
use super::identity::slug;
use crate::policy::Home;
use crate::policy::home_template::claim_for;

/// The home claim name of a user under a `Home` document.
pub fn home_claim(home: &Home, user: &str) -> String {
    claim_for(&home.claim_name_template, &slug(user))
}

/// The namespace's `Home` document and the user's claim under it, if the namespace has a home.
pub fn own_home<'p>(ctx: Context<'p>, user: Option<&str>) -> Option<(&'p Home, String)> {
    let home = ctx.policy.home_for(ctx.namespace)?;
    Some((home, home_claim(home, user?)))
}
