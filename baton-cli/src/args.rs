//! `baton`'s command line: the flags, subcommands and their arguments (clap).
//!
//! Exit status: 0 on success; 1 on an error (printed on stderr); 2 on bad
//! usage; 3 when a followed job ended without SUCCESS.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use proto::pb;

use crate::fleet::Timeouts;
use flowfile::duration::parse_duration;

/// The endpoint used when neither `--endpoint` nor `BATON_ENDPOINT` is set.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:50051";

/// Exit status of a followed job that ended without SUCCESS.
pub const EXIT_JOB_FAILED: u8 = 3;

/// Post, inspect and follow Baton jobs.
#[derive(Debug, Parser)]
#[command(
    name = "baton",
    version,
    about = "Post, inspect and follow Baton jobs",
    after_help = "Exit status: 0 success; 1 error; 2 bad usage; 3 a followed job (--wait, watch, demo) \
                  ended without SUCCESS."
)]
pub struct Cli {
    /// The conductor to talk to; several, comma-separated, are tried in order and the
    /// first that answers is used (a fleet behind no load balancer). A request that gets no
    /// connection, no answer in time, or UNAVAILABLE goes to the next.
    #[arg(long, global = true, env = "BATON_ENDPOINT", default_value = DEFAULT_ENDPOINT)]
    pub endpoint: String,
    /// Give up connecting to one endpoint after this long (500ms, 2s, ...), then try the next.
    #[arg(long, global = true, env = "BATON_CONNECT_TIMEOUT", default_value = "2s", value_name = "DURATION", value_parser = parse_timeout)]
    pub connect_timeout: Duration,
    /// Give up waiting for one endpoint's answer after this long, then try the next. An open
    /// `watch` or `--wait` has no such bound: it follows the job as long as it runs.
    #[arg(long, global = true, env = "BATON_TIMEOUT", default_value = "30s", value_name = "DURATION", value_parser = parse_timeout)]
    pub timeout: Duration,
    /// Bearer token sent with every call (a conductor with --auth-file wants one, or a client certificate).
    #[arg(long, global = true, env = "BATON_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    pub token: Option<String>,
    /// Read the token from this file's first line (keeps it out of `ps` and the shell history).
    #[arg(long, global = true, env = "BATON_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// CA certificate (PEM) that signed the conductor's; implies TLS. `https://` endpoints without it use the system's CAs.
    #[arg(long, global = true, env = "BATON_CA", value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS, with --key.
    #[arg(long, global = true, env = "BATON_CERT", value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// The private key (PEM) of --cert.
    #[arg(long, global = true, env = "BATON_KEY", value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// On an error, print every cause, not just the first and the last; log each endpoint tried.
    #[arg(long, short, global = true)]
    pub verbose: bool,
    /// `table` for people, `json` for scripts.
    #[arg(long, short, global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Aligned columns.
    Table,
    /// JSON on stdout, one document.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Post a job.
    Post(PostArgs),
    /// Show a job with its tasks.
    Get {
        /// The job id.
        id: String,
    },
    /// List jobs, oldest first.
    List(ListArgs),
    /// Follow a job until it ends; exit 0 only if it succeeded.
    Watch {
        /// The job id.
        id: String,
    },
    /// Cancel a job: an unclaimed one never runs; a running or parked one is reverted.
    Cancel {
        /// The job id.
        id: String,
    },
    /// Suspend a job: a running one starts no new task, lets running ones finish and is
    /// released SUSPENDED (not claimable); an unclaimed or parked one is suspended at once.
    Suspend {
        /// The job id.
        id: String,
    },
    /// Resume a SUSPENDED job: claimable again, it continues where it stopped.
    Resume {
        /// The job id.
        id: String,
    },
    /// Retry a job that ended FAILURE (finish its revert, after you fixed the cause), or a
    /// TRASHED one (re-queued with its claim count reset, resuming where it stopped).
    Retry {
        /// The job id.
        id: String,
    },
    /// Post a new job with the same flow version and store as a job, `--store` values
    /// replacing; the new job names the old one (`rerun_of`). Prints the new job.
    Rerun(RerunArgs),
    /// Complete a parked task: with its callback token, or (an operator's override,
    /// recorded with your name) by `--job` and `--task`.
    Complete(CompleteArgs),
    /// List the flows the conductors can run, with their inputs; `flows validate` checks
    /// flow files offline.
    Flows(FlowsArgs),
    /// Post a flow on a cron clock: create, list, get, pause, resume, delete schedules.
    Schedules(crate::schedules::SchedulesArgs),
    /// List the live conductors.
    Conductors,
    /// List the connected remote workers: id, conductor, task names, slots in use / total,
    /// connected since.
    Workers,
    /// Show one conductor's own view: its board, sessions, drain and the jobs it runs
    /// (the first endpoint that answers; give one `--endpoint` to pick a conductor).
    Status,
    /// Tell a conductor to stop claiming new jobs (it finishes what it holds).
    Drain {
        /// The conductor's name (see `baton conductors`).
        name: String,
        /// Undo a drain: let it claim again.
        #[arg(long)]
        undo: bool,
    },
    /// Start a `conductor` (found beside `baton`, else on PATH) on a local board with the
    /// demo flow files, run a demo job, follow it to the end, stop the conductor.
    Demo(DemoArgs),
}

/// `baton complete`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("outcome").required(true).args(["result", "result_file", "fail"])))]
#[command(group(clap::ArgGroup::new("target").required(true).args(["token", "job"])))]
pub struct CompleteArgs {
    /// The callback token the task's notify step handed out.
    pub token: Option<String>,
    /// Override: the job whose parked task to complete (with `--task`).
    #[arg(long, requires = "task", conflicts_with = "token")]
    pub job: Option<String>,
    /// Override: the parked task's name.
    #[arg(long, requires = "job")]
    pub task: Option<String>,
    /// The task's result, JSON.
    #[arg(long, value_name = "JSON")]
    pub result: Option<String>,
    /// The task's result, JSON read from a file (`-` for stdin).
    #[arg(long, value_name = "FILE")]
    pub result_file: Option<PathBuf>,
    /// The task failed, with this message (the flow's retries and reverts apply).
    #[arg(long, value_name = "MESSAGE")]
    pub fail: Option<String>,
    /// Who overrides, recorded with the completion (default: $USER).
    #[arg(long, requires = "job")]
    pub operator: Option<String>,
}

/// `baton post`.
#[derive(Debug, clap::Args)]
pub struct PostArgs {
    /// The flow to run (see `baton flows`); `NAME@VERSION` runs that stored version of a
    /// flow file instead of the current one.
    pub flow: String,
    /// One input, read as the type the flow declares for KEY (a string input keeps `1.10`
    /// as text; arrays and objects in JSON); an undeclared KEY is JSON if it parses
    /// (3, true, [1,2]), else a string. Repeatable.
    #[arg(long = "store", short = 's', value_name = "KEY=VALUE", value_parser = crate::store::parse_pair)]
    pub store: Vec<(String, String)>,
    /// Inputs from a YAML or JSON map; `--store` pairs override it.
    #[arg(long, value_name = "FILE")]
    pub store_file: Option<PathBuf>,
    /// Higher runs first.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub priority: i32,
    /// Posting again with the same key returns the first job instead of a new one.
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
    /// Cancel and revert the job if it has not finished this long after the post (e.g.
    /// `2h`); it then ends CANCELLED with a DEADLINE_EXCEEDED failure. Default: the flow
    /// file's `deadline:`, if any.
    #[arg(long, value_name = "DURATION", value_parser = crate::operate::parse_deadline)]
    pub deadline: Option<Duration>,
    /// Follow the job to its end; exit 0 only if it succeeded.
    #[arg(long)]
    pub wait: bool,
}

/// `baton rerun`.
#[derive(Debug, clap::Args)]
pub struct RerunArgs {
    /// The job to rerun.
    pub id: String,
    /// A store value replacing the old job's, read as the type the flow declares for KEY
    /// (as `post --store`). Repeatable.
    #[arg(long = "store", short = 's', value_name = "KEY=VALUE", value_parser = crate::store::parse_pair)]
    pub store: Vec<(String, String)>,
    /// The new job's deadline from now; default: the flow file's `deadline:`, if any.
    #[arg(long, value_name = "DURATION", value_parser = crate::operate::parse_deadline)]
    pub deadline: Option<Duration>,
}

/// `baton list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only jobs in this state: UNCLAIMED, CLAIMED, PARKED, SUSPENDED, COMPLETE or TRASHED.
    #[arg(long, value_parser = parse_state)]
    pub state: Option<pb::JobState>,
    /// Only jobs of this flow.
    #[arg(long)]
    pub flow: Option<String>,
    /// At most this many jobs (default: all).
    #[arg(long)]
    pub limit: Option<usize>,
}

/// `baton flows`: the list, or a subcommand.
#[derive(Debug, clap::Args)]
pub struct FlowsArgs {
    /// Without one, list the flows.
    #[command(subcommand)]
    pub command: Option<FlowsCommand>,
}

/// `baton flows ...`.
#[derive(Debug, Subcommand)]
pub enum FlowsCommand {
    /// Check flow files offline, without any server, against every built-in task kind:
    /// each problem as FILE:LINE:COLUMN; exit 1 if any file has one.
    Validate {
        /// The flow files (repeatable: `-f a.yaml -f b.yaml`, or `-f a.yaml b.yaml`).
        #[arg(long = "file", short = 'f', value_name = "FILE", required = true, num_args = 1..)]
        files: Vec<PathBuf>,
    },
    /// Store flow files on the board, for every conductor: each changed file becomes its
    /// flow's new current version; an unchanged one changes nothing. A file with problems
    /// refuses them all (nothing applied).
    Apply {
        /// The flow files (repeatable: `-f a.yaml -f b.yaml`, or `-f a.yaml b.yaml`).
        #[arg(long = "file", short = 'f', value_name = "FILE", required = true, num_args = 1..)]
        files: Vec<PathBuf>,
    },
    /// Print a stored flow file (the current version unless `--version`).
    Get {
        /// The flow.
        name: String,
        /// A stored version's number (see `baton flows history`).
        #[arg(long)]
        version: Option<u32>,
    },
    /// List a flow file's stored versions, oldest first.
    History {
        /// The flow.
        name: String,
    },
    /// Remove a flow file and every version (refused while an unfinished job uses it).
    Delete {
        /// The flow.
        name: String,
    },
    /// Print a flow's execution graph (DOT for Graphviz, or Mermaid).
    Graph {
        /// The flow.
        name: String,
        /// A flow file's stored version (default: the current one).
        #[arg(long)]
        version: Option<u32>,
        /// `dot` or `mermaid`.
        #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
        format: GraphFormat,
        /// Inputs the flow's shape depends on (an `each` over a list), over its defaults;
        /// read like `baton post --store`. Repeatable.
        #[arg(long = "store", short = 's', value_name = "KEY=VALUE", value_parser = crate::store::parse_pair)]
        store: Vec<(String, String)>,
        /// Inputs from a YAML or JSON map; `--store` pairs override it.
        #[arg(long, value_name = "FILE")]
        store_file: Option<PathBuf>,
    },
}

/// `baton flows graph --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    /// Graphviz DOT.
    Dot,
    /// A Mermaid flowchart.
    Mermaid,
}

impl PostArgs {
    /// The flow's name and, for `NAME@VERSION`, the version.
    pub fn flow_and_version(&self) -> Result<(&str, Option<u32>), String> {
        match self.flow.rsplit_once('@') {
            None => Ok((&self.flow, None)),
            Some((name, version)) => match version.parse::<u32>() {
                Ok(v) if v > 0 && !name.is_empty() => Ok((name, Some(v))),
                _ => Err(format!("{:?}: expected NAME or NAME@VERSION with VERSION a number from 1", self.flow)),
            },
        }
    }
}

/// `baton demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Keep the board here (default: a temporary directory, removed afterwards).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Which demo job to run.
    #[arg(long, value_enum, default_value_t = DemoFlow::ProvisionCluster)]
    pub flow: DemoFlow,
}

/// The demo jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DemoFlow {
    /// Three servers created in parallel, each failing once and retried, then the cluster configured.
    ProvisionCluster,
    /// Five timed steps in a line.
    Chain,
}

/// A `--connect-timeout` or `--timeout`: a duration above zero.
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    match parse_duration(text).map_err(|e| e.to_string())? {
        Duration::ZERO => Err(format!("{text:?} would give up at once; use a duration above zero, e.g. 2s")),
        duration => Ok(duration),
    }
}

/// A `--state`: a job state's name, in any case.
pub fn parse_state(text: &str) -> Result<pb::JobState, String> {
    [
        pb::JobState::Unclaimed,
        pb::JobState::Claimed,
        pb::JobState::Parked,
        pb::JobState::Suspended,
        pb::JobState::Complete,
        pb::JobState::Trashed,
    ]
    .into_iter()
    .find(|state| crate::output::state_text(*state).eq_ignore_ascii_case(text))
    .ok_or_else(|| format!("unknown job state {text:?}; expected UNCLAIMED, CLAIMED, PARKED, COMPLETE or TRASHED"))
}

impl Cli {
    /// The token, CA and client certificate of `--token`/`--token-file`, `--ca`, `--cert`, `--key`.
    pub fn client_options(&self) -> Result<proto::ClientOptions, proto::OptionsError> {
        proto::ClientOptions::from_files(
            self.token.clone(),
            self.token_file.as_deref(),
            self.ca.as_deref(),
            self.cert.as_deref(),
            self.key.as_deref(),
        )
    }

    /// The timeouts of `--connect-timeout` and `--timeout`.
    pub fn timeouts(&self) -> Timeouts {
        Timeouts { connect: self.connect_timeout, request: self.timeout }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("baton").chain(args.iter().copied()))
    }

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn post_takes_pairs_file_priority_key_and_wait() {
        let cli = parse(&[
            "post",
            "chain",
            "--store",
            "steps=3",
            "-s",
            "name=web",
            "--store-file",
            "s.yaml",
            "--priority",
            "-2",
            "--idempotency-key",
            "k1",
            "--wait",
            "--output",
            "json",
        ])
        .unwrap();
        assert_eq!(cli.output, Output::Json);
        let Command::Post(post) = cli.command else { panic!("expected post, got {:?}", cli.command) };
        assert_eq!(post.flow, "chain");
        assert_eq!(post.store, vec![("steps".to_owned(), "3".to_owned()), ("name".to_owned(), "web".to_owned())]);
        assert_eq!(post.store_file, Some(PathBuf::from("s.yaml")));
        assert_eq!(post.priority, -2);
        assert_eq!(post.idempotency_key.as_deref(), Some("k1"));
        assert!(post.wait);
    }

    #[test]
    fn bad_pair_is_a_usage_error() {
        let err = parse(&["post", "chain", "--store", "nokey"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
    }

    #[test]
    fn list_filters_parse_states_case_insensitively() {
        let cli = parse(&["list", "--state", "complete", "--flow", "chain"]).unwrap();
        let Command::List(list) = cli.command else { panic!("expected list") };
        assert_eq!(list.state, Some(pb::JobState::Complete));
        assert_eq!(list.flow.as_deref(), Some("chain"));
        assert!(parse(&["list", "--state", "done"]).is_err());
    }

    #[test]
    fn endpoint_and_output_are_global() {
        let cli = parse(&["get", "abc", "--endpoint", "http://h:1", "-o", "json"]).unwrap();
        assert_eq!(cli.endpoint, "http://h:1");
        assert_eq!(cli.output, Output::Json);
        let cli = parse(&["--endpoint", "http://h:2", "conductors"]).unwrap();
        assert_eq!(cli.endpoint, "http://h:2");
    }

    #[test]
    fn timeouts_default_to_two_and_thirty_seconds() {
        let cli = parse(&["list"]).unwrap();
        assert_eq!(cli.timeouts(), Timeouts { connect: Duration::from_secs(2), request: Duration::from_secs(30) });
        assert!(!cli.verbose);
    }

    #[test]
    fn timeouts_and_verbose_are_global_and_take_units() {
        let cli = parse(&["list", "--timeout", "500ms", "--connect-timeout", "2m", "-v"]).unwrap();
        assert_eq!(cli.timeouts(), Timeouts { connect: Duration::from_secs(120), request: Duration::from_millis(500) });
        assert!(cli.verbose);
        let cli = parse(&["--verbose", "--timeout", "1.5s", "status"]).unwrap();
        assert_eq!(cli.timeout, Duration::from_millis(1500));
        assert!(matches!(cli.command, Command::Status));
    }

    #[test]
    fn flows_lists_or_validates_files() {
        let cli = parse(&["flows"]).unwrap();
        assert!(matches!(cli.command, Command::Flows(FlowsArgs { command: None })));
        let cli = parse(&["flows", "validate", "-f", "a.yaml", "b.yaml", "--file", "c.yaml"]).unwrap();
        let Command::Flows(FlowsArgs { command: Some(FlowsCommand::Validate { files }) }) = cli.command else {
            panic!("expected flows validate")
        };
        assert_eq!(files, [PathBuf::from("a.yaml"), PathBuf::from("b.yaml"), PathBuf::from("c.yaml")]);
        let err = parse(&["flows", "validate"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
    }

    #[test]
    fn timeouts_without_a_unit_or_of_zero_are_usage_errors() {
        for bad in ["10", "0s", "0ms", "soon", ""] {
            let err = parse(&["--timeout", bad, "list"]).unwrap_err();
            assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation, "{bad:?}");
            let err = parse(&["--connect-timeout", bad, "list"]).unwrap_err();
            assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation, "{bad:?}");
        }
        assert!(parse_timeout("10").unwrap_err().contains("missing unit"));
        assert!(parse_timeout("0s").unwrap_err().contains("above zero"));
    }

    #[test]
    fn drain_and_undo() {
        let cli = parse(&["drain", "c1", "--undo"]).unwrap();
        assert!(matches!(cli.command, Command::Drain { ref name, undo: true } if name == "c1"));
        let cli = parse(&["drain", "c1"]).unwrap();
        assert!(matches!(cli.command, Command::Drain { undo: false, .. }));
    }

    #[test]
    fn demo_defaults_to_provision_cluster() {
        let cli = parse(&["demo"]).unwrap();
        let Command::Demo(demo) = cli.command else { panic!("expected demo") };
        assert_eq!(demo.flow, DemoFlow::ProvisionCluster);
        assert_eq!(demo.data_dir, None);
        let cli = parse(&["demo", "--flow", "chain", "--data-dir", "/tmp/x"]).unwrap();
        let Command::Demo(demo) = cli.command else { panic!("expected demo") };
        assert_eq!(demo.flow, DemoFlow::Chain);
    }
}
