//! The Kubernetes provider: cutover's revisions as Deployments, Services and HTTPRoutes, driven
//! through the `cutover-kube` crate.

pub mod workload;
