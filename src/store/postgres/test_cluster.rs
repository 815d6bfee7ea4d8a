//! A throwaway PostgreSQL cluster for tests: `initdb` in a temp directory,
//! started on a free loopback port with its socket in that directory, as the
//! `postgres` user when we are root (the server refuses to run as root).
//! Dropping it stops the server (`pg_ctl stop -m immediate`) and removes the
//! directory.
//!
//! Each [`TestCluster`] is its own server: a test starts one (about a second
//! with `initdb --no-sync`) and makes the databases it needs with
//! [`TestCluster::create_database`]. A test binary whose tests each want a
//! fresh database rather than a server of their own shares one server with
//! [`TestCluster::for_this_process`], which a watcher process stops when the
//! test process ends (a static is never dropped).
//!
//! Without PostgreSQL installed, [`TestCluster::start`] prints how to install
//! it and answers `None` (the test skips), except under `CI`, where it panics.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A running throwaway cluster.
pub struct TestCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    /// Run the server's tools as `postgres` (we are root).
    as_postgres: bool,
}

/// How a missing PostgreSQL is installed, for the skip note.
const INSTALL_NOTE: &str =
    "PostgreSQL is not installed, so the PostgreSQL store tests are skipped; \
     install it (Debian/Ubuntu: `apt-get install postgresql`) to run them \
     (they start their own throwaway cluster; initdb and pg_ctl are looked for on PATH \
     and in /usr/lib/postgresql/*/bin)";

impl TestCluster {
    /// Starts a fresh cluster, or answers `None` after a note when
    /// PostgreSQL is not installed (panics instead when `CI` is set).
    /// Panics when PostgreSQL is installed but the cluster cannot start.
    pub fn start() -> Option<TestCluster> {
        let Some(bin) = find_bin_dir() else {
            if std::env::var_os("CI").is_some() {
                panic!("{INSTALL_NOTE}; CI requires them");
            }
            eprintln!("note: {INSTALL_NOTE}");
            return None;
        };
        // SAFETY: geteuid has no preconditions.
        let as_postgres = unsafe { libc::geteuid() } == 0;
        let dir = tempfile::Builder::new()
            .prefix("hookwatch-pg-")
            .tempdir()
            .expect("temp dir for the test cluster");
        if as_postgres {
            chown_to_postgres(dir.path());
        }
        let mut cluster = TestCluster {
            dir,
            bin,
            port: 0,
            as_postgres,
        };
        cluster.init();
        // A free port can be taken by another test between our look and the
        // server's bind: try a few.
        let mut last = None;
        for _ in 0..5 {
            cluster.port = free_port();
            match cluster.start_server() {
                Ok(()) => {
                    cluster.create_database("hookwatch");
                    return Some(cluster);
                }
                Err(output) => last = Some(output),
            }
        }
        panic!(
            "the test PostgreSQL cluster did not start: {}\n{}",
            last.unwrap_or_default(),
            std::fs::read_to_string(cluster.log_path()).unwrap_or_default()
        );
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// A command running `tool` of the cluster's PostgreSQL, as `postgres`
    /// when we are root.
    fn tool(&self, tool: &str) -> Command {
        let program = self.bin.join(tool);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    fn init(&self) {
        let output = self
            .tool("initdb")
            .arg("-D")
            .arg(self.data_dir())
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "--encoding=UTF8",
                "--locale=C",
            ])
            .output()
            .expect("run initdb");
        if !output.status.success() {
            panic!("initdb failed: {}", describe(&output));
        }
    }

    fn start_server(&self) -> Result<(), String> {
        // fsync stays on: the tests are about what is durable.
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        let output = self
            .tool("pg_ctl")
            .arg("start")
            .arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.log_path())
            .args(["-w", "-t", "60", "-o", &options])
            .output()
            .map_err(|e| e.to_string())?;
        if output.status.success() {
            Ok(())
        } else {
            Err(describe(&output))
        }
    }

    /// The loopback port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `name` on this cluster (trust auth: no password).
    pub fn url_of(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// The URL of the database every cluster starts with (`hookwatch`).
    pub fn url(&self) -> String {
        self.url_of("hookwatch")
    }

    /// Creates database `name` and answers its URL.
    pub fn create_database(&self, name: &str) -> String {
        let output = self
            .tool("createdb")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .arg(name)
            .output()
            .expect("run createdb");
        if !output.status.success() {
            panic!("createdb {name} failed: {}", describe(&output));
        }
        self.url_of(name)
    }

    /// Stops the server at once (as a crash would); the data stays until the
    /// cluster is dropped.
    pub fn stop(&self) {
        let _ = self
            .tool("pg_ctl")
            .arg("stop")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "immediate", "-w"])
            .output();
    }

    /// One cluster for the whole test process, started on first use and
    /// stopped when the process ends however it ends (a failed test, ^C,
    /// SIGKILL): a watcher process in its own process group reads a pipe
    /// whose only writer is this process, and at end of file (the kernel
    /// closes the pipe when we are gone) stops the server and removes its
    /// directory. A static is never dropped, so `Drop` could not do it.
    /// `None` (after the note) when PostgreSQL is not installed, as
    /// [`TestCluster::start`]; make a database per test with
    /// [`TestCluster::create_database`].
    pub fn for_this_process() -> Option<&'static TestCluster> {
        static SHARED: std::sync::OnceLock<Option<ProcessCluster>> = std::sync::OnceLock::new();
        SHARED
            .get_or_init(|| {
                let cluster = TestCluster::start()?;
                let watcher = cluster.stop_at_process_exit();
                Some(ProcessCluster {
                    cluster,
                    _watcher: watcher,
                })
            })
            .as_ref()
            .map(|shared| &shared.cluster)
    }

    /// Starts the watcher of [`TestCluster::for_this_process`]; the child it
    /// answers holds the write end of the watcher's pipe, so it must be kept
    /// for the life of the process (it is never waited for: it outlives us).
    fn stop_at_process_exit(&self) -> std::process::Child {
        use std::os::unix::process::CommandExt;
        let mut stop = self.tool("pg_ctl");
        stop.arg("stop")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "immediate", "-w"]);
        let mut watcher = Command::new("sh");
        watcher
            .arg("-c")
            .arg(r#"cat >/dev/null; dir=$1; shift; "$@" >/dev/null 2>&1; rm -rf "$dir""#)
            .arg("hookwatch-pg-watcher")
            .arg(self.dir.path())
            .arg(stop.get_program())
            .args(stop.get_args())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            // Its own group, so a ^C to the test run does not end it
            // before it has stopped the server.
            .process_group(0);
        // The pipe's write end (the child's `stdin`, kept in it) is
        // close-on-exec: the daemons a test spawns do not hold it open.
        watcher.spawn().expect("start the test cluster's watcher")
    }

    /// Starts the server again after [`TestCluster::stop`], on the same port.
    pub fn restart(&self) {
        if let Err(e) = self.start_server() {
            panic!("the test PostgreSQL cluster did not start again: {e}");
        }
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        self.stop();
        // The TempDir removes the directory (we are root, or its owner).
    }
}

/// The cluster of [`TestCluster::for_this_process`] and the pipe that keeps
/// its watcher waiting.
struct ProcessCluster {
    cluster: TestCluster,
    _watcher: std::process::Child,
}

fn describe(output: &Output) -> String {
    format!(
        "{}{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The directory holding `initdb` and `pg_ctl`: on PATH, else the newest
/// `/usr/lib/postgresql/*/bin` (Debian's packages do not put them on PATH).
fn find_bin_dir() -> Option<PathBuf> {
    let has_tools = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(path) = std::env::var_os("PATH") {
        if let Some(dir) = std::env::split_paths(&path).find(|dir| has_tools(dir)) {
            // A link on PATH (to Debian's directory, say) leads to the
            // directory holding the other tools (createdb) too.
            return std::fs::canonicalize(dir.join("initdb"))
                .ok()
                .and_then(|initdb| initdb.parent().map(Path::to_path_buf))
                .filter(|real| real.join("createdb").is_file())
                .or(Some(dir));
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            has_tools(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// Gives `dir` to the `postgres` user, whose server and tools write in it.
fn chown_to_postgres(dir: &Path) {
    // SAFETY: getpwnam is given a NUL-terminated name; the record it answers
    // is read at once, before any other call could reuse it.
    let (uid, gid) = unsafe {
        let entry = libc::getpwnam(c"postgres".as_ptr());
        if entry.is_null() {
            panic!("PostgreSQL is installed but there is no `postgres` user to run it as");
        }
        ((*entry).pw_uid, (*entry).pw_gid)
    };
    std::os::unix::fs::chown(dir, Some(uid), Some(gid)).expect("chown the test cluster's dir");
}

/// A loopback port nothing listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}
