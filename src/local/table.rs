//! The local host's table in the state store: what the host runs (each revision's spec, replicas
//! and traffic weight), so that a restarted host brings it back and replaces it cleanly.
//!
//! The host writes the whole table from what it holds in memory ([`replace_all`]), so a write
//! that failed (a full disk, a locked store) is made good by the next one that succeeds.
//! `host_instances` adds each instance's process and ports, so that a new host adopts the
//! processes instead of restarting them.
//!
//! Owns: the `host_revisions` and `host_instances` tables, their definitions and queries. The host creates it when it
//! opens the store, if it is missing (state dirs written before this module owned it have it
//! already, from the store's migration 2, which stays as it was). Must not touch: the store's own
//! tables.

use std::collections::BTreeMap;

use rusqlite::params;

use crate::store::{now_ts, Store, StoreError};

/// The table's definition.
const DDL: &str = "CREATE TABLE IF NOT EXISTS host_revisions (
    rev_key    TEXT PRIMARY KEY,
    component  TEXT NOT NULL,
    spec_json  TEXT NOT NULL,
    replicas   INTEGER NOT NULL,
    weight     INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL
)";

/// Each instance's process (added after `host_revisions`; created where missing).
const DDL_INSTANCES: &str = "CREATE TABLE IF NOT EXISTS host_instances (
    instance_id TEXT PRIMARY KEY,
    rev_key     TEXT NOT NULL,
    replica     INTEGER NOT NULL,
    pid         INTEGER,
    ports_json  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
)";

/// An instance the local host runs: its process and ports.
#[derive(Debug, Clone, PartialEq)]
pub struct HostInstance {
    pub instance_id: String,
    pub rev_key: String,
    pub replica: u32,
    pub pid: Option<u32>,
    pub ports: BTreeMap<String, u16>,
}

/// A revision the local host runs.
#[derive(Debug, Clone, PartialEq)]
pub struct HostRevision {
    pub rev_key: String,
    pub component: String,
    pub spec_json: String,
    pub replicas: u32,
    pub weight: u32,
}

/// Create the table if it is missing.
pub fn create(store: &Store) -> Result<(), StoreError> {
    store.with_conn(|c| {
        c.execute_batch(DDL)?;
        c.execute_batch(DDL_INSTANCES)
    })
}

/// Replace what is recorded with `revs` and `instances`, in one transaction.
pub fn replace_all(
    store: &Store,
    revs: &[HostRevision],
    instances: &[HostInstance],
) -> Result<(), StoreError> {
    store.with_conn(|c| {
        let tx = c.unchecked_transaction()?;
        let now = now_ts();
        tx.execute("DELETE FROM host_revisions", [])?;
        for r in revs {
            tx.execute(
                "INSERT INTO host_revisions (rev_key, component, spec_json, replicas, weight, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![r.rev_key, r.component, r.spec_json, r.replicas, r.weight, now],
            )?;
        }
        tx.execute("DELETE FROM host_instances", [])?;
        for i in instances {
            let ports = serde_json::to_string(&i.ports).unwrap_or_else(|_| "{}".into());
            tx.execute(
                "INSERT INTO host_instances (instance_id, rev_key, replica, pid, ports_json, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![i.instance_id, i.rev_key, i.replica, i.pid, ports, now],
            )?;
        }
        tx.commit()
    })
}

/// Every recorded instance.
pub fn instances(store: &Store) -> Result<Vec<HostInstance>, StoreError> {
    store.with_conn(|c| {
        let mut st = c.prepare(
            "SELECT instance_id, rev_key, replica, pid, ports_json FROM host_instances ORDER BY rowid",
        )?;
        let rows = st.query_map([], |r| {
            let ports: String = r.get(4)?;
            Ok(HostInstance {
                instance_id: r.get(0)?,
                rev_key: r.get(1)?,
                replica: r.get(2)?,
                pid: r.get(3)?,
                ports: serde_json::from_str(&ports).unwrap_or_default(),
            })
        })?;
        rows.collect()
    })
}

/// Record a revision (or its new spec and replicas); its weight stays.
pub fn put(
    store: &Store,
    key: &str,
    component: &str,
    spec_json: &str,
    replicas: u32,
) -> Result<(), StoreError> {
    store.with_conn(|c| {
        c.execute(
            "INSERT INTO host_revisions (rev_key, component, spec_json, replicas, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(rev_key) DO UPDATE SET spec_json = ?3, replicas = ?4, updated_at = ?5",
            params![key, component, spec_json, replicas, now_ts()],
        )
        .map(|_| ())
    })
}

/// Record a component's weights (revisions not named get 0).
pub fn set_weights(
    store: &Store,
    component: &str,
    weights: &[(String, u32)],
) -> Result<(), StoreError> {
    store.with_conn(|c| {
        let tx = c.unchecked_transaction()?;
        tx.execute(
            "UPDATE host_revisions SET weight = 0 WHERE component = ?1",
            [component],
        )?;
        for (k, w) in weights {
            tx.execute(
                "UPDATE host_revisions SET weight = ?2 WHERE rev_key = ?1",
                params![k, w],
            )?;
        }
        tx.commit()
    })
}

/// Forget a revision.
pub fn remove(store: &Store, key: &str) -> Result<(), StoreError> {
    store.with_conn(|c| {
        c.execute("DELETE FROM host_revisions WHERE rev_key = ?1", [key])
            .map(|_| ())
    })
}

/// Every recorded revision, oldest first.
pub fn all(store: &Store) -> Result<Vec<HostRevision>, StoreError> {
    store.with_conn(|c| {
        let mut st = c.prepare(
            "SELECT rev_key, component, spec_json, replicas, weight FROM host_revisions ORDER BY rowid",
        )?;
        let rows = st.query_map([], |r| {
            Ok(HostRevision {
                rev_key: r.get(0)?,
                component: r.get(1)?,
                spec_json: r.get(2)?,
                replicas: r.get(3)?,
                weight: r.get(4)?,
            })
        })?;
        rows.collect()
    })
}

/// Forget everything (the host stopped what it ran).
pub fn clear(store: &Store) -> Result<(), StoreError> {
    store.with_conn(|c| {
        c.execute("DELETE FROM host_revisions", [])?;
        c.execute("DELETE FROM host_instances", []).map(|_| ())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_weights_and_removal_round_trip_and_create_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // The store's migration made the table already (state dirs from before this module):
        // creating it again changes nothing.
        create(&store).unwrap();
        create(&store).unwrap();
        put(&store, "web@1.r1", "web", "{}", 2).unwrap();
        put(&store, "web@2.r2", "web", "{}", 1).unwrap();
        put(&store, "api@1.r3", "api", "{}", 1).unwrap();
        set_weights(&store, "web", &[("web@2.r2".into(), 100)]).unwrap();
        put(&store, "web@2.r2", "web", "{\"x\":1}", 3).unwrap();
        let rows = all(&store).unwrap();
        let got: Vec<(&str, u32, u32)> = rows
            .iter()
            .map(|r| (r.rev_key.as_str(), r.replicas, r.weight))
            .collect();
        assert_eq!(
            got,
            [("web@1.r1", 2, 0), ("web@2.r2", 3, 100), ("api@1.r3", 1, 0)]
        );
        assert_eq!(rows[1].spec_json, "{\"x\":1}");
        remove(&store, "web@1.r1").unwrap();
        assert_eq!(all(&store).unwrap().len(), 2);
        clear(&store).unwrap();
        assert!(all(&store).unwrap().is_empty());
    }

    #[test]
    fn a_store_without_the_table_gets_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .with_conn(|c| c.execute_batch("DROP TABLE host_revisions"))
            .unwrap();
        assert!(all(&store).is_err());
        create(&store).unwrap();
        put(&store, "web@1.r1", "web", "{}", 1).unwrap();
        assert_eq!(all(&store).unwrap().len(), 1);
    }

    #[test]
    fn replacing_all_records_revisions_and_instances_and_drops_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        create(&store).unwrap();
        put(&store, "old@1.r1", "old", "{}", 1).unwrap();
        let rev = HostRevision {
            rev_key: "web@1.r1".into(),
            component: "web".into(),
            spec_json: "{}".into(),
            replicas: 2,
            weight: 80,
        };
        let mut ports = BTreeMap::new();
        ports.insert("http".to_string(), 4321u16);
        let inst = HostInstance {
            instance_id: "web@1.r1#0".into(),
            rev_key: "web@1.r1".into(),
            replica: 0,
            pid: Some(77),
            ports,
        };
        replace_all(
            &store,
            std::slice::from_ref(&rev),
            std::slice::from_ref(&inst),
        )
        .unwrap();
        assert_eq!(all(&store).unwrap(), vec![rev]);
        assert_eq!(instances(&store).unwrap(), vec![inst]);
        clear(&store).unwrap();
        assert!(instances(&store).unwrap().is_empty());
    }
}
