//! The `hookwatch` binary: parses the command line, loads the config, and runs the
//! engine headless (`--daemon`) or under the terminal UI; subcommands are
//! handed to `hookwatch::cli`.

use hookwatch::cli::{Cli, LogFormat};
use hookwatch::clock::SystemClock;
use hookwatch::config::Config;
use hookwatch::daemon;
use hookwatch::engine::EngineError;
use hookwatch::store::StoreError;
use std::process::ExitCode;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// glibc's allocator spent about a tenth of the engine's CPU under load (HTTP
/// buffers, records); mimalloc is markedly cheaper for these small, short-lived
/// allocations across threads.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The blocking pool's size (see where the runtime is built).
const BLOCKING_THREADS: usize = 32;

/// Exit code for bad input (config, store file): the operator must fix something.
const EXIT_BAD_INPUT: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse_args();
    let _ = color_eyre::install();
    // A file-size limit (RLIMIT_FSIZE) must fail the write that crosses it, which
    // the store survives, rather than kill the process with SIGXFSZ.
    // SAFETY: setting a signal's disposition to SIG_IGN installs no handler code,
    // so nothing can run in signal context; it happens before any thread that
    // could also change dispositions is started.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    raise_open_file_limit();
    if let Some(command) = &cli.command {
        return hookwatch::cli::run(&cli, command);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Store reads run on the blocking pool. tokio's default of 512
        // threads lets a burst of reads (10,000 dispatchers looking at their
        // due index at start) grow hundreds of threads, each keeping its own
        // stack and allocator heap; a few dozen keep 2 cores busy and queue
        // the rest.
        .max_blocking_threads(BLOCKING_THREADS)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hookwatch: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = if cli.demo {
        runtime.block_on(run_demo(&cli))
    } else {
        let config = match Config::load(cli.config.as_deref()) {
            Ok(config) => config,
            Err(e) => {
                eprintln!("hookwatch: config error: {e}");
                return ExitCode::from(EXIT_BAD_INPUT);
            }
        };
        runtime.block_on(run(&cli, config))
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(RunError::BadInput(message)) => {
            eprintln!("hookwatch: {message}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
        Err(RunError::Other(report)) => {
            eprintln!("hookwatch: {report:#}");
            ExitCode::FAILURE
        }
    }
}

enum RunError {
    BadInput(String),
    Other(color_eyre::Report),
}

impl From<daemon::DaemonError> for RunError {
    fn from(error: daemon::DaemonError) -> Self {
        match error {
            daemon::DaemonError::Engine(EngineError::Store(store)) => {
                RunError::BadInput(store.to_string())
            }
            // A port in use or an address not ours: the operator's to fix.
            listen @ daemon::DaemonError::Listen { .. } => RunError::BadInput(listen.to_string()),
            other => RunError::Other(color_eyre::Report::new(other)),
        }
    }
}

/// Runs the engine and its API, headless (`--daemon`) or under the TUI. One root
/// token: SIGINT/SIGTERM cancel it, and the API, the engine, the TUI and the
/// demo's trickle each run under a child of it.
async fn run(cli: &Cli, config: Config) -> Result<(), RunError> {
    if let Some(url) = &cli.url {
        let attachment = hookwatch::tui::Attachment {
            pid: None,
            url: url.clone(),
        };
        return attach(cli, &config, attachment)
            .await
            .map_err(|e| e.into_run_error(format!("cannot attach to {url}"), ""));
    }
    init_logging(cli, &config);
    let root = CancellationToken::new();
    let stop = daemon::StopSignal::install().map_err(|e| RunError::Other(e.into()))?;
    let running = match daemon::start_under(&config, Arc::new(SystemClock), &root).await {
        Ok(running) => running,
        // Another hookwatch holds the store: the TUI shows that one instead.
        Err(daemon::DaemonError::Engine(EngineError::Store(
            locked @ StoreError::Locked { .. },
        ))) if !cli.daemon => {
            drop(stop);
            return attach_to_holder(cli, &config, locked).await;
        }
        Err(e) => return Err(e.into()),
    };
    let _signals = stop.cancel_on_signal(root.clone());
    if let Some(resolved) = &config.server.listen_resolved_from {
        tracing::info!(
            "server.listen {resolved}; listening on {}",
            running.local_addr
        );
    }
    tracing::info!(
        config = %config.source,
        store = %config.store.describe(),
        destinations = running.engine.destination_count(),
        "listening on http://{}",
        running.local_addr
    );
    if cli.daemon {
        root.cancelled().await;
        tracing::info!("stopping: no new requests; letting attempts in flight finish");
        running.shutdown(daemon::SHUTDOWN_GRACE).await?;
        tracing::info!("stopped");
        return Ok(());
    }
    let info = hookwatch::tui::TuiInfo {
        listen: running.local_addr,
        store: config.store.describe(),
        config_source: config.source.clone(),
        read_only: cli.read_only,
        attached: None,
    };
    let shown = hookwatch::tui::run(running.control.clone(), info, root.child_token()).await;
    root.cancel();
    // The terminal is back; say what the stop waits for instead of nothing.
    let mut notice = hookwatch::tui::QuitNotice::on_stdout(daemon::SHUTDOWN_GRACE);
    let stopped = running
        .shutdown_reporting(daemon::SHUTDOWN_GRACE, |n| notice.show(n))
        .await;
    notice.finish();
    stopped?;
    shown.map_err(RunError::Other)
}

/// Why the TUI could not attach to a running hookwatch.
#[derive(Debug, thiserror::Error)]
enum AttachError {
    #[error(transparent)]
    Client(#[from] hookwatch::control::RemoteControlError),
    #[error("it did not answer within {}s", ATTACH_PROBE.as_secs())]
    Silent,
    #[error(transparent)]
    Refused(#[from] hookwatch::control::ControlError),
    #[error("the terminal UI failed: {0:#}")]
    Tui(color_eyre::Report),
    #[error("cannot listen for signals: {0}")]
    Signals(#[from] std::io::Error),
}

impl AttachError {
    /// Not attaching at all is the operator's to fix (exit 2, like a store
    /// that cannot be opened); a TUI that failed once attached is not. No
    /// answer at all is said as every front end says it ("cannot reach
    /// hookwatch at URL: connection refused"), after `context`.
    fn into_run_error(self, tried: String, context: &str) -> RunError {
        match self {
            AttachError::Tui(report) => RunError::Other(report),
            AttachError::Refused(
                unreachable @ hookwatch::control::ControlError::Unreachable { .. },
            ) => RunError::BadInput(format!("{context}{unreachable}")),
            other => RunError::BadInput(format!("{tried}: {other}")),
        }
    }
}

/// How long the running hookwatch gets to answer a first read before the TUI
/// gives up attaching (a daemon that is up answers at once).
const ATTACH_PROBE: std::time::Duration = std::time::Duration::from_secs(5);

/// The store is held by another process: attach to it when its note says
/// where its API listens, else fail saying what was tried.
async fn attach_to_holder(cli: &Cli, config: &Config, locked: StoreError) -> Result<(), RunError> {
    let note = hookwatch::store::read_holder_note(&config.store.path).unwrap_or_default();
    let Some(url) = note.url else {
        return Err(RunError::BadInput(format!(
            "{locked}; its note ({}.pid) does not say where its API listens, so the TUI \
             cannot attach to it (attach with --url http://HOST:PORT)",
            config.store.path.display()
        )));
    };
    let attachment = hookwatch::tui::Attachment {
        pid: note.pid,
        url: url.clone(),
    };
    attach(cli, config, attachment).await.map_err(|e| {
        e.into_run_error(
            format!("{locked}; attaching to it at {url} failed"),
            &format!("{locked}; "),
        )
    })
}

/// Runs the TUI against the hookwatch at `attachment.url` through its HTTP API,
/// after one read shows it answers (so a wrong URL fails at once, not in the TUI).
async fn attach(
    cli: &Cli,
    config: &Config,
    attachment: hookwatch::tui::Attachment,
) -> Result<(), AttachError> {
    use hookwatch::control::{Control, RemoteControl};
    let token = cli.token.clone().or_else(|| config.server.token.clone());
    let control = RemoteControl::new(&attachment.url, token)?;
    tokio::time::timeout(ATTACH_PROBE, control.destinations())
        .await
        .map_err(|_| AttachError::Silent)??;
    let root = CancellationToken::new();
    let stop = daemon::StopSignal::install()?;
    let _signals = stop.cancel_on_signal(root.clone());
    let info = hookwatch::tui::TuiInfo {
        listen: config.server.listen,
        store: config.store.describe(),
        config_source: config.source.clone(),
        read_only: cli.read_only,
        attached: Some(attachment),
    };
    let shown = hookwatch::tui::run(Arc::new(control), info, root.child_token()).await;
    root.cancel();
    shown.map_err(AttachError::Tui)
}

async fn run_demo(cli: &Cli) -> Result<(), RunError> {
    let (config, _receivers) = hookwatch::demo::start_demo()
        .await
        .map_err(|e| RunError::Other(color_eyre::Report::new(e)))?;
    init_logging(cli, &config);
    let root = CancellationToken::new();
    let stop = daemon::StopSignal::install().map_err(|e| RunError::Other(e.into()))?;
    let running = daemon::start_under(&config, Arc::new(SystemClock), &root).await?;
    let _signals = stop.cancel_on_signal(root.clone());
    let trickle = hookwatch::demo::spawn_trickle(running.control.clone(), root.child_token());
    tracing::info!(
        "demo listening on http://{}, store {} (a temporary folder, removed when the demo stops)",
        running.local_addr,
        config.store.path.display()
    );
    let result = if cli.daemon {
        root.cancelled().await;
        Ok(())
    } else {
        let info = hookwatch::tui::TuiInfo {
            listen: running.local_addr,
            store: config.store.describe(),
            config_source: config.source.clone(),
            read_only: cli.read_only,
            attached: None,
        };
        hookwatch::tui::run(running.control.clone(), info, root.child_token())
            .await
            .map_err(RunError::Other)
    };
    root.cancel();
    let _ = trickle.await;
    running.shutdown(daemon::SHUTDOWN_GRACE).await?;
    result
}

/// Headless, logs go to stderr. Under the TUI they would garble the screen, so
/// they go to `hookwatch.log` beside the store instead.
fn init_logging(cli: &Cli, config: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let to_file = !cli.daemon;
    let writer = if to_file {
        let path = config
            .store
            .path
            .parent()
            .unwrap_or_else(|| std::path::Path::new("."))
            .join("hookwatch.log");
        let _ = path.parent().map(std::fs::create_dir_all);
        match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
        {
            Ok(file) => tracing_subscriber::fmt::writer::BoxMakeWriter::new(Arc::new(file)),
            Err(_) => tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::io::sink),
        }
    } else {
        tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::io::stderr)
    };
    let ansi = !to_file && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi);
    let _ = match cli.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Every API connection and every delivery connection is a file descriptor; the
/// usual soft limit (1024) is lower than the connections we allow, so raise it
/// to the hard limit, as servers do.
fn raise_open_file_limit() {
    // Best effort: with the usual limit the daemon still works, only with fewer
    // connections at once; logging is not set up yet, so there is no one to tell.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
}
