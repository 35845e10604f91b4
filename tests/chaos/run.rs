//! One chaos run, start to end: etcd, three proxies, the supervised fleet, the poster and
//! the observer; faults until the duration is over, each followed by the owner check; then
//! heal, drain, check the history, print the summary and keep the evidence on failure.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tests::chaos::flow::{FLOW, STEPS_FILE};
use tests::etcd::proxy::TcpProxy;
use tests::etcd::EtcdProcess;

use crate::checks;
use crate::cli::Cli;
use crate::faults::{Fault, Injector};
use crate::fleet::{Fleet, FleetConfig};
use crate::observer::{self, is_final, FinalSnapshots};
use crate::options::Options;
use crate::owners::{Owners, Settle};
use crate::poster::{self, PostedJobs};
use crate::report::Report;
use crate::rng::Rng;
use crate::selfcheck;

/// How long the fleet gets to start and register.
const START_LIMIT: Duration = Duration::from_secs(60);

/// Runs the suite; `true` when every check passed.
pub fn run(options: &Options) -> bool {
    let (dir, keep_always) = evidence_dir(options);
    let report = Arc::new(Report::new(&dir));
    report.event(format_args!(
        "chaos: seed={} duration={:?} ttl={:?} evidence={}",
        options.seed,
        options.duration,
        options.ttl,
        dir.display()
    ));
    selfcheck::run(&report);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("cannot start a tokio runtime: {e}"));
    let mut etcd = EtcdProcess::start();
    let target = etcd.endpoint().trim_start_matches("http://").to_string();
    let proxies: Vec<TcpProxy> = (0..3).map(|_| runtime.block_on(TcpProxy::start(&target))).collect();
    let links: Vec<String> = proxies.iter().map(TcpProxy::endpoint).collect();
    let fleet_config = FleetConfig { prefix: "/chaos/".into(), ttl: options.ttl, dir: dir.clone() };
    let mut fleet = Fleet::start(fleet_config, &links, report.clone());
    let conductors = fleet.endpoints();
    let cli = Arc::new(Cli::new(conductors.iter().map(|(_, e)| e.clone()).collect(), runtime.handle().clone()));
    wait_registered(&cli, &fleet.names());
    report.event("fleet up: three conductors registered");
    let owners = Owners::new(conductors, runtime.handle().clone());

    let posted: PostedJobs = Arc::default();
    let finals: FinalSnapshots = Arc::default();
    let (stop_posting, stop_observing) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let poster = poster::spawn(cli.clone(), posted.clone(), report.clone(), options.seed, stop_posting.clone());
    let observer = observer::spawn(cli.clone(), posted.clone(), finals.clone(), stop_observing.clone());

    let fired = inject_faults(options, &fleet, &mut etcd, &proxies, &cli, &owners, &report);
    stop_posting.store(true, Ordering::SeqCst);
    let _ = poster.join();
    report.event("chaos over: every fault healed; draining");
    let drained = drain(&cli, &posted, options.ttl);
    report.event(format_args!("drain: {drained}"));
    stop_observing.store(true, Ordering::SeqCst);
    let _ = observer.join();
    observer::snapshot_new_finals(&cli, &posted, &finals);
    settle(&owners, &cli, options.ttl, "the drain", &report);

    let posted = lock(&posted).clone();
    let first_final = lock(&finals).clone();
    let (jobs, unreadable) = checks::read_jobs(&cli, &posted);
    report.add(unreadable);
    let steps_file = dir.join(STEPS_FILE);
    let (steps, malformed) = checks::parse_steps(&std::fs::read_to_string(&steps_file).unwrap_or_default());
    report.add(malformed);
    let (totals, found) = checks::judge_jobs(&posted, &jobs, &steps);
    report.add(found);
    report.add(checks::judge_finals(&first_final, &jobs));
    report.add(checks::check_listing(&cli, &posted));
    report.add(checks::check_reposts(&cli, &posted));
    // Re-posting must not have created any job either.
    report.add(checks::check_listing(&cli, &posted));
    for fault in Fault::ALL.iter().filter(|f| !fired.contains_key(f)) {
        report.fail("faults", format!("{} never fired: run longer", fault.name()));
    }
    fleet.shut_down();
    let exits = fleet.exits();
    for exit in exits.iter().filter(|e| !e.killed_by_test) {
        report.fail("exits", format!("{} (pid {}) exited by itself: {}", exit.name, exit.pid, exit.status));
    }

    let findings = report.findings();
    let faults: Vec<String> =
        Fault::ALL.iter().map(|f| format!("{}={}", f.name(), fired.get(f).unwrap_or(&0))).collect();
    let verdict = if findings.is_empty() { "PASS".to_string() } else { format!("FAIL ({} findings)", findings.len()) };
    let summary = format!(
        "chaos seed={} {verdict} | faults {} | jobs={} executions={} reruns={} claims={} sessions_lost={} conductor_exits={} (by itself {}) cli_timeouts={} | duration={}s ttl={}s",
        options.seed,
        faults.join(" "),
        posted.len(),
        totals.executions,
        totals.reruns,
        totals.claims,
        owners.sessions_lost().map_or("?".to_string(), |n| n.to_string()),
        exits.len(),
        exits.iter().filter(|e| !e.killed_by_test).count(),
        cli.timeouts(),
        options.duration.as_secs(),
        options.ttl.as_secs(),
    );
    report.event(&summary);
    if !findings.is_empty() {
        eprintln!("{}", report.findings_text());
    }
    if findings.is_empty() && !keep_always {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        report.write("jobs.json", &pretty(&jobs));
        report.write("first_final.json", &pretty(&first_final));
        let posted_json: Vec<Value> = posted
            .iter()
            .map(|p| serde_json::json!({"key": p.key, "id": p.id, "steps": p.steps, "step_ms": p.step_ms}))
            .collect();
        report.write("posted.json", &pretty(&posted_json));
        report.write("findings.txt", &report.findings_file());
        report.write("summary.txt", &format!("{summary}\n"));
        eprintln!("chaos: evidence kept in {}", dir.display());
    }
    println!("{summary}");
    drop(proxies);
    drop(etcd);
    findings.is_empty()
}

/// Faults until the duration is over: first each kind once (in a seeded order), then at
/// random; each healed, then the owner check, then a pause. Returns how often each fired.
fn inject_faults(
    options: &Options,
    fleet: &Fleet,
    etcd: &mut EtcdProcess,
    proxies: &[TcpProxy],
    cli: &Cli,
    owners: &Owners,
    report: &Report,
) -> BTreeMap<Fault, u64> {
    let mut schedule = Rng::stream(options.seed, 3);
    let mut first = Fault::ALL.to_vec();
    schedule.shuffle(&mut first);
    let mut injector =
        Injector { fleet, etcd, proxies, cli, report, ttl: options.ttl, rng: Rng::stream(options.seed, 2) };
    let mut fired: BTreeMap<Fault, u64> = BTreeMap::new();
    let deadline = Instant::now() + options.duration;
    // A short quiet start, so that jobs are running when the first fault comes.
    std::thread::sleep(Duration::from_secs(3));
    for n in 0.. {
        if Instant::now() >= deadline {
            break;
        }
        let fault = first.get(n).copied().unwrap_or_else(|| Fault::ALL[schedule.index(Fault::ALL.len())]);
        injector.inject(fault);
        *fired.entry(fault).or_default() += 1;
        settle(owners, cli, options.ttl, fault.name(), report);
        std::thread::sleep(schedule.duration(Duration::from_secs(1), Duration::from_secs(3)));
    }
    fired
}

/// The owner check after `after`; a disagreement that outlasts a few TTLs is a finding.
fn settle(owners: &Owners, cli: &Cli, ttl: Duration, after: &str, report: &Report) {
    let window = ttl * 3 + Duration::from_secs(10);
    let lost_before = owners.sessions_lost().unwrap_or(0);
    match owners.settle(cli, window) {
        Settle::Agreed(took) => {
            let lost = owners.sessions_lost().unwrap_or(0).saturating_sub(lost_before);
            report.event(format_args!(
                "owners agree after {after} ({took:.1?}); sessions lost since the previous check: {lost}"
            ))
        }
        Settle::Unimplemented(message) => {
            // Once is enough to say so; later checks only wait for the fleet to settle.
            if !report.findings().iter().any(|f| f.check == "owners" && f.detail.contains("GetStatus")) {
                report.fail(
                    "owners",
                    format!("GetStatus unimplemented: owners never compared with what conductors run ({message})"),
                );
            }
            std::thread::sleep(ttl + Duration::from_secs(1));
        }
        Settle::Disagreed(found) => {
            report.fail("owners", format!("after {after}: still disagreeing after {window:?}: {}", found.join("; ")))
        }
    }
}

/// Waits (bounded) until every posted job is listed final; says how it went.
fn drain(cli: &Cli, posted: &PostedJobs, ttl: Duration) -> String {
    let limit = (ttl * 12).max(Duration::from_secs(90));
    let start = Instant::now();
    let mut open = usize::MAX;
    while start.elapsed() < limit {
        if let Ok(Value::Array(listed)) = cli.any(&["list", "--flow", FLOW]) {
            let finished: BTreeMap<&str, bool> =
                listed.iter().filter_map(|j| Some((j["id"].as_str()?, is_final(j)))).collect();
            open = lock(posted).iter().filter(|p| finished.get(p.id.as_str()) != Some(&true)).count();
            if open == 0 {
                return format!("every job final after {:.1?}", start.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    format!("{open} job(s) still not final after {limit:?}")
}

/// Waits until every conductor lists every name in `baton conductors`.
fn wait_registered(cli: &Cli, names: &[String]) {
    let deadline = Instant::now() + START_LIMIT;
    loop {
        if let Ok(Value::Array(listed)) = cli.any(&["conductors"]) {
            if names.iter().all(|name| listed.iter().any(|c| c["name"].as_str() == Some(name))) {
                return;
            }
        }
        assert!(Instant::now() < deadline, "the fleet did not register within {START_LIMIT:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The directory for logs and records, and whether the caller asked to keep it.
fn evidence_dir(options: &Options) -> (PathBuf, bool) {
    let (dir, keep) = match &options.evidence {
        Some(dir) => (dir.clone(), true),
        None => (std::env::temp_dir().join(format!("baton-chaos-{}-{}", options.seed, std::process::id())), false),
    };
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    (dir, keep)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn pretty(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("cannot serialize: {e}"))
}
