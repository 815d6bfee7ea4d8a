//! Running the engine and its HTTP API until a signal says stop.

use crate::api::{self, ApiState};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::control::{Control, LocalControl};
use crate::engine::Engine;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long in-flight attempts get to finish after SIGINT/SIGTERM.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How often [`Running::shutdown_reporting`] looks at the attempts still running.
const REPORT_EVERY: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    #[error("cannot listen on {addr}: {}", listen_problem(source))]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("HTTP server failed: {0}")]
    Serve(std::io::Error),
}

/// Why a bind failed, in the words an operator searches for
/// ("address already in use") rather than with the OS error number.
fn listen_problem(error: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match error.kind() {
        ErrorKind::AddrInUse => "address already in use".to_string(),
        ErrorKind::AddrNotAvailable => "address not available on this machine".to_string(),
        ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => error.to_string(),
    }
}

/// A running engine with its API listening.
pub struct Running {
    pub engine: Engine,
    /// The engine as the front ends see it.
    pub control: Arc<dyn Control>,
    pub local_addr: std::net::SocketAddr,
    server: tokio::task::JoinHandle<Result<(), std::io::Error>>,
    /// The API's token: cancelled first on shutdown, so that requests being
    /// served finish before the engine stops.
    api_shutdown: CancellationToken,
    /// The redb file whose note names our API; the note goes on a clean
    /// exit. `None` on a PostgreSQL store, which several nodes share and
    /// no file note describes.
    holder_note_of: Option<std::path::PathBuf>,
}

/// The URL a client on this machine reaches an API bound to `addr` at: an
/// unspecified address (listening on all interfaces) is reached on loopback.
pub fn local_api_url(addr: std::net::SocketAddr) -> String {
    let ip = match addr.ip() {
        std::net::IpAddr::V4(v4) if v4.is_unspecified() => {
            std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
        }
        std::net::IpAddr::V6(v6) if v6.is_unspecified() => {
            std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)
        }
        ip => ip,
    };
    format!("http://{}", std::net::SocketAddr::new(ip, addr.port()))
}

/// Starts the engine and binds the API, under a root token of its own.
pub async fn start(config: &Config, clock: SharedClock) -> Result<Running, DaemonError> {
    start_under(config, clock, &CancellationToken::new()).await
}

/// Starts the engine and binds the API, each under a child of `root`:
/// cancelling `root` stops both. Returns once the listener is bound, so the
/// address is known (port 0 picks a free one).
pub async fn start_under(
    config: &Config,
    clock: SharedClock,
    root: &CancellationToken,
) -> Result<Running, DaemonError> {
    let engine = Engine::start_under(config, clock, root.child_token())?;
    serve(config, engine, root).await
}

/// [`start_under`] on a store already opened (tests run it on a store whose
/// power they cut: see [`crate::store::power_cut`]).
#[doc(hidden)]
pub async fn start_on_store(
    config: &Config,
    clock: SharedClock,
    root: &CancellationToken,
    store: crate::store::Store,
) -> Result<Running, DaemonError> {
    let engine = Engine::start_on_store(config, clock, root.child_token(), store)?;
    serve(config, engine, root).await
}

/// Binds the API of a started engine under a child of `root`.
async fn serve(
    config: &Config,
    engine: Engine,
    root: &CancellationToken,
) -> Result<Running, DaemonError> {
    let control: Arc<dyn Control> = Arc::new(LocalControl::new(engine.clone()));
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .map_err(|source| DaemonError::Listen {
            addr: config.server.listen,
            source,
        })?;
    let local_addr = listener.local_addr().map_err(DaemonError::Serve)?;
    let max_connections = config.server.max_connections;
    let api_shutdown = root.child_token();
    let state = ApiState {
        control: control.clone(),
        token: config.server.token.as_deref().map(Arc::from),
        max_body: config.server.max_body,
        shutdown: api_shutdown.clone(),
    };
    let stopped = api_shutdown.clone();
    let app = api::router(state);
    let server = tokio::spawn(async move {
        axum::serve(
            api::listener::BoundedListener::new(listener, max_connections),
            app,
        )
        .with_graceful_shutdown(async move { stopped.cancelled().await })
        .await
    });
    // Only now that the API listens: a TUI that finds the store taken attaches here.
    let holder_note_of = config
        .store
        .url
        .is_none()
        .then(|| config.store.path.clone());
    if let Some(path) = &holder_note_of {
        crate::store::announce_api_url(path, &local_api_url(local_addr));
    }
    Ok(Running {
        engine,
        control,
        local_addr,
        server,
        api_shutdown,
        holder_note_of,
    })
}

impl Running {
    /// Stops accepting requests, lets the ones being served finish (so every event
    /// acknowledged is committed), then gives in-flight attempts `grace` to finish.
    pub async fn shutdown(self, grace: Duration) -> Result<(), DaemonError> {
        self.shutdown_reporting(grace, |_| {}).await
    }

    /// [`Running::shutdown`], calling `report` with the number of attempts
    /// still running each time it changes while the engine waits for them
    /// (first with the count when the wait starts), so a front end can show
    /// what the stop is waiting for.
    pub async fn shutdown_reporting(
        self,
        grace: Duration,
        mut report: impl FnMut(usize),
    ) -> Result<(), DaemonError> {
        self.api_shutdown.cancel();
        let served = tokio::time::timeout(grace, self.server).await;
        let stopping = self.engine.shutdown(grace);
        tokio::pin!(stopping);
        let mut reported = None;
        let finished = loop {
            let running = self.engine.attempts_in_flight();
            if reported != Some(running) {
                report(running);
                reported = Some(running);
            }
            tokio::select! {
                finished = &mut stopping => break finished,
                _ = tokio::time::sleep(REPORT_EVERY) => {}
            }
        };
        if reported != Some(0) && finished {
            report(0);
        }
        if let Some(path) = &self.holder_note_of {
            crate::store::remove_holder_note(path);
        }
        if !finished {
            tracing::warn!("some attempts were still running at shutdown; they will be made again on the next start");
        }
        match served {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(DaemonError::Serve(e)),
            Ok(Err(join)) => Err(DaemonError::Serve(std::io::Error::other(join))),
            Err(_) => {
                tracing::warn!(
                    "HTTP requests still open at the end of the grace period were dropped"
                );
                Ok(())
            }
        }
    }
}

/// SIGINT, SIGTERM and SIGHUP, listened for from the moment this is created:
/// install it before announcing the listen address, so a signal sent right
/// after the announcement is a clean stop and not the default (die by signal,
/// leaving the holder note and a demo's temporary folder behind). SIGHUP is a
/// stop too: it is what a closed terminal or ssh session sends, and hookwatch
/// has no configuration reload for it to mean instead.
pub struct StopSignal {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

impl StopSignal {
    pub fn install() -> std::io::Result<StopSignal> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(StopSignal {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    /// Resolves on the next SIGINT, SIGTERM or SIGHUP.
    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
            _ = self.hangup.recv() => {}
        }
    }

    /// Cancels `root` on the first SIGINT, SIGTERM or SIGHUP: everything running under
    /// it (the API, the engine, the TUI) then stops.
    pub fn cancel_on_signal(mut self, root: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            tokio::select! {
                _ = self.recv() => root.cancel(),
                _ = root.cancelled() => {}
            }
        })
    }
}
