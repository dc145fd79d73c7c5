//! Tests of the pure core and the offline CLI: every rule of the design has a test named after it.

mod attacks;
mod claims;
mod cli;
mod fixtures;
mod guard_paths;
mod home_levels;
mod home_sizes;
mod match_conditions;
mod notices;
mod openshift_groups;
mod properties;
mod provision;
mod rules;
mod stamps;
mod validation;
