//! Who is operating: the OS user of this process, by real uid.
//!
//! Owns: resolving the real uid to a user name and a user to their groups through libc's name
//! service calls (`getpwuid_r`, `getpwnam_r`, `getgrouplist`, `getgrgid_r`, by way of `uzers`),
//! so users and groups from LDAP, SSSD or any other NSS source count like those in
//! `/etc/passwd` and `/etc/group`. No environment variables. Must not touch: permissions or
//! roles.

/// The real uid of this process (`getuid`, not the effective uid).
pub fn real_uid() -> u32 {
    uzers::get_current_uid()
}

/// The user name for a uid, from the system's user database (NSS).
pub fn user_name(uid: u32) -> Option<String> {
    uzers::get_user_by_uid(uid).map(|u| u.name().to_string_lossy().into_owned())
}

/// The groups a user belongs to, by name, sorted: the primary group and every supplementary
/// group (`getgrouplist`, so directory services behind NSS count). Empty for an unknown user.
pub fn groups_of(user: &str) -> Vec<String> {
    // A name with a NUL byte cannot be looked up (and is refused here, not passed on).
    let Some(u) = uzers::get_user_by_name(user) else {
        return Vec::new();
    };
    let primary = u.primary_group_id();
    // `None` when the lookup fails (or, in uzers, past 1024 groups): the primary group still
    // counts.
    let groups = uzers::get_user_groups(u.name(), primary)
        .unwrap_or_else(|| uzers::get_group_by_gid(primary).into_iter().collect());
    let mut out: Vec<String> = groups
        .iter()
        .map(|g| g.name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The operator: the OS user name, or `uid:N` when it has no name.
pub fn current_user() -> String {
    let uid = real_uid();
    user_name(uid).unwrap_or_else(|| format!("uid:{uid}"))
}

/// This machine's name (as a platform's lease names its holder), `localhost` when unknown.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_a_name() {
        let me = current_user();
        assert!(!me.is_empty());
        assert_ne!(me, "unknown");
    }

    #[test]
    fn the_real_uid_is_the_first_uid_in_proc_status() {
        // Linux: `Uid: real effective saved fs`.
        let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
            return;
        };
        let real = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse::<u32>().ok());
        assert_eq!(Some(real_uid()), real);
    }

    #[test]
    fn root_resolves_through_nss() {
        // Every Unix system has uid 0 and a group of gid 0 for it.
        let root = user_name(0).expect("uid 0 has a name");
        let root_group = uzers::get_group_by_gid(0).expect("gid 0 has a name");
        let groups = groups_of(&root);
        assert!(
            groups.contains(&root_group.name().to_string_lossy().into_owned()),
            "{root}: {groups:?}"
        );
        let mut sorted = groups.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(groups, sorted, "sorted, without duplicates");
    }

    #[test]
    fn the_current_user_has_their_primary_group() {
        let uid = real_uid();
        let Some(name) = user_name(uid) else { return };
        let user = uzers::get_user_by_uid(uid).expect("the user resolves");
        let primary = uzers::get_group_by_gid(user.primary_group_id()).expect("primary group");
        assert!(groups_of(&name).contains(&primary.name().to_string_lossy().into_owned()));
    }

    #[test]
    fn unknown_and_impossible_names_have_no_groups() {
        assert!(groups_of("cutover-no-such-user-7f3a").is_empty());
        assert!(groups_of("root\0wheel").is_empty());
        assert!(groups_of("").is_empty());
        assert_eq!(user_name(u32::MAX - 7), None);
    }
}
