//! Opens the job board the config names: etcd for a fleet, embedded otherwise.

use std::sync::Arc;

use jobboard::embedded::EmbeddedBoard;
use jobboard::etcd::{EtcdBoard, EtcdConfig};
use jobboard::JobBoard;

use crate::config::{BoardSettings, Config, EMBEDDED_BOARD_FILE};
use crate::error::Error;

/// Opens a board session in the conductor's name.
///
/// etcd: connects and grants the session lease (an unreachable etcd is an
/// error here; the supervisor restarts the daemon). Embedded: creates the data
/// dir if needed and opens `board.sqlite3` in it, returning jobs a previous run
/// had claimed to the board.
pub async fn open_board(config: &Config) -> Result<Arc<dyn JobBoard>, Error> {
    match &config.board {
        BoardSettings::Etcd { endpoints, prefix } => {
            let etcd = EtcdConfig {
                endpoints: endpoints.clone(),
                prefix: prefix.clone(),
                lease_ttl: config.lease_ttl,
                board: config.board_config(),
            };
            Ok(Arc::new(EtcdBoard::connect(etcd).await?))
        }
        BoardSettings::Embedded { data_dir } => {
            std::fs::create_dir_all(data_dir)
                .map_err(|source| Error::Io { what: format!("creating data dir {}", data_dir.display()), source })?;
            let path = data_dir.join(EMBEDDED_BOARD_FILE);
            Ok(Arc::new(EmbeddedBoard::open(&path, config.board_config())?))
        }
    }
}
