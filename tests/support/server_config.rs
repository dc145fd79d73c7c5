//! The server configuration every in-process test starts from.

use std::path::Path;
use std::time::Duration;

use notebook_volumes::server::{Config, PolicySource};

/// The example policies, read from files as `serve --policies` does.
pub fn example_policies() -> PolicySource {
    PolicySource::Files {
        paths: vec!["examples/policies".into()],
        namespace: "notebook-volumes".into(),
    }
}

/// The serving pair `tls.crt`/`tls.key` in `dir`, both listeners on loopback ports the system
/// picks, one worker and a one-second shutdown, so tests start fast and stop fast.
pub fn local_config(dir: &Path, policies: PolicySource) -> Config {
    let mut config = Config::new(dir.join("tls.crt"), dir.join("tls.key"), policies);
    config.listen = "127.0.0.1:0".parse().expect("address");
    config.probe_listen = "127.0.0.1:0".parse().expect("address");
    config.shutdown_timeout = Duration::from_secs(1);
    config.workers = 1;
    config
}
