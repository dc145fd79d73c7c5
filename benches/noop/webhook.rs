//! `noop_webhook --listen ADDR --tls-cert FILE --tls-key FILE [--patch FILE]`: the no-op
//! baseline of `benches/load.sh` as a process of its own (see `server.rs`). `--patch` replaces
//! the one-operation patch with the JSON patch in FILE.

mod server;

use std::path::PathBuf;

const USAGE: &str =
    "usage: noop_webhook --listen ADDR --tls-cert FILE --tls-key FILE [--patch FILE]";

fn main() -> std::io::Result<()> {
    let mut listen = "127.0.0.1:18444".to_string();
    let (mut cert, mut key) = (PathBuf::from("tls.crt"), PathBuf::from("tls.key"));
    let mut patch = server::PATCH.to_string();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| std::io::Error::other(format!("{flag} needs a value; {USAGE}")))?;
        match flag.as_str() {
            "--listen" => listen = value,
            "--tls-cert" => cert = value.into(),
            "--tls-key" => key = value.into(),
            "--patch" => {
                patch = std::fs::read_to_string(&value)
                    .map_err(|e| std::io::Error::other(format!("--patch {value}: {e}")))?;
                serde_json::from_str::<serde_json::Value>(&patch).map_err(|e| {
                    std::io::Error::other(format!("--patch {value}: not JSON: {e}"))
                })?;
            }
            _ => {
                return Err(std::io::Error::other(format!(
                    "unknown flag {flag}; {USAGE}"
                )));
            }
        }
    }
    let listen = listen
        .parse()
        .map_err(|e| std::io::Error::other(format!("--listen {listen}: {e}")))?;
    let noop = server::Noop::start(listen, &cert, &key, 0, &patch)?;
    eprintln!("no-op webhook listening on https://{}", noop.addr);
    noop.wait()
}
