//! `EtcdProcess`: a throwaway etcd for tests (loopback, free ports, temp data dir).
//!
//! Debian's `etcd` (package `etcd-server`) is started on two free 127.0.0.1
//! ports with its data on `/dev/shm` when there is one, with revision
//! auto-compaction (see etcd-notes §6), and killed by pid on `Drop`. So that
//! a crashed or aborted test binary leaves no etcd behind, the child is started
//! through `setpriv --pdeathsig KILL` (util-linux) from a spawner thread that
//! lives as long as the process: the death signal fires when the *thread* that
//! spawned the child exits, and test threads come and go.
//!
//! [`EtcdProcess::shared`] gives one etcd per test binary; give each test its
//! own key space with [`unique_prefix`]. [`cluster::EtcdCluster`] runs several
//! members the same way (one [`Member`] each), to kill a leader.
//! [`proxy::TcpProxy`] cuts one client
//! off etcd while etcd keeps running. [`metrics::kv_requests`] counts the
//! requests etcd served. `save_snapshot`/`restore_snapshot` back it up and
//! restore it as an operator would; [`size::bytes`] is what a board takes in it. [`secure::SecureEtcd`] is one with TLS client
//! certificates and users, its `baton` role restricted to one prefix.

pub mod cluster;
pub mod metrics;
pub mod proxy;
pub mod secure;
pub mod size;
mod snapshot;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use tempfile::TempDir;

const INSTALL_HINT: &str = "etcd not found: install Debian's etcd-server (apt-get install etcd-server)";

/// A running (or stopped) single-member etcd.
#[derive(Debug)]
pub struct EtcdProcess {
    member: Member,
    cluster: ClusterFlags,
}

impl EtcdProcess {
    /// Starts a fresh etcd and waits until it is healthy. Panics (with the
    /// install hint) if no etcd binary is installed.
    pub fn start() -> EtcdProcess {
        EtcdProcess::start_with(None, &[])
    }

    /// Starts a fresh etcd with further flags, e.g. `--quota-backend-bytes=16777216`.
    pub fn start_with_flags(flags: &[&str]) -> EtcdProcess {
        EtcdProcess::start_with(None, flags)
    }

    /// Starts a fresh etcd whose client port wants TLS with a client certificate signed by
    /// `tls.client_ca` (`--client-cert-auth --trusted-ca-file`); its endpoint is `https://`.
    pub fn start_tls(tls: EtcdTls) -> EtcdProcess {
        EtcdProcess::start_with(Some(tls), &[])
    }

    fn start_with(tls: Option<EtcdTls>, flags: &[&str]) -> EtcdProcess {
        let binary = etcd_binary();
        let mut last_error = String::new();
        for _attempt in 0..5 {
            let mut member = Member::fresh("baton-test");
            member.tls = tls.clone();
            member.extra_flags = flags.iter().map(|f| f.to_string()).collect();
            let cluster = ClusterFlags::new(std::slice::from_ref(&member));
            member.spawn(&binary, &cluster);
            match member.wait_healthy(Duration::from_secs(20)) {
                Ok(()) => return EtcdProcess { member, cluster },
                // Most likely a port was taken between probing and binding: try new ones.
                Err(e) => last_error = e,
            }
        }
        panic!("etcd did not become healthy after 5 attempts: {last_error}");
    }

    /// One etcd for the whole test binary, started on first use.
    pub fn shared() -> &'static EtcdProcess {
        static SHARED: OnceLock<EtcdProcess> = OnceLock::new();
        SHARED.get_or_init(EtcdProcess::start)
    }

    /// The client URL, e.g. `http://127.0.0.1:41234`.
    pub fn endpoint(&self) -> String {
        self.member.client_url()
    }

    /// The child's pid, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.member.pid()
    }

    /// Stops etcd gracefully (SIGTERM) and waits for it to exit.
    pub fn stop(&mut self) {
        self.member.stop();
    }

    /// Kills etcd at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        self.member.kill();
    }

    /// Starts etcd again on the same ports and data dir (stopping it first if it runs).
    pub fn restart(&mut self) {
        self.member.stop();
        self.member.restart(&etcd_binary(), &self.cluster);
    }
}

/// The TLS files of an etcd's client port.
#[derive(Debug, Clone)]
pub struct EtcdTls {
    /// The server certificate (for 127.0.0.1).
    pub cert: PathBuf,
    /// Its key.
    pub key: PathBuf,
    /// The CA client certificates must be signed by.
    pub client_ca: PathBuf,
}

/// One etcd member: its name, ports and data dir, and its process while it runs.
/// A lone [`EtcdProcess`] and each member of a [`cluster::EtcdCluster`] are one.
#[derive(Debug)]
struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    data_dir: TempDir,
    child: Option<Child>,
    /// TLS on the client port; `/health` is then asked on a plaintext metrics port.
    tls: Option<EtcdTls>,
    metrics_port: u16,
    /// Flags beyond the harness's own.
    extra_flags: Vec<String>,
}

/// The flags every member of one cluster shares.
#[derive(Debug)]
struct ClusterFlags {
    /// `name=peer-url,...`, as `--initial-cluster` takes it.
    initial_cluster: String,
    /// Unique per cluster, so members of two test clusters can never join each other.
    token: String,
}

impl ClusterFlags {
    fn new(members: &[Member]) -> ClusterFlags {
        let initial_cluster =
            members.iter().map(|m| format!("{}={}", m.name, m.peer_url())).collect::<Vec<_>>().join(",");
        let token = format!("baton-test-{}-{}", std::process::id(), uuid::Uuid::new_v4().simple());
        ClusterFlags { initial_cluster, token }
    }
}

impl Member {
    /// A member named `name` with two free loopback ports and an empty data dir (not started).
    fn fresh(name: &str) -> Member {
        let parent = if Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
        sweep_stale_data_dirs(&parent);
        let data_dir = tempfile::Builder::new()
            .prefix("baton-etcd-")
            .tempdir_in(&parent)
            .unwrap_or_else(|e| panic!("cannot create an etcd data dir in {}: {e}", parent.display()));
        Member {
            name: name.to_owned(),
            client_port: free_port(),
            peer_port: free_port(),
            data_dir,
            child: None,
            tls: None,
            metrics_port: free_port(),
            extra_flags: Vec::new(),
        }
    }

    fn client_url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.client_port)
    }

    fn peer_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.peer_port)
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process runs (reaping it if it has exited).
    fn is_running(&mut self) -> bool {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => true,
            Some(_) => {
                self.child = None;
                false
            }
            None => false,
        }
    }

    /// Stops the member gracefully (SIGTERM) and waits for it to exit.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the member at once (SIGKILL), as a crash would.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the (stopped) member again on its ports and data dir and waits until it is healthy.
    fn restart(&mut self, binary: &Path, cluster: &ClusterFlags) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            self.spawn(binary, cluster);
            match self.wait_healthy(Duration::from_secs(10)) {
                Ok(()) => return,
                // The old process's ports may linger for a moment.
                Err(e) if Instant::now() < deadline => {
                    eprintln!("etcd restart of {}: {e}; retrying", self.name);
                    self.kill();
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => panic!("etcd member {} did not come back after a restart: {e}", self.name),
            }
        }
    }

    /// Starts the process. With data already in its dir, etcd ignores the
    /// `--initial-cluster*` flags and rejoins as the member it was.
    fn spawn(&mut self, binary: &Path, cluster: &ClusterFlags) {
        let (client, peer) = (self.client_url(), self.peer_url());
        let mut command = if Path::new("/usr/bin/setpriv").exists() {
            let mut c = Command::new("/usr/bin/setpriv");
            c.arg("--pdeathsig").arg("KILL").arg("--").arg(binary);
            c
        } else {
            Command::new(binary)
        };
        command
            .arg("--name")
            .arg(&self.name)
            .arg("--data-dir")
            .arg(self.data_dir.path())
            .arg("--listen-client-urls")
            .arg(&client)
            .arg("--advertise-client-urls")
            .arg(&client)
            .arg("--listen-peer-urls")
            .arg(&peer)
            .arg("--initial-advertise-peer-urls")
            .arg(&peer)
            .arg("--initial-cluster")
            .arg(&cluster.initial_cluster)
            .arg("--initial-cluster-token")
            .arg(&cluster.token)
            .arg("--initial-cluster-state")
            .arg("new")
            .arg("--auto-compaction-mode=revision")
            .arg("--auto-compaction-retention=1000")
            .arg("--logger=zap")
            .arg("--log-level=error")
            .args(self.tls_args())
            .args(&self.extra_flags)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.child = Some(spawn_from_long_lived_thread(command));
    }

    /// The flags of a TLS client port: client certificates required, `/health` in plaintext.
    fn tls_args(&self) -> Vec<String> {
        let Some(tls) = &self.tls else { return Vec::new() };
        vec![
            format!("--cert-file={}", tls.cert.display()),
            format!("--key-file={}", tls.key.display()),
            "--client-cert-auth".to_owned(),
            format!("--trusted-ca-file={}", tls.client_ca.display()),
            format!("--listen-metrics-urls=http://127.0.0.1:{}", self.metrics_port),
        ]
    }

    /// Waits until `/health` says yes (for a cluster member: there is a leader
    /// and a quorum read went through); kills the member if it never does.
    fn wait_healthy(&mut self, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(format!("etcd {} exited early with {status}", self.name));
                }
            }
            if health_ok(if self.tls.is_some() { self.metrics_port } else { self.client_port }) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
        Err(format!("etcd {} on port {} not healthy within {within:?}", self.name, self.client_port))
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A key prefix no other test in this process (or an earlier run) uses.
pub fn unique_prefix(test_name: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("/test/{test_name}-{}-{n}-{}/", std::process::id(), uuid::Uuid::new_v4().simple())
}

/// Removes data dirs of earlier runs whose etcd is gone. The shared etcd lives
/// in a static, which is never dropped, so its dir outlives the test binary;
/// etcd preallocates 64 MiB of WAL, which on `/dev/shm` is RAM. A dir is stale
/// when it is over a minute old and no running process names it.
fn sweep_stale_data_dirs(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else { return };
    let in_use: Vec<String> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|p| std::fs::read(p.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).into_owned())
        .filter(|c| c.contains("baton-etcd-"))
        .collect();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("baton-etcd-") || in_use.iter().any(|c| c.contains(&name)) {
            continue;
        }
        let age = entry.metadata().and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok());
        if age.is_some_and(|age| age > Duration::from_secs(60)) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn etcd_binary() -> PathBuf {
    if Path::new("/usr/bin/etcd").exists() {
        return PathBuf::from("/usr/bin/etcd");
    }
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|p| p.join("etcd")).find(|p| p.is_file()))
        .unwrap_or_else(|| panic!("{INSTALL_HINT}"))
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("cannot bind a loopback port: {e}"));
    listener.local_addr().map(|a| a.port()).unwrap_or_else(|e| panic!("cannot read a bound port: {e}"))
}

/// `GET /health` over plain HTTP: etcd serves it on the client port.
fn health_ok(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").is_err() {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.contains("\"health\":\"true\"")
}

/// Spawns `command` from one thread that never exits, so that the child's
/// parent-death signal fires only when the whole test process goes.
fn spawn_from_long_lived_thread(mut command: Command) -> Child {
    type Request = (Command, mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Request>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("etcd-spawner".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
                // The channel lives in a static, so this loop never ends; park to be sure.
                loop {
                    std::thread::park();
                }
            })
            .unwrap_or_else(|e| panic!("cannot start the etcd spawner thread: {e}"));
        Mutex::new(tx)
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    let sent = spawner.lock().unwrap_or_else(|e| e.into_inner()).send((command, reply_tx));
    if let Err(mpsc::SendError((c, _))) = sent {
        command = c;
        return command.spawn().unwrap_or_else(|e| panic!("cannot start etcd: {e}"));
    }
    match reply_rx.recv() {
        Ok(Ok(child)) => child,
        Ok(Err(e)) => panic!("cannot start etcd ({INSTALL_HINT}?): {e}"),
        Err(_) => panic!("the etcd spawner thread is gone"),
    }
}
