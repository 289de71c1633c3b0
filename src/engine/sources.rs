//! Metric sources outside the provider: Prometheus instant queries and exec commands.
//!
//! Owns: expanding `{{placeholders}}`, asking Prometheus (`/api/v1/query`) or running a command,
//! and turning the answer into a value, no data (empty result, NaN, no output) or an error (HTTP,
//! query or exit failure) — never merged. Must not touch: judging or deciding.

use std::time::Duration;

/// What one measurement gave.
#[derive(Debug, Clone, PartialEq)]
pub enum Measured {
    Value(f64),
    NoData(String),
    Error(String),
}

/// Values for `{{name}}` placeholders in queries and commands.
#[derive(Debug, Clone, Default)]
pub struct Placeholders {
    /// The version being measured (the canary's, then the baseline's).
    pub version: String,
    pub canary: String,
    pub baseline: String,
    pub component: String,
    pub environment: String,
    pub revision: String,
    /// The analysis interval, e.g. `30s`.
    pub interval: String,
}

/// Replace `{{version}}`, `{{canary}}`, `{{baseline}}`, `{{component}}`, `{{environment}}`,
/// `{{revision}}`, `{{interval}}`; other text is kept.
pub fn expand(template: &str, p: &Placeholders) -> String {
    let pairs = [
        ("{{version}}", &p.version),
        ("{{canary}}", &p.canary),
        ("{{baseline}}", &p.baseline),
        ("{{component}}", &p.component),
        ("{{environment}}", &p.environment),
        ("{{revision}}", &p.revision),
        ("{{interval}}", &p.interval),
    ];
    let mut out = template.to_string();
    for (k, v) in pairs {
        out = out.replace(k, v);
    }
    out
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Evaluate an instant PromQL query that should give one number.
pub async fn prometheus(address: &str, query: &str, timeout: Duration) -> Measured {
    let base = address.trim_end_matches('/');
    if base.starts_with("https://") {
        return Measured::Error(
            "https Prometheus addresses are not supported yet; use http://".into(),
        );
    }
    let url = format!("{base}/api/v1/query?query={}", percent_encode(query));
    let (status, body) = match crate::net::http_get(&url, timeout).await {
        Ok(x) => x,
        Err(e) => return Measured::Error(format!("Prometheus at {base}: {e}")),
    };
    let json: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(j) => j,
        Err(_) => {
            return Measured::Error(format!(
                "Prometheus at {base} answered HTTP {} with a body that is not JSON",
                status
            ))
        }
    };
    if json["status"] != "success" {
        return Measured::Error(format!(
            "query failed ({}): {}",
            json["errorType"].as_str().unwrap_or("HTTP error"),
            json["error"].as_str().unwrap_or("no message")
        ));
    }
    let data = &json["data"];
    let value = match data["resultType"].as_str() {
        Some("scalar") => data["result"][1].as_str().map(str::to_string),
        Some("vector") => {
            let result = data["result"].as_array().cloned().unwrap_or_default();
            match result.len() {
                0 => return Measured::NoData(format!("`{query}` returned no series")),
                1 => result[0]["value"][1].as_str().map(str::to_string),
                n => {
                    return Measured::Error(format!(
                        "`{query}` returned {n} series; aggregate it to one (e.g. sum(...))"
                    ))
                }
            }
        }
        other => {
            return Measured::Error(format!(
                "`{query}` gave a {} result; an instant vector or scalar is needed",
                other.unwrap_or("unknown")
            ))
        }
    };
    parse_number(value.as_deref().unwrap_or(""), &format!("`{query}`"))
}

fn parse_number(text: &str, what: &str) -> Measured {
    let t = text.trim();
    if t.is_empty() {
        return Measured::NoData(format!("{what} gave no value"));
    }
    match t.parse::<f64>() {
        Ok(v) if v.is_nan() => Measured::NoData(format!("{what} is NaN")),
        Ok(v) if v.is_infinite() => Measured::NoData(format!("{what} is {t}")),
        Ok(v) => Measured::Value(v),
        Err(_) => Measured::Error(format!(
            "{what} gave `{}`, not a number",
            t.chars().take(40).collect::<String>()
        )),
    }
}

/// Run a command that prints one number. It runs on a blocking thread with a wall-clock
/// timeout, so a dry run's virtual clock cannot expire it early.
pub async fn exec(argv: &[String], timeout: Duration, env: &[(String, String)]) -> Measured {
    let argv = argv.to_vec();
    let env = env.to_vec();
    match tokio::task::spawn_blocking(move || exec_blocking(&argv, timeout, &env)).await {
        Ok(m) => m,
        Err(e) => Measured::Error(format!("exec source task failed: {e}")),
    }
}

/// Run a command for its exit status (0 passes), with a wall-clock timeout.
pub async fn exec_status(argv: &[String], timeout: Duration) -> Result<(), String> {
    let argv = argv.to_vec();
    tokio::task::spawn_blocking(move || match run_blocking(&argv, timeout, &[]) {
        Ok((status, _, _)) if status.success() => Ok(()),
        Ok((status, _, err)) => Err(format!(
            "`{}` failed ({status}){}",
            argv.join(" "),
            if err.trim().is_empty() {
                String::new()
            } else {
                format!(": {}", err.trim().chars().take(200).collect::<String>())
            }
        )),
        Err(e) => Err(e),
    })
    .await
    .map_err(|e| format!("exec task failed: {e}"))?
}

/// Run to completion or the timeout; (status, stdout, stderr).
fn run_blocking(
    argv: &[String],
    timeout: Duration,
    env: &[(String, String)],
) -> Result<(std::process::ExitStatus, String, String), String> {
    use std::io::Read;
    let Some((prog, args)) = argv.split_first() else {
        return Err("empty command".into());
    };
    let mut child = std::process::Command::new(prog)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run `{prog}`: {e}"))?;
    let start = std::time::Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if start.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("`{prog}` did not finish within {timeout:?}"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(format!("`{prog}`: {e}")),
        }
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut stdout);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    Ok((status, stdout, stderr))
}

fn exec_blocking(argv: &[String], timeout: Duration, env: &[(String, String)]) -> Measured {
    let prog = argv.first().cloned().unwrap_or_default();
    match run_blocking(argv, timeout, env) {
        Err(e) => Measured::Error(e),
        Ok((status, _, stderr)) if !status.success() => Measured::Error(format!(
            "`{prog}` failed ({status}): {}",
            stderr.trim().chars().take(200).collect::<String>()
        )),
        Ok((_, stdout, _)) => parse_number(&stdout, &format!("`{prog}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_and_encoding() {
        let p = Placeholders {
            version: "1.2".into(),
            canary: "1.2".into(),
            baseline: "1.1".into(),
            ..Default::default()
        };
        assert_eq!(
            expand(
                r#"rate(x{version="{{version}}"}[{{interval}}]) / {{baseline}}"#,
                &p
            ),
            r#"rate(x{version="1.2"}[]) / 1.1"#
        );
        assert_eq!(percent_encode("a b{\"}"), "a%20b%7B%22%7D");
    }

    #[test]
    fn numbers_no_data_and_errors() {
        assert_eq!(parse_number(" 0.25\n", "q"), Measured::Value(0.25));
        assert!(matches!(parse_number("NaN", "q"), Measured::NoData(_)));
        assert!(matches!(parse_number("", "q"), Measured::NoData(_)));
        assert!(matches!(parse_number("abc", "q"), Measured::Error(_)));
    }

    #[tokio::test]
    async fn exec_sources_measure_for_real() {
        let t = Duration::from_secs(2);
        let echo = |s: &str| vec!["sh".to_string(), "-c".to_string(), s.to_string()];
        assert_eq!(
            exec(&echo("echo 42.5"), t, &[]).await,
            Measured::Value(42.5)
        );
        assert!(matches!(
            exec(&echo("true"), t, &[]).await,
            Measured::NoData(_)
        ));
        assert!(matches!(
            exec(&echo("exit 3"), t, &[]).await,
            Measured::Error(_)
        ));
        let env = vec![("V".to_string(), "7".to_string())];
        assert_eq!(exec(&echo("echo $V"), t, &env).await, Measured::Value(7.0));
    }

    #[tokio::test]
    async fn prometheus_down_is_an_error_not_a_pass() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let m = prometheus(
            &format!("http://127.0.0.1:{port}"),
            "up",
            Duration::from_secs(1),
        )
        .await;
        assert!(matches!(m, Measured::Error(_)), "{m:?}");
    }
}
