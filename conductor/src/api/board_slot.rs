//! `BoardSlot`: the board the API serves from, which comes and goes.
//!
//! A conductor serves its API from the start, before its board session exists,
//! and keeps serving across sessions: while it connects, between a lost
//! session and the next, and while the live session's renewals are failing,
//! calls that need the board are refused at once with the cause, rather than
//! hanging on a request that will time out. The daemon fills and empties the
//! slot; the handlers only read it.

use std::sync::Arc;

use jobboard::{Availability, JobBoard};
use tokio::sync::watch;

/// What the slot holds now.
#[derive(Debug, Clone)]
enum Slot {
    /// No session: why, in words.
    Empty(String),
    /// A live session.
    Live(Arc<dyn JobBoard>),
}

/// The board behind the API. Cheap to clone; clones share the slot.
#[derive(Debug, Clone)]
pub struct BoardSlot(Arc<watch::Sender<Slot>>);

impl BoardSlot {
    /// A slot that always holds `board` (tests, tools that own their board).
    pub fn fixed(board: Arc<dyn JobBoard>) -> Self {
        BoardSlot(Arc::new(watch::channel(Slot::Live(board)).0))
    }

    /// An empty slot: no session yet, for `cause`.
    pub fn empty(cause: impl Into<String>) -> Self {
        BoardSlot(Arc::new(watch::channel(Slot::Empty(cause.into())).0))
    }

    /// A session is live.
    pub fn fill(&self, board: Arc<dyn JobBoard>) {
        self.0.send_replace(Slot::Live(board));
    }

    /// The session is gone (or not there yet), for `cause`.
    pub fn empty_for(&self, cause: impl Into<String>) {
        self.0.send_replace(Slot::Empty(cause.into()));
    }

    /// The board, if it answers now; otherwise why not.
    pub fn get(&self) -> Result<Arc<dyn JobBoard>, String> {
        match &*self.0.borrow() {
            Slot::Empty(cause) => Err(cause.clone()),
            Slot::Live(board) => match &*board.availability().borrow() {
                Availability::Available => Ok(board.clone()),
                Availability::Unavailable(cause) => Err(cause.clone()),
            },
        }
    }

    /// Waits until the board's availability differs from `seen` (a session
    /// came or went, or the live one's renewals failed or recovered); returns it.
    pub async fn changed(&self, seen: &Result<(), String>) -> Result<(), String> {
        let mut slot = self.0.subscribe();
        loop {
            let (now, mut availability) = match slot.borrow_and_update().clone() {
                Slot::Empty(cause) => (Err(cause), None),
                Slot::Live(board) => {
                    let mut availability = board.availability();
                    let now = availability_result(&availability.borrow_and_update());
                    (now, Some(availability))
                }
            };
            if now != *seen {
                return now;
            }
            let availability_changed = async {
                // A closed channel (a board whose availability never changes) never fires.
                let fired = match availability.as_mut() {
                    Some(availability) => availability.changed().await.is_ok(),
                    None => false,
                };
                if !fired {
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                changed = slot.changed() => if changed.is_err() { return now },
                _ = availability_changed => {}
            }
        }
    }
}

fn availability_result(availability: &Availability) -> Result<(), String> {
    match availability {
        Availability::Available => Ok(()),
        Availability::Unavailable(cause) => Err(cause.clone()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use jobboard::embedded::EmbeddedBoard;
    use jobboard::BoardConfig;

    use super::*;

    #[tokio::test]
    async fn an_empty_slot_names_its_cause_and_a_filled_one_answers() {
        let dir = tempfile::tempdir().unwrap();
        let board: Arc<dyn JobBoard> =
            Arc::new(EmbeddedBoard::open(&dir.path().join("b.sqlite3"), BoardConfig::new("slot")).unwrap());
        let slot = BoardSlot::empty("connecting to etcd at http://127.0.0.1:1");
        assert_eq!(slot.get().err().as_deref(), Some("connecting to etcd at http://127.0.0.1:1"));

        let waiter = {
            let slot = slot.clone();
            tokio::spawn(async move { slot.changed(&Err("connecting to etcd at http://127.0.0.1:1".into())).await })
        };
        slot.fill(board);
        let now = tokio::time::timeout(Duration::from_secs(10), waiter).await.unwrap().unwrap();
        assert_eq!(now, Ok(()));
        assert!(slot.get().is_ok());

        slot.empty_for("session lost");
        assert_eq!(slot.get().err().as_deref(), Some("session lost"));
    }
}
