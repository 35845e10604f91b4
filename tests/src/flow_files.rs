//! Harness for flow files on real conductors: a board of either kind for one test, a
//! flows directory, and a dump of everything the board stores (to grep it for secrets).

mod http_server;

use std::path::Path;
use std::time::Duration;

pub use self::http_server::RecordingServer;
use crate::conductor::{Board, ConductorConfig, HarnessResult};
use crate::etcd::{unique_prefix, EtcdProcess};

/// Makes each named scenario `fn(BoardKind)` two tests, `SCENARIO::embedded` and
/// `SCENARIO::etcd`.
#[macro_export]
macro_rules! on_both_boards {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[test]
            fn embedded() {
                super::$scenario($crate::flow_files::BoardKind::Embedded)
            }

            #[test]
            fn etcd() {
                super::$scenario($crate::flow_files::BoardKind::Etcd)
            }
        }
    )*};
}

/// Lease TTL of the etcd conductors (short, so a killed one's jobs come back soon).
const LEASE_TTL: Duration = Duration::from_secs(3);

/// Which board a scenario runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoardKind {
    /// The embedded SQLite board in a temp dir.
    Embedded,
    /// The test binary's shared etcd, under a fresh prefix.
    Etcd,
}

/// One test's board: a data dir of its own, or a fresh prefix on the shared etcd.
pub struct TestBoard {
    /// Where conductors keep the jobs.
    pub board: Board,
    /// Holds the embedded board's files until the test ends.
    _data: Option<tempfile::TempDir>,
}

impl TestBoard {
    /// A board of `kind` nobody else uses.
    pub fn new(kind: BoardKind, test_name: &str) -> HarnessResult<Self> {
        Ok(match kind {
            BoardKind::Embedded => {
                let data = tempfile::Builder::new().prefix("baton-flowfile-board-").tempdir()?;
                TestBoard { board: Board::Embedded { data_dir: data.path().to_path_buf() }, _data: Some(data) }
            }
            BoardKind::Etcd => TestBoard {
                board: Board::Etcd { endpoint: EtcdProcess::shared().endpoint(), prefix: unique_prefix(test_name) },
                _data: None,
            },
        })
    }

    /// A conductor on this board running the flow files of `flows` with the extra flags `args`.
    pub fn conductor(&self, name: &str, flows: &Path, args: &[&str]) -> ConductorConfig {
        let mut config = match &self.board {
            Board::Embedded { data_dir } => ConductorConfig::embedded(data_dir, name),
            Board::Etcd { endpoint, prefix } => ConductorConfig::etcd(endpoint, prefix, name, LEASE_TTL),
        };
        // The stock binary: flow files are what it runs.
        config.binary = "conductor";
        config.extra_args.push("--flows-dir".into());
        config.extra_args.push(flows.display().to_string());
        config.extra_args.extend(args.iter().map(|a| a.to_string()));
        config
    }

    /// Everything the board stores (jobs, logbooks with their results and failures), as
    /// lossy text: the embedded board's files byte for byte (WAL included), or every etcd
    /// key and value under the prefix.
    pub fn dump(&self) -> HarnessResult<String> {
        match &self.board {
            Board::Embedded { data_dir } => {
                let mut out = String::new();
                for entry in std::fs::read_dir(data_dir)? {
                    let path = entry?.path();
                    if path.is_file() {
                        out.push_str(&String::from_utf8_lossy(&std::fs::read(&path)?));
                    }
                }
                Ok(out)
            }
            Board::Etcd { endpoint, prefix } => {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                runtime.block_on(async {
                    let mut client = etcd_client::Client::connect([endpoint.as_str()], None).await?;
                    let options = etcd_client::GetOptions::new().with_prefix();
                    let response = client.get(prefix.as_str(), Some(options)).await?;
                    let mut out = String::new();
                    for kv in response.kvs() {
                        out.push_str(&String::from_utf8_lossy(kv.key()));
                        out.push('\n');
                        out.push_str(&String::from_utf8_lossy(kv.value()));
                        out.push('\n');
                    }
                    Ok(out)
                })
            }
        }
    }
}

/// A temp directory holding the given `(file name, text)` flow files.
pub fn flows_dir(files: &[(&str, &str)]) -> HarnessResult<tempfile::TempDir> {
    let dir = tempfile::Builder::new().prefix("baton-flows-").tempdir()?;
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text)?;
    }
    Ok(dir)
}
