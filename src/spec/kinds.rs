//! The spec's closed sets of words and its one bounded count, each a type decoded once: the
//! strategy, the provider kind, trigger, rollback, switch and health-check kinds, and replicas.
//!
//! Owns: these types and their spellings. Must not touch: what they mean at run time (the
//! planner, the engine and the providers match on them exhaustively).

use serde::{Deserialize, Serialize};

use super::decode::{Decoder, FromNode};
use super::keyword::keyword;
use super::yaml::Node;

keyword! {
    /// The strategies cutover runs.
    pub enum Strategy (default Canary) {
        BlueGreen = "blue-green",
        Canary = "canary",
        Rolling = "rolling",
        Recreate = "recreate",
    }
}

keyword! {
    /// The platforms cutover drives (`infrastructure.provider`).
    pub enum ProviderKind (default Simulated) {
        Local = "local",
        Kubernetes = "kubernetes",
        Simulated = "simulated",
    }
}

keyword! {
    /// What fires a rollback trigger (`rollback.triggers[].type`).
    pub enum TriggerKind (default Custom) {
        HealthCheck = "health-check",
        Metric = "metric",
        ErrorRate = "error-rate",
        Timeout = "timeout",
        Custom = "custom",
    }
}

keyword! {
    /// How traffic goes back on a rollback (`rollback.strategy.type`).
    pub enum RollbackKind (default Immediate) {
        Immediate = "immediate",
        Gradual = "gradual",
    }
}

keyword! {
    /// How a blue-green switch moves traffic (`switchTraffic.type`).
    pub enum SwitchKind (default Immediate) {
        Gradual = "gradual",
        Immediate = "immediate",
    }
}

keyword! {
    /// A health check's probe (`healthCheck.type`).
    pub enum HealthKind (default Tcp) {
        Http = "http",
        Tcp = "tcp",
        Exec = "exec",
        Grpc = "grpc",
    }
}

/// How many instances a revision runs: 1 to 10,000, checked once when the spec (or a store row)
/// is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct Replicas(u32);

impl Replicas {
    pub const MAX: u32 = 10_000;
    pub const ONE: Replicas = Replicas(1);

    /// The count, when it is in range.
    pub fn new(n: i64) -> Option<Replicas> {
        (1..=i64::from(Self::MAX))
            .contains(&n)
            .then_some(Replicas(n as u32))
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for Replicas {
    fn default() -> Self {
        Replicas::ONE
    }
}

impl std::fmt::Display for Replicas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl TryFrom<i64> for Replicas {
    type Error = String;
    fn try_from(n: i64) -> Result<Self, String> {
        Replicas::new(n).ok_or_else(|| format!("replicas {n} is not between 1 and 10000"))
    }
}

impl From<Replicas> for i64 {
    fn from(r: Replicas) -> i64 {
        i64::from(r.0)
    }
}

impl FromNode for Replicas {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        let count = i64::decode(n, path, d);
        if d.has_error(path) {
            return Replicas::ONE;
        }
        Replicas::new(count).unwrap_or_else(|| {
            d.field(path, "must be between 1 and 10000");
            Replicas::ONE
        })
    }
}
