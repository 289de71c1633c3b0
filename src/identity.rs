//! Who is operating: the OS user of this process, by real uid.
//!
//! Owns: resolving the real uid to a user name (from /proc and /etc/passwd, no environment
//! variables). Must not touch: permissions or roles.

/// The real uid of this process (Linux), if it can be read.
pub fn real_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The user name for a uid from /etc/passwd.
pub fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let _pw = f.next()?;
        let id: u32 = f.next()?.parse().ok()?;
        (id == uid).then(|| name.to_string())
    })
}

/// The groups a user belongs to: the primary group (from /etc/passwd) and every group that lists
/// them as a member (/etc/group). Directory services behind NSS are not consulted.
pub fn groups_of(user: &str) -> Vec<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
    groups_from(user, &passwd, &group)
}

fn groups_from(user: &str, passwd: &str, group: &str) -> Vec<String> {
    let primary: Option<String> = passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&user)).then(|| f.get(3).map(|g| g.to_string()))?
    });
    let mut out = Vec::new();
    for l in group.lines() {
        let f: Vec<&str> = l.split(':').collect();
        let (Some(name), Some(gid)) = (f.first(), f.get(2)) else {
            continue;
        };
        let members = f.get(3).copied().unwrap_or("");
        let member = members.split(',').any(|m| m.trim() == user);
        if member || primary.as_deref() == Some(*gid) {
            out.push(name.to_string());
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The operator: the OS user name, or `uid:N` when it has no name.
pub fn current_user() -> String {
    match real_uid() {
        Some(uid) => user_name(uid).unwrap_or_else(|| format!("uid:{uid}")),
        None => "unknown".to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn groups_come_from_the_primary_gid_and_memberships() {
        let passwd = "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n";
        let group = "root:x:0:\nalice:x:1000:\nsre:x:2000:bob,alice\ndeployers:x:2001:bob\n";
        assert_eq!(
            super::groups_from("alice", passwd, group),
            vec!["alice", "sre"]
        );
        assert_eq!(
            super::groups_from("bob", passwd, group),
            vec!["deployers", "sre"]
        );
    }

    #[test]
    fn resolves_a_name() {
        let me = super::current_user();
        assert!(!me.is_empty());
        assert_ne!(me, "unknown");
    }
}
