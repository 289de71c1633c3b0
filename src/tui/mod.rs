//! The operations console: a ratatui view of every deployment in the state store, with keys to
//! pause, resume, approve, promote and roll back.
//!
//! Owns: the console's data from the store (`data`), model and update (`model`), the history's
//! delivery measures (`delivery`), keys (`keymap`),
//! drawing (`view`), looks (`theme`, `symbols`) and terminal capabilities (`caps`). It renders
//! snapshots and sends commands; it never changes engine state itself. Must not be imported by
//! the engine.

pub mod caps;
pub mod colour;
pub mod command;
pub mod data;
pub mod delivery;
pub mod keymap;
pub mod model;
pub mod sample;
pub mod symbols;
pub mod theme;
pub mod view;
