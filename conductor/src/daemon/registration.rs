//! Registration: this conductor's entry on the board, kept true.
//!
//! The entry lives on the board session (the etcd lease), so it vanishes when
//! the conductor dies. A background task re-reads it every
//! `--drain-check-interval`: it applies the board's drain flag locally (see
//! [`drain`](super::drain)), re-registers if the entry is gone, and writes
//! local drain changes to the board.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jobboard::{ConductorInfo, JobBoard};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::drain::DrainHandle;

/// Keeps the registration and the drain flag in step with the board.
#[derive(Debug)]
pub(crate) struct Registration {
    board: Arc<dyn JobBoard>,
    info: ConductorInfo,
    drain: DrainHandle,
    /// When the board was last read. A tokio mutex: it is held across the
    /// read so that concurrent callers share one read instead of each making one.
    last_read: Mutex<Option<Instant>>,
    /// The drain switch's generation last written to the board (or tried). A board read
    /// is applied only when every local change has been: otherwise a read made between an
    /// operator's drain (or undrain) and its write brings the old flag back, for good.
    published: AtomicU64,
}

impl Registration {
    pub(crate) fn new(board: Arc<dyn JobBoard>, info: ConductorInfo, drain: DrainHandle) -> Self {
        let published = AtomicU64::new(drain.generation());
        Registration { board, info, drain, last_read: Mutex::new(None), published }
    }

    /// Registers on the board (at startup).
    pub(crate) async fn register(&self) -> Result<(), jobboard::Error> {
        self.board.register_conductor(&self.info).await?;
        *self.last_read.lock().await = Some(Instant::now());
        Ok(())
    }

    /// Re-reads the board unless it was read less than `max_age` ago.
    pub(crate) async fn refresh_if_stale(&self, max_age: Duration) {
        let mut last = self.last_read.lock().await;
        if last.is_some_and(|at| at.elapsed() < max_age) {
            return;
        }
        self.refresh_locked(&mut last).await;
    }

    async fn refresh_locked(&self, last: &mut Option<Instant>) {
        let generation = self.drain.generation();
        match self.board.conductors().await {
            Ok(list) => {
                *last = Some(Instant::now());
                match list.iter().find(|c| c.name == self.info.name) {
                    Some(me) => {
                        let unpublished = generation != self.published.load(Ordering::SeqCst);
                        if !unpublished && self.drain.apply_from_board(me.draining, generation) {
                            tracing::info!(draining = me.draining, "drain flag changed on the board");
                        }
                    }
                    None => {
                        tracing::warn!(conductor = %self.info.name, "registration missing from the board; registering again");
                        let info = ConductorInfo { draining: self.drain.is_draining(), ..self.info.clone() };
                        if let Err(error) = self.board.register_conductor(&info).await {
                            tracing::warn!(%error, "re-registration failed; will retry");
                        }
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "cannot read conductors from the board; will retry"),
        }
    }

    /// Writes the local drain flag to the board, best effort (the periodic
    /// read reconciles a failed write).
    async fn publish_drain(&self, draining: bool) {
        match self.board.set_draining(&self.info.name, draining).await {
            Ok(()) => tracing::info!(draining, "drain flag recorded on the board"),
            Err(error) => tracing::warn!(%error, draining, "cannot record the drain flag on the board"),
        }
    }

    /// The background task: periodic re-reads, local drain changes, until `stop`.
    pub(crate) async fn maintain(self: Arc<Self>, every: Duration, stop: CancellationToken) {
        let mut local = self.drain.subscribe();
        local.borrow_and_update();
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.reset();
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => self.refresh_if_stale(every / 2).await,
                changed = local.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let draining = *local.borrow_and_update();
                    let generation = self.drain.generation();
                    if draining {
                        tracing::info!("draining: no new jobs will be claimed");
                    } else {
                        tracing::info!("drain ended: claiming again");
                    }
                    self.publish_drain(draining).await;
                    self.published.store(generation, Ordering::SeqCst);
                }
            }
        }
    }
}
