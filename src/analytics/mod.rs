//! Analytics and reports from cutover's own journal: one run's story in numbers (`run`), and
//! delivery metrics over history per deployment and environment (`report`): success and change
//! fail rates, durations, deployment frequency and failed-deployment recovery time (DORA's
//! definitions where cutover can measure them), with a 28-day trend; the same week by week
//! (`weekly`); and the report as a Markdown, CSV or JSON file's text (`export`).
//!
//! Owns: computing from runs and events, and rendering reports (pure functions). Must not
//! touch: the store (callers read it), the terminal or files (callers print and write).

pub mod export;
pub mod report;
pub mod retention;
pub mod run;
pub mod weekly;
