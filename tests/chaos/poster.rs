//! The poster: waves of `chaos` jobs through `baton post ... --idempotency-key K`, each
//! retried with the same key until it lands (so a post whose answer was lost is not
//! posted twice), until the chaos phase ends.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tests::chaos::flow::FLOW;

use crate::cli::Cli;
use crate::report::Report;
use crate::rng::Rng;

/// How long one job may take to post, retries included, before the post is a finding.
const POST_PATIENCE: Duration = Duration::from_secs(60);

/// A job the board accepted.
#[derive(Debug, Clone)]
pub struct Posted {
    /// The idempotency key, also the `key` input its steps record.
    pub key: String,
    pub id: String,
    pub steps: u64,
    pub step_ms: u64,
}

/// Every job posted so far, in order.
pub type PostedJobs = Arc<Mutex<Vec<Posted>>>;

/// Starts posting; returns when `stop` is set and the current wave is posted.
pub fn spawn(
    cli: Arc<Cli>,
    posted: PostedJobs,
    report: Arc<Report>,
    seed: u64,
    stop: Arc<AtomicBool>,
) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name("chaos-poster".into())
        .spawn(move || {
            let mut rng = Rng::stream(seed, 1);
            let mut number = 0u64;
            let mut wave = 0u64;
            while !stop.load(Ordering::SeqCst) {
                wave += 1;
                let size = rng.between(2, 6);
                for _ in 0..size {
                    number += 1;
                    let key = format!("chaos-{seed}-{number}");
                    let steps = rng.between(2, 6);
                    let step_ms = rng.between(100, 300);
                    match post(&cli, &key, steps, step_ms) {
                        Ok(id) => {
                            posted.lock().unwrap_or_else(|e| e.into_inner()).push(Posted { key, id, steps, step_ms })
                        }
                        Err(error) => report.fail("post", format!("{key} never posted: {error}")),
                    }
                }
                report.event(format_args!("wave {wave}: posted {size} jobs"));
                let pause = rng.duration(Duration::from_secs(1), Duration::from_secs(3));
                let until = Instant::now() + pause;
                while Instant::now() < until && !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        })
        .unwrap_or_else(|e| panic!("cannot start the poster thread: {e}"))
}

/// `baton post chaos --store key=K --store steps=S --store step_ms=M --idempotency-key K`.
pub fn post(cli: &Cli, key: &str, steps: u64, step_ms: u64) -> Result<String, String> {
    let (key_arg, steps_arg, step_arg) = (format!("key={key}"), format!("steps={steps}"), format!("step_ms={step_ms}"));
    let args =
        ["post", FLOW, "--store", &key_arg, "--store", &steps_arg, "--store", &step_arg, "--idempotency-key", key];
    let deadline = Instant::now() + POST_PATIENCE;
    loop {
        let error = match cli.any(&args) {
            Ok(job) => match job["id"].as_str() {
                Some(id) => return Ok(id.to_string()),
                None => format!("`baton post` printed no id: {job}"),
            },
            Err(error) => error,
        };
        if Instant::now() > deadline {
            return Err(error);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
