//! Schedules end to end: real `conductor` processes and the real `baton` CLI, on etcd
//! (three conductors racing for every tick) and on the embedded board (one conductor).
//!
//! Each scheduled job carries its tick in its idempotency key
//! (`schedule/NAME/2026-11-27T08:00:00Z`), so the jobs on the board say which ticks were
//! posted, and how often. Build the binaries first: `cargo build --workspace --bins`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use tests::conductor::{baton, ConductorProcess, OrFail};
use tests::flow_files::{flows_dir, BoardKind, TestBoard};

/// Bound on anything that should take seconds; only there so a broken build cannot hang.
const PATIENCE: Duration = Duration::from_secs(120);
/// The grace before a conductor's start within which a tick still counts as on time
/// (`jobboard::schedules::GRACE`).
const GRACE_MS: u64 = jobboard::schedules::GRACE;

const TICK_FLOW: &str = "name: tick\nflow:\n  linear:\n    - task: nothing\n      kind: noop\n";

const NEEDS_INPUT: &str =
    "name: greet\ninputs:\n  who: {type: string}\nflow:\n  linear:\n    - task: nothing\n      kind: noop\n";

tests::on_both_boards!(
    the_cli_creates_lists_gets_pauses_resumes_and_deletes,
    catch_up_fires_at_most_n_missed_ticks_and_skip_fires_none,
    create_refuses_bad_input_and_stores_nothing,
);

fn flows() -> tempfile::TempDir {
    flows_dir(&[("tick.yaml", TICK_FLOW), ("greet.yaml", NEEDS_INPUT)]).or_fail()
}

fn conductor(board: &TestBoard, name: &str, flows: &tempfile::TempDir) -> ConductorProcess {
    ConductorProcess::start(&board.conductor(name, flows.path(), &[])).or_fail()
}

/// `baton ARGS` must succeed; its JSON.
fn ok(endpoint: &str, args: &[&str]) -> Value {
    baton(endpoint, args).ok_json().or_fail()
}

fn create(endpoint: &str, name: &str, cron: &str, catch_up: u32) -> Value {
    let catch_up = catch_up.to_string();
    ok(endpoint, &["schedules", "create", name, "--flow", "tick", "--cron", cron, "--catch-up", &catch_up])
}

/// Tick (ms) to job ids, for every job on the board that schedule `name` posted.
fn posted(endpoint: &str, name: &str) -> BTreeMap<u64, Vec<String>> {
    let Value::Array(jobs) = ok(endpoint, &["list"]) else { panic!("`baton list` printed no list") };
    let prefix = format!("schedule/{name}/");
    let mut ticks: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for job in &jobs {
        let Some(time) = job["idempotency_key"].as_str().and_then(|key| key.strip_prefix(&prefix)) else { continue };
        let at: jiff_tz::Timestamp = time.parse().or_fail();
        let tick = u64::try_from(at.as_millisecond()).or_fail();
        ticks.entry(tick).or_default().push(job["id"].as_str().unwrap_or_default().to_owned());
    }
    ticks
}

/// Waits until schedule `name` has posted a job for a tick after `after` (ms); returns the ticks.
fn wait_for_tick_after(endpoint: &str, name: &str, after: u64) -> BTreeMap<u64, Vec<String>> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let ticks = posted(endpoint, name);
        if ticks.keys().any(|&tick| tick > after) {
            return ticks;
        }
        assert!(Instant::now() < deadline, "schedule {name} posted nothing after {after}: {ticks:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Every tick has exactly one job, and no job is listed for two ticks.
fn assert_once_each(name: &str, ticks: &BTreeMap<u64, Vec<String>>) {
    let twice: Vec<_> = ticks.iter().filter(|(_, jobs)| jobs.len() != 1).collect();
    assert!(twice.is_empty(), "schedule {name}: ticks posted more than once: {twice:?}");
    let mut ids: Vec<&String> = ticks.values().flatten().collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), ticks.len(), "schedule {name}: a job id under two ticks");
}

/// The ticks are consecutive seconds: none skipped between the first and the last.
fn assert_consecutive(name: &str, ticks: &[u64]) {
    let holes: Vec<_> = ticks.windows(2).filter(|w| w[1] - w[0] != 1_000).collect();
    assert!(holes.is_empty(), "schedule {name}: ticks not consecutive seconds, holes at {holes:?} in {ticks:?}");
}

#[test]
fn three_conductors_post_one_job_per_tick_for_twenty_seconds() {
    let board = TestBoard::new(BoardKind::Etcd, "sched-three").or_fail();
    let flows = flows();
    let conductors: Vec<ConductorProcess> =
        ["sched-a", "sched-b", "sched-c"].iter().map(|name| conductor(&board, name, &flows)).collect();
    let endpoint = conductors[0].endpoint();
    create(&endpoint, "every-second", "* * * * * *", 0);
    std::thread::sleep(Duration::from_secs(20));
    ok(&endpoint, &["schedules", "pause", "every-second"]);
    // A post in flight when the pause landed still ends on the board; let it.
    std::thread::sleep(Duration::from_secs(1));
    let ticks = posted(&endpoint, "every-second");
    assert_once_each("every-second", &ticks);
    let times: Vec<u64> = ticks.keys().copied().collect();
    assert_consecutive("every-second", &times);
    assert!(times.len() >= 10, "20 s of a schedule every second posted only {} jobs: {times:?}", times.len());
    // `get` shows the last firings, each a job that is on the board under its tick.
    let shown = ok(&endpoint, &["schedules", "get", "every-second"]);
    let recent = shown["recent"].as_array().cloned().unwrap_or_default();
    assert!(!recent.is_empty(), "get shows no firing: {shown}");
    for firing in &recent {
        let tick = firing["tick"].as_u64().or_fail_with("tick");
        let job = firing["job"].as_str().unwrap_or_default();
        assert_eq!(ticks.get(&tick).map(|jobs| jobs[0].as_str()), Some(job), "firing {firing} vs the board's jobs");
    }
    assert_eq!(shown["last_tick"], recent[0]["tick"], "{shown}");
    drop(conductors);
}

fn the_cli_creates_lists_gets_pauses_resumes_and_deletes(kind: BoardKind) {
    let board = TestBoard::new(kind, "sched-cli").or_fail();
    let flows = flows();
    let node = conductor(&board, "sched-cli", &flows);
    let endpoint = node.endpoint();
    let created = create(&endpoint, "often", "* * * * * *", 0);
    assert_eq!((created["name"].as_str(), created["flow"].as_str()), (Some("often"), Some("tick")), "{created}");
    assert_eq!((created["timezone"].as_str(), created["paused"].as_bool()), (Some("UTC"), Some(false)), "{created}");
    assert!(created["next_tick"].as_u64().is_some(), "{created}");
    let daily = ok(
        &endpoint,
        &["schedules", "create", "daily", "--flow", "tick", "--cron", "30 6 * * *", "--timezone", "Europe/Berlin"],
    );
    assert_eq!(daily["timezone"].as_str(), Some("Europe/Berlin"), "{daily}");

    let listed = ok(&endpoint, &["schedules", "list"]);
    let names: Vec<&str> = listed.as_array().or_fail_with("list").iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(names, ["daily", "often"]);

    let ticks = wait_for_tick_after(&endpoint, "often", 0);
    let shown = ok(&endpoint, &["schedules", "get", "often"]);
    let last_job = shown["recent"][0]["job"].as_str().or_fail_with("a posted job");
    assert!(ticks.values().flatten().any(|id| id == last_job), "get shows job {last_job}, not on the board: {ticks:?}");
    let job = ok(&endpoint, &["get", last_job]);
    assert_eq!(job["flow"].as_str(), Some("tick"), "{job}");
    let table = baton(&endpoint, ["schedules", "get", "often", "--output", "table"]);
    assert!(table.stdout().contains(last_job) && table.stdout().contains("next:"), "{}", table.stdout());

    let paused = ok(&endpoint, &["schedules", "pause", "often"]);
    assert_eq!((paused["paused"].as_bool(), paused["next_tick"].as_u64()), (Some(true), None), "{paused}");
    std::thread::sleep(Duration::from_millis(500));
    let before = posted(&endpoint, "often");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(posted(&endpoint, "often"), before, "a paused schedule posted jobs");

    let resumed_at = flows::now_millis();
    let resumed = ok(&endpoint, &["schedules", "resume", "often"]);
    assert_eq!(resumed["paused"].as_bool(), Some(false), "{resumed}");
    let after = wait_for_tick_after(&endpoint, "often", resumed_at);
    let fired_while_paused: Vec<_> =
        after.keys().filter(|&&t| t > *before.keys().last().unwrap_or(&0) && t <= resumed_at).collect();
    assert!(fired_while_paused.is_empty(), "ticks of the pause were posted after resuming: {fired_while_paused:?}");
    assert_once_each("often", &after);

    ok(&endpoint, &["schedules", "delete", "often"]);
    let gone = baton(&endpoint, ["schedules", "get", "often"]);
    assert!(!gone.success() && gone.stderr().contains("NotFound"), "get after delete: {}", gone.stderr());
    let listed = ok(&endpoint, &["schedules", "list"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
}

fn catch_up_fires_at_most_n_missed_ticks_and_skip_fires_none(kind: BoardKind) {
    let board = TestBoard::new(kind, "sched-catch-up").or_fail();
    let flows = flows();
    let mut first = conductor(&board, "sched-up-1", &flows);
    create(&first.endpoint(), "three", "* * * * * *", 3);
    create(&first.endpoint(), "skip", "* * * * * *", 0);
    wait_for_tick_after(&first.endpoint(), "three", 0);
    wait_for_tick_after(&first.endpoint(), "skip", 0);
    first.kill().or_fail();
    let down_at = flows::now_millis();
    // Eight ticks with no conductor at all.
    std::thread::sleep(Duration::from_secs(8));
    let started_at = flows::now_millis();
    let second = conductor(&board, "sched-up-2", &flows);
    let endpoint = second.endpoint();
    let skip = wait_for_tick_after(&endpoint, "skip", started_at + GRACE_MS);
    let three = wait_for_tick_after(&endpoint, "three", started_at + GRACE_MS);
    assert_once_each("skip", &skip);
    assert_once_each("three", &three);

    // Skip: the first tick posted after the outage is one the new conductor found on time.
    let skip_after: Vec<u64> = skip.keys().copied().filter(|&t| t > down_at).collect();
    let first_on_time = *skip_after.first().or_fail_with("a tick after the restart");
    assert!(
        first_on_time + GRACE_MS > started_at,
        "skip posted tick {first_on_time}, missed before the start at {started_at}"
    );
    assert_consecutive("skip", &skip_after);
    // Catch-up 3: exactly the three ticks before the first on-time one (both schedules were
    // decided in the same pass), then the same on-time ticks.
    let three_after: Vec<u64> = three.keys().copied().filter(|&t| t > down_at).collect();
    let caught_up: Vec<u64> = three_after.iter().copied().filter(|&t| t < first_on_time).collect();
    assert_eq!(
        caught_up,
        [first_on_time - 3_000, first_on_time - 2_000, first_on_time - 1_000],
        "catch-up 3 after an 8 s outage (down at {down_at}, started at {started_at}): {three_after:?}"
    );
    assert_consecutive("three", &three_after);
}

fn create_refuses_bad_input_and_stores_nothing(kind: BoardKind) {
    let board = TestBoard::new(kind, "sched-invalid").or_fail();
    let flows = flows();
    let node = conductor(&board, "sched-invalid", &flows);
    let endpoint = node.endpoint();
    let cases: [(&[&str], &str, &str); 7] = [
        (&["bad", "--flow", "tick", "--cron", "* * *"], "3 fields", "InvalidArgument"),
        (&["bad", "--flow", "tick", "--cron", "61 * * * *"], "not valid", "InvalidArgument"),
        (
            &["bad", "--flow", "tick", "--cron", "* * * * *", "--timezone", "Mars/Olympus"],
            "Mars/Olympus",
            "InvalidArgument",
        ),
        (&["bad", "--flow", "nope", "--cron", "* * * * *"], "nope", "NotFound"),
        (&["Bad Name", "--flow", "tick", "--cron", "* * * * *"], "Bad Name", "InvalidArgument"),
        (&["bad", "--flow", "greet", "--cron", "* * * * *"], "who", "InvalidArgument"),
        (&["bad", "--flow", "tick", "--cron", "* * * * *", "--catch-up", "100000"], "catch-up", "InvalidArgument"),
    ];
    for (args, names, code) in cases {
        let run = baton(&endpoint, ["schedules", "create"].iter().chain(args));
        let said = run.stderr();
        assert!(!run.success() && said.contains(names) && said.contains(code), "create {args:?}: {said}");
    }
    let listed = ok(&endpoint, &["schedules", "list"]);
    assert_eq!(listed, Value::Array(Vec::new()), "refused creates stored something");
    create(&endpoint, "taken", "0 0 * * *", 0);
    let again = baton(&endpoint, ["schedules", "create", "taken", "--flow", "tick", "--cron", "* * * * *"]);
    assert!(!again.success() && again.stderr().contains("AlreadyExists"), "{}", again.stderr());
    let kept = ok(&endpoint, &["schedules", "get", "taken"]);
    assert_eq!(kept["cron"].as_str(), Some("0 0 * * *"), "a refused create changed the schedule: {kept}");
}

/// `Option::expect` without `expect` (which tidy allows, but says less).
trait OrFailWith<T> {
    fn or_fail_with(self, what: &str) -> T;
}

impl<T> OrFailWith<T> for Option<T> {
    #[track_caller]
    fn or_fail_with(self, what: &str) -> T {
        match self {
            Some(value) => value,
            None => panic!("missing: {what}"),
        }
    }
}

impl OrFailWith<Vec<Value>> for &Value {
    #[track_caller]
    fn or_fail_with(self, what: &str) -> Vec<Value> {
        self.as_array().cloned().unwrap_or_else(|| panic!("not a list: {what}: {self}"))
    }
}
