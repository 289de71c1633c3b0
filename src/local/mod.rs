//! The local platform: `cutover host` and the `local` provider.
//!
//! Owns: running services for real on this machine as supervised processes behind a weighted
//! HTTP router with health probes and metrics, in a long-lived host process per state dir that
//! engines drive over a Unix socket. The host is a worker under a small supervisor that keeps
//! its sockets open and restarts it (`supervisor`, `handover`); a new worker adopts the
//! instances still running (`host`). Must not touch: deployment decisions (the engine's).

pub mod client;
pub mod files;
pub mod handover;
pub mod host;
pub mod metrics;
pub mod probe;
pub mod process;
pub mod proto;
pub mod router;
pub mod server;
pub mod supervisor;
pub mod table;
pub mod upstream;
