//! `EtcdCluster`: a throwaway etcd cluster of several members on loopback, for
//! the faults a production cluster has: the leader dies, a member comes back.
//!
//! Each member has its own free client and peer ports and its own data dir
//! (spawned as [`super::EtcdProcess`] is: `setpriv --pdeathsig KILL`, data on
//! `/dev/shm`); all share one `--initial-cluster` and a token unique to the
//! cluster. Who leads is read from the v3 JSON gateway
//! (`POST /v3/maintenance/status` on each member), which needs no client crate
//! and answers without a quorum.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{etcd_binary, ClusterFlags, Member};

/// How long a cluster may take to form, elect or catch up before the harness gives up.
const PATIENCE: Duration = Duration::from_secs(30);

/// A running etcd cluster. Every member is killed on `Drop`.
#[derive(Debug)]
pub struct EtcdCluster {
    members: Vec<Member>,
    flags: ClusterFlags,
}

/// What one member says of itself and of the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberStatus {
    /// This member's raft id.
    pub id: u64,
    /// The raft id of the leader it follows (0: none known).
    pub leader: u64,
    /// The last raft log index it has.
    pub raft_index: u64,
    /// The last raft log index it has applied.
    pub applied_index: u64,
}

impl EtcdCluster {
    /// Starts `size` members and waits until all are healthy under one leader.
    /// Panics (with the install hint) if no etcd binary is installed.
    pub fn start(size: usize) -> EtcdCluster {
        assert!(size > 0, "a cluster needs a member");
        let binary = etcd_binary();
        let mut last_error = String::new();
        for _attempt in 0..5 {
            let members: Vec<Member> = (0..size).map(|i| Member::fresh(&format!("m{i}"))).collect();
            let flags = ClusterFlags::new(&members);
            let mut cluster = EtcdCluster { members, flags };
            // All at once: a member is healthy only once a quorum of its peers is up.
            for member in &mut cluster.members {
                member.spawn(&binary, &cluster.flags);
            }
            match cluster.try_wait_healthy() {
                Ok(()) => return cluster,
                // Most likely a port was taken between probing and binding: try new ones.
                Err(e) => last_error = e,
            }
        }
        panic!("an etcd cluster of {size} did not become healthy after 5 attempts: {last_error}");
    }

    /// One three-member cluster for the whole test binary, started on first
    /// use. Nothing may kill its members: tests that do start their own.
    pub fn shared() -> &'static EtcdCluster {
        static SHARED: OnceLock<EtcdCluster> = OnceLock::new();
        SHARED.get_or_init(|| EtcdCluster::start(3))
    }

    /// How many members the cluster has (running or not).
    pub fn size(&self) -> usize {
        self.members.len()
    }

    /// Every member's client URL, in member order: what a client is given.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(Member::client_url).collect()
    }

    /// Member `i`'s client URL.
    pub fn endpoint(&self, i: usize) -> String {
        self.members[i].client_url()
    }

    /// Member `i`'s pid, while it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.members[i].pid()
    }

    /// Whether member `i` runs.
    pub fn is_running(&mut self, i: usize) -> bool {
        self.members[i].is_running()
    }

    /// What member `i` says of itself, if it answers.
    pub fn status(&self, i: usize) -> Option<MemberStatus> {
        member_status(self.members[i].client_port)
    }

    /// The member every running member that answers names as leader, if
    /// they agree and it is one of them.
    pub fn leader(&self) -> Option<usize> {
        let statuses: Vec<(usize, MemberStatus)> = (0..self.size())
            .filter(|&i| self.members[i].child.is_some())
            .filter_map(|i| Some((i, self.status(i)?)))
            .collect();
        let (_, first) = statuses.first()?;
        if first.leader == 0 || statuses.iter().any(|(_, s)| s.leader != first.leader) {
            return None;
        }
        statuses.iter().find(|(_, s)| s.id == first.leader).map(|(i, _)| *i)
    }

    /// Waits until the running members agree on a leader, and returns it.
    pub fn wait_leader(&self) -> usize {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(leader) = self.leader() {
                return leader;
            }
            assert!(Instant::now() < deadline, "the etcd cluster elected no leader within {PATIENCE:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills member `i` at once (SIGKILL), as a crash would.
    pub fn kill(&mut self, i: usize) {
        self.members[i].kill();
    }

    /// Starts member `i` again on its ports and data dir (killing it first if
    /// it runs), and waits until it is healthy and has applied everything the
    /// leader had when it came back.
    pub fn restart(&mut self, i: usize) {
        self.members[i].kill();
        self.members[i].restart(&etcd_binary(), &self.flags);
        let leader = self.wait_leader();
        let target = self.status(leader).map(|s| s.raft_index).unwrap_or_default();
        let deadline = Instant::now() + PATIENCE;
        loop {
            if self.status(i).is_some_and(|s| s.applied_index >= target) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "etcd member m{i} did not catch up to raft index {target} within {PATIENCE:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until every running member is healthy and they agree on a leader.
    pub fn wait_healthy(&mut self) {
        if let Err(e) = self.try_wait_healthy() {
            panic!("the etcd cluster is not healthy: {e}");
        }
    }

    fn try_wait_healthy(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + PATIENCE;
        for member in self.members.iter_mut().filter(|m| m.child.is_some()) {
            member.wait_healthy(deadline.saturating_duration_since(Instant::now()))?;
        }
        while self.leader().is_none() {
            if Instant::now() > deadline {
                return Err(format!("no agreed leader within {PATIENCE:?}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }
}

/// `POST /v3/maintenance/status` on a member's client port, through etcd's JSON
/// gateway (which prints 64-bit numbers as strings).
fn member_status(port: u16) -> Option<MemberStatus> {
    let body = http_post(port, "/v3/maintenance/status", "{}")?;
    let status: Value = serde_json::from_str(&body).ok()?;
    let number = |v: &Value| match v {
        Value::String(s) => s.parse::<u64>().ok(),
        Value::Number(n) => n.as_u64(),
        // The gateway leaves out fields that are zero.
        Value::Null => Some(0),
        _ => None,
    };
    Some(MemberStatus {
        id: number(&status["header"]["member_id"])?,
        leader: number(&status["leader"])?,
        raft_index: number(&status["raftIndex"])?,
        applied_index: number(&status["raftAppliedIndex"])?,
    })
}

/// A plain HTTP/1.1 POST that closes the connection; the body, if the answer is 200.
/// Bounded: a member that is stopped or stuck answers nothing, quickly.
fn http_post(port: u16, path: &str, body: &str) -> Option<String> {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    // Chunked answers carry their length lines around the JSON: keep the JSON.
    let json_start = body.find('{')?;
    let json_end = body.rfind('}')?;
    Some(body[json_start..=json_end].to_string())
}
