//! The names cutover writes on the objects it manages: labels to select them, annotations that
//! let `cutover status` and `cutover rollback` on another machine see and restore what runs.
//!
//! Owns: these names and the short revision hash in object names. Must not touch: the objects.

use sha2::{Digest, Sha256};

/// The field manager of every server-side apply.
pub const FIELD_MANAGER: &str = "cutover";

/// `app.kubernetes.io/managed-by: cutover` on everything cutover created.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// The component's id (selects every revision of it: the stable Service's selector).
pub const COMPONENT: &str = "cutover.dev/component";
/// The version a revision runs.
pub const VERSION: &str = "cutover.dev/version";
/// The revision's short hash (selects one revision: preview, active and per-revision Services).
pub const REVISION: &str = "cutover.dev/revision";
/// The deployment (spec id) that owns the revision.
pub const DEPLOYMENT: &str = "cutover.dev/deployment";

/// Annotations (values are free text, so not labels).
pub mod annotations {
    /// cutover's revision key (unique in its state store).
    pub const REVISION_KEY: &str = "cutover.dev/revision-key";
    /// The run that last wrote the object (`ID#N`).
    pub const RUN: &str = "cutover.dev/run";
    /// The plan step that last wrote the object.
    pub const STEP: &str = "cutover.dev/step";
    /// Weights asked, as `revision=percent,...`.
    pub const WEIGHTS: &str = "cutover.dev/weights";
    /// The replicas a revision runs at full size (the replica-ratio canary scales below it).
    pub const FULL_REPLICAS: &str = "cutover.dev/full-replicas";
    /// The cutover version that wrote the object.
    pub const CUTOVER_VERSION: &str = "cutover.dev/cutover-version";
    /// The previous revision a run replaces (what a rollback restores).
    pub const PREVIOUS: &str = "cutover.dev/previous-revision";
    /// The environment the deployment targets.
    pub const ENVIRONMENT: &str = "cutover.dev/environment";
    /// The version a revision runs, as the spec writes it (the label is DNS-safe).
    pub const VERSION: &str = "cutover.dev/version";
    /// When a revision that served was replaced (RFC 3339): kept at 0 replicas, for a rollback.
    pub const RETIRED: &str = "cutover.dev/retired";
    /// On a Deployment cutover did not create: the deployment that adopted it as its baseline.
    pub const ADOPTED_BY: &str = "cutover.dev/adopted-by";
    /// A revision taken off service by a rollback: never a rollback target.
    pub const ROLLED_BACK: &str = "cutover.dev/rolled-back";
}

/// Whether cutover manages `object` (its `app.kubernetes.io/managed-by` label says `cutover`):
/// what cutover may write over, and what it may not take over.
pub fn is_managed(object: &serde_json::Value) -> bool {
    object
        .pointer("/metadata/labels")
        .and_then(|l| l.get(MANAGED_BY))
        .and_then(serde_json::Value::as_str)
        == Some(FIELD_MANAGER)
}

/// A short, stable hash of a revision key: 10 lowercase hex characters (DNS-label safe).
pub fn short_hash(revision_key: &str) -> String {
    let digest = Sha256::digest(revision_key.as_bytes());
    digest.iter().take(5).map(|b| format!("{b:02x}")).collect()
}

/// A DNS-1123 label from free text: lowercase alphanumerics and '-', at most `max` characters,
/// starting and ending with an alphanumeric ("x" if nothing is left).
pub fn dns_label(text: &str, max: usize) -> String {
    let mut s: String = text
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() {
                c
            } else {
                '-'
            }
        })
        .collect();
    s.truncate(max);
    let s = s.trim_matches('-').to_string();
    if s.is_empty() {
        "x".into()
    } else {
        s
    }
}

/// The Deployment name of one revision of a component: `<component>-<hash>` (≤ 63 characters).
pub fn revision_name(component: &str, revision_key: &str) -> String {
    format!("{}-{}", dns_label(component, 52), short_hash(revision_key))
}

/// A label value from free text: at most 63 of `[A-Za-z0-9-_.]`, alphanumeric at both ends.
pub fn label_value(text: &str) -> String {
    let mut s: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    s.truncate(63);
    s.trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dns_labels() {
        let n = revision_name("Payment_API", "shop-payment-2.1.0-7");
        assert!(n.starts_with("payment-api-"));
        assert_eq!(n.len(), "payment-api-".len() + 10);
        assert_eq!(short_hash("a"), short_hash("a"));
        assert_ne!(short_hash("a"), short_hash("b"));
        assert_eq!(dns_label("--", 10), "x");
        assert!(revision_name(&"a".repeat(100), "k").len() <= 63);
    }

    #[test]
    fn label_values_are_valid() {
        assert_eq!(label_value("2.1.0+build/7"), "2.1.0_build_7");
        assert_eq!(label_value("-v1-"), "v1");
        assert!(label_value(&"x".repeat(80)).len() <= 63);
    }
}
