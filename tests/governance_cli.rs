//! Approvals across processes and OS users: a running `apply` waits at a gate, and `cutover
//! approve` in other processes decides it through the store. As root, the approvers are two real
//! OS users created by the test, sharing a group-owned state dir.

#[allow(dead_code)]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use common::{root, seed_spec, start_until_gate, v110, wait_exit, Users, BIN};

/// Production with a gate anyone may pass alone, the initiator too.
const SELF_APPROVAL: &str =
    "environments:\n  - name: production\n    approval: {required: 1, allowSelfApproval: true}\n";

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

/// `approvals` and `approve` agree on a gate whose run has no live driver: an apply killed with
/// SIGKILL at its gate leaves the gate row, which `approvals` lists apart, saying why nobody can
/// decide it and what to do, in text and JSON; `approve` refuses it.
#[test]
fn approvals_lists_the_gate_of_a_killed_apply_apart_from_the_ones_approve_can_decide() {
    let dir = tempfile::tempdir().unwrap();
    let (state, cfg, v110) = setup(dir.path(), SELF_APPROVAL);
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
    let pid = i64::from(apply.id());
    let json = |args: &[&str]| -> Vec<serde_json::Value> {
        let o = cutover(&state, &cfg, args).output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let live = json(&["approvals", "--json"]);
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(live[0]["driver_alive"], true, "{live:?}");
    assert_eq!(live[0]["owner_pid"].as_i64(), Some(pid), "{live:?}");
    assert!(live[0].get("next").is_none(), "{live:?}");
    let t = text(&cutover(&state, &cfg, &["approvals"]).output().unwrap());
    assert!(
        t.contains("cutover approve my-app-v1.2.0#2 --gate canary-50")
            && !t.contains("live driver"),
        "{t}"
    );

    apply.kill().unwrap(); // SIGKILL at the gate
    apply.wait().unwrap();
    let orphan = json(&["approvals", "--json"]);
    assert_eq!(orphan.len(), 1, "{orphan:?}");
    let o = &orphan[0];
    assert_eq!(
        (&o["deployment"], &o["gate"], &o["driver_alive"]),
        (&"my-app-v1.2.0".into(), &"canary-50".into(), &false.into()),
        "{o}"
    );
    assert!(
        o["problem"]
            .as_str()
            .is_some_and(|p| p.contains(&format!("process {pid}")) && p.contains("no live driver")),
        "{o}"
    );
    assert_eq!(
        o["next"],
        serde_json::json!([
            "cutover resume my-app-v1.2.0#2",
            "cutover rollback my-app-v1.2.0#2"
        ])
    );
    let t = cutover(&state, &cfg, &["approvals"]).output().unwrap();
    let t = text(&t);
    assert!(t.contains("no gates are waiting"), "{t}");
    assert!(t.contains("gates of runs with no live driver"), "{t}");
    assert!(
        t.contains("my-app-v1.2.0 run #2 1.2.0 in production: gate canary-50"),
        "{t}"
    );
    assert!(t.contains("cutover resume my-app-v1.2.0#2"), "{t}");
    assert!(t.contains("cutover rollback my-app-v1.2.0#2"), "{t}");
    assert!(!t.contains("cutover approve"), "not offered: {t}");
    // approve agrees: it refuses.
    let a = cutover(&state, &cfg, &["approve", "my-app-v1.2.0"])
        .output()
        .unwrap();
    assert_eq!(a.status.code(), Some(1), "{}", text(&a));
    assert!(
        text(&a).contains("no cutover process runs it"),
        "{}",
        text(&a)
    );
    // Rolled back, the gate is gone from both lists.
    let rb = cutover(&state, &cfg, &["rollback", "my-app-v1.2.0"])
        .output()
        .unwrap();
    assert!(rb.status.success(), "{}", text(&rb));
    assert!(json(&["approvals", "--json"]).is_empty());
}

/// Rewrite the audit chain from its second record as a writer of the database could: edit one
/// record and recompute every hash after it, and the head row.
fn rebuild_chain(state: &Path) {
    use cutover::store::audit::{hash, GENESIS};
    let records = cutover::store::Store::open(state).unwrap().audit().unwrap();
    assert!(records.len() >= 3, "{records:?}");
    let db = rusqlite::Connection::open(state.join("cutover.db")).unwrap();
    let mut prev = GENESIS.to_string();
    for mut r in records {
        if r.seq == 2 {
            r.entry.actor = "mallory".into();
        }
        let h = hash(&prev, r.seq, &r.ts, &r.entry);
        db.execute(
            "UPDATE audit SET actor = ?2, prev_hash = ?3, hash = ?4 WHERE seq = ?1",
            rusqlite::params![r.seq, r.entry.actor, prev, h],
        )
        .unwrap();
        db.execute(
            "UPDATE audit_head SET hash = ?2 WHERE seq = ?1",
            rusqlite::params![r.seq, h],
        )
        .unwrap();
        prev = h;
    }
}

#[test]
fn an_audit_head_kept_outside_the_database_catches_a_rebuilt_chain() {
    let dir = tempfile::tempdir().unwrap();
    let (state, cfg, v110) = setup(dir.path(), SELF_APPROVAL);
    let run = |args: &[&str]| {
        let mut c = cutover(&state, &cfg, args);
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        common::run_within(c, args, Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}"))
    };
    for spec in [v110.clone(), seed_spec("canary.yaml")] {
        let o = run(&[
            "apply",
            spec.to_str().unwrap(),
            "--dry-run",
            "--auto-approve",
        ]);
        assert_eq!(o.code(), 0, "{}", o.explain());
    }
    let head = run(&["audit", "--head"]);
    assert_eq!(head.code(), 0, "{}", head.explain());
    let kept = head.stdout.trim().to_string();
    let (seq, hash) = kept
        .split_once(':')
        .unwrap_or_else(|| panic!("SEQ:HASH: {kept}"));
    assert!(seq.parse::<i64>().unwrap() >= 3, "{kept}");
    assert_eq!(hash.len(), 64, "{kept}");
    let j = run(&["audit", "--head", "--json"]);
    let j: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(j["anchor"], kept.as_str(), "{j}");
    for anchor in [kept.as_str(), hash] {
        let v = run(&["audit", "--verify", "--head", anchor]);
        assert_eq!(v.code(), 0, "{}", v.explain());
    }
    // More records after the anchor do not disturb it.
    let o = run(&[
        "apply",
        v110.to_str().unwrap(),
        "--dry-run",
        "--auto-approve",
    ]);
    assert_eq!(o.code(), 0, "{}", o.explain());
    let v = run(&["audit", "--verify", "--head", &kept]);
    assert_eq!(v.code(), 0, "{}", v.explain());

    rebuild_chain(&state);
    let plain = run(&["audit", "--verify"]);
    assert_eq!(
        plain.code(),
        0,
        "the rebuilt chain is consistent: {}",
        plain.explain()
    );
    let v = run(&["audit", "--verify", "--head", &kept]);
    assert_eq!(v.code(), 1, "{}", v.explain());
    assert!(
        v.explain()
            .contains(&format!("record {seq} does not carry the anchored hash")),
        "{}",
        v.explain()
    );
    let v = run(&["audit", "--verify", "--json", "--head", hash]);
    assert_eq!(v.code(), 1, "{}", v.explain());
    let j: serde_json::Value = serde_json::from_str(&v.stdout).unwrap();
    assert_eq!(j["verified"], false, "{j}");
    assert!(
        j["problem"].as_str().unwrap().contains("no record carries"),
        "{j}"
    );
    // The same check without --verify; a malformed anchor is bad input.
    let v = run(&["audit", "--head", &kept]);
    assert_eq!(v.code(), 1, "{}", v.explain());
    for bad in ["not-a-hash", "x:abc", &format!("{seq}:{}", &hash[..60])] {
        let v = run(&["audit", "--verify", "--head", bad]);
        assert_eq!(v.code(), 2, "{bad}: {}", v.explain());
    }
    // A chain that does not verify gives no head to keep.
    let db = rusqlite::Connection::open(state.join("cutover.db")).unwrap();
    db.execute("UPDATE audit SET actor = 'eve' WHERE seq = 1", [])
        .unwrap();
    drop(db);
    let v = run(&["audit", "--head"]);
    assert_eq!(v.code(), 1, "{}", v.explain());
    assert!(
        v.stdout.contains("BROKEN: record 1 was altered"),
        "{}",
        v.explain()
    );
}
