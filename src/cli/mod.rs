//! Command line: `check`, `audit` and `access` answer offline from the same policy files and the
//! same decision code as the server.

/// Prints to stdout; a closed pipe (`... | head`) ends the program quietly instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::output::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Like `out!` without the newline.
macro_rules! out_raw {
    ($($arg:tt)*) => {
        $crate::cli::output::write_out(format_args!($($arg)*))
    };
}

pub(crate) mod access;
pub mod adopt;
pub(crate) mod audit;
pub(crate) mod audit_live;
pub(crate) mod audit_workload;
pub(crate) mod certs;
pub(crate) mod check;
pub mod homes;
pub(crate) mod kube_client;
pub(crate) mod openshift_groups;
pub(crate) mod output;
pub mod policy_args;
pub(crate) mod serve;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Exit status for bad input (unreadable files, bad flags), distinct from a denial.
pub const EXIT_BAD_INPUT: i32 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "notebook-volumes",
    version,
    about = "Admission webhook that gives Jupyter notebook pods their home, shared data and library volumes"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate policy files or ConfigMap manifests; exit 1 on any error.
    Check {
        /// Files or directories of policy documents or ConfigMap manifests.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        namespace: policy_args::PolicyNamespace,
    },
    /// Show what the webhook would answer for a pod.
    Audit(audit::AuditArgs),
    /// Print who can read or write each share.
    Access(access::AccessArgs),
    /// Mark existing claims as their users' homes (migration); --dry-run prints the plan.
    Adopt(adopt::AdoptArgs),
    /// List home claims with owner, size, last use and whether the owner is still in the policy;
    /// prints (never runs) the kubectl commands for the ones to review.
    Homes(homes::HomesArgs),
    /// Generate a CA and a webhook serving certificate; print the caBundle.
    Certs(certs::CertsArgs),
    /// Run the admission webhook (TLS) and its probe port.
    Serve(serve::ServeArgs),
}

/// Runs a command and returns the process exit status.
pub fn run(cli: Cli) -> i32 {
    let result = match cli.command {
        Command::Check { paths, namespace } => check::run(&paths, &namespace),
        Command::Audit(args) if args.live => audit_live::run(&args),
        Command::Audit(args) => match audit_workload::run_if_workload(&args) {
            Ok(Some(code)) => Ok(code),
            Ok(None) => audit::run(&args),
            Err(e) => Err(e),
        },
        Command::Access(args) => access::run(&args),
        Command::Adopt(args) => adopt::run(&args),
        Command::Homes(args) => homes::run(&args),
        Command::Certs(args) => certs::run(&args),
        Command::Serve(args) => serve::run(args),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            EXIT_BAD_INPUT
        }
    }
}
