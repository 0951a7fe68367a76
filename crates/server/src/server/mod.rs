//! The edge server: hyper/tokio adapters around the sans-I/O core.
//!
//! - [`http`]: the OCSP endpoint. [`admin`]: health, readiness, metrics.
//! - [`cache_mode`]: the OCSP endpoint of a cache-mode responder ([`crate::cache`]);
//!   [`changes`]: the change feed a hub offers caches.
//! - [`metrics`]: the HTTP adapter's own metrics (requests, latency, connections).
//!
//! The served snapshot, readiness and the directory poller are [`crate::served`]'s;
//! replication [`crate::sync`]'s, which `serve` starts. [`build`] is where a responder is
//! assembled: it creates the one Prometheus registry and hands it to each component,
//! which registers its own metrics; [`Responder`] keeps it for `/metrics`.
//!
//! This module owns sockets, timeouts and connection limits, and must never make a
//! protocol decision (that is [`ocsp_edge_core::responder`]'s).

pub mod admin;
pub mod cache_mode;
pub mod changes;
pub mod documents;
pub mod http;
pub mod metrics;
pub mod peers;
pub mod reply;

use crate::served::State;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use metrics::HttpMetrics;
use ocsp_edge_core::time::UnixTime;
use prometheus::{Encoder, Registry, TextEncoder};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

/// How a shutdown should go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shutdown {
    /// SIGTERM: not ready at once, keep accepting for `server.drain_grace` so load
    /// balancers notice, then stop accepting and let requests finish within
    /// `server.drain_deadline`.
    Graceful,
    /// Stop accepting now; still let in-flight requests finish within the deadline.
    Immediate,
}

/// Binds a listener with SO_REUSEADDR (and SO_REUSEPORT, so a new process can take over
/// the port while the old one drains).
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

/// Raises the open-file limit as far as allowed: each connection is a descriptor.
pub fn raise_file_limit() {
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        tracing::warn!(error = %e, "could not raise the open-file limit");
    }
}

/// A responder as the HTTP adapter serves it: the served state, the adapter's own
/// metrics, and the registry every component registered its metrics into (rendered at
/// `/metrics`). Built by [`build`].
pub struct Responder {
    pub state: Arc<State>,
    metrics: HttpMetrics,
    registry: Registry,
}

impl Responder {
    /// The Prometheus text exposition of every component's metrics, with the
    /// time-dependent gauges brought up to `now` first (what `/metrics` serves).
    pub fn render_metrics(&self, now: UnixTime) -> Vec<u8> {
        self.state.refresh_gauges(now);
        let mut out = Vec::new();
        // Encoding into a Vec only fails on invalid metric data, which we never create.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}

/// Serves until `shutdown` resolves, then drains (see [`Shutdown`]).
pub async fn serve(
    responder: Arc<Responder>,
    listener: TcpListener,
    admin: TcpListener,
    shutdown: impl Future<Output = Shutdown>,
) {
    let state = &responder.state;
    let (stop_tx, stop_rx) = watch::channel(false);
    let poller = tokio::spawn(poll_snapshots(state.clone(), stop_rx.clone()));
    let replication = tokio::spawn(crate::sync::supervise(state.clone(), stop_rx.clone()));
    let feed = state.cache().map(|tier| {
        let feeding = state.clone();
        tokio::spawn(
            tier.clone()
                .run_feed(move || feeding.config().cache.clone(), stop_rx.clone()),
        )
    });
    let graceful = GracefulShutdown::new();
    {
        let ocsp = accept_loop(
            responder.clone(),
            listener,
            &graceful,
            stop_rx.clone(),
            Endpoint::Ocsp,
        );
        let admin = accept_loop(responder.clone(), admin, &graceful, stop_rx, Endpoint::Admin);
        let accepting = async { tokio::join!(ocsp, admin) };
        tokio::pin!(accepting);
        // The accept loops only end when told to; `ended` guards against polling the
        // joined future again after it has completed.
        let mut ended = false;
        let kind = tokio::select! {
            _ = &mut accepting => { ended = true; Shutdown::Immediate }
            kind = shutdown => kind,
        };
        state.start_draining();
        let grace = state.config().server.drain_grace;
        if !ended && kind == Shutdown::Graceful && !grace.is_zero() {
            tracing::info!(
                grace_ms = grace.as_millis() as u64,
                "draining: not ready, still accepting"
            );
            tokio::select! {
                _ = &mut accepting => ended = true,
                _ = tokio::time::sleep(grace) => {}
            }
        }
        let _ = stop_tx.send(true);
        if !ended {
            accepting.await;
        }
    }
    tracing::info!("listeners closed; finishing in-flight requests");
    let deadline = state.config().server.drain_deadline;
    if tokio::time::timeout(deadline, graceful.shutdown()).await.is_err() {
        tracing::warn!("drain deadline passed; closing remaining connections");
    }
    poller.abort();
    replication.abort();
    if let Some(feed) = feed {
        feed.abort();
    }
}

#[derive(Clone, Copy)]
enum Endpoint {
    Ocsp,
    Admin,
}

async fn accept_loop(
    responder: Arc<Responder>,
    listener: TcpListener,
    graceful: &GracefulShutdown,
    mut stop: watch::Receiver<bool>,
    endpoint: Endpoint,
) {
    let limit = Arc::new(Semaphore::new(responder.state.config().server.max_connections));
    loop {
        // Waiting for a permit before accepting leaves excess connections in the kernel's
        // queue instead of exhausting descriptors.
        let permit = tokio::select! {
            permit = limit.clone().acquire_owned() => permit,
            _ = stop.changed() => return,
        };
        let Ok(permit) = permit else { return };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.changed() => return,
        };
        let (stream, peer) = match accepted {
            Ok((stream, peer)) => (stream, peer),
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        match endpoint {
            Endpoint::Ocsp => {
                let handler = responder.clone();
                let service = service_fn(move |request| http::handle(handler.clone(), request));
                spawn_connection(&responder, stream, service, graceful, permit, true);
            }
            Endpoint::Admin => {
                let handler = responder.clone();
                let client = peer.ip();
                let service = service_fn(move |request| admin::handle(handler.clone(), request, client));
                spawn_connection(&responder, stream, service, graceful, permit, false);
            }
        }
    }
}

/// Serves one HTTP/1.1 connection (keep-alive, header-read timeout that also reaps idle
/// connections) under the graceful-shutdown watcher.
fn spawn_connection<S>(
    responder: &Responder,
    stream: tokio::net::TcpStream,
    service: S,
    graceful: &GracefulShutdown,
    permit: tokio::sync::OwnedSemaphorePermit,
    counted: bool,
) where
    S: hyper::service::HttpService<
            hyper::body::Incoming,
            ResBody = http_body_util::Full<bytes::Bytes>,
            Error = std::convert::Infallible,
        > + Send
        + 'static,
    S::Future: Send + 'static,
{
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(responder.state.config().server.header_read_timeout)
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    let connection = graceful.watch(connection);
    let gauge = responder.metrics.connections_open().clone();
    if counted {
        gauge.inc();
    }
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "connection ended with an error");
        }
        if counted {
            gauge.dec();
        }
        drop(permit);
    });
}

/// Polls the snapshot directory until `stop` flips (when there are no replication sources). Each poll runs on the blocking pool:
/// verifying a large snapshot hashes the whole file.
async fn poll_snapshots(state: Arc<State>, mut stop: watch::Receiver<bool>) {
    if state.cache().is_some() {
        return;
    }
    loop {
        tokio::select! {
            _ = tokio::time::sleep(state.config().snapshots.poll_interval) => {}
            _ = stop.changed() => return,
        }
        // With replication sources the directory is this responder's own cache, filled and
        // swapped by `crate::sync`; polling it too would only race with that.
        if !state.config().snapshots.sources.is_empty() {
            continue;
        }
        let polling = state.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || polling.poll_directory(UnixTime::now())).await {
            tracing::error!(error = %e, "snapshot poll task failed");
        }
    }
}

/// Why a responder could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The configuration names something that cannot be used (trust anchors, hubs).
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// Two components registered series of the same name: a defect of this program, never
    /// of its input (the `documented_metrics` tests build every kind of responder).
    #[error("registering metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// Everything `serve` needs, built from a validated [`crate::config::Config`]: the one
/// place a responder's components are assembled, each registering its own metrics into
/// the one registry created here.
pub fn build(config: crate::config::Config) -> Result<Arc<Responder>, BuildError> {
    let trust = config.trust_anchors()?;
    let registry = Registry::new();
    let tier = match &config.cache {
        Some(cache) => {
            let cache_metrics = crate::cache::CacheMetrics::register(&registry)?;
            let tier =
                crate::cache::CacheTier::new(cache, trust.issuers(), cache_metrics).map_err(|problem| {
                    crate::config::ConfigError::Invalid {
                        key: "cache.hubs",
                        problem: problem.to_string(),
                    }
                })?;
            Some(Arc::new(tier))
        }
        None => None,
    };
    let state = State::new(config, trust, &registry, tier)?;
    let metrics = HttpMetrics::register(&registry)?;
    Ok(Arc::new(Responder {
        state: Arc::new(state),
        metrics,
        registry,
    }))
}

/// A server running on its own runtime thread, for tests, benchmarks and the demo.
/// Dropping it shuts the server down and waits for it.
pub struct Background {
    pub ocsp_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub state: Arc<State>,
    responder: Arc<Responder>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Background {
    /// Loads the newest snapshot (if any; none in cache mode), binds both listeners and
    /// starts serving.
    pub fn start(config: crate::config::Config) -> std::io::Result<Background> {
        let responder = build(config).map_err(std::io::Error::other)?;
        let state = responder.state.clone();
        if state.cache().is_none() {
            state.poll_directory(UnixTime::now());
        }
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
        let (listener, admin) = runtime.block_on(async {
            Ok::<_, std::io::Error>((
                bind(state.config().server.listen)?,
                bind(state.config().server.admin_listen)?,
            ))
        })?;
        let (ocsp_addr, admin_addr) = (listener.local_addr()?, admin.local_addr()?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = responder.clone();
        let thread = std::thread::spawn(move || {
            runtime.block_on(serve(serving, listener, admin, async {
                let _ = stopped.await;
                Shutdown::Immediate
            }));
        });
        Ok(Background {
            ocsp_addr,
            admin_addr,
            state,
            responder,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// What `/metrics` would serve now.
    pub fn render_metrics(&self) -> Vec<u8> {
        self.responder.render_metrics(UnixTime::now())
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod documented_metrics;
