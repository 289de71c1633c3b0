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
    fn resolves_a_name() {
        let me = super::current_user();
        assert!(!me.is_empty());
        assert_ne!(me, "unknown");
    }
}
