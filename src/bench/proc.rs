//! The engine as a child process (`hookwatch --daemon`), and what the
//! operating system says about its CPU time and memory (rusage, /proc).

use super::{setup, BenchError};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub(super) struct EngineProcess {
    child: Child,
    pub(super) addr: SocketAddr,
}

impl EngineProcess {
    /// `HOOKWATCH_BENCH_ENGINE_PREFIX` (e.g. `perf record -g -o engine.perf --`)
    /// runs the engine under a profiler; everything else stays the same.
    pub(super) fn start(exe: &Path, config: &Path) -> Result<EngineProcess, BenchError> {
        let prefix: Vec<String> = std::env::var("HOOKWATCH_BENCH_ENGINE_PREFIX")
            .map(|p| p.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        let mut command = match prefix.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(exe);
                command
            }
            None => Command::new(exe),
        };
        let mut child = command
            .args(["--daemon", "--config"])
            .arg(config)
            .env("RUST_LOG", "warn,hookwatch=info")
            // The bench measures its own redb store (its config names it);
            // a PostgreSQL URL exported for the operator's daemon would
            // conflict with that path and stop the engine before it listens.
            .env_remove(crate::config::STORE_URL_ENV)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(setup)?;
        let stderr = child.stderr.take().expect("piped stderr");
        let (found, wait) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stderr);
            let mut line = String::new();
            let mut told = false;
            while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                if !told {
                    if let Some(at) = line.find("listening on http://") {
                        let rest = &line[at + "listening on http://".len()..];
                        let addr: String = rest
                            .chars()
                            .take_while(|c| !c.is_whitespace() && *c != '"')
                            .collect();
                        if let Ok(addr) = addr.parse::<SocketAddr>() {
                            let _ = found.send(addr);
                            told = true;
                        }
                    }
                }
                line.clear();
            }
        });
        match wait.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => Ok(EngineProcess { child, addr }),
            Err(_) => {
                let _ = child.kill();
                Err(BenchError::Setup(
                    "the engine did not start listening within 60 s".into(),
                ))
            }
        }
    }

    pub(super) fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// SIGTERM, then wait; returns the child's CPU time and peak RSS from rusage.
    pub(super) fn stop(mut self) -> Result<ChildUsage, BenchError> {
        let before = children_usage();
        // SAFETY: kill(2) takes plain integers and touches no memory of ours; the
        // pid is our own child, not yet waited for, so it cannot name a reused pid.
        unsafe {
            libc::kill(self.pid(), libc::SIGTERM);
        }
        self.child.wait().map_err(setup)?;
        let after = children_usage();
        Ok(ChildUsage {
            cpu: after.cpu.saturating_sub(before.cpu),
            peak_rss_kb: after.peak_rss_kb,
        })
    }
}

impl Drop for EngineProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(super) struct ChildUsage {
    pub(super) cpu: Duration,
    pub(super) peak_rss_kb: u64,
}

pub(super) fn children_usage() -> ChildUsage {
    // SAFETY: rusage is a plain C struct of integers and timevals, for which
    // all-zero bytes are a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage(2) writes one rusage through a pointer to a live, properly
    // aligned local of exactly that type.
    unsafe {
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
    }
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    ChildUsage {
        cpu: time(usage.ru_utime) + time(usage.ru_stime),
        peak_rss_kb: usage.ru_maxrss as u64,
    }
}

/// user+system CPU of a live process, from /proc.
pub(super) fn process_cpu(pid: i32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // SAFETY: sysconf(3) takes an integer name and reads no memory of ours.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 here.
    Duration::from_millis((ticks(11) + ticks(12)) * 1000 / per_second)
}

/// Resident set size of a live process, in MB.
pub(super) fn process_rss_mb(pid: i32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}
