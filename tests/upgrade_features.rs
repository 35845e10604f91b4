//! A fleet of mixed releases during a rolling update (issue 12, "Upgrades"): each job runs
//! on a conductor that has every feature it needs.
//!
//! Two real stock conductors on etcd share a board with the flow files `slow` (a `sleep`
//! task) and `quick` (`noop` only). Conductor `old` runs as a release without `kind:sleep`
//! would (`BATON_TEST_WITHOUT_FEATURES`, while `--task-kinds` still allows `sleep`, so only
//! the feature check keeps the job from it): a `slow` job posted while `old` is alone is
//! accepted with a warning, shows what it requires, and waits while `old` runs a later
//! `quick` job; once `new` starts, `new` runs it, and every later `slow` job, and `old` none.
//!
//! Build the binaries first: `cargo build --workspace --bins`.

use std::time::Duration;

use serde_json::Value;
use tests::conductor::{baton, get_job, is_complete, wait_job, ConductorConfig, ConductorProcess, OrFail};
use tests::etcd::{unique_prefix, EtcdProcess};
use tests::flow_files::flows_dir;

/// Bound on anything that should take seconds; only there so a broken build cannot hang.
const PATIENCE: Duration = Duration::from_secs(120);

const SLOW: &str = "name: slow\nflow:\n  linear:\n    - task: nap\n      kind: sleep\n      with: {duration: 10ms}\n";
const QUICK: &str = "name: quick\nflow:\n  linear:\n    - task: go\n      kind: noop\n";

fn post(endpoint: &str, flow: &str) -> Value {
    baton(endpoint, ["post", flow]).ok_json().or_fail()
}

fn id(job: &Value) -> String {
    job["id"].as_str().or_fail_with("a posted job has an id").to_owned()
}

trait OrFailWith<T> {
    fn or_fail_with(self, what: &str) -> T;
}

impl<T> OrFailWith<T> for Option<T> {
    #[track_caller]
    fn or_fail_with(self, what: &str) -> T {
        self.unwrap_or_else(|| panic!("{what}"))
    }
}

#[test]
fn a_job_runs_only_on_a_conductor_with_every_feature_it_needs() {
    let etcd = EtcdProcess::shared();
    let prefix = unique_prefix("features");
    let flows = flows_dir(&[("slow.yaml", SLOW), ("quick.yaml", QUICK)]).or_fail();
    let config = |name: &str| {
        let mut config = ConductorConfig::etcd(&etcd.endpoint(), &prefix, name, Duration::from_secs(10));
        config.binary = "conductor";
        config.extra_args = vec!["--flows-dir".into(), flows.path().display().to_string()];
        config
    };
    let mut old_config = config("old");
    old_config.env = vec![("BATON_TEST_WITHOUT_FEATURES".into(), "kind:sleep".into())];
    let old = ConductorProcess::start(&old_config).or_fail();
    let endpoint = old.endpoint();

    let waiting = post(&endpoint, "slow");
    assert_eq!(waiting["requires"], serde_json::json!(["file-flow", "kind:sleep"]), "recorded at post: {waiting}");
    let warning = waiting["warnings"].to_string();
    assert!(warning.contains("no live conductor has every feature") && warning.contains("kind:sleep"), "{waiting}");
    let waiting = id(&waiting);

    // Posted after the slow job (same priority: behind it in the queue), yet run first.
    let quick = id(&post(&endpoint, "quick"));
    wait_job(&endpoint, &quick, PATIENCE, "completion", is_complete).or_fail();
    let still = get_job(&endpoint, &waiting).or_fail();
    assert_eq!((still["state"].as_str(), still["claims"].as_u64()), (Some("UNCLAIMED"), Some(0)), "{still}");

    let conductors = baton(&endpoint, ["conductors"]).ok_json().or_fail();
    let old_features =
        conductors.as_array().and_then(|list| list.iter().find(|c| c["name"] == "old")).or_fail_with("old is listed");
    let old_features: Vec<&str> =
        old_features["features"].as_array().or_fail_with("features").iter().filter_map(Value::as_str).collect();
    assert!(old_features.contains(&"file-flow") && !old_features.contains(&"kind:sleep"), "{conductors}");

    let new = ConductorProcess::start(&config("new")).or_fail();
    let done = wait_job(&endpoint, &waiting, PATIENCE, "completion", is_complete).or_fail();
    assert_eq!(done["outcome"].as_str(), Some("SUCCESS"), "{done}");

    // Through `new`: `old` may answer from the conductor set it read before `new` started.
    let later = post(&new.endpoint(), "slow");
    assert!(later.get("warnings").is_none(), "a conductor with every feature is live: {later}");
    let later = id(&later);
    wait_job(&endpoint, &later, PATIENCE, "completion", is_complete).or_fail();
    for job in [&waiting, &later] {
        assert!(new.log().contains(job.as_str()), "new ran {job}");
        assert!(!old.log().contains(job.as_str()), "old never claimed {job}:\n{}", old.log());
    }
    assert!(old.log().contains(quick.as_str()), "old ran the job it has the features for");
}
