//! The local platform: `cutover host` and the `local` provider.
//!
//! Owns: running services for real on this machine as supervised processes behind a weighted
//! HTTP router with health probes and metrics, in a long-lived host process per state dir that
//! engines drive over a Unix socket. Must not touch: deployment decisions (the engine's).

pub mod client;
pub mod host;
pub mod metrics;
pub mod probe;
pub mod process;
pub mod proto;
pub mod router;
pub mod server;
pub mod table;
