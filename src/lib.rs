//! cutover: a deployment orchestration engine hosted in a terminal operations console.
//!
//! The library holds everything but the command line: specs, plans, the engine, providers and
//! the state store. It has no UI imports.

pub mod analysis;
pub mod analytics;
pub mod demo_past;
pub mod demo_service;
pub mod describe;
pub mod engine;
pub mod exec;
pub mod exporter;
pub mod governance;
pub mod identity;
pub mod latency;
pub mod load;
pub mod local;
pub mod net;
pub mod plan;
pub mod platform;
pub mod provider;
pub mod spec;
pub mod store;
pub mod text;
pub mod tui;
pub mod verify;
