//! The operations console: a ratatui view of every deployment in the state store, with keys to
//! pause, resume, approve, promote and roll back.
//!
//! Owns: the console's model (`model`), keys (`keymap`) and drawing (`view`). It renders
//! snapshots and sends commands; it never changes engine state itself. Must not be imported by
//! the engine.

pub mod keymap;
pub mod model;
pub mod view;
