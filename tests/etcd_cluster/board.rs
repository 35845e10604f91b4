//! A board holding claims on a three-member cluster rides out kill -9 of the
//! leader: the session is kept, writes through the claims land once a new
//! leader is elected, and reads, posts and claims go on through the survivors. Then
//! the killed member returns, catches up, and the new leader is killed too.

use std::time::Duration;

use flows::{AtomDetail, AtomKind, AtomState, FlowDetail, LogBook};
use jobboard::etcd::{EtcdBoard, EtcdConfig};
use jobboard::{BoardConfig, Claim, JobBoard, JobState, NewJob, Outcome};
use serde_json::{json, Map};
use tests::board_suite::within;
use tests::etcd::cluster::EtcdCluster;
use tests::etcd::unique_prefix;
use uuid::Uuid;

use super::one_at_a_time;

/// The default TTL: an election (about a second on loopback) is far shorter.
const LEASE_TTL: Duration = Duration::from_secs(10);
/// Reads per board after an election: enough that a client picking among three
/// members at random reaches each (all 20 miss one with chance (2/3)^20 < 0.1%).
const READS: usize = 20;

async fn connect(endpoints: Vec<String>, prefix: &str, owner: &str) -> EtcdBoard {
    let mut config = EtcdConfig::new(endpoints, BoardConfig::new(owner));
    config.prefix = prefix.to_owned();
    config.lease_ttl = LEASE_TTL;
    EtcdBoard::connect(config).await.unwrap_or_else(|e| panic!("connecting {owner} failed: {e}"))
}

/// A claim and the logbook its owner writes through it.
struct Held {
    claim: Claim,
    book: LogBook,
    flow: FlowDetail,
    /// The steps written so far: the logbook must show each.
    written: Vec<String>,
}

impl Held {
    /// Records step `name` as done through the claim: a fenced write.
    async fn write_step(&mut self, name: &str) {
        let mut atom = AtomDetail::new(name, AtomKind::Task);
        atom.state = AtomState::Success;
        atom.result = Some(json!(name));
        let written =
            within(&format!("the write of {name}"), self.claim.storage().save_atom(self.book.id, self.flow.id, &atom))
                .await;
        if let Err(e) = written {
            panic!("job {}: writing {name} through the claim failed: {e}", self.claim.id());
        }
        self.written.push(name.to_owned());
    }
}

/// Posts a job, claims it and starts its logbook.
async fn post_and_hold(client: &EtcdBoard, owner: &EtcdBoard, n: i64) -> Held {
    let mut store = Map::new();
    store.insert("n".into(), json!(n));
    let posted = within("a post", client.post(NewJob::new("work", store)))
        .await
        .unwrap_or_else(|e| panic!("post {n} failed: {e}"));
    let claim = within("a claim", owner.claim(posted.id)).await.unwrap_or_else(|e| panic!("claim {n} failed: {e}"));
    let book = LogBook::new(posted.id, "book");
    let flow = FlowDetail::new(Uuid::new_v4(), "flow");
    let storage = claim.storage();
    within("save_book", storage.save_book(&book)).await.unwrap_or_else(|e| panic!("save_book failed: {e}"));
    within("save_flow", storage.save_flow(book.id, &flow)).await.unwrap_or_else(|e| panic!("save_flow failed: {e}"));
    Held { claim, book, flow, written: Vec::new() }
}

/// Reads enough to reach every member a client might pick: each must go through
/// (a client that still sends to the dead member fails some of them).
async fn reads_go_through(boards: &[&EtcdBoard], id: jobboard::JobId, after: &str) {
    for attempt in 0..READS {
        for board in boards {
            if let Err(e) = within("a read", board.get(id)).await {
                panic!("read {attempt} after {after} failed: {e}");
            }
        }
    }
}

fn assert_kept(boards: &[&EtcdBoard], held: &[Held], after: &str) {
    for board in boards {
        assert!(!board.session_lost().is_cancelled(), "a session was lost after {after}");
    }
    for h in held {
        assert!(!h.claim.lost().is_cancelled(), "job {}: the claim was lost after {after}", h.claim.id());
    }
}

/// Kill -9 of the leader, twice (the second time the leader elected after the
/// first kill, once the first is back and caught up): no session is lost, no
/// claim is lost, and every write, post and claim goes through.
#[test]
fn board_rides_out_leader_kills() {
    let _turn = one_at_a_time();
    let mut cluster = EtcdCluster::start(3);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("cannot build a runtime: {e}"));
    runtime.block_on(async {
        let prefix = unique_prefix("cluster-leader-kill");
        let owner = connect(cluster.endpoints(), &prefix, "owner").await;
        let client = connect(cluster.endpoints(), &prefix, "client").await;
        let mut held = Vec::new();
        for n in 0..3 {
            held.push(post_and_hold(&client, &owner, n).await);
        }

        for round in 0..2 {
            // Harness calls block (they wait on processes); the board's tasks run on the other worker.
            let leader = tokio::task::block_in_place(|| cluster.wait_leader());
            tokio::task::block_in_place(|| cluster.kill(leader));
            // At once, during the election: the board must ride it out, not fail the write.
            for h in &mut held {
                h.write_step(&format!("during-election-{round}")).await;
            }
            let new_leader = tokio::task::block_in_place(|| cluster.wait_leader());
            assert_ne!(new_leader, leader, "a killed member still leads");
            let after = format!("leader kill {round}");
            reads_go_through(&[&owner, &client], held[0].claim.id(), &after).await;
            held.push(post_and_hold(&client, &owner, 10 + round).await);
            for h in &mut held {
                h.write_step(&format!("after-election-{round}")).await;
            }
            assert_kept(&[&owner, &client], &held, &after);
            tokio::task::block_in_place(|| cluster.restart(leader));
        }

        // A session fenced off by a renewal that never got through would show within a TTL.
        tokio::time::sleep(LEASE_TTL).await;
        assert_kept(&[&owner, &client], &held, "a lease TTL more");
        for h in held {
            let id = h.claim.id();
            let done = within("a consume", h.claim.consume(Outcome::Success, None))
                .await
                .unwrap_or_else(|e| panic!("job {id}: consume failed: {e}"));
            assert_eq!((done.state, done.outcome), (JobState::Complete, Some(Outcome::Success)));
            let book = client.logbook(id).await.unwrap_or_else(|e| panic!("logbook failed: {e}"));
            let mut atoms: Vec<String> = book
                .and_then(|b| b.flows.get(&h.flow.id).map(|f| f.atoms.keys().cloned().collect()))
                .unwrap_or_default();
            let mut written = h.written;
            atoms.sort();
            written.sort();
            assert_eq!(atoms, written, "job {id}: the logbook does not show what was written through the claim");
        }
    });
}
