//! The `hookwatch` command line: the clap definitions of the whole binary
//! ([`Cli`]), and the subcommands that operate a running hookwatch through its
//! public HTTP API (`cli/ ─▶ RemoteControl ─▶ HTTP API ─▶ Control ─▶ engine`).
//!
//! The definitions live here, in the library, so that the man pages and the
//! shell completions ([`docs`]) are generated from exactly what the binary
//! parses. `main.rs` keeps the runtime wiring of the engine and the TUI and
//! hands every subcommand to [`run`].
//!
//! Exit codes are one vocabulary for every subcommand (see [`Failure`]): 0
//! success, 1 the daemon answered with an error, 2 bad input, 3 no daemon could
//! be reached.

mod bulk;
mod config_check;
mod destinations;
pub mod docs;
mod events;
mod notices;
mod send;
mod status;
mod table;

use crate::config::{Config, ConfigError};
use crate::control::{ControlError, RemoteControl, RemoteControlError};
use crate::model::{EventId, EventState};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// What the man page says under EXIT STATUS, and `--help` after the options.
const EXIT_CODES_HELP: &str = "\
Exit status of the subcommands that operate a running hookwatch:
  0  success
  1  the daemon answered with an error (its message is printed)
  2  bad input (a malformed id or value, a bad config file)
  3  no daemon could be reached at the address tried";

#[derive(Parser, Debug)]
#[command(
    name = "hookwatch",
    version,
    about = "A webhook delivery engine with a durable embedded store",
    after_help = EXIT_CODES_HELP
)]
pub struct Cli {
    /// Config file (default: ./hookwatch.toml, then $XDG_CONFIG_HOME/hookwatch/config.toml).
    #[arg(long, value_name = "PATH", global = true)]
    pub config: Option<PathBuf>,
    /// Run headless, logging to stderr, until SIGINT, SIGTERM or SIGHUP.
    /// (`--url` is refused with it; `HOOKWATCH_URL`, meant for the
    /// subcommands and the TUI, is ignored.)
    #[arg(long)]
    pub daemon: bool,
    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// TUI without any action that changes state.
    #[arg(long)]
    pub read_only: bool,
    /// A temporary store, built-in local receivers and a trickle of events.
    #[arg(long, conflicts_with = "config")]
    pub demo: bool,
    /// The API of the hookwatch to operate or attach to (e.g.
    /// http://127.0.0.1:8686). Without it, the config's server.listen; a TUI
    /// whose store is held by a running hookwatch attaches to that one.
    #[arg(long, value_name = "URL", env = "HOOKWATCH_URL", global = true)]
    pub url: Option<String>,
    /// The API token (default: the config's server.token).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "HOOKWATCH_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub token: Option<String>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// One-screen summary of a running hookwatch: destinations by health,
    /// counts by state, ingest and delivery rates (measured over one second).
    Status(JsonFlag),
    /// List, inspect and act on events.
    #[command(subcommand)]
    Events(EventsCommand),
    /// Send events read as NDJSON from a file or stdin, in batches (one
    /// durable commit each).
    Send(SendArgs),
    /// Bulk retries: start one over a selection, follow or cancel it.
    #[command(subcommand)]
    Bulk(BulkCommand),
    /// List and inspect destinations; pause, resume, enable them.
    #[command(subcommand)]
    Destinations(DestinationsCommand),
    /// Operational notices, newest first: destinations disabled, enabled,
    /// recovered, paused, resumed, lowered by 429 or in retry too long, bulk
    /// jobs finished, store writes failed. `notices ack` acknowledges.
    Notices(NoticesArgs),
    /// Validate the config file and print the effective config (secrets
    /// masked); exit 2 naming the problem when it does not validate.
    CheckConfig(JsonFlag),
    /// Print a shell completion script to stdout.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Measure end-to-end delivery on this machine (see the README's performance section).
    Bench(crate::bench::BenchArgs),
}

/// `hookwatch send`: where the events go and where they come from.
#[derive(Args, Debug, Clone)]
#[command(after_help = "\
Each line is one event in the batch API's shape:
  {\"payload\": {...}, \"topic\": \"order.created\", \"idempotency_key\": \"o-1\", \"content_type\": \"application/json\"}
(only payload is required), or, with --payloads, the JSON payload itself.
A file is checked whole for form before anything is sent: a malformed line is named and nothing
is stored. A line the daemon refuses (a topic no destination subscribes to) is named too; the
batches before its batch are stored by then.")]
pub struct SendArgs {
    /// The destination every event goes to.
    #[arg(value_name = "DESTINATION")]
    pub destination: Option<String>,
    /// Send to every destination subscribed to this topic instead (a line's
    /// own topic, when it has one, wins).
    #[arg(long, value_name = "TOPIC", conflicts_with = "destination")]
    pub topic: Option<String>,
    /// Read from this file instead of stdin (`-` is stdin).
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Each line is a bare JSON payload, not a {"payload": …} object.
    #[arg(long)]
    pub payloads: bool,
    /// Events per request (1 to 1000).
    #[arg(long, value_name = "N", default_value_t = 500)]
    pub batch: usize,
    #[command(flatten)]
    pub output: JsonFlag,
}

impl Cli {
    /// Parses the command line. `HOOKWATCH_URL` is for the subcommands and
    /// the TUI: a `--daemon` or `--demo` runs its own engine, so the variable
    /// (exported for the subcommands, say) is ignored there, while `--url`
    /// typed with them is an error.
    pub fn parse_args() -> Cli {
        use clap::parser::ValueSource;
        use clap::{CommandFactory, FromArgMatches};
        let mut command = Cli::command();
        let matches = command.get_matches_mut();
        let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        if cli.daemon || cli.demo {
            match matches.value_source("url") {
                Some(ValueSource::CommandLine) => {
                    let flag = if cli.daemon { "--daemon" } else { "--demo" };
                    command
                        .error(
                            clap::error::ErrorKind::ArgumentConflict,
                            format!(
                                "the argument '{flag}' cannot be used with '--url <URL>' ({flag} runs its own engine; --url is for operating or attaching to one that runs)"
                            ),
                        )
                        .exit()
                }
                Some(_) => cli.url = None,
                None => {}
            }
        }
        cli
    }
}

/// `--json`: one JSON document in the API's own shapes instead of a table.
#[derive(Args, Debug, Clone, Copy)]
pub struct JsonFlag {
    /// Print one JSON document (the API's shapes) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Which events: the same filter as the API's listing.
#[derive(Args, Debug, Clone, Default)]
pub struct Selection {
    /// Only events for this destination.
    #[arg(long, value_name = "ID")]
    pub destination: Option<String>,
    /// Only events in this state (pending, retrying, delivered, failed,
    /// cancelled, skipped).
    #[arg(long, value_name = "STATE", value_parser = parse_state)]
    pub state: Option<EventState>,
    /// Only events whose topic matches this pattern (`*` any run, `?` one character).
    #[arg(long, value_name = "PATTERN")]
    pub topic: Option<String>,
    /// Only events of destinations with this label (`tenant=acme`, or
    /// `tenant:acme`; several joined by commas must all match).
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_label)]
    pub label: Option<crate::model::LabelSelector>,
}

fn parse_label(text: &str) -> Result<crate::model::LabelSelector, String> {
    crate::model::LabelSelector::parse(text)
}

/// `hookwatch notices [--unacked] [--limit N] [--json]`, or `notices ack`.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct NoticesArgs {
    #[command(subcommand)]
    pub command: Option<NoticesCommand>,
    /// Only notices not acknowledged yet.
    #[arg(long)]
    pub unacked: bool,
    /// How many notices at most (1 to 1000).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..=crate::model::MAX_NOTICE_PAGE as i64))]
    pub limit: u16,
    #[command(flatten)]
    pub output: JsonFlag,
}

#[derive(Subcommand, Debug)]
pub enum NoticesCommand {
    /// Acknowledge notices: the ones named, or every one with --all.
    Ack {
        #[arg(value_name = "ID", required_unless_present = "all", value_parser = parse_notice_id)]
        ids: Vec<crate::model::NoticeId>,
        /// Acknowledge every notice.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
        #[command(flatten)]
        output: JsonFlag,
    },
}

fn parse_notice_id(text: &str) -> Result<crate::model::NoticeId, String> {
    text.parse::<crate::model::NoticeId>()
        .map_err(|_| format!("\"{text}\" is not a notice id (a 26-character ULID)"))
}

#[derive(Subcommand, Debug)]
pub enum EventsCommand {
    /// The newest events first, filtered.
    List {
        #[command(flatten)]
        selection: Selection,
        /// How many events at most (1 to 1000).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..=crate::engine::MAX_PAGE as i64))]
        limit: u16,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// One event with its payload and every attempt.
    Show {
        #[arg(value_parser = parse_event_id)]
        id: EventId,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// One attempt now for each event, whatever its schedule; waits for the outcomes.
    Retry(EventIds),
    /// Stop the events' automatic retries.
    Mute(EventIds),
    /// Restart the events' automatic cycle. A delivered event is refused
    /// unless --resend is given.
    Requeue {
        /// Also requeue delivered events: the receiver is sent them again, and
        /// the attempt is recorded as a resend.
        #[arg(long)]
        resend: bool,
        #[command(flatten)]
        ids: EventIds,
    },
}

/// The events an action applies to, one by one.
#[derive(Args, Debug)]
pub struct EventIds {
    #[arg(value_name = "ID", required = true, value_parser = parse_event_id)]
    pub ids: Vec<EventId>,
    #[command(flatten)]
    pub output: JsonFlag,
}

#[derive(Subcommand, Debug)]
pub enum BulkCommand {
    /// Retry every event of a selection now, as one job (give at least one filter).
    Retry {
        #[command(flatten)]
        selection: Selection,
        /// Follow the job with a progress bar until it ends; Ctrl-C asks
        /// whether to cancel it.
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Every running bulk job and the last 100 finished ones, newest first
    /// (jobs are stored: they survive restarts, and a running one resumes).
    List {
        #[command(flatten)]
        output: JsonFlag,
    },
    /// A bulk job's progress (also `bulk show`).
    #[command(visible_alias = "show")]
    Status {
        job: String,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Cancel a bulk job (attempts already started finish).
    Cancel {
        job: String,
        #[command(flatten)]
        output: JsonFlag,
    },
}

#[derive(Subcommand, Debug)]
pub enum DestinationsCommand {
    /// Every destination with its source, labels, health and counts.
    List {
        /// Only destinations with this label (`tenant=acme`, or
        /// `tenant:acme`; several joined by commas must all match).
        #[arg(long, value_name = "KEY=VALUE", value_parser = parse_label)]
        label: Option<crate::model::LabelSelector>,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// One destination in full (header credentials masked).
    Show(DestinationId),
    /// Create a destination through the API: it is kept in the store and
    /// survives restarts. Either the id and URL with flags, or `--from-file`.
    Create(CreateDestination),
    /// Replace a destination created through the API with the definition in
    /// a file (its live edits are dropped).
    Replace {
        id: String,
        /// A TOML file holding one destination in the config file's shape:
        /// one `[[destinations]]` table, or its keys at the top level.
        #[arg(long, value_name = "PATH")]
        from_file: PathBuf,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Delete a destination created through the API: its owed events
    /// (pending, retrying) are cancelled with reason destination_deleted and
    /// stay readable. Destinations of the config file are removed by editing it.
    Delete {
        id: String,
        /// Instead of cancelling, take no new events and delete the
        /// destination once its owed events have finished.
        #[arg(long)]
        drain: bool,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Hold the destination's deliveries (events keep being accepted).
    Pause(DestinationId),
    /// Deliver to a paused destination again.
    Resume(DestinationId),
    /// Deliver to a destination that was disabled (by a 404/410, say) again.
    Enable(DestinationId),
}

#[derive(Args, Debug)]
pub struct DestinationId {
    pub id: String,
    #[command(flatten)]
    pub output: JsonFlag,
}

/// `destinations create`: the definition from flags, or from a file. The
/// daemon validates it exactly as it validates the config file (`--url` stays
/// the daemon's address, so the destination's URL is positional).
#[derive(Args, Debug)]
pub struct CreateDestination {
    /// The new destination's id (letters, digits, `-`, `_`, `.`; up to 128 bytes).
    #[arg(required_unless_present = "from_file")]
    pub id: Option<String>,
    /// Where its events are sent (http or https).
    #[arg(value_name = "DESTINATION_URL", required_unless_present = "from_file")]
    pub destination_url: Option<String>,
    /// Labels, `key=value` (several joined by commas, or repeat the flag).
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub labels: Vec<crate::model::LabelSelector>,
    /// Signing secret (`whsec_` then base64); repeat to sign with several.
    #[arg(long = "secret", value_name = "SECRET")]
    pub secrets: Vec<String>,
    /// A topic pattern it subscribes to (`*` any run, `?` one character);
    /// repeat for several.
    #[arg(long = "topic", value_name = "GLOB")]
    pub topics: Vec<String>,
    /// Attempts at once.
    #[arg(long, value_name = "N")]
    pub concurrency: Option<u32>,
    /// Time allowed for one attempt (e.g. 10s).
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// A TOML file holding the destination in the config file's shape: one
    /// `[[destinations]]` table, or its keys at the top level.
    #[arg(
        long,
        value_name = "PATH",
        conflicts_with_all = ["id", "destination_url", "labels", "secrets", "topics", "concurrency", "timeout"]
    )]
    pub from_file: Option<PathBuf>,
    #[command(flatten)]
    pub output: JsonFlag,
}

fn parse_event_id(text: &str) -> Result<EventId, String> {
    text.parse::<EventId>()
        .map_err(|_| format!("\"{text}\" is not an event id (a 26-character ULID)"))
}

fn parse_state(text: &str) -> Result<EventState, String> {
    text.parse::<EventState>()
}

/// Why a subcommand did not succeed; each kind has its exit code.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The daemon answered with an error (exit 1).
    #[error("{0}")]
    Daemon(Box<ControlError>),
    /// Some of several actions failed; each was reported already (exit 1).
    #[error("{failed} of {total} failed")]
    Partly { failed: usize, total: usize },
    /// A value given on the command line is not usable (exit 2).
    #[error("{0}")]
    BadInput(String),
    #[error("config error: {0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    BadUrl(#[from] RemoteControlError),
    /// Nothing answered at the address (exit 3). The error names the base
    /// URL and the cause in a few words, as in every front end.
    #[error("{0}")]
    Unreachable(Box<ControlError>),
    /// A second Ctrl-C while `bulk retry --wait` asked whether to cancel: the
    /// job goes on, unfollowed (exit 130, as for any interrupted command).
    #[error("stopped following; job {job} goes on (hookwatch bulk status {job})")]
    Interrupted { job: String },
    /// Writing the output failed (exit 1).
    #[error("cannot write the output: {0}")]
    Output(#[source] std::io::Error),
}

pub const EXIT_DAEMON_ERROR: u8 = 1;
pub const EXIT_BAD_INPUT: u8 = 2;
pub const EXIT_UNREACHABLE: u8 = 3;
/// 128 + SIGINT, what shells report for a command stopped by Ctrl-C.
pub const EXIT_INTERRUPTED: u8 = 130;

impl Failure {
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Daemon(_) | Failure::Partly { .. } | Failure::Output(_) => EXIT_DAEMON_ERROR,
            Failure::BadInput(_) | Failure::Config(_) | Failure::BadUrl(_) => EXIT_BAD_INPUT,
            Failure::Unreachable(_) => EXIT_UNREACHABLE,
            Failure::Interrupted { .. } => EXIT_INTERRUPTED,
        }
    }
}

/// A running hookwatch as the subcommands reach it.
pub(crate) struct Daemon {
    pub control: RemoteControl,
    /// The base URL, for messages.
    pub url: String,
}

impl Daemon {
    /// The failure a [`ControlError`] from this daemon stands for: no answer at
    /// all is [`Failure::Unreachable`], anything else the daemon's own answer.
    pub fn failure(&self, error: ControlError) -> Failure {
        match error {
            error @ ControlError::Unreachable { .. } => Failure::Unreachable(Box::new(error)),
            other => Failure::Daemon(Box::new(other)),
        }
    }
}

/// Runs one subcommand to its end; the exit code says how it went.
pub fn run(cli: &Cli, command: &Command) -> ExitCode {
    let outcome = match command {
        Command::Bench(args) => {
            return match crate::bench::run(args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("hookwatch bench: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Command::Completions { shell } => {
            docs::write_completions(*shell, &mut std::io::stdout()).map_err(Failure::Output)
        }
        Command::CheckConfig(output) => config_check::run(cli.config.as_deref(), *output),
        remote => run_remote(cli, remote),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("hookwatch: {failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}

/// The subcommands that talk to a running hookwatch, on a runtime of their own.
fn run_remote(cli: &Cli, command: &Command) -> Result<(), Failure> {
    let daemon = connect(cli)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::BadInput(format!("cannot start the async runtime: {e}")))?;
    let outcome = runtime.block_on(async {
        match command {
            Command::Status(output) => status::run(&daemon, *output).await,
            Command::Events(events) => events::run(&daemon, events).await,
            Command::Bulk(bulk) => bulk::run(&daemon, bulk).await,
            Command::Destinations(destinations) => destinations::run(&daemon, destinations).await,
            Command::Notices(args) => notices::run(&daemon, args).await,
            Command::Send(args) => send::run(&daemon, args).await,
            Command::Bench(_) | Command::Completions { .. } | Command::CheckConfig(_) => {
                unreachable!("handled by run() without a daemon")
            }
        }
    });
    // Not waiting for a blocking read of the terminal that an interrupted
    // question may have left behind.
    runtime.shutdown_background();
    outcome
}

/// The address and token: `--url`/`HOOKWATCH_URL` and `--token`/
/// `HOOKWATCH_TOKEN` first, else the config's `server.listen` and
/// `server.token` (the config is loaded only when one of them is needed).
fn connect(cli: &Cli) -> Result<Daemon, Failure> {
    let config = if cli.url.is_none() || cli.token.is_none() {
        Some(Config::load(cli.config.as_deref())?)
    } else {
        None
    };
    let url = match (&cli.url, &config) {
        (Some(url), _) => url.clone(),
        (None, Some(config)) => listen_url(config.server.listen),
        (None, None) => unreachable!("the config is loaded when --url is not given"),
    };
    let token = cli
        .token
        .clone()
        .or_else(|| config.and_then(|config| config.server.token));
    let control = RemoteControl::new(&url, token)?;
    Ok(Daemon {
        url: control
            .base_url()
            .as_str()
            .trim_end_matches('/')
            .to_string(),
        control,
    })
}

/// The URL a client uses for a listen address: a server listening on every
/// interface (`0.0.0.0`, `::`) is reached on loopback.
fn listen_url(listen: std::net::SocketAddr) -> String {
    let ip = match listen.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => {
            std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
        }
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => {
            std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)
        }
        ip => ip,
    };
    format!("http://{}", std::net::SocketAddr::new(ip, listen.port()))
}

/// Writes `text` to stdout in one go. A closed pipe (`| head`) is not an
/// error: the reader has what it wanted.
fn print(text: &str) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Failure::Output(e)),
        _ => Ok(()),
    }
}

/// Prints one JSON document.
fn print_json(value: &impl serde::Serialize) -> Result<(), Failure> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|e| Failure::Output(std::io::Error::other(e)))?;
    text.push('\n');
    print(&text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn a_server_on_every_interface_is_reached_on_loopback() {
        assert_eq!(
            listen_url("0.0.0.0:8686".parse().unwrap()),
            "http://127.0.0.1:8686"
        );
        assert_eq!(
            listen_url("[::]:9000".parse().unwrap()),
            "http://[::1]:9000"
        );
        assert_eq!(
            listen_url("10.0.0.5:8686".parse().unwrap()),
            "http://10.0.0.5:8686"
        );
    }

    #[test]
    fn bad_ids_and_states_are_refused_by_the_parser() {
        let error = Cli::try_parse_from(["hookwatch", "events", "show", "nope"]).unwrap_err();
        assert!(error.to_string().contains("is not an event id"), "{error}");
        assert_eq!(error.exit_code(), 2);
        let error =
            Cli::try_parse_from(["hookwatch", "events", "list", "--state", "lost"]).unwrap_err();
        assert!(error.to_string().contains("unknown state"), "{error}");
        let error =
            Cli::try_parse_from(["hookwatch", "events", "list", "--limit", "0"]).unwrap_err();
        assert_eq!(error.exit_code(), 2);
    }
}
