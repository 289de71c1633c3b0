//! How an instance is launched: its loopback ports, the placeholders of its command and
//! environment, and its probe.
//!
//! Owns: handing out ports (never twice while the host lives), expanding placeholders and
//! resolving the health check to the instance's ports. Must not touch: processes or routing.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::super::probe::{Check, ProbeSpec};
use crate::provider::RevisionSpec;
use crate::spec::{HealthKind, PortRef};

/// Ports this host has handed out (never handed out twice while it lives).
static HANDED_OUT: std::sync::Mutex<std::collections::BTreeSet<u16>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// A free loopback port the host has not handed out before.
pub fn free_port() -> std::io::Result<u16> {
    for _ in 0..64 {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = l.local_addr()?.port();
        let mut seen = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        if seen.insert(port) {
            return Ok(port);
        }
    }
    Err(std::io::Error::other(
        "no fresh loopback port after 64 tries",
    ))
}

/// Replace `{self}`, `{version}`, `{replica}`, `{port}` and `{port.NAME}`.
pub fn expand(
    s: &str,
    exe: &Path,
    version: &str,
    replica: u32,
    ports: &BTreeMap<String, u16>,
    first: u16,
) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let name = &after[..end];
        let value = match name {
            "self" => exe.display().to_string(),
            "version" => version.to_string(),
            "replica" => replica.to_string(),
            "port" => first.to_string(),
            _ => match name.strip_prefix("port.") {
                Some(p) => ports
                    .get(p)
                    .map(|v| v.to_string())
                    .ok_or_else(|| format!("placeholder {{{name}}} names no port in run.ports"))?,
                // Not a placeholder of ours: keep it as written.
                None => format!("{{{name}}}"),
            },
        };
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

pub fn probe_spec(
    rev: &RevisionSpec,
    exe: &Path,
    replica: u32,
    ports: &BTreeMap<String, u16>,
    first: u16,
) -> Result<ProbeSpec, String> {
    let Some(hc) = &rev.component.health_check else {
        // No health check: ready once the first port accepts connections.
        return Ok(ProbeSpec {
            check: Check::Tcp { port: first },
            initial_delay: Duration::ZERO,
            period: Duration::from_millis(500),
            timeout: Duration::from_secs(1),
            success_threshold: 1,
            failure_threshold: 3,
        });
    };
    let port = match &hc.port {
        None | Some(PortRef::Number(_)) => first,
        Some(PortRef::Name(n)) => *ports
            .get(n)
            .ok_or_else(|| format!("healthCheck.port `{n}` is not in run.ports"))?,
    };
    let check = match hc.kind {
        HealthKind::Http => Check::Http {
            port,
            path: hc.endpoint.clone().unwrap_or_else(|| "/".into()),
        },
        HealthKind::Tcp => Check::Tcp { port },
        HealthKind::Grpc => Check::Grpc {
            port,
            service: hc.service.clone().unwrap_or_default(),
        },
        HealthKind::Exec => Check::Exec {
            argv: hc
                .command
                .iter()
                .map(|a| expand(a, exe, &rev.version, replica, ports, first))
                .collect::<Result<_, _>>()?,
        },
    };
    Ok(ProbeSpec {
        check,
        initial_delay: hc.initial_delay_seconds.duration(),
        period: hc.period_seconds.duration(),
        timeout: hc.timeout_seconds.duration(),
        success_threshold: hc.success_threshold.max(1) as u32,
        failure_threshold: hc.failure_threshold.max(1) as u32,
    })
}

pub fn safe_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The names of an instance's ports (`run.ports`, else one `http`).
pub fn port_names(rev: &RevisionSpec) -> Vec<String> {
    let mut names: Vec<String> = rev
        .component
        .run
        .as_ref()
        .map(|r| r.ports.clone())
        .unwrap_or_default();
    if names.is_empty() {
        names.push("http".into());
    }
    names
}

/// The variable that gives an instance its port `name`.
pub fn port_env(name: &str) -> String {
    format!("PORT_{}", name.to_ascii_uppercase().replace('-', "_"))
}

/// Note ports an adopted instance holds, so they are not handed out again.
pub fn taken(ports: &BTreeMap<String, u16>) {
    let mut seen = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    seen.extend(ports.values().copied());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_expand() {
        let mut ports = BTreeMap::new();
        ports.insert("http".to_string(), 8001u16);
        ports.insert("grpc".to_string(), 9001u16);
        let exe = Path::new("/bin/cutover");
        assert_eq!(
            expand(
                "{self} --port {port} --grpc {port.grpc} --v {version} r{replica} {other}",
                exe,
                "1.2",
                3,
                &ports,
                8001
            )
            .unwrap(),
            "/bin/cutover --port 8001 --grpc 9001 --v 1.2 r3 {other}"
        );
        assert!(expand("{port.nope}", exe, "1", 0, &ports, 8001).is_err());
        assert_eq!(
            expand("no {brace", exe, "1", 0, &ports, 1).unwrap(),
            "no {brace"
        );
    }
}
