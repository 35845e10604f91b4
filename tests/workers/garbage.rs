//! A worker that sends garbage, spoken on the wire directly (no SDK): a malformed hello,
//! a result for an unknown dispatch, a result twice, an oversized result. Each gets a clear
//! error, and a job on a well-behaved worker beside it is not disturbed.

use std::time::Duration;

use proto::pb::{self, conductor_message::Msg as Down, worker_message::Msg as Up, WorkerMessage};
use tests::conductor::{post_job, OrFail};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::{task, Fleet};

const RAW: &str = r#"
name: remote-raw
flow:
  linear:
    - {task: raw, kind: remote, with: {task: raw.task, x: 1}}
"#;

const OK: &str = r#"
name: remote-ok
flow:
  linear:
    - {task: slow, kind: remote, with: {task: hold, ms: 1500}}
"#;

fn hello(id: &str, tasks: &[&str]) -> WorkerMessage {
    let tasks = tasks.iter().map(|t| pb::TaskOffer { name: (*t).to_owned(), ..Default::default() }).collect();
    WorkerMessage {
        msg: Some(Up::Hello(pb::Hello { worker_id: id.to_owned(), tasks, slots: 1, ..Default::default() })),
    }
}

fn result(assign: &pb::Assign, json: String) -> WorkerMessage {
    let outcome = pb::result::Outcome::Success(pb::Success { result_json: json });
    WorkerMessage {
        msg: Some(Up::Result(pb::Result {
            dispatch_id: assign.dispatch_id.clone(),
            attempt: assign.attempt,
            outcome: Some(outcome),
        })),
    }
}

/// A raw stream: its sender and the conductor's messages.
struct Raw {
    up: mpsc::Sender<WorkerMessage>,
    down: tonic::Streaming<pb::ConductorMessage>,
}

impl Raw {
    async fn open(endpoint: &str, first: WorkerMessage) -> Result<Raw, tonic::Status> {
        let client = proto::Client::connect(endpoint).await.map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let (up, rx) = mpsc::channel(16);
        up.send(first).await.map_err(|_| tonic::Status::internal("send"))?;
        let down = client.workers().attach(ReceiverStream::new(rx)).await?.into_inner();
        Ok(Raw { up, down })
    }

    /// The next message that is not a heartbeat.
    async fn next(&mut self) -> Down {
        loop {
            let message = tokio::time::timeout(super::PATIENCE, self.down.message()).await;
            match message {
                Ok(Ok(Some(pb::ConductorMessage { msg: Some(Down::Heartbeat(_)) }))) => {}
                Ok(Ok(Some(pb::ConductorMessage { msg: Some(msg) }))) => return msg,
                other => panic!("the stream ended: {other:?}"),
            }
        }
    }

    async fn send(&self, msg: WorkerMessage) {
        self.up.send(msg).await.expect("stream open");
    }

    /// Sends heartbeats in the background so the raw worker stays alive.
    fn keep_alive(&self) {
        let up = self.up.clone();
        tokio::spawn(async move {
            loop {
                let beat = WorkerMessage { msg: Some(Up::Heartbeat(pb::Heartbeat { free_slots: 0 })) };
                if up.send(beat).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
    }
}

fn code_of(msg: &Down) -> (pb::protocol_error::Code, String) {
    match msg {
        Down::Error(e) => (pb::protocol_error::Code::try_from(e.code).expect("a known code"), e.message.clone()),
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

#[test]
fn a_worker_sending_garbage_gets_clear_errors_and_disturbs_nothing() {
    let mut fleet = Fleet::new("wk-garbage", &[("raw.yaml", RAW), ("ok.yaml", OK)], 1, &[]);
    fleet.worker("w-ok", 1, &[0]);
    let endpoint = fleet.endpoint(0);
    let runtime = tokio::runtime::Runtime::new().or_fail();
    let ok_job = post_job(&endpoint, "remote-ok", &[]).or_fail();
    runtime.block_on(async {
        // A malformed hello, and a stream that does not start with one.
        let refused = Raw::open(&endpoint, hello("bad", &[])).await.err().expect("refused");
        assert_eq!(refused.code(), tonic::Code::InvalidArgument);
        assert!(refused.message().contains("offer 1 to"), "{}", refused.message());
        let beat = WorkerMessage { msg: Some(Up::Heartbeat(pb::Heartbeat::default())) };
        let refused = Raw::open(&endpoint, beat).await.err().expect("refused");
        assert!(refused.message().contains("first message must be a Hello"), "{}", refused.message());

        let mut raw = Raw::open(&endpoint, hello("raw", &["raw.task"])).await.or_fail();
        assert!(matches!(raw.next().await, Down::Welcome(_)));
        raw.keep_alive();
        let unknown = pb::Assign { dispatch_id: "no-such-dispatch".to_owned(), attempt: 1, ..Default::default() };
        raw.send(result(&unknown, "1".to_owned())).await;
        assert_eq!(code_of(&raw.next().await).0, pb::protocol_error::Code::UnknownDispatch);

        // A result twice: the second is dropped as stale.
        let first_job = post_job(&endpoint, "remote-raw", &[]).or_fail();
        let Down::Assign(assign) = raw.next().await else { panic!("expected an assignment") };
        assert_eq!(assign.job_id, first_job);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&assign.inputs_json).or_fail(),
            serde_json::json!({"x": 1})
        );
        raw.send(result(&assign, r#"{"n": 1}"#.to_owned())).await;
        raw.send(result(&assign, r#"{"n": 2}"#.to_owned())).await;
        assert_eq!(code_of(&raw.next().await).0, pb::protocol_error::Code::StaleResult);
        let job = tokio::task::block_in_place(|| fleet.finished(0, &first_job));
        assert_eq!(job["outcome"], "SUCCESS", "{job}");
        assert_eq!(super::result_of(&job, "raw"), serde_json::json!({"n": 1}), "the first result stands");

        // An oversized result fails the attempt with a clear kind.
        let big_job = post_job(&endpoint, "remote-raw", &[]).or_fail();
        let Down::Assign(assign) = raw.next().await else { panic!("expected an assignment") };
        raw.send(result(&assign, format!("\"{}\"", "x".repeat(2 << 20)))).await;
        let (code, message) = code_of(&raw.next().await);
        assert_eq!(code, pb::protocol_error::Code::ResultTooLarge, "{message}");
        let job = tokio::task::block_in_place(|| fleet.finished(0, &big_job));
        assert_eq!(job["outcome"], "REVERTED", "{job}");
        assert_eq!(task(&job, "raw")["failure"]["kind"], "ResultTooLarge", "{job}");
    });
    let ok = fleet.finished(0, &ok_job);
    assert_eq!(ok["outcome"], "SUCCESS", "the well-behaved worker's job was not disturbed: {ok}");
    assert_eq!(task(&ok, "slow")["executions"], 1, "{ok}");
}
