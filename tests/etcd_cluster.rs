//! etcd as production runs it: a three-member cluster on loopback.
//!
//! - The board suite's failover cases, on the one cluster this binary shares
//!   (every session is given all three endpoints).
//! - `board`: a board holding claims rides out a kill -9 of the leader, twice.
//! - `fleet`: three real conductors run `chain` jobs through a leader kill and
//!   the kill of another member: every job completes once, no conductor exits.
//!
//! The two fault tests each start their own cluster and take turns: killing
//! members of a cluster on two shared cores while another test measures
//! nothing is fine, but two elections at once only test the machine.

use std::sync::{Mutex, MutexGuard};

#[path = "etcd_cluster/board.rs"]
mod board;
#[path = "etcd_cluster/fleet.rs"]
mod fleet;

/// One fault test at a time.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Emits a test that runs the board-suite `case` on the shared cluster.
macro_rules! cluster_case {
    ($case:ident) => {
        #[tokio::test(flavor = "multi_thread")]
        async fn $case() {
            let endpoints = tokio::task::spawn_blocking(|| tests::etcd::cluster::EtcdCluster::shared().endpoints())
                .await
                .unwrap_or_else(|e| panic!("starting the test etcd cluster failed: {e}"));
            let factory = tests::board_suite::EtcdFactory::on(endpoints, stringify!($case));
            tests::board_suite::$case(&factory).await;
        }
    };
}

mod failover {
    cluster_case!(lost_session_returns_job);
    cluster_case!(close_releases_claims);
    cluster_case!(old_owner_is_fenced);
    cluster_case!(wakeups_fire);
    cluster_case!(cancel_unclaimed_and_claimed);
}
