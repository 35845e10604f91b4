//! Picks on the embedded board: the claim folded into the first logbook
//! write (`crate::pick`), one SQLite transaction for both.
//!
//! A pick reads the best unclaimed job (passing by those this process has
//! picked and not yet taken or given up), writing nothing; its claim step
//! claims it, in one transaction with the engine's first batch, if it is
//! still UNCLAIMED with the claim count it was picked at (`lifecycle::fold`).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use flows::logbook::now_millis;
use rusqlite::{params_from_iter, Connection, OptionalExtension};
use tokio_util::sync::CancellationToken;

use super::db::sql_error;
use super::jobs;
use super::rows::cached_row;
use super::storage::{logbook_error, EmbeddedClaimOps, OwnedBatch};
use super::EmbeddedBoard;
use crate::claim::{Claim, ClaimOps, FenceToken, FinalBatch};
use crate::error::Error;
use crate::job::{FlowFilter, Job, JobId, JobState};
use crate::lifecycle::fold::{self, Picked};
use crate::lifecycle::{Change, QuarantineRule, Status};
use crate::pick::{Pick, Taking};

/// Jobs picked in this process and not yet taken or given up.
#[derive(Debug, Default)]
pub(super) struct Picks(Mutex<HashSet<JobId>>);

impl Picks {
    fn held(&self) -> Vec<JobId> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).iter().copied().collect()
    }

    fn reserve(&self, id: JobId) -> bool {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).insert(id)
    }

    fn release(&self, id: JobId) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
    }
}

/// The best unclaimed job the filter accepts, passing `skip` by.
fn best(tx: &Connection, filter: &FlowFilter, skip: &[JobId]) -> Result<Option<Job>, Error> {
    let (sql, args) = jobs::claimable_query(filter, skip);
    let best: Option<String> =
        cached_row(tx, &sql, params_from_iter(args.iter()), |row| row.get(0)).optional().map_err(sql_error)?;
    best.map(|id| super::rows::parse_uuid(&id)).transpose()?.map(|id| jobs::get_existing(tx, id)).transpose()
}

impl EmbeddedBoard {
    /// See `JobBoard::pick_next`.
    pub(super) async fn pick(&self, filter: &FlowFilter) -> Result<Option<Pick>, Error> {
        // Bounded: each round picks, or quarantines one job, or meets a sibling's fresh pick.
        for _ in 0..16 {
            self.check_open()?;
            let (filter, skip) = (filter.clone(), self.shared.picks.held());
            let Some(job) = self.shared.db.read(move |tx| best(tx, &filter, &skip)).await? else {
                return Ok(None);
            };
            if !self.shared.picks.reserve(job.id) {
                continue;
            }
            let rule = QuarantineRule::new(self.shared.quarantine_after);
            let status = Status::of(&job);
            let picked = fold::pick(&status, rule, now_millis()).map_err(|r| r.into_error(job.id, None));
            let next = match picked {
                Ok(Picked::Claim(next)) => next,
                Ok(Picked::Quarantine) => {
                    self.shared.picks.release(job.id);
                    // The classic claim quarantines it (or finds it changed), in one transaction.
                    if let Err(error) = crate::board::JobBoard::claim(self, job.id).await {
                        tracing::debug!(job = %job.id, %error, "quarantined instead of picked");
                    }
                    continue;
                }
                Err(error) => {
                    self.shared.picks.release(job.id);
                    return Err(error);
                }
            };
            let view = fold::claimed_view(&job, next, &self.session.owner);
            let tokens = (self.session.lost.child_token(), CancellationToken::new());
            let ops: Arc<dyn ClaimOps> =
                Arc::new(EmbeddedClaimOps { shared: self.shared.clone(), owner: self.session.owner.clone() });
            let taking = EmbeddedTaking { board: self.clone(), id: job.id, claims: job.claims, tokens: tokens.clone() };
            return Ok(Some(Pick::new(view, ops, tokens, fold::no_logbook_yet(&status), Box::new(taking))));
        }
        Ok(None)
    }
}

/// A picked job's claim step; holds the pick until dropped.
#[derive(Debug)]
struct EmbeddedTaking {
    board: EmbeddedBoard,
    id: JobId,
    /// The claim count it was picked at.
    claims: u32,
    tokens: (CancellationToken, CancellationToken),
}

impl Drop for EmbeddedTaking {
    fn drop(&mut self) {
        self.board.shared.picks.release(self.id);
    }
}

#[async_trait]
impl Taking for EmbeddedTaking {
    async fn take(&self, first: Option<FinalBatch<'_>>) -> Result<(Claim, bool), Error> {
        let (board, id, seen) = (&self.board, self.id, self.claims);
        let batch = first
            .map(|b| OwnedBatch::checked(&board.shared, b.flow, &b.changes).map(|owned| (b.book, b.flow, owned)))
            .transpose()?;
        let written = batch.is_some();
        let (session, owner) = (board.session.clone(), board.session.owner.clone());
        let claimed = board
            .shared
            .db
            .write(move |tx| {
                session.check_open()?;
                let now = now_millis();
                match jobs::get(tx, id)? {
                    Some(job) if job.state == JobState::Unclaimed && job.claims == seen => {
                        let job = jobs::transition(tx, &job, &Change::Claim, Some(&owner), now)?;
                        if let Some((book, flow, batch)) = &batch {
                            batch.write(tx, id, *book, *flow, now).map_err(logbook_error)?;
                        }
                        Ok(Some(job))
                    }
                    // Changed since the pick: nothing is written.
                    _ => Ok(None),
                }
            })
            .await?;
        let Some(job) = claimed else {
            board.shared.notify.claimable();
            return Err(Error::ClaimLost { job: id, token: 0 });
        };
        let token = FenceToken::from(job.claims);
        let (lost, cancelled) = self.tokens.clone();
        board.shared.notify.claim_started_with(job.id, &board.session.owner, token, job.cancel_requested, &cancelled);
        board.shared.notify.job_changed(job.id);
        let ops = Arc::new(EmbeddedClaimOps { shared: board.shared.clone(), owner: board.session.owner.clone() });
        Ok((Claim::new(job, token, ops, lost, cancelled), written))
    }
}
