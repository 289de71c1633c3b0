//! Canary analysis: the judgement of a canary against its baseline.
//!
//! [`stats`] owns the statistics (normal distribution, Mann-Whitney U, Hodges-Lehmann shift and
//! interval, the Kayenta-style per-metric classifier and the group score). It is pure computation
//! on slices of numbers: it never fetches metrics, never talks to a provider and never decides
//! what happens to a rollout; callers turn its verdicts and reasons into engine decisions.

pub mod stats;
