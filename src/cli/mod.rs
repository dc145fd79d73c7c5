//! Command line: `check`, `audit` and `access` answer offline from the same policy files and the
//! same decision code as the server.

/// Prints to stdout; a closed pipe (`... | head`) ends the program quietly instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Like `out!` without the newline.
macro_rules! out_raw {
    ($($arg:tt)*) => {
        $crate::cli::write_out(format_args!($($arg)*))
    };
}

pub mod access;
pub mod audit;
pub mod audit_workload;
pub mod check;
pub mod serve;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Writes to stdout, exiting quietly when the reader has gone away.
pub fn write_out(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_fmt(args)
        .and_then(|()| stdout.flush())
        .is_err()
    {
        std::process::exit(0);
    }
}

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
        namespace: PolicyNamespace,
    },
    /// Show what the webhook would answer for a pod.
    Audit(audit::AuditArgs),
    /// Print who can read or write each share.
    Access(access::AccessArgs),
    /// Generate a CA and a webhook serving certificate; print the caBundle.
    Certs(crate::certs::CertsArgs),
    /// Run the admission webhook (TLS) and its probe port.
    Serve(serve::ServeArgs),
}

/// Which ConfigMap manifests are policy: as the server reads them, labelled ones in this namespace.
#[derive(Debug, Clone, clap::Args)]
pub struct PolicyNamespace {
    /// Namespace whose labelled ConfigMaps are policy; manifests in other namespaces are skipped,
    /// manifests without a namespace count as in this one.
    #[arg(long = "policy-namespace", default_value = crate::policy::DEFAULT_POLICY_NAMESPACE)]
    pub policy_namespace: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuditOutput {
    Text,
    Json,
    Patch,
    Pod,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AccessOutput {
    Table,
    Csv,
    Json,
}

/// Parses `k=v,k2=v2` (used for namespace labels).
pub fn parse_labels(s: &str) -> Result<Vec<(String, String)>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                Ok((k.trim().to_string(), v.trim().to_string()))
            }
            _ => Err(format!("'{pair}' is not key=value")),
        })
        .collect()
}

/// The namespace as `--namespace` and `--namespace-labels` describe it.
pub fn namespace_info(
    name: &str,
    labels: &Option<Vec<(String, String)>>,
) -> crate::policy::NamespaceInfo {
    crate::policy::NamespaceInfo {
        name: name.to_string(),
        labels: labels.iter().flatten().cloned().collect(),
    }
}

/// Loads and compiles policy paths, printing on stderr the ConfigMaps skipped, the errors, and
/// what rejected units keep protected (rejected units are absent and their claims protected, as
/// in the server).
pub fn load_snapshot(
    paths: &[PathBuf],
    namespace: &PolicyNamespace,
) -> Result<crate::policy::PolicySnapshot, String> {
    let loaded = crate::files::load_policies_in(paths, &namespace.policy_namespace)
        .map_err(|e| e.to_string())?;
    let policy = crate::policy::PolicySnapshot::compile(&loaded.units);
    let errors = policy
        .findings()
        .filter(|f| f.severity == crate::policy::Severity::Error);
    for f in loaded.findings.iter().chain(errors) {
        eprintln!("{f}");
    }
    for line in protected_lines(&policy) {
        eprintln!("{line}");
    }
    Ok(policy)
}

/// One line per rejected unit: the claims and home claims it keeps protected until it is fixed.
pub fn protected_lines(policy: &crate::policy::PolicySnapshot) -> Vec<String> {
    policy
        .rejected_protection()
        .iter()
        .map(|(unit, p)| {
            let mut what = Vec::new();
            if !p.claims.is_empty() {
                let claims: Vec<&str> = p.claims.iter().map(String::as_str).collect();
                what.push(format!("claims {}", claims.join(", ")));
            }
            if !p.home_templates.is_empty() {
                let templates: Vec<&str> = p.home_templates.iter().map(String::as_str).collect();
                what.push(format!("home claims of {}", templates.join(", ")));
            }
            if what.is_empty() {
                format!("rejected {unit}: names no claim that could be protected")
            } else {
                format!(
                    "rejected {unit}: protected until it is fixed (every pod that references them is denied): {}",
                    what.join("; ")
                )
            }
        })
        .collect()
}

/// Runs a command and returns the process exit status.
pub fn run(cli: Cli) -> i32 {
    let result = match cli.command {
        Command::Check { paths, namespace } => check::run(&paths, &namespace),
        Command::Audit(args) => audit::run(&args),
        Command::Access(args) => access::run(&args),
        Command::Certs(args) => crate::certs::run(&args),
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
