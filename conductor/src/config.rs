//! Daemon settings: flags > `BATON_*` environment > YAML file > defaults.
//!
//! Every setting is declared once, in [`Settings`]: as a flag (clap), as a YAML
//! key (serde, `snake_case`) and, by name, as an environment variable
//! (`--max-jobs` is `BATON_MAX_JOBS`). [`Config::load`] is the one function that
//! layers them; it takes the environment as a function so tests need not touch
//! the process's own.

mod file;
mod guards;
mod help;
mod security;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory, Parser};
use serde::{Deserialize, Deserializer};

pub use self::guards::Guards;
use self::help::AFTER_HELP;
pub use self::security::{EtcdSecuritySettings, PeerSettings, Secret, Security};
use crate::error::Error;
pub use crate::tls::TlsFiles;
pub use flowfile::duration::{format_duration, parse_duration};

/// The `conductor` command line.
#[derive(Debug, Clone, Default, Parser)]
#[command(name = "conductor", version, about = "Baton conductor: claims jobs from the board and runs their flows")]
#[command(after_help = AFTER_HELP)]
pub struct Flags {
    /// YAML config file with any of the settings below as snake_case keys.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The settings.
    #[command(flatten)]
    pub settings: Settings,
}

/// One layer of settings: every field optional, so layers can be stacked.
#[derive(Debug, Clone, Default, PartialEq, clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// etcd endpoints, comma-separated. Absent: the embedded board in --data-dir.
    #[arg(long, value_name = "URLS", value_delimiter = ',')]
    #[serde(default, deserialize_with = "comma_list")]
    pub etcd: Option<Vec<String>>,
    /// Directory of the embedded board (used without --etcd) [default: ./baton-data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address to serve the gRPC API on [default: 127.0.0.1:50051].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Address other hosts reach this conductor at, as `baton conductors` lists it [default: the bound address].
    #[arg(long, value_name = "ADDR")]
    pub advertise: Option<String>,
    /// Unique conductor name on the board [default: <hostname>-<pid>].
    #[arg(long)]
    pub name: Option<String>,
    /// How many jobs to run at once [default: 32].
    #[arg(long, value_name = "N")]
    pub max_jobs: Option<usize>,
    /// Refuse posts (RESOURCE_EXHAUSTED) while this many jobs are queued; 0: no limit [default: 0].
    #[arg(long, value_name = "N")]
    pub max_queued: Option<u64>,
    /// etcd's storage quota (its --quota-backend-bytes); posts are refused from 90% of it on, and
    /// while etcd has an alarm raised; 0: not checked [default: 2147483648, etcd's default].
    #[arg(long, value_name = "BYTES")]
    pub etcd_quota_bytes: Option<u64>,
    /// How many tasks of one job may run in parallel [default: 8].
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Threads that run the conductor (its API, claims and flows) [default: one per CPU it may use].
    #[arg(long, value_name = "N")]
    pub worker_threads: Option<usize>,
    /// TTL of the etcd lease that holds this conductor's claims (minimum 2s) [default: 10s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    #[serde(default, deserialize_with = "flowfile::duration::deserialize_opt")]
    pub lease_ttl: Option<Duration>,
    /// Prefix of every etcd key of the board [default: /baton/].
    #[arg(long)]
    pub prefix: Option<String>,
    /// Log format on stderr [default: human].
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// On SIGTERM/SIGINT, how long running flows get to suspend before they are stopped [default: 10s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    #[serde(default, deserialize_with = "flowfile::duration::deserialize_opt")]
    pub grace: Option<Duration>,
    /// Trash a job claimed this many times without finishing (0: never) [default: 5].
    #[arg(long, value_name = "N")]
    pub quarantine_after: Option<u32>,
    /// How long finished jobs and their logbooks are kept [default: 7d].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    #[serde(default, deserialize_with = "flowfile::duration::deserialize_opt")]
    pub retention: Option<Duration>,
    /// How often expired jobs are purged [default: 1h].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    #[serde(default, deserialize_with = "flowfile::duration::deserialize_opt")]
    pub purge_interval: Option<Duration>,
    /// How often the board's drain flag for this conductor is re-read [default: 5s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    #[serde(default, deserialize_with = "flowfile::duration::deserialize_opt")]
    pub drain_check_interval: Option<Duration>,
    /// A remote worker silent this long is lost: its running tasks fail as WorkerLost [default: 5s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    #[serde(default, deserialize_with = "flowfile::duration::deserialize_opt")]
    pub worker_heartbeat_timeout: Option<Duration>,
    /// How long a remote task waits for a worker offering it with a free slot [default: 60s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    #[serde(default, deserialize_with = "flowfile::duration::deserialize_opt")]
    pub schedule_to_start: Option<Duration>,
    /// Directory of flow files (*.yaml, *.yml) to apply to the board at start (never moving a flow back).
    #[arg(long, value_name = "DIR")]
    pub flows_dir: Option<PathBuf>,
    /// Task kinds flow files may use on this conductor, comma-separated [default: every built-in kind but shell].
    #[arg(long, value_name = "KIND,...", value_delimiter = ',')]
    #[serde(default, deserialize_with = "comma_list")]
    pub task_kinds: Option<Vec<String>>,
    /// Directory with one file per secret, for ${secret.NAME} in flow files.
    #[arg(long, value_name = "DIR")]
    pub secrets_dir: Option<PathBuf>,
    /// TLS certificate chain (PEM) of the gRPC API and the HTTP listener; re-read when it changes.
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// CA (PEM) that signs client certificates: mutual TLS (required without --auth-file).
    #[arg(long, value_name = "FILE")]
    pub tls_client_ca: Option<PathBuf>,
    /// Identities and roles of callers (`NAME ROLE[,ROLE...] sha256:HEX|cert:NAME` per line); re-read when it changes.
    #[arg(long, value_name = "FILE")]
    pub auth_file: Option<PathBuf>,
    /// Serve beyond loopback without TLS and without an auth file (anyone who reaches the port may do anything).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub insecure: Option<bool>,
    /// Address of the HTTP listener: /metrics (Prometheus) and /healthz [default: off].
    #[arg(long, value_name = "ADDR")]
    pub http_listen: Option<SocketAddr>,
    /// CA (PEM) that signed etcd's certificate; the --etcd endpoints are then https://.
    #[arg(long, value_name = "FILE")]
    pub etcd_ca: Option<PathBuf>,
    /// Client certificate (PEM) for etcd's --client-cert-auth.
    #[arg(long, value_name = "FILE")]
    pub etcd_cert: Option<PathBuf>,
    /// The private key (PEM) of --etcd-cert.
    #[arg(long, value_name = "FILE")]
    pub etcd_key: Option<PathBuf>,
    /// etcd user; its password comes from --etcd-password-file or BATON_ETCD_PASSWORD, never a flag.
    #[arg(long, value_name = "NAME")]
    pub etcd_user: Option<String>,
    /// File holding the --etcd-user's password (first line).
    #[arg(long, value_name = "FILE")]
    pub etcd_password_file: Option<PathBuf>,
    /// Base URL callers reach the HTTP listener at, for ${callback.url} (e.g. https://baton.example:8080).
    #[arg(long, value_name = "URL")]
    pub http_advertise: Option<String>,
    /// File whose first line is this conductor's token towards other conductors (an auth-file identity with `peer`).
    #[arg(long, value_name = "FILE")]
    pub peer_token_file: Option<PathBuf>,
    /// Client certificate (PEM) this conductor presents to other conductors (a `cert:` identity with `peer`).
    #[arg(long, value_name = "FILE")]
    pub peer_cert: Option<PathBuf>,
    /// The private key (PEM) of --peer-cert.
    #[arg(long, value_name = "FILE")]
    pub peer_key: Option<PathBuf>,
    /// CA (PEM) that signed the other conductors' --tls-cert [default: --tls-client-ca, else the system's roots].
    #[arg(long, value_name = "FILE")]
    pub peer_ca: Option<PathBuf>,
    /// Hosts `http` tasks may reach: names, *.suffix, CIDR blocks, each with an optional :PORT [default: any].
    #[arg(long, value_name = "HOST,...", value_delimiter = ',')]
    #[serde(default, deserialize_with = "comma_list")]
    pub http_allow: Option<Vec<String>>,
    /// Posts one caller (identity, else address) may make per second, and at once [default: unlimited].
    #[arg(long, value_name = "PER_SEC[:BURST]", value_parser = guards::parse_post_rate)]
    #[serde(default, deserialize_with = "guards::post_rate")]
    pub post_rate: Option<crate::api::post_rate::PostRate>,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One readable line per event.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

/// Where the jobs live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BoardSettings {
    /// A fleet's board on etcd.
    Etcd {
        /// Client URLs.
        endpoints: Vec<String>,
        /// Key prefix.
        prefix: String,
    },
    /// The embedded board, one SQLite file in `data_dir`.
    Embedded {
        /// Holds the board file.
        data_dir: PathBuf,
    },
}

impl std::fmt::Display for BoardSettings {
    /// Where the board is, for log lines and errors: `etcd at URL,URL` or `the embedded board in DIR`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BoardSettings::Etcd { endpoints, .. } => write!(f, "etcd at {}", endpoints.join(",")),
            BoardSettings::Embedded { data_dir } => write!(f, "the embedded board in {}", data_dir.display()),
        }
    }
}

/// The daemon's resolved settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where the jobs live.
    pub board: BoardSettings,
    /// The gRPC listen address (the binary binds it; `daemon::run` takes the listener).
    pub listen: SocketAddr,
    /// The address registered on the board; `None`: the listener's local address.
    pub advertise: Option<String>,
    /// Unique name on the board.
    pub name: String,
    /// Jobs run at once.
    pub max_jobs: usize,
    /// Posts are refused while this many jobs are queued; 0: no limit.
    pub max_queued: u64,
    /// etcd's storage quota in bytes, which posts are checked against; 0: not checked.
    pub etcd_quota_bytes: u64,
    /// Tasks of one job run at once.
    pub concurrency: usize,
    /// Runtime worker threads; `None`: one per CPU the process may use (tokio's default).
    /// A conductor mostly waits on etcd, so on a small machine it shares with etcd one
    /// thread spends less CPU per job (the e2e bench prints both); flows whose tasks
    /// compute without awaiting want more.
    pub worker_threads: Option<usize>,
    /// The etcd lease TTL.
    pub lease_ttl: Duration,
    /// The log format.
    pub log_format: LogFormat,
    /// Time flows get to suspend on shutdown.
    pub grace: Duration,
    /// Claims without a finish before a job is trashed.
    pub quarantine_after: u32,
    /// How long finished jobs are kept.
    pub retention: Duration,
    /// How often expired jobs are purged.
    pub purge_interval: Duration,
    /// How often the board's drain flag is re-read.
    pub drain_check_interval: Duration,
    /// A remote worker silent this long is lost (heartbeats are sent every third of it).
    pub worker_heartbeat_timeout: Duration,
    /// The default schedule-to-start timeout of remote tasks.
    pub schedule_to_start: Duration,
    /// Flow files to apply to the board at start; `None`: none.
    pub flows_dir: Option<PathBuf>,
    /// The task kinds flow files may use (checked against the built-in kinds by [`Config::validate`]).
    pub task_kinds: Vec<String>,
    /// Where `${secret.NAME}` resolves from; `None`: every secret is missing.
    pub secrets_dir: Option<PathBuf>,
    /// TLS and authentication of the gRPC API and the HTTP listener.
    pub security: Security,
    /// The HTTP listener (`/metrics`, `/healthz`); `None`: off.
    pub http_listen: Option<SocketAddr>,
    /// TLS and user towards etcd.
    pub etcd_security: EtcdSecuritySettings,
    /// The base of `${callback.url}`; `None`: `http://<http_listen>` if that is set.
    pub http_advertise: Option<String>,
    /// How this conductor reaches other conductors (the worker relay).
    pub peer: PeerSettings,
    /// `--http-allow` and `--post-rate`.
    pub guards: Guards,
    /// Features taken away (`BATON_TEST_WITHOUT_FEATURES`), to act as an older release in tests.
    pub without_features: Vec<String>,
}

/// The file the embedded board keeps in its data dir.
pub const EMBEDDED_BOARD_FILE: &str = "board.sqlite3";

impl Config {
    /// The base of `${callback.url}`: `--http-advertise`, else the HTTP listen address.
    pub fn callback_base(&self) -> Option<String> {
        self.http_advertise.clone().or_else(|| self.http_listen.map(|a| format!("http://{a}")))
    }

    /// Layers `flags` over the environment (read through `env`) over the
    /// config file over the defaults, and checks the result.
    pub fn load(flags: Flags, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, Error> {
        let env = |key: &str| env(key).filter(|v| !v.trim().is_empty());
        let from_env = settings_from_env(&env)?;
        let file_path = flags.config.clone().or_else(|| env("BATON_CONFIG").map(PathBuf::from));
        let from_file = match &file_path {
            Some(path) => file::settings_from_file(path)?,
            None => Settings::default(),
        };
        let s = flags.settings.over(from_env).over(from_file);
        let name = match s.name {
            Some(name) => name,
            None => default_name(&env),
        };
        let board = match s.etcd {
            Some(endpoints) => BoardSettings::Etcd {
                endpoints: endpoints.into_iter().map(|e| e.trim().to_owned()).filter(|e| !e.is_empty()).collect(),
                prefix: s.prefix.unwrap_or_else(|| "/baton/".into()),
            },
            None => BoardSettings::Embedded { data_dir: s.data_dir.unwrap_or_else(|| PathBuf::from("baton-data")) },
        };
        let defaults = Config::embedded("baton-data");
        let peer = PeerSettings::resolve(
            s.peer_token_file,
            s.peer_cert,
            s.peer_key,
            s.peer_ca.or_else(|| s.tls_client_ca.clone()),
            s.tls_cert.is_some(),
        )?;
        let config = Config {
            peer,
            board,
            listen: s.listen.unwrap_or(defaults.listen),
            advertise: s.advertise,
            name,
            max_jobs: s.max_jobs.unwrap_or(defaults.max_jobs),
            max_queued: s.max_queued.unwrap_or(defaults.max_queued),
            etcd_quota_bytes: s.etcd_quota_bytes.unwrap_or(defaults.etcd_quota_bytes),
            concurrency: s.concurrency.unwrap_or(defaults.concurrency),
            worker_threads: s.worker_threads,
            lease_ttl: s.lease_ttl.unwrap_or(defaults.lease_ttl),
            log_format: s.log_format.unwrap_or_default(),
            grace: s.grace.unwrap_or(defaults.grace),
            quarantine_after: s.quarantine_after.unwrap_or(defaults.quarantine_after),
            retention: s.retention.unwrap_or(defaults.retention),
            purge_interval: s.purge_interval.unwrap_or(defaults.purge_interval),
            drain_check_interval: s.drain_check_interval.unwrap_or(defaults.drain_check_interval),
            worker_heartbeat_timeout: s.worker_heartbeat_timeout.unwrap_or(defaults.worker_heartbeat_timeout),
            schedule_to_start: s.schedule_to_start.unwrap_or(defaults.schedule_to_start),
            flows_dir: s.flows_dir,
            task_kinds: match s.task_kinds {
                Some(kinds) => kinds.iter().map(|k| k.trim().to_owned()).filter(|k| !k.is_empty()).collect(),
                None => defaults.task_kinds,
            },
            secrets_dir: s.secrets_dir,
            security: Security {
                tls: match (s.tls_cert, s.tls_key) {
                    (Some(cert), Some(key)) => Some(TlsFiles { cert, key, client_ca: s.tls_client_ca }),
                    (None, None) if s.tls_client_ca.is_none() => None,
                    _ => {
                        return Err(Error::Config(
                            "--tls-cert and --tls-key go together (and --tls-client-ca needs both)".into(),
                        ))
                    }
                },
                auth_file: s.auth_file,
                insecure: s.insecure.unwrap_or(false),
            },
            http_listen: s.http_listen,
            etcd_security: EtcdSecuritySettings::resolve(
                s.etcd_ca,
                s.etcd_cert,
                s.etcd_key,
                s.etcd_user,
                s.etcd_password_file,
                env("BATON_ETCD_PASSWORD"),
            )?,
            http_advertise: s.http_advertise,
            guards: Guards::resolve(s.http_allow, s.post_rate)?,
            without_features: env(crate::features::WITHOUT_FEATURES_ENV)
                .map(|v| crate::features::names(&v))
                .unwrap_or_default(),
        };
        config.validate()?;
        Ok(config)
    }

    /// The defaults, on the embedded board in `data_dir`, named `<hostname>-<pid>`.
    /// For `baton demo` and in-process tests.
    pub fn embedded(data_dir: impl Into<PathBuf>) -> Config {
        Config {
            board: BoardSettings::Embedded { data_dir: data_dir.into() },
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            advertise: None,
            name: default_name(&|key| std::env::var(key).ok()),
            // Jobs are async tasks (a slot costs memory, not a thread) that mostly wait on
            // etcd round trips: by Little's law a conductor finishes at most max_jobs / job
            // latency jobs/s, and under load a no-op job on etcd takes ~50 ms, so 8 slots
            // capped one conductor near 150 jobs/s. 32 keeps the cap above the issue's
            // 180 jobs/s up to ~175 ms per job, while a crash still re-runs at most 32 jobs'
            // running tasks and a fleet still spreads a burst over its conductors.
            max_jobs: 32,
            max_queued: 0,
            // etcd's own default quota: set it to etcd's --quota-backend-bytes.
            etcd_quota_bytes: 2 * 1024 * 1024 * 1024,
            concurrency: 8,
            worker_threads: None,
            lease_ttl: Duration::from_secs(10),
            log_format: LogFormat::Human,
            grace: Duration::from_secs(10),
            quarantine_after: 5,
            retention: Duration::from_secs(7 * 86_400),
            purge_interval: Duration::from_secs(3600),
            drain_check_interval: Duration::from_secs(5),
            worker_heartbeat_timeout: Duration::from_secs(5),
            schedule_to_start: Duration::from_secs(60),
            flows_dir: None,
            task_kinds: flowfile::Kinds::default_allowed().names().into_iter().map(str::to_owned).collect(),
            secrets_dir: None,
            security: Security::default(),
            http_listen: None,
            etcd_security: EtcdSecuritySettings::default(),
            http_advertise: None,
            peer: PeerSettings::default(),
            guards: Guards::default(),
            without_features: Vec::new(),
        }
    }

    /// Refuses settings the daemon cannot run with, naming the setting.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |msg: String| Err(Error::Config(msg));
        if self.name.trim().is_empty() {
            return bad("--name is empty".into());
        }
        if self.max_jobs == 0 {
            return bad("--max-jobs must be at least 1".into());
        }
        if self.concurrency == 0 {
            return bad("--concurrency must be at least 1".into());
        }
        if self.worker_threads == Some(0) {
            return bad("--worker-threads must be at least 1".into());
        }
        if self.purge_interval.is_zero() || self.drain_check_interval.is_zero() {
            return bad("--purge-interval and --drain-check-interval must be above zero".into());
        }
        if self.worker_heartbeat_timeout < Duration::from_millis(300) {
            return bad("--worker-heartbeat-timeout must be at least 300ms".into());
        }
        if self.task_kinds.is_empty() {
            return bad("--task-kinds names no kind".into());
        }
        if let Err(unknown) = flowfile::Kinds::allowing(&self.task_kinds) {
            return bad(format!("--task-kinds: {unknown}"));
        }
        if let BoardSettings::Etcd { endpoints, prefix } = &self.board {
            if endpoints.is_empty() {
                return bad("--etcd names no endpoint".into());
            }
            if prefix.is_empty() {
                return bad("--prefix is empty".into());
            }
            if self.lease_ttl < Duration::from_secs(2) {
                let ttl = format_duration(self.lease_ttl);
                return bad(format!("--lease-ttl {ttl} is under etcd's minimum of 2s"));
            }
            self.etcd_security.check_endpoints(endpoints)?;
        }
        self.security.check_exposure(self.listen, "--listen")?;
        if let Some(http) = self.http_listen {
            self.security.check_exposure(http, "--http-listen")?;
        }
        Ok(())
    }

    /// The board settings every backend shares.
    pub fn board_config(&self) -> jobboard::BoardConfig {
        let mut board = jobboard::BoardConfig::new(self.name.clone());
        board.quarantine_after = self.quarantine_after;
        board.retention = self.retention;
        board
    }
}

impl Settings {
    /// `self`, with every unset field taken from `lower`.
    #[must_use]
    pub fn over(self, lower: Settings) -> Settings {
        Settings {
            etcd: self.etcd.or(lower.etcd),
            data_dir: self.data_dir.or(lower.data_dir),
            listen: self.listen.or(lower.listen),
            advertise: self.advertise.or(lower.advertise),
            name: self.name.or(lower.name),
            max_jobs: self.max_jobs.or(lower.max_jobs),
            max_queued: self.max_queued.or(lower.max_queued),
            etcd_quota_bytes: self.etcd_quota_bytes.or(lower.etcd_quota_bytes),
            concurrency: self.concurrency.or(lower.concurrency),
            worker_threads: self.worker_threads.or(lower.worker_threads),
            lease_ttl: self.lease_ttl.or(lower.lease_ttl),
            prefix: self.prefix.or(lower.prefix),
            log_format: self.log_format.or(lower.log_format),
            grace: self.grace.or(lower.grace),
            quarantine_after: self.quarantine_after.or(lower.quarantine_after),
            retention: self.retention.or(lower.retention),
            purge_interval: self.purge_interval.or(lower.purge_interval),
            drain_check_interval: self.drain_check_interval.or(lower.drain_check_interval),
            worker_heartbeat_timeout: self.worker_heartbeat_timeout.or(lower.worker_heartbeat_timeout),
            schedule_to_start: self.schedule_to_start.or(lower.schedule_to_start),
            flows_dir: self.flows_dir.or(lower.flows_dir),
            task_kinds: self.task_kinds.or(lower.task_kinds),
            secrets_dir: self.secrets_dir.or(lower.secrets_dir),
            tls_cert: self.tls_cert.or(lower.tls_cert),
            tls_key: self.tls_key.or(lower.tls_key),
            tls_client_ca: self.tls_client_ca.or(lower.tls_client_ca),
            auth_file: self.auth_file.or(lower.auth_file),
            insecure: self.insecure.or(lower.insecure),
            http_listen: self.http_listen.or(lower.http_listen),
            etcd_ca: self.etcd_ca.or(lower.etcd_ca),
            etcd_cert: self.etcd_cert.or(lower.etcd_cert),
            etcd_key: self.etcd_key.or(lower.etcd_key),
            etcd_user: self.etcd_user.or(lower.etcd_user),
            etcd_password_file: self.etcd_password_file.or(lower.etcd_password_file),
            http_advertise: self.http_advertise.or(lower.http_advertise),
            peer_token_file: self.peer_token_file.or(lower.peer_token_file),
            peer_cert: self.peer_cert.or(lower.peer_cert),
            peer_key: self.peer_key.or(lower.peer_key),
            peer_ca: self.peer_ca.or(lower.peer_ca),
            http_allow: self.http_allow.or(lower.http_allow),
            post_rate: self.post_rate.or(lower.post_rate),
        }
    }
}

/// The settings given as `BATON_*` variables, each parsed by the same parser as its flag,
/// so an env var is refused exactly when the flag would be, and the error names the variable.
fn settings_from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Settings, Error> {
    let command = Flags::command();
    let mut layer = Settings::default();
    for arg in command.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if matches!(long, "config" | "help" | "version") {
            continue;
        }
        let key = env_key(long);
        let Some(value) = env(&key) else { continue };
        let parsed = Flags::try_parse_from(["conductor".to_owned(), format!("--{long}={value}")]).map_err(|e| {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default().trim_start_matches("error: ").to_owned();
            Error::Config(format!("environment variable {key}: {first}"))
        })?;
        layer = layer.over(parsed.settings);
    }
    Ok(layer)
}

/// `max-jobs` -> `BATON_MAX_JOBS`.
pub fn env_key(long_flag: &str) -> String {
    format!("BATON_{}", long_flag.replace('-', "_").to_ascii_uppercase())
}

/// `<hostname>-<pid>`: unique per process on a host, readable in `baton conductors`.
fn default_name(env: &dyn Fn(&str) -> Option<String>) -> String {
    let host = env("HOSTNAME")
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "conductor".into());
    format!("{host}-{}", std::process::id())
}

/// YAML `etcd:` or `task_kinds:` as a list or one comma-separated string.
fn comma_list<'de, D: Deserializer<'de>>(de: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(Option::<OneOrMany>::deserialize(de)?.map(|v| match v {
        OneOrMany::One(s) => s.split(',').map(|e| e.trim().to_owned()).filter(|e| !e.is_empty()).collect(),
        OneOrMany::Many(list) => list,
    }))
}
