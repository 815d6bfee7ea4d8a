//! The `hookwatch` binary: parses the command line, loads the config, and runs the
//! engine headless (`--daemon`) or under the terminal UI.

use clap::{Parser, Subcommand, ValueEnum};
use hookwatch::clock::SystemClock;
use hookwatch::config::Config;
use hookwatch::daemon;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser, Debug)]
#[command(
    name = "hookwatch",
    version,
    about = "A webhook delivery engine with a durable embedded store"
)]
struct Cli {
    /// Config file (default: ./hookwatch.toml, then $XDG_CONFIG_HOME/hookwatch/config.toml).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Run headless, logging to stderr, until SIGINT or SIGTERM.
    #[arg(long)]
    daemon: bool,
    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Measure end-to-end delivery on this machine (see the README's performance section).
    Bench(hookwatch::bench::BenchArgs),
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
enum LogFormat {
    Text,
    Json,
}

/// Exit code for bad input (config, store file): the operator must fix something.
const EXIT_BAD_INPUT: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _ = color_eyre::install();
    if let Some(Command::Bench(args)) = &cli.command {
        return match hookwatch::bench::run(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("hookwatch bench: {e}");
                ExitCode::FAILURE
            }
        };
    }
    init_logging(cli.log_format);
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("hookwatch: config error: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hookwatch: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run_headless(config)) {
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
        use hookwatch::engine::EngineError;
        match error {
            daemon::DaemonError::Engine(EngineError::Store(store)) => {
                RunError::BadInput(store.to_string())
            }
            other => RunError::Other(color_eyre::Report::new(other)),
        }
    }
}

async fn run_headless(config: Config) -> Result<(), RunError> {
    let running = daemon::start(&config, Arc::new(SystemClock)).await?;
    tracing::info!(
        config = %config.source,
        store = %config.store.path.display(),
        destinations = config.destinations.len(),
        "listening on http://{}",
        running.local_addr
    );
    daemon::stop_signal().await;
    tracing::info!("stopping: no new requests; letting attempts in flight finish");
    running.shutdown(daemon::SHUTDOWN_GRACE).await?;
    tracing::info!("stopped");
    Ok(())
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
