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

/// Evaluate an instant PromQL query that should give one number, over http or https with the
/// process's shared HTTP client (`crate::net`).
pub async fn prometheus(address: &str, query: &str, timeout: Duration) -> Measured {
    let base = address.trim_end_matches('/');
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

/// Run a command that prints one number on stdout (whatever it logs on stderr). The timeout is
/// wall-clock, so a dry run's virtual clock cannot expire it early.
pub async fn exec(argv: &[String], timeout: Duration, env: &[(String, String)]) -> Measured {
    let prog = argv.first().map(String::as_str).unwrap_or("");
    match crate::exec::run(argv, env, timeout).await {
        Err(e) => Measured::Error(e.to_string()),
        Ok(out) if !out.status.success() => {
            let said = out.stderr.excerpt();
            Measured::Error(if said.is_empty() {
                format!("`{prog}` failed ({})", out.status)
            } else {
                format!("`{prog}` failed ({}): {said}", out.status)
            })
        }
        Ok(out) if !out.stdout.complete() => Measured::Error(format!(
            "`{prog}` printed {} bytes; one number was expected: {}",
            out.stdout.total(),
            out.stdout.excerpt()
        )),
        Ok(out) => parse_number(&out.stdout.text(), &format!("`{prog}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shared with the integration tests: a visible skip, a failure under CI.
    #[allow(dead_code)]
    mod skip {
        include!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/skip.rs"));
    }

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

    /// Issue 10: a command printing more than a pipe buffer must not stall until its timeout.
    #[tokio::test]
    async fn exec_source_reads_output_while_the_command_runs() {
        let argv = |s: &str| vec!["sh".to_string(), "-c".to_string(), s.to_string()];
        let timeout = Duration::from_secs(10);
        // 1 MiB of log on stderr, then the number on stdout.
        let t0 = std::time::Instant::now();
        let m = exec(
            &argv("head -c 1048576 /dev/zero | tr '\\0' x >&2; echo 42"),
            timeout,
            &[],
        )
        .await;
        let took = t0.elapsed();
        assert_eq!(m, Measured::Value(42.0));
        assert!(took < Duration::from_secs(3), "took {took:?}");
        // 1 MiB on stdout is not one number, and says so at once.
        let t0 = std::time::Instant::now();
        let m = exec(&argv("head -c 1048576 /dev/zero; echo 42"), timeout, &[]).await;
        let took = t0.elapsed();
        assert!(matches!(m, Measured::Error(_)), "{m:?}");
        assert!(took < Duration::from_secs(3), "took {took:?}");
    }

    /// A command that prints forever is killed at its timeout (with whatever it started) and
    /// reported as an error with a short excerpt of what it printed.
    #[tokio::test]
    async fn an_endless_exec_source_is_killed_at_its_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("bg.pid");
        let script = format!(
            "sleep 30 >/dev/null 2>&1 & echo $! > {}; yes endless-output",
            pidfile.display()
        );
        let argv = vec!["sh".to_string(), "-c".to_string(), script];
        let t0 = std::time::Instant::now();
        let m = exec(&argv, Duration::from_millis(700), &[]).await;
        let took = t0.elapsed();
        assert!(took >= Duration::from_millis(700), "took {took:?}");
        assert!(took < Duration::from_secs(3), "took {took:?}");
        let Measured::Error(e) = m else {
            panic!("expected an error, got {m:?}")
        };
        assert!(e.contains("did not finish within"), "{e}");
        assert!(
            e.contains("endless-output"),
            "an excerpt of the output: {e}"
        );
        assert!(e.len() < 1024, "the excerpt is capped: {} bytes", e.len());
        // The background process the command started went with it.
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let mut gone = false;
        for _ in 0..50 {
            // SAFETY: kill with signal 0 only checks that the process exists.
            let exists = unsafe { libc::kill(pid, 0) } == 0;
            // A zombie waiting for its reaper is not running.
            let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains(") Z "));
            if !exists || zombie {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(gone, "background process {pid} outlived the timeout");
    }

    /// A canned Prometheus on 127.0.0.1, over TLS when given a rustls config; it answers every
    /// request with `body` and records the request lines. Stops (and joins) on drop.
    struct CannedPrometheus {
        port: u16,
        requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
        stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
        thread: Option<std::thread::JoinHandle<()>>,
    }

    impl CannedPrometheus {
        fn start(tls: Option<std::sync::Arc<rustls::ServerConfig>>, body: &'static str) -> Self {
            use std::io::Write;
            use std::sync::atomic::Ordering;
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.set_nonblocking(true).unwrap();
            let port = listener.local_addr().unwrap().port();
            let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let (reqs, halt) = (requests.clone(), stop.clone());
            let serve = move |s: &mut dyn ReadWrite| {
                let mut req = Vec::new();
                let mut buf = [0u8; 4096];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&req);
                reqs.lock()
                    .unwrap()
                    .push(text.lines().next().unwrap_or("").to_string());
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.flush();
            };
            let thread = std::thread::spawn(move || {
                while !halt.load(Ordering::Relaxed) {
                    let Ok((tcp, _)) = listener.accept() else {
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    };
                    let _ = tcp.set_nonblocking(false);
                    let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
                    match &tls {
                        Some(cfg) => {
                            let Ok(conn) = rustls::ServerConnection::new(cfg.clone()) else {
                                continue;
                            };
                            let mut s = rustls::StreamOwned::new(conn, tcp);
                            serve(&mut s);
                            s.conn.send_close_notify();
                            let _ = s.flush();
                        }
                        None => {
                            let mut s = tcp;
                            serve(&mut s);
                        }
                    }
                }
            });
            CannedPrometheus {
                port,
                requests,
                stop,
                thread: Some(thread),
            }
        }
    }

    impl Drop for CannedPrometheus {
        fn drop(&mut self) {
            self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    trait ReadWrite: std::io::Read + std::io::Write {}
    impl<T: std::io::Read + std::io::Write> ReadWrite for T {}

    const UP: &str = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000.0,"0.25"]}]}}"#;

    #[tokio::test]
    async fn prometheus_over_plain_http_reads_one_value() {
        let server = CannedPrometheus::start(None, UP);
        let m = prometheus(
            &format!("http://127.0.0.1:{}/", server.port),
            "sum(up)",
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(m, Measured::Value(0.25));
        let reqs = server.requests.lock().unwrap().clone();
        assert_eq!(reqs, ["GET /api/v1/query?query=sum%28up%29 HTTP/1.1"]);
    }

    /// `openssl` makes the test CA and a certificate for 127.0.0.1; without it the test says so
    /// loudly and skips, except under CI.
    fn test_ca(
        dir: &std::path::Path,
    ) -> Option<(std::path::PathBuf, std::sync::Arc<rustls::ServerConfig>)> {
        if !skip::present_or_skip(
            skip::runs("openssl", &["version"]),
            "engine::sources::tests (https Prometheus)",
            "openssl",
            "apt-get install openssl",
        ) {
            return None;
        }
        let run = |args: &[&str]| {
            let out = std::process::Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        run(&[
            &["req", "-x509"][..],
            &ec,
            &[
                "-days",
                "1",
                "-subj",
                "/CN=cutover test CA",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ],
        ]
        .concat());
        run(&[
            &["req"][..],
            &ec,
            &[
                "-subj",
                "/CN=127.0.0.1",
                "-keyout",
                "leaf.key",
                "-out",
                "leaf.csr",
            ],
        ]
        .concat());
        std::fs::write(
            dir.join("leaf.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        run(&[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-set_serial",
            "2",
            "-days",
            "1",
            "-extfile",
            "leaf.ext",
            "-out",
            "leaf.pem",
        ]);
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs = CertificateDer::pem_file_iter(dir.join("leaf.pem"))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(dir.join("leaf.key")).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
        Some((dir.join("ca.pem"), std::sync::Arc::new(config)))
    }

    /// Issue 10: `validate` accepts an https:// Prometheus; the source must measure through it.
    /// The shared HTTP client reads its trust roots once per process, so each measurement runs
    /// in a child test process that trusts the test CA: through `SSL_CERT_FILE` (instead of the
    /// system's roots), then through `CUTOVER_CA_FILE` (on top of them).
    #[test]
    fn prometheus_over_https_trusts_the_configured_ca() {
        let dir = tempfile::tempdir().unwrap();
        let Some((ca, tls)) = test_ca(dir.path()) else {
            return;
        };
        for how in ["SSL_CERT_FILE", crate::net::CA_FILE_ENV] {
            let server = CannedPrometheus::start(Some(tls.clone()), UP);
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "engine::sources::tests::prometheus_https_child",
                    "--exact",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env_remove("SSL_CERT_FILE")
                .env_remove("SSL_CERT_DIR")
                .env_remove(crate::net::CA_FILE_ENV)
                .env(how, &ca)
                .env(
                    "CUTOVER_TEST_PROMETHEUS",
                    format!("https://127.0.0.1:{}", server.port),
                )
                .output()
                .unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(out.status.success(), "{how}: {text}");
            assert!(text.contains("1 passed"), "{how}: {text}");
            let reqs = server.requests.lock().unwrap().clone();
            assert_eq!(
                reqs,
                ["GET /api/v1/query?query=sum%28up%29 HTTP/1.1"],
                "{how}"
            );
        }
    }

    /// Without the test CA the same server is refused: the certificate is checked.
    #[tokio::test]
    async fn an_untrusted_https_prometheus_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let Some((_, tls)) = test_ca(dir.path()) else {
            return;
        };
        let server = CannedPrometheus::start(Some(tls), UP);
        let m = prometheus(
            &format!("https://127.0.0.1:{}", server.port),
            "sum(up)",
            Duration::from_secs(5),
        )
        .await;
        let Measured::Error(e) = m else {
            panic!("expected an error, got {m:?}")
        };
        assert!(e.contains("certificate"), "{e}");
    }

    /// The child half of `prometheus_over_https_trusts_the_configured_ca` (does nothing on its own).
    #[tokio::test]
    #[ignore = "run by prometheus_over_https_trusts_the_configured_ca"]
    async fn prometheus_https_child() {
        let Ok(address) = std::env::var("CUTOVER_TEST_PROMETHEUS") else {
            return;
        };
        let m = prometheus(&address, "sum(up)", Duration::from_secs(5)).await;
        assert_eq!(m, Measured::Value(0.25), "{address}");
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
