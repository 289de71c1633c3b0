//! The routers' listen sockets: taken over from the previous worker or bound, held by the
//! supervisor, released when a router closes, and left open when handing over.
//!
//! Owns: where a router's socket comes from and the supervisor's copy of it. Must not touch:
//! routing (the router's) or instances.

use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::super::router::Router;
use super::{Host, ROUTER_GRACE, UPSTREAM_TIMEOUT};

impl Host {
    /// A router on `listen` for `component`: on the socket inherited from the previous worker
    /// if there is one for it, else bound here; the supervisor keeps a copy either way.
    pub(super) fn router_for(
        &self,
        component: &str,
        listen: SocketAddr,
    ) -> Result<Arc<Router>, String> {
        let inherited = self
            .inherited
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(component)
            .map(std::net::TcpListener::from)
            .filter(|l| {
                l.local_addr()
                    .is_ok_and(|a| a == listen || listen.port() == 0)
            });
        let adopted = inherited.is_some();
        let listener = match inherited {
            Some(l) => l,
            None => super::super::router::bind(listen)
                .map_err(|e| format!("{component}: cannot listen on {listen}: {e}"))?,
        };
        if let Some(sup) = &self.supervisor {
            sup.hold(component, listener.as_fd());
        }
        let open = !self.recovering.load(Ordering::Relaxed);
        let router = Router::start_on(component, listener, UPSTREAM_TIMEOUT, open)
            .map_err(|e| format!("{component}: cannot serve on {listen}: {e}"))?;
        if adopted {
            tracing::info!(
                "{component}: serving on the inherited socket {}",
                router.listen
            );
        }
        Ok(router)
    }

    /// A router closes: the supervisor drops its copy of the socket.
    pub(super) async fn close_router(&self, component: &str, router: &Router) {
        if let Some(sup) = &self.supervisor {
            sup.release(component);
        }
        router.shutdown(ROUTER_GRACE).await;
    }

    /// Leave everything running to the next worker: close the routers gracefully (their listen
    /// sockets stay open in the supervisor; in-flight requests finish), stop recording after a
    /// last record of what runs.
    pub async fn hand_over(&self) {
        let comps = self.comps.lock().await;
        let routers: Vec<Arc<Router>> = comps.values().map(|c| c.router.clone()).collect();
        drop(comps);
        // All at once: each keeps its open connections for a moment.
        let closing: Vec<_> = routers
            .into_iter()
            .map(|r| tokio::spawn(async move { r.hand_over(ROUTER_GRACE).await }))
            .collect();
        for c in closing {
            let _ = c.await;
        }
        if let Err(e) = self.record().await {
            tracing::error!("cannot record what runs before handing over: {e}");
        }
        *self.recorder.lock().await = true;
    }
}
