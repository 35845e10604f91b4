//! The backends the suite runs on: embedded (SQLite in a temp dir) and etcd (the shared
//! test etcd, or any endpoints given, such as every member of a cluster).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jobboard::embedded::EmbeddedBoard;
use jobboard::etcd::{EtcdBoard, EtcdConfig, EtcdSecurity};
use jobboard::JobBoard;
use tempfile::TempDir;

use super::{suite_config, BoardFactory};
use crate::etcd::{unique_prefix, EtcdProcess};

/// Sessions on one embedded board file in a temp dir.
#[derive(Debug)]
pub struct EmbeddedFactory {
    root: EmbeddedBoard,
    sessions: Mutex<HashMap<String, EmbeddedBoard>>,
    // Declared last: the file is removed after the board is dropped.
    _dir: TempDir,
}

impl EmbeddedFactory {
    /// A new board file in a fresh temp dir.
    pub fn new() -> EmbeddedFactory {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("cannot create a temp dir: {e}"));
        let root = EmbeddedBoard::open(&dir.path().join("board.db"), suite_config("suite-root"))
            .unwrap_or_else(|e| panic!("cannot open the embedded board: {e}"));
        EmbeddedFactory { root, sessions: Mutex::default(), _dir: dir }
    }
}

impl Default for EmbeddedFactory {
    fn default() -> Self {
        EmbeddedFactory::new()
    }
}

impl BoardFactory for EmbeddedFactory {
    async fn session(&self, owner: &str) -> Arc<dyn JobBoard> {
        let board = self.root.session(owner);
        lock(&self.sessions).insert(owner.to_owned(), board.clone());
        Arc::new(board)
    }

    async fn kill_session(&self, owner: &str) {
        // No lease on a single machine: a session ends when it is closed.
        let board = lock(&self.sessions).get(owner).cloned();
        let board = board.unwrap_or_else(|| panic!("no session named {owner}"));
        board.close().await.unwrap_or_else(|e| panic!("closing session {owner} failed: {e}"));
    }
}

/// Sessions on etcd, under a key prefix of this test's own.
#[derive(Debug)]
pub struct EtcdFactory {
    endpoints: Vec<String>,
    prefix: String,
    security: EtcdSecurity,
    sessions: Mutex<HashMap<String, EtcdBoard>>,
}

/// The lease TTL of suite sessions: etcd's minimum, so expiry cases are quick.
const LEASE_TTL: Duration = Duration::from_secs(2);

impl EtcdFactory {
    /// A fresh namespace for the test `name` on the shared etcd (started on first use).
    pub async fn new(name: &str) -> EtcdFactory {
        let endpoint = tokio::task::spawn_blocking(|| EtcdProcess::shared().endpoint())
            .await
            .unwrap_or_else(|e| panic!("starting the test etcd failed: {e}"));
        EtcdFactory::on(vec![endpoint], name)
    }

    /// A fresh namespace for the test `name` on the etcd at `endpoints` (each
    /// session is given them all, as a conductor is given a cluster's members).
    pub fn on(endpoints: Vec<String>, name: &str) -> EtcdFactory {
        EtcdFactory {
            endpoints,
            prefix: unique_prefix(name),
            security: EtcdSecurity::default(),
            sessions: Mutex::default(),
        }
    }

    /// Sessions that reach etcd with this TLS and user (an etcd with client-cert auth or users).
    #[must_use]
    pub fn with_security(mut self, security: EtcdSecurity) -> EtcdFactory {
        self.security = security;
        self
    }

    /// Sessions under this key prefix (one an etcd role is restricted to).
    #[must_use]
    pub fn with_prefix(mut self, prefix: String) -> EtcdFactory {
        self.prefix = prefix;
        self
    }
}

impl BoardFactory for EtcdFactory {
    async fn session(&self, owner: &str) -> Arc<dyn JobBoard> {
        let config = EtcdConfig {
            endpoints: self.endpoints.clone(),
            prefix: self.prefix.clone(),
            lease_ttl: LEASE_TTL,
            board: suite_config(owner),
            security: self.security.clone(),
            stats: Default::default(),
        };
        let board = EtcdBoard::connect(config)
            .await
            .unwrap_or_else(|e| panic!("connecting session {owner} to etcd failed: {e}"));
        lock(&self.sessions).insert(owner.to_owned(), board.clone());
        Arc::new(board)
    }

    async fn kill_session(&self, owner: &str) {
        // A crashed conductor stops renewing its lease; etcd expires it.
        let board = lock(&self.sessions).get(owner).cloned();
        board.unwrap_or_else(|| panic!("no session named {owner}")).suspend_keep_alive();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
