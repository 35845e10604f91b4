//! `ConductorProcess`: a real `conductor` binary started and killed by tests.
//!
//! The binaries are found beside the running test executable (`target/<profile>/deps/..`),
//! as ripgrep's tests find `rg`, so `cargo build --workspace --bins` must run first. Each
//! conductor logs to a file in its own temp dir; the log is printed when a test panics while
//! the process handle is alive, so a failing test shows what the daemon saw.

use std::fs::File;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod cli;
pub use cli::{
    baton, baton_with_env, check_resumed_once, get_job, is_complete, post_job, succeeded_tasks, task_executions,
    wait_job, BatonOutput, BatonRun, BATON_DEADLINE,
};

/// Errors of the harness are reported, not recovered from: a boxed error is enough.
pub type HarnessError = Box<dyn std::error::Error + Send + Sync>;
/// Result of a harness call.
pub type HarnessResult<T> = Result<T, HarnessError>;

/// How long a conductor may take to start serving before the harness gives up.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stopped conductor may take to exit before the harness gives up.
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);
/// How many bytes of a conductor's log to print on failure (the end is what matters).
const LOG_TAIL_BYTES: u64 = 16 * 1024;

/// The directory that holds the workspace binaries, from the running test executable.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("cannot locate the test executable: {e}"));
    // target/<profile>/deps/<test>-<hash> -> target/<profile>
    let deps = exe.parent().expect("the test executable lives in a directory");
    let dir = if deps.ends_with("deps") { deps.parent().unwrap_or(deps) } else { deps };
    dir.to_path_buf()
}

/// The path of a workspace binary, or a panic that says how to build it.
pub fn bin_path(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    if !path.is_file() {
        panic!(
            "{} not found: build the binaries first: cargo build --workspace --bins (with the same CARGO_TARGET_DIR and profile as the tests)",
            path.display()
        );
    }
    path
}

/// Where a conductor keeps its jobs.
#[derive(Clone, Debug)]
pub enum Board {
    /// A shared etcd, under a key prefix of the test's own.
    Etcd { endpoint: String, prefix: String },
    /// The embedded board in a data directory (kept by the caller, so a restart finds it).
    Embedded { data_dir: PathBuf },
}

/// Everything needed to start (and restart) one conductor.
#[derive(Clone, Debug)]
pub struct ConductorConfig {
    pub board: Board,
    pub name: String,
    pub lease_ttl: Duration,
    pub max_jobs: Option<usize>,
    /// Further flags, passed as they are.
    pub extra_args: Vec<String>,
    /// Environment set for the process after the harness's own (`NOTIFY_SOCKET`, `RUST_LOG=trace`, ...).
    pub env: Vec<(String, String)>,
    /// The daemon binary: `demo_conductor` (the library with the Rust demo flows) unless set,
    /// `conductor` (the stock binary, flow files only), or another built on the library.
    pub binary: &'static str,
    /// Where `binary` is taken from: `bin_dir()` unless set (a benchmark's build of older code).
    pub bin_dir: Option<PathBuf>,
}

impl ConductorConfig {
    /// A conductor on etcd with the given name and lease TTL.
    pub fn etcd(endpoint: &str, prefix: &str, name: &str, lease_ttl: Duration) -> Self {
        Self {
            board: Board::Etcd { endpoint: endpoint.to_string(), prefix: prefix.to_string() },
            name: name.to_string(),
            lease_ttl,
            max_jobs: None,
            extra_args: Vec::new(),
            env: Vec::new(),
            binary: "demo_conductor",
            bin_dir: None,
        }
    }

    /// A conductor on the embedded board in `data_dir`.
    pub fn embedded(data_dir: &Path, name: &str) -> Self {
        Self {
            board: Board::Embedded { data_dir: data_dir.to_path_buf() },
            name: name.to_string(),
            lease_ttl: Duration::from_secs(10),
            max_jobs: None,
            extra_args: Vec::new(),
            env: Vec::new(),
            binary: "demo_conductor",
            bin_dir: None,
        }
    }

    /// The same settings with a job limit.
    pub fn with_max_jobs(mut self, max_jobs: usize) -> Self {
        self.max_jobs = Some(max_jobs);
        self
    }
}

/// A running `conductor` process. Killed (SIGKILL) on drop if still running.
pub struct ConductorProcess {
    config: ConductorConfig,
    child: Child,
    listen: SocketAddr,
    log_path: PathBuf,
    /// Holds the log file's directory until the process handle goes away.
    _log_dir: tempfile::TempDir,
    exited: Option<ExitStatus>,
}

impl ConductorProcess {
    /// Starts a conductor on a free port and waits until `baton conductors` lists it.
    pub fn start(config: &ConductorConfig) -> HarnessResult<Self> {
        Self::start_waiting(config, true)
    }

    /// Starts a conductor on a free port and waits only until its gRPC port accepts: for a
    /// conductor whose board is not there yet (it serves its API while it waits for it).
    pub fn spawn(config: &ConductorConfig) -> HarnessResult<Self> {
        Self::start_waiting(config, false)
    }

    fn start_waiting(config: &ConductorConfig, registered: bool) -> HarnessResult<Self> {
        // A port released by the probe can be taken by someone else before the conductor
        // binds it; a conductor that exits at once is retried on another port.
        let mut last_error: Option<HarnessError> = None;
        for _ in 0..3 {
            match Self::start_once(config, registered) {
                Ok(process) => return Ok(process),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| "conductor did not start".into()))
    }

    fn start_once(config: &ConductorConfig, registered: bool) -> HarnessResult<Self> {
        let listen = free_local_addr()?;
        let log_dir = tempfile::Builder::new().prefix("baton-conductor-log-").tempdir()?;
        let log_path = log_dir.path().join(format!("{}.log", config.name));
        let log = File::create(&log_path)?;
        let mut command = conductor_command(config.binary, config.bin_dir.as_deref());
        command
            .arg("--listen")
            .arg(listen.to_string())
            .arg("--name")
            .arg(&config.name)
            .arg("--lease-ttl")
            .arg(duration_flag(config.lease_ttl));
        match &config.board {
            Board::Etcd { endpoint, prefix } => {
                command.arg("--etcd").arg(endpoint).arg("--prefix").arg(prefix);
            }
            Board::Embedded { data_dir } => {
                command.arg("--data-dir").arg(data_dir);
            }
        }
        if let Some(max_jobs) = config.max_jobs {
            command.arg("--max-jobs").arg(max_jobs.to_string());
        }
        command.args(&config.extra_args);
        // No BATON_* from the developer's shell may change what the test started.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("BATON_") {
                command.env_remove(key);
            }
        }
        command.env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_string()));
        command.envs(config.env.iter().map(|(k, v)| (k, v)));
        let child = command.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log).spawn()?;
        let mut process = Self { config: config.clone(), child, listen, log_path, _log_dir: log_dir, exited: None };
        process.wait_ready(registered)?;
        Ok(process)
    }

    /// Starts a new process with the same settings (same name, board and data dir).
    pub fn restart(&self) -> HarnessResult<Self> {
        Self::start(&self.config)
    }

    /// The gRPC endpoint URL, for `baton --endpoint`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.listen)
    }

    /// The name it registered under.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The OS process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The log so far (stdout and stderr together).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// SIGKILL, then reaps the process.
    pub fn kill(&mut self) -> HarnessResult<()> {
        if self.exited.is_some() {
            return Ok(());
        }
        self.child.kill()?;
        self.exited = Some(self.child.wait()?);
        Ok(())
    }

    /// Sends SIGTERM without waiting; see [`Self::wait_exit`].
    pub fn send_sigterm(&self) -> HarnessResult<()> {
        send_signal(self.child.id(), libc::SIGTERM)
    }

    /// Waits (bounded) for the process to exit and returns its status.
    pub fn wait_exit(&mut self) -> HarnessResult<ExitStatus> {
        if let Some(status) = self.exited {
            return Ok(status);
        }
        let deadline = Instant::now() + EXIT_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                self.exited = Some(status);
                return Ok(status);
            }
            if Instant::now() > deadline {
                return Err(format!("conductor {} did not exit within {EXIT_TIMEOUT:?}", self.name()).into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then waits for the exit status.
    pub fn terminate(&mut self) -> HarnessResult<ExitStatus> {
        self.send_sigterm()?;
        self.wait_exit()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        if self.exited.is_some() {
            return false;
        }
        match self.child.try_wait() {
            Ok(Some(status)) => {
                self.exited = Some(status);
                false
            }
            Ok(None) => true,
            Err(_) => false,
        }
    }

    /// Resident memory in KiB, from `/proc/PID/status` (VmRSS).
    pub fn rss_kib(&self) -> HarnessResult<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let line = status.lines().find(|line| line.starts_with("VmRSS:")).ok_or("no VmRSS line in /proc/PID/status")?;
        let kib = line.split_whitespace().nth(1).ok_or("empty VmRSS line")?.parse::<u64>()?;
        Ok(kib)
    }

    /// Waits until the gRPC port accepts and, if `registered`, `baton conductors` lists this conductor.
    fn wait_ready(&mut self, registered: bool) -> HarnessResult<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        while TcpStream::connect_timeout(&self.listen, Duration::from_millis(200)).is_err() {
            self.check_alive()?;
            if Instant::now() > deadline {
                return Err(self.start_failure("its gRPC port never accepted"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if !registered {
            return Ok(());
        }
        loop {
            self.check_alive()?;
            let out = baton(&self.endpoint(), ["conductors"]);
            if out.success() {
                if let Ok(Value::Array(conductors)) = out.json() {
                    let listed = conductors.iter().any(|c| c["name"].as_str() == Some(self.name()));
                    if listed {
                        return Ok(());
                    }
                }
            }
            if Instant::now() > deadline {
                return Err(self.start_failure("`baton conductors` never listed it"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn check_alive(&mut self) -> HarnessResult<()> {
        if self.is_running() {
            Ok(())
        } else {
            Err(self.start_failure("it exited"))
        }
    }

    fn start_failure(&self, what: &str) -> HarnessError {
        format!("conductor {} did not start: {what}; its log:\n{}", self.name(), self.log_tail()).into()
    }

    fn log_tail(&self) -> String {
        let Ok(mut file) = File::open(&self.log_path) else {
            return String::from("(no log)");
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let skip = len.saturating_sub(LOG_TAIL_BYTES);
        let mut bytes = Vec::new();
        if std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(skip)).is_err()
            || file.read_to_end(&mut bytes).is_err()
        {
            return String::from("(unreadable log)");
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl Drop for ConductorProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("----- log of conductor {} (pid {}) -----\n{}", self.name(), self.pid(), self.log_tail());
        }
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `conductor` started so that it dies with the thread that started it (`setpriv
/// --pdeathsig KILL`, when util-linux has it): a test binary that aborts leaves no daemon
/// claiming jobs behind. Tests start and drop their conductors on one thread.
fn conductor_command(binary: &str, dir: Option<&Path>) -> Command {
    let conductor = match dir {
        Some(dir) => dir.join(binary),
        None => bin_path(binary),
    };
    if Path::new(SETPRIV).is_file() {
        let mut command = Command::new(SETPRIV);
        command.arg("--pdeathsig").arg("KILL").arg(conductor);
        command
    } else {
        Command::new(conductor)
    }
}

const SETPRIV: &str = "/usr/bin/setpriv";

/// A duration as the conductor's flags take it: whole seconds as `3s`, else milliseconds.
fn duration_flag(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}ms", duration.as_millis())
    }
}

/// A loopback address with a port that was free a moment ago.
/// Checks that `dir` (a bench's `BENCH_BASE_BIN`) holds an older build's binaries, saying how to make them.
pub fn check_base_build(dir: &Path) -> HarnessResult<()> {
    if dir.join("demo_conductor").is_file() {
        return Ok(());
    }
    Err(format!(
        "BENCH_BASE_BIN={} holds no demo_conductor: build the base there first \
         (git worktree add /tmp/base <commit> && cd /tmp/base && CARGO_TARGET_DIR=/tmp/base-target \
         cargo build --release -p baton-cli -p conductor --bins -p tests --bin demo_conductor)",
        dir.display()
    )
    .into())
}

pub fn free_local_addr() -> HarnessResult<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

/// Sends `signal` to `pid` with the kill command.
pub fn send_signal(pid: u32, signal: libc::c_int) -> HarnessResult<()> {
    // `unsafe` is forbidden in this workspace, so `libc::kill` is out: use the kill command.
    let status = Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status()?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("kill -{signal} {pid} failed: {status}").into())
    }
}

/// Fails the test with the error's message. Use it instead of `?` in test bodies: the panic
/// happens while the test's conductors are still alive, so their `Drop` prints their logs;
/// a test that returns `Err` drops them first, and the logs are lost.
pub trait OrFail<T> {
    /// The value, or a panic with the error.
    fn or_fail(self) -> T;
}

impl<T, E: std::fmt::Display> OrFail<T> for Result<T, E> {
    #[track_caller]
    fn or_fail(self) -> T {
        match self {
            Ok(value) => value,
            Err(error) => panic!("{error}"),
        }
    }
}
