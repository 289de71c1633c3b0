//! Deployment specs: loading YAML, decoding it into typed values, and checking the rules.
//!
//! Owns: the path from a spec file to a checked [`Spec`] or a list of [`Diagnostic`]s naming
//! every problem. Must not touch: planning or running deployments.

pub mod canary;
pub mod decode;
pub mod expr;
pub mod model;
pub mod rules;
pub mod validation;
pub mod yaml;

use std::path::Path;

pub use canary::*;
pub use decode::{human, parse_duration, Decoder, Diagnostic, FromNode, Millis, Secs};
pub use model::*;
pub use validation::*;

/// Load and check a spec from text.
pub fn load_str(text: &str) -> Result<Spec, Vec<Diagnostic>> {
    load_bytes(text.as_bytes())
}

/// Load and check a spec from raw bytes (a file's content).
pub fn load_bytes(bytes: &[u8]) -> Result<Spec, Vec<Diagnostic>> {
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
        Ok(spec)
    } else {
        Err(d.diags)
    }
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
pub fn load_file(path: &Path) -> Result<Spec, LoadError> {
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
    let index = |id: &str| spec.components.iter().position(|c| c.id == id);
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
    /// Components in dependency order.
    pub fn ordered_components(&self) -> Vec<&Component> {
        match component_order(self) {
            Ok(order) => order.into_iter().map(|i| &self.components[i]).collect(),
            Err(_) => self.components.iter().collect(),
        }
    }
}
