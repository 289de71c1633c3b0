//! Deployment specs: loading YAML, decoding it into typed values, and checking the rules.
//!
//! Owns: the path from a spec file to a [`ValidSpec`] (a spec that passed every rule) or a
//! list of [`Diagnostic`]s naming every problem. Must not touch: planning or running deployments.

pub mod canary;
pub mod decode;
pub mod expr;
pub mod keyword;
pub mod kinds;
pub mod kubernetes;
pub mod model;
#[cfg(test)]
mod props;
pub mod rules;
pub mod validation;
pub mod yaml;

use std::path::Path;

pub use canary::*;
pub use decode::{fmt_num, human, parse_duration, Decoder, Diagnostic, FromNode, Millis, Secs};
pub use keyword::Keyword;
pub use kinds::*;
pub use kubernetes::{GatewayApi, TrafficRouting};
pub use model::*;
pub use validation::*;

/// A spec that passed every rule. Only [`ValidSpec::check`] (which the loaders call) makes one,
/// so whatever plans or runs a deployment (the planner, the engine, promotion) takes this type
/// and never sees an unchecked spec. It reads as a [`Spec`]; changing it means checking again.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(transparent)]
pub struct ValidSpec(Spec);

impl ValidSpec {
    /// Check every rule; the spec back as a `ValidSpec`, or every problem.
    pub fn check(spec: Spec) -> Result<ValidSpec, Vec<Diagnostic>> {
        let mut d = Decoder::default();
        rules::check(&spec, &mut d);
        if d.diags.is_empty() {
            Ok(ValidSpec(spec))
        } else {
            Err(d.diags)
        }
    }

    /// A changed copy (an environment's overrides, a rollback's version), checked again.
    pub fn amend(&self, change: impl FnOnce(&mut Spec)) -> Result<ValidSpec, Vec<Diagnostic>> {
        let mut spec = self.0.clone();
        change(&mut spec);
        ValidSpec::check(spec)
    }

    pub fn spec(&self) -> &Spec {
        &self.0
    }

    pub fn into_inner(self) -> Spec {
        self.0
    }
}

impl std::ops::Deref for ValidSpec {
    type Target = Spec;
    fn deref(&self) -> &Spec {
        &self.0
    }
}

/// A recorded spec (a store row's JSON) is checked again when it is read back.
impl<'de> serde::Deserialize<'de> for ValidSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spec = Spec::deserialize(d)?;
        ValidSpec::check(spec).map_err(|diags| {
            serde::de::Error::custom(
                diags
                    .iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })
    }
}

/// Load and check a spec from text.
pub fn load_str(text: &str) -> Result<ValidSpec, Vec<Diagnostic>> {
    load_bytes(text.as_bytes())
}

/// Load and check a spec from raw bytes (a file's content).
pub fn load_bytes(bytes: &[u8]) -> Result<ValidSpec, Vec<Diagnostic>> {
    let node = yaml::check_bytes(bytes)
        .and_then(yaml::parse)
        .map_err(|e| vec![syntax_diag(e)])?;
    if !matches!(node.kind, yaml::Kind::Map(_)) {
        return Err(vec![Diagnostic::At {
            pos: node.pos,
            message: format!(
                "a spec is a mapping of fields (id, name, version, ...), found {}",
                node.type_name()
            ),
        }]);
    }
    let mut d = Decoder::default();
    let spec = Spec::decode(&node, "", &mut d);
    rules::check(&spec, &mut d);
    if d.diags.is_empty() {
        Ok(ValidSpec(spec))
    } else {
        Err(d.diags)
    }
}

/// CPU time of the calling thread, for tests that bound the work an input causes: unlike the
/// wall clock it does not grow when other builds share the machine.
#[cfg(test)]
pub(crate) fn thread_cpu_time() -> std::time::Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant Linux provides.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// A YAML syntax error as a diagnostic (at its place when it has one).
pub(crate) fn syntax_diag(e: yaml::SyntaxError) -> Diagnostic {
    match e.pos {
        Some(pos) => Diagnostic::At {
            pos,
            message: e.message,
        },
        None => Diagnostic::File { message: e.message },
    }
}

/// A file that could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{}", .diags.iter().map(|d| d.render(.path)).collect::<Vec<_>>().join("\n"))]
    Invalid {
        path: String,
        diags: Vec<Diagnostic>,
    },
}

/// Load and check a spec file.
pub fn load_file(path: &Path) -> Result<ValidSpec, LoadError> {
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|source| LoadError::Io {
        path: shown.clone(),
        source,
    })?;
    if meta.is_dir() {
        return Err(LoadError::Invalid {
            path: shown,
            diags: vec![Diagnostic::File {
                message: "is a directory, not a spec file".into(),
            }],
        });
    }
    if meta.len() > yaml::MAX_BYTES as u64 {
        return Err(LoadError::Invalid {
            path: shown,
            diags: vec![Diagnostic::File {
                message: format!(
                    "file is {} bytes; specs larger than {} bytes are refused",
                    meta.len(),
                    yaml::MAX_BYTES
                ),
            }],
        });
    }
    let bytes = std::fs::read(path).map_err(|source| LoadError::Io {
        path: shown.clone(),
        source,
    })?;
    load_bytes(&bytes).map_err(|diags| LoadError::Invalid { path: shown, diags })
}

/// Component indices in dependency order (dependencies first, else spec order).
/// On a cycle, returns the ids along it.
pub fn component_order(spec: &Spec) -> Result<Vec<usize>, Vec<String>> {
    let n = spec.components.len();
    // The first component with each id (a scan per dependency made many components quadratic).
    let mut first: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (i, c) in spec.components.iter().enumerate() {
        first.entry(c.id.as_str()).or_insert(i);
    }
    let index = |id: &str| first.get(id).copied();
    // 0 = unvisited, 1 = on the stack, 2 = done
    let mut state = vec![0u8; n];
    let mut order = Vec::with_capacity(n);
    for start in 0..n {
        if state[start] != 0 {
            continue;
        }
        // Iterative DFS: (node, next dependency to look at)
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        state[start] = 1;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            let deps = &spec.components[node].dependencies;
            if *next < deps.len() {
                let dep = &deps[*next];
                *next += 1;
                let Some(j) = index(dep) else { continue };
                if j == node {
                    continue;
                }
                match state[j] {
                    0 => {
                        state[j] = 1;
                        stack.push((j, 0));
                    }
                    1 => {
                        let from = stack.iter().position(|(k, _)| *k == j).unwrap_or(0);
                        let mut cycle: Vec<String> = stack[from..]
                            .iter()
                            .map(|(k, _)| spec.components[*k].id.clone())
                            .collect();
                        cycle.push(spec.components[j].id.clone());
                        return Err(cycle);
                    }
                    _ => {}
                }
            } else {
                state[node] = 2;
                order.push(node);
                stack.pop();
            }
        }
    }
    Ok(order)
}

impl Spec {
    /// The canary configuration in force (the spec's or the documented defaults).
    pub fn canary(&self) -> CanaryConfig {
        self.metadata.canary_config.clone().unwrap_or_default()
    }
    pub fn blue_green(&self) -> BlueGreenConfig {
        self.metadata.blue_green_config.clone().unwrap_or_default()
    }
    pub fn rolling(&self) -> RollingConfig {
        self.metadata.rolling_config.clone().unwrap_or_default()
    }
    /// How long a wait for ready instances may take (`metadata.progressDeadline`, else the
    /// rolling config's, else 10 minutes), whatever the strategy.
    pub fn progress_deadline(&self) -> Millis {
        self.metadata
            .progress_deadline
            .unwrap_or_else(|| self.rolling().progress_deadline)
    }
    /// Components in dependency order.
    pub fn ordered_components(&self) -> Vec<&Component> {
        match component_order(self) {
            Ok(order) => order.into_iter().map(|i| &self.components[i]).collect(),
            Err(_) => self.components.iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_read_back_from_the_store_has_the_numbers_written() {
        // Found by the `spec` fuzz target (issue 11): serde_json's fast float reading is off by
        // one unit in the last place for some numbers, so a checked spec written to the store
        // read back with a different threshold (8.88888888088889e100 came back as
        // 8.888888880888891e100). The `float_roundtrip` feature reads every number exactly.
        let text = include_str!("../../specs/demo/local-v1.yaml").replacen(
            "threshold: 0.05",
            "threshold: 88888888808888888888888888888888888888888888888888888888888888888888888888888888888888888888888888880.05",
            1,
        );
        let spec = load_str(&text).unwrap();
        let threshold = spec.canary().metrics[0].threshold;
        assert_eq!(threshold, 8.88888888088889e100);
        let json = serde_json::to_string(&spec).unwrap();
        let back: ValidSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(
            back.canary().metrics[0].threshold.to_bits(),
            threshold.to_bits()
        );
        assert_eq!(back, spec);
    }
}
