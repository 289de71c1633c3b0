//! Approvals across processes and OS users: a running `apply` waits at a gate, and `cutover
//! approve` in other processes decides it through the store. As root, the approvers are two real
//! OS users created by the test, sharing a group-owned state dir.

#[allow(dead_code)]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use common::{seed_spec, start_until_gate, v110, wait_exit, BIN};

/// A state dir with 1.1.0 serving (dry run), the config file, and the 1.2.0 spec with a gate.
fn setup(dir: &Path, config: &str) -> (PathBuf, PathBuf, PathBuf) {
    let state = dir.join("state");
    let cfg = dir.join("cutover.yaml");
    std::fs::write(&cfg, config).unwrap();
    (state, cfg, v110(dir, "canary.yaml"))
}

fn cutover(state: &Path, cfg: &Path, args: &[&str]) -> Command {
    let mut c = common::cutover(state, &["--config", cfg.to_str().unwrap()]);
    c.args(args);
    c
}

/// Start the canary with its gate in the background; returns it and its JSON lines.
fn apply_waiting(state: &Path, cfg: &Path) -> (Child, Receiver<String>) {
    let spec = seed_spec("canary.yaml");
    start_until_gate(
        cutover(
            state,
            cfg,
            &["apply", spec.to_str().unwrap(), "--dry-run", "--json"],
        ),
        Duration::from_secs(20),
    )
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Wait for the apply to finish; its exit code and the time it took.
fn finish(child: &mut Child, within: Duration) -> (i32, Duration) {
    let start = Instant::now();
    let status = wait_exit(child, within, || {
        format!("apply did not finish within {within:?}")
    });
    (status.code().unwrap_or(-1), start.elapsed())
}

#[test]
fn an_approval_from_another_process_releases_a_waiting_apply_within_a_second_or_two() {
    let dir = tempfile::tempdir().unwrap();
    let (state, cfg, v110) = setup(
        dir.path(),
        "environments:\n  - name: production\n    approval: {required: 1, allowSelfApproval: true}\n",
    );
    let ok = cutover(
        &state,
        &cfg,
        &["apply", v110.to_str().unwrap(), "--dry-run"],
    )
    .stdout(Stdio::null())
    .status()
    .unwrap();
    assert!(ok.success());
    let (mut apply, _lines) = apply_waiting(&state, &cfg);
    let asked = Instant::now();
    let approve = cutover(
        &state,
        &cfg,
        &[
            "approve",
            "my-app-v1.2.0",
            "--gate",
            "canary-50",
            "--comment",
            "ship it",
        ],
    )
    .output()
    .unwrap();
    assert!(approve.status.success(), "{}", text(&approve));
    let (code, _) = finish(&mut apply, Duration::from_secs(10));
    let took = asked.elapsed();
    assert_eq!(code, 0, "the deployment succeeds");
    eprintln!("apply finished {took:?} after `cutover approve` started");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    let audit = cutover(&state, &cfg, &["audit", "--verify"])
        .output()
        .unwrap();
    assert!(audit.status.success(), "{}", text(&audit));
    // Someone edits the approval in the database: the chain names the record, exit 1.
    let db = rusqlite::Connection::open(state.join("cutover.db")).unwrap();
    let seq: i64 = db
        .query_row(
            "SELECT seq FROM audit WHERE action = 'gate.approve' LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    db.execute("UPDATE audit SET actor = 'mallory' WHERE seq = ?1", [seq])
        .unwrap();
    drop(db);
    let audit = cutover(&state, &cfg, &["audit", "--verify"])
        .output()
        .unwrap();
    assert_eq!(audit.status.code(), Some(1), "{}", text(&audit));
    assert!(
        text(&audit).contains(&format!("record {seq} was altered")),
        "{}",
        text(&audit)
    );
    // Promotion refusals explain themselves.
    let p = cutover(
        &state,
        &cfg,
        &[
            "promote",
            "my-app-v1.2.0",
            "--from",
            "staging",
            "--to",
            "production",
        ],
    )
    .output()
    .unwrap();
    assert_eq!(p.status.code(), Some(1));
    assert!(
        text(&p).contains("never been deployed to staging"),
        "{}",
        text(&p)
    );
    let v = cutover(&state, &cfg, &["validate", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(v.status.success(), "{}", text(&v));
}

fn root() -> bool {
    cutover::identity::real_uid() == 0
}

/// OS users and a group made for the test, removed afterwards.
struct Users {
    group: String,
    users: Vec<String>,
}

impl Users {
    fn create(tag: &str) -> Users {
        let group = format!("cotest{tag}");
        let users: Vec<String> = ["alice", "bob"]
            .iter()
            .map(|u| format!("co{u}{tag}"))
            .collect();
        let made = Users {
            group: group.clone(),
            users: users.clone(),
        };
        let ok = Command::new("groupadd").arg(&group).status().unwrap();
        assert!(ok.success(), "groupadd");
        for u in &users {
            let ok = Command::new("useradd")
                .args(["-M", "-N", "-g", &group, "-s", "/bin/sh", u])
                .status()
                .unwrap();
            assert!(ok.success(), "useradd {u}");
        }
        made
    }
}

impl Drop for Users {
    fn drop(&mut self) {
        for u in &self.users {
            let _ = Command::new("userdel").arg(u).status();
        }
        let _ = Command::new("groupdel").arg(&self.group).status();
    }
}

#[test]
fn two_real_os_users_make_the_quorum_and_the_initiator_cannot() {
    if !common::skip::skip_unless(
        root(),
        "governance_cli::two_real_os_users_make_the_quorum_and_the_initiator_cannot",
        "creating OS users needs root (the single-user test still ran)",
    ) {
        return;
    }
    let users = Users::create(&format!("{}", std::process::id() % 100_000));
    let (alice, bob) = (users.users[0].clone(), users.users[1].clone());
    let dir = tempfile::tempdir().unwrap();
    // The team's state dir: group-owned, setgid, group-writable.
    let shared = dir.path().join("team");
    std::fs::create_dir(&shared).unwrap();
    let ok = Command::new("chgrp")
        .arg(&users.group)
        .arg(&shared)
        .status()
        .unwrap();
    assert!(ok.success());
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o2770)).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let config = format!(
        "environments:
  - name: production
    approval:
      approvers: {{users: [{alice}, {bob}, root]}}
      required: 2
      allowSelfApproval: false
"
    );
    let (_, cfg, v110) = setup(dir.path(), &config);
    let state = shared.clone();
    let ok = cutover(
        &state,
        &cfg,
        &[
            "apply",
            v110.to_str().unwrap(),
            "--dry-run",
            "--auto-approve",
        ],
    )
    .stdout(Stdio::null())
    .status()
    .unwrap();
    assert!(ok.success());
    let (mut apply, _lines) = apply_waiting(&state, &cfg);
    let as_user = |user: &str, args: &[&str]| -> Output {
        Command::new("runuser")
            .args(["-u", user, "--", BIN, "--state-dir"])
            .arg(&state)
            .arg("--config")
            .arg(&cfg)
            .args(args)
            .output()
            .unwrap()
    };
    // root started it: not allowed to approve its own deployment.
    let own = cutover(&state, &cfg, &["approve", "my-app-v1.2.0"])
        .output()
        .unwrap();
    assert!(!own.status.success());
    assert!(
        text(&own).contains("root started this deployment"),
        "{}",
        text(&own)
    );
    let a = as_user(
        &alice,
        &["approve", "my-app-v1.2.0", "--comment", "looks good"],
    );
    assert!(a.status.success(), "{}", text(&a));
    assert!(text(&a).contains("1 of 2"), "{}", text(&a));
    let again = as_user(&alice, &["approve", "my-app-v1.2.0"]);
    assert!(!again.status.success());
    assert!(
        text(&again).contains("already approved"),
        "{}",
        text(&again)
    );
    assert!(
        apply.try_wait().unwrap().is_none(),
        "one approval is not enough"
    );
    let asked = Instant::now();
    let b = as_user(&bob, &["approve", "my-app-v1.2.0"]);
    assert!(b.status.success(), "{}", text(&b));
    let (code, _) = finish(&mut apply, Duration::from_secs(10));
    let took = asked.elapsed();
    eprintln!("apply finished {took:?} after bob's `cutover approve` started");
    assert_eq!(code, 0);
    assert!(took < Duration::from_secs(2), "took {took:?}");
    // The audit trail names the real users.
    let audit = cutover(&state, &cfg, &["audit", "--json"])
        .output()
        .unwrap();
    let t = text(&audit);
    for who in [&alice, &bob] {
        assert!(
            t.lines()
                .any(|l| l.contains("\"gate.approve\"")
                    && l.contains(&format!("\"actor\":\"{who}\""))),
            "{who} in:\n{t}"
        );
    }
    assert!(t
        .lines()
        .any(|l| l.contains("\"refused\"") && l.contains("\"actor\":\"root\"")));
    let v = as_user(&alice, &["audit", "--verify"]);
    assert!(v.status.success(), "{}", text(&v));
}

/// A group made for a test, removed afterwards.
struct ExtraGroup(String);

impl Drop for ExtraGroup {
    fn drop(&mut self) {
        let _ = Command::new("groupdel").arg(&self.0).status();
    }
}

#[test]
fn groups_are_the_primary_and_supplementary_ones_from_the_user_database() {
    if !common::skip::skip_unless(
        root(),
        "governance_cli::groups_are_the_primary_and_supplementary_ones_from_the_user_database",
        "creating OS users needs root",
    ) {
        return;
    }
    let users = Users::create(&format!("g{}", std::process::id() % 100_000));
    let (alice, bob) = (users.users[0].clone(), users.users[1].clone());
    let extra = ExtraGroup(format!("{}x", users.group));
    let ok = Command::new("groupadd").arg(&extra.0).status().unwrap();
    assert!(ok.success(), "groupadd");
    let ok = Command::new("usermod")
        .args(["-a", "-G", &extra.0, &alice])
        .status()
        .unwrap();
    assert!(ok.success(), "usermod");
    let mut want = vec![users.group.clone(), extra.0.clone()];
    want.sort();
    assert_eq!(cutover::identity::groups_of(&alice), want);
    assert_eq!(
        cutover::identity::groups_of(&bob),
        vec![users.group.clone()]
    );
}
