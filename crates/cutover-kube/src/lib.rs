//! cutover's Kubernetes driver: what cutover says to an API server, and nothing about rollouts.
//!
//! The engine decides (strategies, analysis, gates, rollbacks) and drives a provider; cutover's
//! `provider::kubernetes` is that provider, and it speaks to the cluster only through this crate:
//! - [`labels`]: the labels and annotations on every object cutover manages;
//! - [`workload`]: what a revision's pods are, in cutover's own terms (no spec types here);
//! - [`manifest`]: the objects (Deployment, Services, HTTPRoute, Lease) built from a workload,
//!   and their YAML for `plan --manifests`;
//! - [`cluster`]: connecting as kubectl does, server-side apply under the field manager
//!   `cutover`, scale, selector switch, delete, and errors that name the cause and the fix;
//! - [`ratio`]: replica counts nearest a canary weight, as Argo Rollouts picks them;
//! - [`health`]: pods watched (not polled) and their failures explained;
//! - [`rollout`]: whether a Deployment rolled out, as `kubectl rollout status` decides;
//! - [`lease`]: one `coordination.k8s.io` Lease per driven component;
//! - `fake` (feature `fake`): an in-process API server on loopback for tests.
//!
//! Must not touch: cutover's spec, store or engine (this crate does not depend on cutover), and
//! no k8s-openapi version feature (the binary chooses one).

pub mod cluster;
pub mod error;
pub mod health;
pub mod labels;
pub mod lease;
pub mod manifest;
pub mod ratio;
pub mod rollout;
pub mod workload;

#[cfg(feature = "fake")]
pub mod fake;

pub use error::KubeError;
/// The kube client, for callers that hand one to this crate (tests, the fake API server).
pub use kube;
