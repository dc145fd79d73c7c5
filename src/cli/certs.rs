//! `notebook-volumes certs`: the flags, the files written and the caBundle printed; the
//! certificates themselves come from the `certs` library.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::Args;

use crate::certs::{CertRequest, DEFAULT_DAYS, generate};

/// `notebook-volumes certs`: writes `ca.crt`, `tls.crt`, `tls.key` and prints the `caBundle`.
#[derive(Debug, Args)]
pub struct CertsArgs {
    /// Directory to write ca.crt, tls.crt and tls.key into (created if missing).
    #[arg(long, default_value = "certs")]
    pub out_dir: PathBuf,
    /// DNS name for the serving certificate (repeatable or comma-separated; replaces the defaults
    /// notebook-volumes.notebook-volumes.svc, notebook-volumes.notebook-volumes.svc.cluster.local,
    /// localhost).
    #[arg(long = "dns", value_delimiter = ',')]
    pub dns_names: Vec<String>,
    /// IP address for the serving certificate (repeatable or comma-separated; replaces the default
    /// 127.0.0.1).
    #[arg(long = "ip", value_delimiter = ',')]
    pub ip_addresses: Vec<IpAddr>,
    /// Lifetime of the CA and the serving certificate, in days.
    #[arg(long, default_value_t = DEFAULT_DAYS)]
    pub days: u32,
    /// Overwrite existing files in the output directory.
    #[arg(long)]
    pub force: bool,
}

impl CertsArgs {
    /// The request these flags describe (defaults for names not given).
    pub fn request(&self) -> CertRequest {
        let defaults = CertRequest::default();
        CertRequest {
            dns_names: if self.dns_names.is_empty() {
                defaults.dns_names
            } else {
                self.dns_names.clone()
            },
            ip_addresses: if self.ip_addresses.is_empty() {
                defaults.ip_addresses
            } else {
                self.ip_addresses.clone()
            },
            days: self.days,
        }
    }
}

/// Runs the subcommand: the files go to `--out-dir`, a summary to stderr, and only the base64
/// `caBundle` to stdout (so `CA_BUNDLE=$(notebook-volumes certs)` works).
pub fn run(args: &CertsArgs) -> Result<i32, String> {
    let request = args.request();
    let generated = generate(&request).map_err(|e| e.to_string())?;
    let paths = generated
        .write_to(&args.out_dir, args.force)
        .map_err(|e| e.to_string())?;
    for path in &paths {
        eprintln!("wrote {}", path.display());
    }
    let ips: Vec<String> = request
        .ip_addresses
        .iter()
        .map(ToString::to_string)
        .collect();
    eprintln!(
        "serving certificate for DNS [{}] IP [{}], valid {} days; caBundle:",
        request.dns_names.join(", "),
        ips.join(", "),
        request.days
    );
    super::output::write_out(format_args!("{}\n", generated.ca_bundle()));
    Ok(0)
}
