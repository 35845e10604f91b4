//! Opens the job board the config names: etcd for a fleet, embedded otherwise,
//! waiting for an unreachable etcd rather than giving up.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jobboard::embedded::EmbeddedBoard;
use jobboard::etcd::{EtcdBoard, EtcdConfig};
use jobboard::{JobBoard, SessionStats};

use crate::api::BoardSlot;
use crate::config::{BoardSettings, Config, EMBEDDED_BOARD_FILE};
use crate::error::Error;

/// First pause after a failed attempt to reach the board.
const RETRY_START: Duration = Duration::from_millis(250);
/// Longest pause: a returning etcd is in use within about a second.
const RETRY_CAP: Duration = Duration::from_secs(1);
/// While waiting, one log line per this interval (and whenever the cause changes).
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Opens a board session, waiting with backoff while the board is unreachable
/// (`Unavailable`), with `slot` saying why meanwhile. `Ok(None)` if `shutdown`
/// resolves first; any other error (bad configuration, a locked embedded
/// file) at once.
///
/// `starting`: no session has been opened yet. Then an etcd over TLS that cannot be
/// reached is probed once for a certificate problem ([`super::etcd_probe`]), which is
/// bad configuration rather than something to wait for.
pub(crate) async fn open_patiently<S: Future + ?Sized>(
    config: &Config,
    stats: &Arc<SessionStats>,
    slot: &BoardSlot,
    mut shutdown: Pin<&mut S>,
    starting: bool,
) -> Result<Option<Arc<dyn JobBoard>>, Error> {
    let mut probed = !starting || !config.etcd_security.uses_tls();
    let mut delay = RETRY_START;
    let mut last_log: Option<(Instant, String)> = None;
    loop {
        let opened = tokio::select! {
            _ = shutdown.as_mut() => return Ok(None),
            opened = open_board(config, stats) => opened,
        };
        let error = match opened {
            Ok(board) => {
                if last_log.is_some() {
                    tracing::info!(board = %config.board, "job board reachable: session started");
                }
                return Ok(Some(board));
            }
            Err(Error::Board(error)) if error.is_retryable() => error,
            Err(error) => return Err(error),
        };
        if let (false, BoardSettings::Etcd { endpoints, .. }) = (probed, &config.board) {
            probed = true;
            if let Some(endpoint) = endpoints.first() {
                if let Some(problem) = super::etcd_probe::certificate_problem(endpoint, &config.etcd_security).await {
                    return Err(Error::Config(problem));
                }
            }
        }
        let cause = match &error {
            jobboard::Error::Unavailable { message, .. } => message.clone(),
            other => other.to_string(),
        };
        slot.empty_for(format!("cannot reach {}: {cause}", config.board));
        let quiet = last_log.as_ref().is_some_and(|(at, said)| *said == cause && at.elapsed() < LOG_EVERY);
        if !quiet {
            tracing::warn!(board = %config.board, %cause, "job board unreachable; waiting for it (health: NOT_SERVING)");
            last_log = Some((Instant::now(), cause));
        }
        tokio::select! {
            _ = shutdown.as_mut() => return Ok(None),
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(RETRY_CAP);
    }
}

/// Opens a board session in the conductor's name, once.
///
/// etcd: connects and grants the session lease (`Unavailable` if etcd cannot
/// be reached). Embedded: creates the data dir if needed and opens
/// `board.sqlite3` in it, returning jobs a previous run had claimed to the board.
/// An etcd session counts its lease renewals into `stats`.
pub async fn open_board(config: &Config, stats: &Arc<SessionStats>) -> Result<Arc<dyn JobBoard>, Error> {
    match &config.board {
        BoardSettings::Etcd { endpoints, prefix } => {
            let etcd = EtcdConfig {
                endpoints: endpoints.clone(),
                prefix: prefix.clone(),
                lease_ttl: config.lease_ttl,
                board: config.board_config(),
                security: config.etcd_security.load()?,
                stats: stats.clone(),
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
