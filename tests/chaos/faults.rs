//! The faults, and how each is injected and healed. Every fault ends healed before the
//! next one starts, so the owner check after it sees what that fault left behind.

use std::time::{Duration, Instant};

use tests::chaos::flow::FLOW;
use tests::etcd::proxy::{CutMode, TcpProxy};
use tests::etcd::EtcdProcess;

use crate::cli::Cli;
use crate::fleet::Fleet;
use crate::report::Report;
use crate::rng::Rng;

/// One kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// SIGKILL of a conductor; the supervisor restarts it.
    KillConductor,
    /// SIGSTOP of a job's owner for twice the lease TTL, then SIGCONT.
    PauseOwner,
    /// SIGKILL of etcd, restarted on the same data dir a moment later.
    RestartEtcd,
    /// One conductor's proxy closes its connections and refuses new ones for a while.
    CutClose,
    /// One conductor's proxy keeps its connections but drops every byte for a while.
    CutDrop,
}

impl Fault {
    /// Every kind; a run fails unless each fired.
    pub const ALL: [Fault; 5] =
        [Fault::KillConductor, Fault::PauseOwner, Fault::RestartEtcd, Fault::CutClose, Fault::CutDrop];

    /// The name in the summary.
    pub fn name(self) -> &'static str {
        match self {
            Fault::KillConductor => "kill9",
            Fault::PauseOwner => "pause_owner",
            Fault::RestartEtcd => "etcd_restart",
            Fault::CutClose => "cut_close",
            Fault::CutDrop => "cut_drop",
        }
    }
}

/// What faults act on. `proxies[i]` is the link of the fleet's `i`-th conductor.
pub struct Injector<'a> {
    pub fleet: &'a Fleet,
    pub etcd: &'a mut EtcdProcess,
    pub proxies: &'a [TcpProxy],
    pub cli: &'a Cli,
    pub report: &'a Report,
    pub ttl: Duration,
    pub rng: Rng,
}

impl Injector<'_> {
    /// Injects `fault` and heals it; returns once healed.
    pub fn inject(&mut self, fault: Fault) {
        let names = self.fleet.names();
        let target = self.rng.index(names.len());
        let name = &names[target];
        match fault {
            Fault::KillConductor => match self.fleet.kill9(name) {
                Some(pid) => self.report.event(format_args!("FAULT kill -9 {name} (pid {pid})")),
                None => self.report.event(format_args!("FAULT kill -9 {name}: not running (restarting)")),
            },
            Fault::PauseOwner => {
                let (owner, job) = match self.claimed_job() {
                    Some((owner, job)) => (owner, format!("owner of job {job}")),
                    None => (name.clone(), "no job claimed: a random conductor".to_string()),
                };
                let pause = self.ttl * 2;
                let pid = self.fleet.signal(&owner, "STOP").map_or("not running".to_string(), |p| format!("pid {p}"));
                self.report.event(format_args!("FAULT SIGSTOP {owner} ({pid}, {job}) for {pause:?}"));
                std::thread::sleep(pause);
                self.fleet.signal(&owner, "CONT");
                self.report.event(format_args!("HEAL SIGCONT {owner} ({pid})"));
            }
            Fault::RestartEtcd => {
                let down = self.rng.duration(Duration::from_millis(500), self.ttl * 2);
                self.etcd.kill();
                let killed = Instant::now();
                self.report.event(format_args!("FAULT kill -9 etcd; restarting it in {down:?}"));
                std::thread::sleep(down);
                self.etcd.restart();
                self.report.event(format_args!(
                    "HEAL etcd serving again on its data dir, {:.1?} after the kill",
                    killed.elapsed()
                ));
            }
            Fault::CutClose | Fault::CutDrop => {
                let mode = if fault == Fault::CutClose { CutMode::Close } else { CutMode::Drop };
                let hold = self.rng.duration(self.ttl / 2, self.ttl * 5 / 2);
                self.proxies[target].cut_with(mode);
                self.report.event(format_args!("FAULT cut {name}'s link to etcd ({mode:?}) for {hold:?}"));
                std::thread::sleep(hold);
                self.proxies[target].heal();
                self.report.event(format_args!("HEAL {name}'s link to etcd"));
            }
        }
    }

    /// A claimed job of ours and its owner, waiting a few seconds for one.
    fn claimed_job(&mut self) -> Option<(String, String)> {
        let names = self.fleet.names();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(listed) = self.cli.any(&["list", "--state", "claimed", "--flow", FLOW]) {
                let claimed: Vec<(String, String)> = listed
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|job| Some((job["owner"].as_str()?.to_string(), job["id"].as_str()?.to_string())))
                    .filter(|(owner, _)| names.contains(owner))
                    .collect();
                if !claimed.is_empty() {
                    return Some(claimed[self.rng.index(claimed.len())].clone());
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        None
    }
}
