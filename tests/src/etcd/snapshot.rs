//! Backup and restore of a test etcd with `etcdctl snapshot` (Debian's
//! `etcd-client`), as an operator would do it: to test that no claim from
//! before a restore is accepted after it.

use std::path::Path;
use std::process::Command;

use super::{etcd_binary, EtcdProcess};

const ETCDCTL_HINT: &str = "etcdctl not found: install Debian's etcd-client (apt-get install etcd-client)";

impl EtcdProcess {
    /// `etcdctl snapshot save`: a consistent copy of the whole keyspace into `file`.
    pub fn save_snapshot(&self, file: &Path) {
        let status = etcdctl()
            .arg("--endpoints")
            .arg(self.endpoint())
            .arg("snapshot")
            .arg("save")
            .arg(file)
            .output()
            .unwrap_or_else(|e| panic!("{ETCDCTL_HINT} ({e})"));
        assert!(status.status.success(), "etcdctl snapshot save failed: {}", String::from_utf8_lossy(&status.stderr));
    }

    /// Kills etcd, replaces its data with `snapshot` (`etcdctl snapshot restore`, same
    /// member name, peer URL and cluster token) and starts it again on the same ports.
    pub fn restore_snapshot(&mut self, snapshot: &Path) {
        self.member.kill();
        let data_dir = self.member.data_dir.path().to_path_buf();
        std::fs::remove_dir_all(&data_dir).unwrap_or_else(|e| panic!("cannot clear {}: {e}", data_dir.display()));
        let out = etcdctl()
            .arg("snapshot")
            .arg("restore")
            .arg(snapshot)
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--name")
            .arg(&self.member.name)
            .arg("--initial-cluster")
            .arg(&self.cluster.initial_cluster)
            .arg("--initial-cluster-token")
            .arg(&self.cluster.token)
            .arg("--initial-advertise-peer-urls")
            .arg(self.member.peer_url())
            .output()
            .unwrap_or_else(|e| panic!("{ETCDCTL_HINT} ({e})"));
        assert!(out.status.success(), "etcdctl snapshot restore failed: {}", String::from_utf8_lossy(&out.stderr));
        self.member.restart(&etcd_binary(), &self.cluster);
    }
}

fn etcdctl() -> Command {
    let mut command = Command::new(if Path::new("/usr/bin/etcdctl").exists() { "/usr/bin/etcdctl" } else { "etcdctl" });
    command.env("ETCDCTL_API", "3");
    command
}
