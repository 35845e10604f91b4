//! The engine in-process: what building a flow from a file costs per task beside the
//! same flow built in Rust, and how fast `shell` tasks run beside bare fork/exec.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flowfile::{FlowFile, Kinds};
use flows::{task_fn, Engine, Flow, FlowFactory, FlowState, LogBook, MemoryStorage, Storage};
use serde_json::{Map, Value};
use tests::conductor::HarnessResult;
use uuid::Uuid;

/// A linear flow file of `tasks` tasks, each `{kind: KIND, with: WITH}` (`with` in YAML flow style).
pub fn linear_file(name: &str, tasks: usize, kind: &str, with: &str) -> String {
    let mut text = format!("name: {name}\nflow:\n  linear:\n");
    for i in 0..tasks {
        text.push_str(&format!("    - {{task: t{i}, kind: {kind}, with: {with}}}\n"));
    }
    text
}

/// The factory of a flow file, as a conductor's `--flows-dir` loads it.
pub fn file_factory(text: &str, kinds: Kinds) -> HarnessResult<FlowFactory> {
    let file = FlowFile::parse_with("bench.yaml", text, &kinds).map_err(|problems| problems.to_string())?;
    Ok(file.factory(Arc::new(kinds)))
}

/// The same no-op line in Rust: tasks that return null, as `noop` does.
pub fn rust_noops(name: &str, tasks: usize) -> FlowFactory {
    let name = name.to_owned();
    FlowFactory::new(name.clone(), move |_| {
        Ok(Flow::linear(name.clone())
            .add_all((0..tasks).map(|i| task_fn(format!("t{i}"), |_| async { Ok(Value::Null) }))))
    })
}

/// How long one job took in-process: building its flow, and that plus running it.
#[derive(Clone, Copy)]
pub struct Timed {
    pub build: Duration,
    pub total: Duration,
}

/// Builds one job's flow from `factory` and runs it to success on a `MemoryStorage` logbook.
pub async fn build_and_run(factory: &FlowFactory) -> HarnessResult<Timed> {
    let store = Map::new();
    let started = Instant::now();
    let flow = factory.build(&store)?;
    let build = started.elapsed();
    let storage = Arc::new(MemoryStorage::new());
    let (book, flow_id) = (Uuid::new_v4(), Uuid::new_v4());
    storage.save_book(&LogBook::new(book, "bench")).await?;
    let mut engine = Engine::builder(flow).store(store).storage(storage, book, flow_id).build().await?;
    let outcome = engine.run().await?;
    if outcome.state != FlowState::Success {
        return Err(format!("the {} flow ended {:?}", factory.name(), outcome.state).into());
    }
    Ok(Timed { build, total: started.elapsed() })
}

/// Builds and runs only the file (`file`) or the Rust (`rust`) no-op line, `rounds` times.
pub async fn line_only(line: &str, tasks: usize, rounds: usize) -> HarnessResult<()> {
    let factory = match line {
        "file" => file_factory(&linear_file("noops", tasks, "noop", "{}"), Kinds::default_allowed())?,
        "rust" => rust_noops("noops", tasks),
        other => return Err(format!("BENCH_LINE={other}: expected file or rust").into()),
    };
    for _ in 0..rounds {
        build_and_run(&factory).await?;
    }
    Ok(())
}

/// Per-task cost of a file-built and a Rust-built flow: the median and the best of
/// `rounds` runs of each, taken in turns so that drift on a shared machine hits both alike.
pub struct PerTask {
    pub file: Timed,
    pub rust: Timed,
    /// The fastest round of each (file, Rust), per task: the file runs' times swing on a
    /// loaded machine (they allocate more), the best shows the cost without neighbours.
    pub best: (Duration, Duration),
    /// Parsing and checking the file, once (a conductor does it at start, not per job).
    pub parse: Duration,
}

pub async fn per_task(tasks: usize, rounds: usize) -> HarnessResult<PerTask> {
    let text = linear_file("noops", tasks, "noop", "{}");
    let parse_started = Instant::now();
    let file = file_factory(&text, Kinds::default_allowed())?;
    let parse = parse_started.elapsed();
    let rust = rust_noops("noops", tasks);
    // One warm-up run each: allocator and caches.
    build_and_run(&file).await?;
    build_and_run(&rust).await?;
    let (mut from_file, mut in_rust) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        // Who goes first alternates: the run before leaves the allocator warm or fragmented.
        if round % 2 == 0 {
            from_file.push(build_and_run(&file).await?);
            in_rust.push(build_and_run(&rust).await?);
        } else {
            in_rust.push(build_and_run(&rust).await?);
            from_file.push(build_and_run(&file).await?);
        }
    }
    let n = u32::try_from(tasks).unwrap_or(u32::MAX);
    let per = |runs: Vec<Timed>| Timed {
        build: median(runs.iter().map(|r| r.build).collect()) / n,
        total: median(runs.iter().map(|r| r.total).collect()) / n,
    };
    let best = |runs: &[Timed]| runs.iter().map(|r| r.total).min().unwrap_or_default() / n;
    let best = (best(&from_file), best(&in_rust));
    Ok(PerTask { file: per(from_file), rust: per(in_rust), best, parse })
}

/// `shell` tasks per second for `/bin/true` in a line, and the fork/exec floor: the same
/// program spawned and waited for directly, as many times, in a loop: through
/// `tokio::process` and in the same clean environment as the kind (the bench's own
/// environment, or a blocking wait on the runtime's thread, each cost more than the kind
/// does, which would make a "floor" above it), but without its process group, pipes and
/// bookkeeping. The best of `rounds`
/// rounds taken in turns: on a shared machine the fastest round is the one least slowed
/// by others, and a floor is a best case.
pub struct ShellRate {
    pub tasks_per_s: f64,
    pub floor_per_s: f64,
}

pub async fn shell_rate(tasks: usize, rounds: usize) -> HarnessResult<ShellRate> {
    let text = linear_file("trues", tasks, "shell", r#"{run: ["/bin/true"]}"#);
    let factory = file_factory(&text, Kinds::all())?;
    let (mut flow_runs, mut floor_runs) = (Vec::new(), Vec::new());
    for _ in 0..rounds.max(1) {
        flow_runs.push(build_and_run(&factory).await?.total);
        let started = Instant::now();
        for _ in 0..tasks {
            let status = tokio::process::Command::new("/bin/true")
                .env_clear()
                .env("PATH", flowfile::kinds::shell::DEFAULT_PATH)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .await?;
            if !status.success() {
                return Err(format!("/bin/true exited {status}").into());
            }
        }
        floor_runs.push(started.elapsed());
    }
    let rate = |runs: Vec<Duration>| tasks as f64 / runs.into_iter().min().unwrap_or_default().as_secs_f64();
    Ok(ShellRate { tasks_per_s: rate(flow_runs), floor_per_s: rate(floor_runs) })
}

pub fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}
