//! notebook-volumes: storage for Jupyter notebook pods at admission time.
//!
//! `policy` and `admission` are the pure core (no I/O); the CLI and the server sit at the edges.

pub mod admission;
pub mod certs;
pub mod cli;
pub mod cluster;
pub mod files;
pub mod keys;
pub mod metrics;
pub mod policy;
pub mod server;
