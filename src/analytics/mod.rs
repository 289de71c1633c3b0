//! Analytics and reports from cutover's own journal: one run's story in numbers (`run`), and
//! delivery metrics over history per deployment and environment (`report`): success and change
//! fail rates, durations, deployment frequency and failed-deployment recovery time (DORA's
//! definitions where cutover can measure them), with a 28-day trend.
//!
//! Owns: computing from runs and events (pure functions). Must not touch: the store (callers
//! read it) or printing.

pub mod report;
pub mod run;
