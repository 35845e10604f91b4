//! `Fleet`: three `chaos_conductor` processes and the supervisor that restarts any of
//! them that exits or is killed, as systemd's `Restart=always` would (after a short pause).
//!
//! Every process is started by the supervisor thread through `setpriv --pdeathsig KILL`,
//! so none outlives the test. A conductor keeps its name, listen port and proxy across
//! restarts, so the CLI's endpoint list stays valid; its log file (stdout and stderr) in
//! the evidence directory is appended to, one header line per process.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tests::chaos::flow::STEPS_DIR_ENV;
use tests::conductor::{bin_path, free_local_addr};

use crate::report::Report;

/// How long the supervisor waits before restarting an exited conductor.
const RESTART_PAUSE: Duration = Duration::from_millis(500);
/// How often the supervisor looks at its children.
const SUPERVISE_EVERY: Duration = Duration::from_millis(50);
const SETPRIV: &str = "/usr/bin/setpriv";

/// How a conductor process ended.
#[derive(Debug, Clone)]
pub struct Exit {
    pub name: String,
    pub pid: u32,
    pub status: String,
    /// The test sent it SIGKILL.
    pub killed_by_test: bool,
}

/// What every conductor of the fleet shares.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    pub prefix: String,
    pub ttl: Duration,
    /// Where the steps file and the logs go.
    pub dir: PathBuf,
}

#[derive(Debug)]
struct Slot {
    name: String,
    listen: SocketAddr,
    etcd: String,
    child: Option<Child>,
    /// When to start it (again), while it is not running.
    start_at: Option<Instant>,
    killed_by_test: bool,
}

/// The supervised conductors. Dropping it kills them.
pub struct Fleet {
    slots: Arc<Mutex<Vec<Slot>>>,
    exits: Arc<Mutex<Vec<Exit>>>,
    stop: Arc<AtomicBool>,
    supervisor: Option<JoinHandle<()>>,
}

impl Fleet {
    /// Starts one conductor per etcd endpoint (each a proxy), named `chaos-1`, `chaos-2`, ...
    pub fn start(config: FleetConfig, etcd_endpoints: &[String], report: Arc<Report>) -> Fleet {
        let slots: Vec<Slot> = etcd_endpoints
            .iter()
            .enumerate()
            .map(|(i, etcd)| Slot {
                name: format!("chaos-{}", i + 1),
                listen: free_local_addr().unwrap_or_else(|e| panic!("no free port: {e}")),
                etcd: etcd.clone(),
                child: None,
                start_at: Some(Instant::now()),
                killed_by_test: false,
            })
            .collect();
        let slots = Arc::new(Mutex::new(slots));
        let exits = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let supervisor = {
            let (slots, exits, stop) = (slots.clone(), exits.clone(), stop.clone());
            std::thread::Builder::new()
                .name("chaos-supervisor".into())
                .spawn(move || supervise(&config, &slots, &exits, &stop, &report))
                .unwrap_or_else(|e| panic!("cannot start the supervisor thread: {e}"))
        };
        Fleet { slots, exits, stop, supervisor: Some(supervisor) }
    }

    /// Each conductor's name and gRPC endpoint.
    pub fn endpoints(&self) -> Vec<(String, String)> {
        self.lock().iter().map(|s| (s.name.clone(), format!("http://{}", s.listen))).collect()
    }

    /// The names, in order.
    pub fn names(&self) -> Vec<String> {
        self.lock().iter().map(|s| s.name.clone()).collect()
    }

    /// SIGKILL to the named conductor; the supervisor restarts it. Returns the pid, if it ran.
    pub fn kill9(&self, name: &str) -> Option<u32> {
        let mut slots = self.lock();
        let slot = slots.iter_mut().find(|s| s.name == name)?;
        let pid = slot.child.as_ref()?.id();
        slot.killed_by_test = true;
        signal(pid, "KILL");
        Some(pid)
    }

    /// Sends `STOP` or `CONT` to the named conductor. Returns the pid, if it ran.
    pub fn signal(&self, name: &str, which: &str) -> Option<u32> {
        let slots = self.lock();
        let pid = slots.iter().find(|s| s.name == name)?.child.as_ref()?.id();
        signal(pid, which);
        Some(pid)
    }

    /// Every exit so far.
    pub fn exits(&self) -> Vec<Exit> {
        self.exits.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Stops supervising and kills every conductor (after a SIGCONT, in case one is stopped).
    pub fn shut_down(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(supervisor) = self.supervisor.take() {
            let _ = supervisor.join();
        }
        for slot in self.lock().iter_mut() {
            if let Some(mut child) = slot.child.take() {
                signal(child.id(), "CONT");
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// The supervisor loop: reap exited conductors, restart them after a pause.
fn supervise(
    config: &FleetConfig,
    slots: &Mutex<Vec<Slot>>,
    exits: &Mutex<Vec<Exit>>,
    stop: &AtomicBool,
    report: &Report,
) {
    while !stop.load(Ordering::SeqCst) {
        {
            let mut slots = slots.lock().unwrap_or_else(|e| e.into_inner());
            for slot in slots.iter_mut() {
                if let Some(child) = slot.child.as_mut() {
                    if let Ok(Some(status)) = child.try_wait() {
                        let exit = Exit {
                            name: slot.name.clone(),
                            pid: child.id(),
                            status: status.to_string(),
                            killed_by_test: slot.killed_by_test,
                        };
                        if !exit.killed_by_test {
                            report.event(format_args!(
                                "{} (pid {}) exited by itself: {}",
                                exit.name, exit.pid, exit.status
                            ));
                        }
                        exits.lock().unwrap_or_else(|e| e.into_inner()).push(exit);
                        slot.child = None;
                        slot.start_at = Some(Instant::now() + RESTART_PAUSE);
                        slot.killed_by_test = false;
                    }
                }
                if slot.child.is_none() && slot.start_at.is_some_and(|at| Instant::now() >= at) {
                    match spawn(config, slot, report) {
                        Ok(child) => {
                            report.event(format_args!("supervisor: started {} (pid {})", slot.name, child.id()));
                            slot.child = Some(child);
                            slot.start_at = None;
                        }
                        Err(error) => {
                            report.event(format_args!("supervisor: cannot start {}: {error}", slot.name));
                            slot.start_at = Some(Instant::now() + RESTART_PAUSE);
                        }
                    }
                }
            }
        }
        std::thread::sleep(SUPERVISE_EVERY);
    }
}

fn spawn(config: &FleetConfig, slot: &Slot, report: &Report) -> std::io::Result<Child> {
    let log_path = config.dir.join(format!("{}.log", slot.name));
    let mut log = OpenOptions::new().create(true).append(true).open(&log_path)?;
    // The timeline's clock, so a process's log lines can be matched with the faults.
    writeln!(log, "----- chaos {}: starting {} -----", report.clock(), slot.name)?;
    let mut command = command(&bin_path("chaos_conductor"));
    command
        .arg("--listen")
        .arg(slot.listen.to_string())
        .arg("--name")
        .arg(&slot.name)
        .arg("--lease-ttl")
        .arg(format!("{}s", config.ttl.as_secs()))
        .arg("--etcd")
        .arg(&slot.etcd)
        .arg("--prefix")
        .arg(&config.prefix);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("BATON_") {
            command.env_remove(key);
        }
    }
    command
        .env(STEPS_DIR_ENV, &config.dir)
        .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_string()))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(File::from(log))
        .spawn()
}

/// The binary, under `setpriv --pdeathsig KILL` when util-linux has it.
fn command(binary: &Path) -> Command {
    if Path::new(SETPRIV).is_file() {
        let mut command = Command::new(SETPRIV);
        command.arg("--pdeathsig").arg("KILL").arg("--").arg(binary);
        command
    } else {
        Command::new(binary)
    }
}

/// `kill -SIGNAL PID` (`unsafe` is forbidden here, so not `libc::kill`).
fn signal(pid: u32, which: &str) {
    let _ = Command::new("kill").arg(format!("-{which}")).arg(pid.to_string()).status();
}
