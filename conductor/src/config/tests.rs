//! Config layering: flags over env over file over defaults, and clear errors.

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use clap::Parser;

use super::*;

fn flags(args: &[&str]) -> Flags {
    Flags::try_parse_from(std::iter::once("conductor").chain(args.iter().copied())).expect("test flags parse")
}

fn load(args: &[&str], env: &[(&str, &str)]) -> Result<Config, Error> {
    let env: HashMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Config::load(flags(args), &|key| env.get(key).cloned())
}

fn config_file(yaml: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new().suffix(".yaml").tempfile().expect("temp file");
    file.write_all(yaml.as_bytes()).expect("write temp file");
    file
}

#[test]
fn defaults_apply_when_nothing_is_given() {
    let config = load(&[], &[("HOSTNAME", "box")]).unwrap();
    assert_eq!(config.board, BoardSettings::Embedded { data_dir: PathBuf::from("baton-data") });
    assert_eq!(config.listen.to_string(), "127.0.0.1:50051");
    assert_eq!(config.name, format!("box-{}", std::process::id()));
    assert_eq!(config.max_jobs, 32);
    assert_eq!(config.lease_ttl, Duration::from_secs(10));
    assert_eq!(config.log_format, LogFormat::Human);
    assert_eq!(config.quarantine_after, 5);
    assert_eq!(config.worker_threads, None, "tokio's default: one per CPU");
}

#[test]
fn flags_beat_env_beat_file_beat_defaults() {
    let file = config_file(
        "etcd: http://file:2379\nmax_jobs: 3\nlease_ttl: 7s\nname: from-file\nprefix: /file/\nconcurrency: 2\n",
    );
    let path = file.path().to_str().unwrap();
    let env =
        [("BATON_MAX_JOBS", "4"), ("BATON_LEASE_TTL", "6s"), ("BATON_NAME", "from-env"), ("BATON_WORKER_THREADS", "1")];
    let config = load(&["--config", path, "--name", "from-flag"], &env).unwrap();
    // flag beats env and file
    assert_eq!(config.name, "from-flag");
    // env beats file
    assert_eq!(config.max_jobs, 4);
    assert_eq!(config.lease_ttl, Duration::from_secs(6));
    assert_eq!(config.worker_threads, Some(1));
    // file beats defaults
    assert_eq!(config.concurrency, 2);
    assert_eq!(
        config.board,
        BoardSettings::Etcd { endpoints: vec!["http://file:2379".into()], prefix: "/file/".into() }
    );
    // defaults fill the rest
    assert_eq!(config.grace, Duration::from_secs(10));
}

#[test]
fn config_file_can_come_from_the_environment() {
    let file = config_file("max_jobs: 11\n");
    let config = load(&[], &[("BATON_CONFIG", file.path().to_str().unwrap())]).unwrap();
    assert_eq!(config.max_jobs, 11);
}

#[test]
fn etcd_endpoints_split_on_commas_everywhere() {
    let config = load(&["--etcd", "http://a:1,http://b:2"], &[]).unwrap();
    let BoardSettings::Etcd { endpoints, prefix } = config.board else { panic!("expected etcd") };
    assert_eq!(endpoints, ["http://a:1", "http://b:2"]);
    assert_eq!(prefix, "/baton/");
    let config = load(&[], &[("BATON_ETCD", "http://c:3, http://d:4")]).unwrap();
    let BoardSettings::Etcd { endpoints, .. } = config.board else { panic!("expected etcd") };
    assert_eq!(endpoints, ["http://c:3", "http://d:4"]);
    let file = config_file("etcd: [http://e:5, http://f:6]\n");
    let config = load(&["--config", file.path().to_str().unwrap()], &[]).unwrap();
    let BoardSettings::Etcd { endpoints, .. } = config.board else { panic!("expected etcd") };
    assert_eq!(endpoints, ["http://e:5", "http://f:6"]);
}

#[test]
fn empty_env_values_count_as_unset() {
    let config = load(&[], &[("BATON_ETCD", ""), ("BATON_MAX_JOBS", " ")]).unwrap();
    assert!(matches!(config.board, BoardSettings::Embedded { .. }));
    assert_eq!(config.max_jobs, 32);
}

#[test]
fn unknown_yaml_key_is_named() {
    let file = config_file("max_jobs: 2\nmax_jbos: 3\n");
    let err = load(&["--config", file.path().to_str().unwrap()], &[]).unwrap_err().to_string();
    assert!(err.contains("max_jbos"), "{err}");
    assert!(err.contains(file.path().to_str().unwrap()), "{err}");
}

#[test]
fn the_config_file_is_yaml_1_2_with_positioned_errors() {
    // YAML 1.1 would make `no` a boolean; the conductor's name stays the text it reads as.
    let file = config_file("name: no\nmax_jobs: 3\n");
    let config = load(&["--config", file.path().to_str().unwrap()], &[]).unwrap();
    assert_eq!((config.name.as_str(), config.max_jobs), ("no", 3));

    let file = config_file("max_jobs: 2\nname: [unclosed\n");
    let err = load(&["--config", file.path().to_str().unwrap()], &[]).unwrap_err().to_string();
    assert!(err.contains(&format!("{}:", file.path().display())) && err.contains(":3:"), "names file and line: {err}");
}

#[test]
fn bad_durations_are_named_in_file_env_and_flags() {
    let file = config_file("grace: 10 parsecs\n");
    let err = load(&["--config", file.path().to_str().unwrap()], &[]).unwrap_err().to_string();
    assert!(err.contains("grace") && err.contains("10 parsecs"), "{err}");

    let err = load(&[], &[("BATON_LEASE_TTL", "10")]).unwrap_err().to_string();
    assert!(err.contains("BATON_LEASE_TTL") && err.contains("missing unit"), "{err}");

    let err = Flags::try_parse_from(["conductor", "--retention", "soon"]).unwrap_err().to_string();
    assert!(err.contains("--retention") && err.contains("soon"), "{err}");
}

#[test]
fn impossible_settings_are_refused() {
    let err = load(&["--max-jobs", "0"], &[]).unwrap_err().to_string();
    assert!(err.contains("--max-jobs"), "{err}");
    let err = load(&[], &[("BATON_WORKER_THREADS", "0")]).unwrap_err().to_string();
    assert!(err.contains("--worker-threads"), "{err}");
    let err = load(&["--etcd", "http://a:1", "--lease-ttl", "1500ms"], &[]).unwrap_err().to_string();
    assert!(err.contains("--lease-ttl 1500ms") && err.contains("2s"), "{err}");
    let err = load(&["--config", "/nonexistent/baton.yaml"], &[]).unwrap_err().to_string();
    assert!(err.contains("/nonexistent/baton.yaml"), "{err}");
}

#[test]
fn every_flag_has_an_env_var_and_help() {
    let command = Flags::command();
    for arg in command.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if matches!(long, "help" | "version") {
            continue;
        }
        assert!(arg.get_help().is_some(), "--{long} has no help");
    }
    assert_eq!(env_key("drain-check-interval"), "BATON_DRAIN_CHECK_INTERVAL");
    command.debug_assert();
}

#[test]
fn a_config_file_that_is_not_a_map_or_has_a_bad_value_is_named() {
    let file = config_file("- max_jobs\n- 3\n");
    let err = load(&["--config", file.path().to_str().unwrap()], &[]).unwrap_err().to_string();
    assert!(err.contains("expected a map of settings"), "{err}");
    let file = config_file("log_format: xml\n");
    let err = load(&["--config", file.path().to_str().unwrap()], &[]).unwrap_err().to_string();
    assert!(err.contains("log_format") && err.contains("xml"), "{err}");
    let file = config_file("max_jobs: [\n");
    let err = load(&["--config", file.path().to_str().unwrap()], &[]).unwrap_err().to_string();
    assert!(err.contains("invalid YAML"), "{err}");
}

#[test]
fn task_kinds_default_to_all_but_shell_and_layer_like_the_rest() {
    let config = load(&[], &[]).unwrap();
    assert_eq!(config.task_kinds, ["await", "fail", "http", "noop", "remote", "sleep"]);
    assert_eq!((config.flows_dir, config.secrets_dir), (None, None));
    let config = load(&["--task-kinds", "noop, shell"], &[("BATON_TASK_KINDS", "http")]).unwrap();
    assert_eq!(config.task_kinds, ["noop", "shell"]);
    let env = [("BATON_TASK_KINDS", "http,shell"), ("BATON_FLOWS_DIR", "/etc/baton/flows")];
    let config = load(&[], &env).unwrap();
    assert_eq!(config.task_kinds, ["http", "shell"]);
    assert_eq!(config.flows_dir, Some(PathBuf::from("/etc/baton/flows")));
    let file = config_file("task_kinds: [noop, shell]\nflows_dir: /f\nsecrets_dir: /s\n");
    let config = load(&["--config", file.path().to_str().unwrap()], &[]).unwrap();
    assert_eq!(config.task_kinds, ["noop", "shell"]);
    assert_eq!(config.flows_dir, Some(PathBuf::from("/f")));
    assert_eq!(config.secrets_dir, Some(PathBuf::from("/s")));
    let file = config_file("task_kinds: noop,sleep\n");
    let config = load(&["--config", file.path().to_str().unwrap()], &[("BATON_SECRETS_DIR", "/run/s")]).unwrap();
    assert_eq!(config.task_kinds, ["noop", "sleep"]);
    assert_eq!(config.secrets_dir, Some(PathBuf::from("/run/s")));
}

#[test]
fn an_unknown_task_kind_is_refused_with_a_suggestion() {
    let err = load(&["--task-kinds", "noop,shel"], &[]).unwrap_err();
    assert!(err.is_config());
    let err = err.to_string();
    assert!(err.contains("--task-kinds") && err.contains("\"shel\""), "{err}");
    assert!(err.contains("did you mean \"shell\"?"), "{err}");
    let err = load(&[], &[("BATON_TASK_KINDS", "htp")]).unwrap_err().to_string();
    assert!(err.contains("did you mean \"http\"?"), "{err}");
    let err = load(&["--task-kinds", ","], &[]).unwrap_err().to_string();
    assert!(err.contains("--task-kinds names no kind"), "{err}");
}

#[test]
fn beyond_loopback_needs_tls_an_auth_file_or_insecure() {
    let refused = load(&["--listen", "0.0.0.0:50051"], &[]).unwrap_err().to_string();
    for flag in ["--insecure", "--tls-cert", "--auth-file"] {
        assert!(refused.contains(flag), "{flag} not named: {refused}");
    }
    assert!(load(&["--listen", "0.0.0.0:50051", "--insecure"], &[]).is_ok());
    assert!(load(&["--listen", "0.0.0.0:50051"], &[("BATON_INSECURE", "true")]).is_ok());
    assert!(load(&["--listen", "0.0.0.0:50051", "--auth-file", "/etc/baton/auth"], &[]).is_ok());
    assert!(load(&["--listen", "127.0.0.2:50051"], &[]).is_ok(), "all of 127/8 is loopback");
    assert!(load(&["--http-listen", "[::]:9090"], &[]).unwrap_err().to_string().contains("--http-listen"));
    let half = load(&["--tls-cert", "/c.pem"], &[]).unwrap_err().to_string();
    assert!(half.contains("--tls-key"), "{half}");
}

#[test]
fn the_etcd_password_comes_from_a_file_or_the_environment_only() {
    let file = config_file("s3cret\n");
    let path = file.path().to_str().expect("utf-8 path");
    let config = load(&["--etcd", "http://e:2379", "--etcd-user", "baton", "--etcd-password-file", path], &[]).unwrap();
    let (user, password) = config.etcd_security.user.clone().expect("a user");
    assert_eq!((user.as_str(), password.expose()), ("baton", "s3cret"));
    assert!(!format!("{config:?}").contains("s3cret"), "the password must not be printed");
    let config =
        load(&["--etcd", "http://e:2379", "--etcd-user", "baton"], &[("BATON_ETCD_PASSWORD", "from-env")]).unwrap();
    assert_eq!(config.etcd_security.user.map(|(_, p)| p.expose().to_owned()).as_deref(), Some("from-env"));
    let missing = load(&["--etcd", "http://e:2379", "--etcd-user", "baton"], &[]).unwrap_err().to_string();
    assert!(missing.contains("--etcd-password-file") && missing.contains("BATON_ETCD_PASSWORD"), "{missing}");
    let plain = load(&["--etcd", "http://e:2379", "--etcd-ca", path], &[]).unwrap_err().to_string();
    assert!(plain.contains("https://"), "{plain}");
}

#[test]
fn the_peer_credential_comes_from_flags_or_env_and_trusts_the_client_ca_by_default() {
    let token = config_file("peer-secret\n");
    let path = token.path().to_str().expect("utf-8 temp path");
    let config = load(&[], &[("BATON_PEER_TOKEN_FILE", path)]).unwrap();
    assert_eq!(config.peer.token_file.as_deref(), Some(token.path()));
    assert!(!config.peer.tls, "no --tls-cert: plaintext links");
    assert_eq!(config.peer.url("127.0.0.1:1"), "http://127.0.0.1:1");
    let options = config.peer.client_options().unwrap();
    assert_eq!(options.token.as_deref(), Some("peer-secret"));
    assert!(!format!("{:?}", config.peer).contains("peer-secret"));

    let tls = ["--tls-cert", path, "--tls-key", path, "--tls-client-ca", path];
    let config = load(&tls, &[]).unwrap();
    assert_eq!(config.peer.ca.as_deref(), Some(token.path()), "--peer-ca defaults to --tls-client-ca");
    assert_eq!(config.peer.url("127.0.0.1:1"), "https://127.0.0.1:1");

    let half = load(&["--peer-cert", path], &[]).unwrap_err().to_string();
    assert!(half.contains("--peer-key"), "{half}");
    let missing = load(&["--peer-token-file", "/nonexistent/peer"], &[]).unwrap_err().to_string();
    assert!(missing.contains("--peer-token-file"), "{missing}");
}

#[test]
fn http_allow_and_post_rate_come_from_flags_env_and_file() {
    use crate::api::post_rate::PostRate;
    let config = load(&[], &[]).unwrap();
    assert_eq!(config.guards, Guards::default());

    let config = load(&["--http-allow", "api.example.com,10.0.0.0/8", "--post-rate", "5:20"], &[]).unwrap();
    let allow = config.guards.http_allow.expect("a list");
    assert!(allow.check_url(&"https://api.example.com/".parse().unwrap()).is_ok());
    assert!(allow.check_url(&"https://other.example.com/".parse().unwrap()).is_err());
    assert_eq!(config.guards.post_rate, Some(PostRate { per_sec: 5.0, burst: 20 }));

    let config = load(&[], &[("BATON_POST_RATE", "2")]).unwrap();
    assert_eq!(config.guards.post_rate, Some(PostRate { per_sec: 2.0, burst: 2 }));
    let file = config_file("http_allow: [\"*.corp.example\"]\npost_rate: 3\n");
    let config = load(&["--config", file.path().to_str().unwrap()], &[]).unwrap();
    assert!(config.guards.http_allow.is_some());
    assert_eq!(config.guards.post_rate, Some(PostRate { per_sec: 3.0, burst: 3 }));

    let err = load(&["--http-allow", "a b"], &[]).unwrap_err().to_string();
    assert!(err.contains("--http-allow \"a b\""), "{err}");
    let err = load(&["--http-allow", ","], &[]).unwrap_err().to_string();
    assert!(err.contains("--http-allow names no host"), "{err}");
    let err = load(&[], &[("BATON_POST_RATE", "0")]).unwrap_err().to_string();
    assert!(err.contains("BATON_POST_RATE") && err.contains("not a rate above 0"), "{err}");
}
