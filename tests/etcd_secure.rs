//! The board on an etcd with TLS client certificates and users (issue 12): the whole
//! conformance suite as the `baton` user, whose role reaches only the board's prefix;
//! a conductor process configured with `--etcd-ca/--etcd-cert/--etcd-key/--etcd-user`
//! and `--etcd-password-file` running a job; a wrong password is a clear start-up error.

use std::process::Command;
use std::time::{Duration, Instant};

use tests::board_suite::EtcdFactory;
use tests::conductor::{bin_path, post_job, wait_job, ConductorConfig, ConductorProcess, OrFail};
use tests::etcd::secure::{SecureEtcd, BOARD_PREFIX, USER};
use tests::etcd::unique_prefix;

/// A factory under a fresh prefix inside the one the `baton` role may use.
async fn factory(name: &str) -> EtcdFactory {
    let secure = tokio::task::spawn_blocking(SecureEtcd::shared).await.or_fail();
    let prefix = format!("{}{}", BOARD_PREFIX, unique_prefix(name).trim_start_matches('/'));
    EtcdFactory::on(vec![secure.endpoint()], name).with_prefix(prefix).with_security(secure.security())
}

macro_rules! secure_board_test {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread")]
            async fn $name() {
                tests::board_suite::$name(&factory(stringify!($name)).await).await;
            }
        )*
    };
}

secure_board_test!(
    twenty_claimers_race,
    a_fleet_drains_a_backlog_claiming_each_job_once,
    priority_then_fifo,
    flow_filter,
    filtered_claims_keep_order,
    abandon_then_reclaim,
    consume_and_trash,
    quarantine_after_n_claims,
    quarantine_reason_is_the_rules,
    api_follows_the_lifecycle_table,
    flow_versions_follow_the_apply_rule,
    unknown_flows_and_bad_names_are_refused,
    concurrent_applies_each_get_a_version,
    a_flow_in_use_is_not_deleted,
    lost_session_returns_job,
    close_releases_claims,
    old_owner_is_fenced,
    wakeups_fire,
    cancel_unclaimed_and_claimed,
    idempotent_post,
    bad_inputs_write_nothing,
    list_filters_and_pages,
    list_by_state_matches_filtered_full_list,
    conductors_register_and_drain,
    logbook_round_trip_and_resume,
    first_claim_book_is_empty_until_written,
    batch_creates_flow_and_atoms,
    big_batch_round_trips,
    atoms_only_batch_needs_its_flow,
    oversize_atom_refuses_whole_batch,
    fenced_batch_writes_nothing,
    batch_updates_flow_and_leaves_other_atoms,
);

fn etcd_flags(secure: &SecureEtcd, password_file: &std::path::Path) -> Vec<String> {
    vec![
        "--etcd-ca".into(),
        secure.pki.ca().display().to_string(),
        "--etcd-cert".into(),
        secure.client.cert.display().to_string(),
        "--etcd-key".into(),
        secure.client.key.display().to_string(),
        "--etcd-user".into(),
        USER.into(),
        "--etcd-password-file".into(),
        password_file.display().to_string(),
    ]
}

#[test]
fn a_conductor_runs_jobs_on_etcd_over_tls_as_a_restricted_user() {
    let secure = SecureEtcd::shared();
    let prefix = format!("{}{}", BOARD_PREFIX, unique_prefix("conductor").trim_start_matches('/'));
    let mut config = ConductorConfig::etcd(&secure.endpoint(), &prefix, "secure-etcd", Duration::from_secs(5));
    config.extra_args = etcd_flags(secure, &secure.password_file);
    let conductor = ConductorProcess::start(&config).or_fail();
    let id = post_job(&conductor.endpoint(), "chain", &[("steps", "2"), ("step_ms", "0")]).or_fail();
    let job =
        wait_job(&conductor.endpoint(), &id, Duration::from_secs(30), "complete", |job| job["state"] == "COMPLETE")
            .or_fail();
    assert_eq!(job["outcome"], "SUCCESS", "{job}");
    assert!(!conductor.log().contains(&std::fs::read_to_string(&secure.password_file).or_fail().trim().to_owned()));
}

#[test]
fn a_wrong_etcd_password_stops_the_start_naming_what_failed() {
    let secure = SecureEtcd::shared();
    let wrong = secure.pki.path("wrong-password");
    std::fs::write(&wrong, "not-the-password\n").or_fail();
    let dir = tempfile::tempdir().or_fail();
    let mut child = Command::new(bin_path("conductor"))
        .args(["--listen", "127.0.0.1:0", "--etcd", &secure.endpoint(), "--prefix", BOARD_PREFIX])
        .args(etcd_flags(secure, &wrong))
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .or_fail();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().or_fail() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("a conductor with a wrong etcd password kept running instead of stopping");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        std::io::Read::read_to_string(&mut pipe, &mut stderr).or_fail();
    }
    assert!(!status.success());
    assert!(stderr.contains("authentication failed"), "says what failed: {stderr}");
    assert!(!stderr.contains("not-the-password"), "the password must not be printed: {stderr}");
}

/// Proof that the suite ran under auth: the same credentials cannot write outside the
/// board's prefix, and a session without a user cannot write inside it.
#[tokio::test(flavor = "multi_thread")]
async fn the_baton_user_is_confined_to_the_board_prefix() {
    let secure = tokio::task::spawn_blocking(SecureEtcd::shared).await.or_fail();
    let connect = |user: bool| {
        let security = secure.security();
        let mut tls = etcd_client::TlsOptions::new()
            .ca_certificate(etcd_client::Certificate::from_pem(security.ca_pem.clone().unwrap_or_default()));
        if let Some((cert, key)) = &security.identity_pem {
            tls = tls.identity(etcd_client::Identity::from_pem(cert, key));
        }
        let mut options = etcd_client::ConnectOptions::new().with_tls(tls);
        if let (true, Some((name, password))) = (user, security.user) {
            options = options.with_user(name, password);
        }
        etcd_client::Client::connect([secure.endpoint()], Some(options))
    };
    let mut baton = connect(true).await.or_fail();
    baton.put(format!("{BOARD_PREFIX}probe"), "ok", None).await.or_fail();
    let outside = baton.put("/elsewhere/probe", "no", None).await;
    assert!(outside.is_err_and(|e| e.to_string().contains("permission denied")), "writes outside the prefix must fail");
    let anonymous = match connect(false).await {
        Ok(mut client) => client.put(format!("{BOARD_PREFIX}probe"), "no", None).await.is_err(),
        Err(_) => true,
    };
    assert!(anonymous, "a session without the user must not write the board");
}

#[test]
fn a_client_certificate_etcd_does_not_trust_stops_the_start_naming_what_failed() {
    let secure = SecureEtcd::shared();
    let stranger = tests::pki::Pki::new("stranger");
    let foreign = stranger.client("baton-conductor");
    let dir = tempfile::tempdir().or_fail();
    let mut flags = etcd_flags(secure, &secure.password_file);
    flags[3] = foreign.cert.display().to_string();
    flags[5] = foreign.key.display().to_string();
    let mut child = Command::new(bin_path("conductor"))
        .args(["--listen", "127.0.0.1:0", "--etcd", &secure.endpoint(), "--prefix", BOARD_PREFIX])
        .args(flags)
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .or_fail();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().or_fail() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                std::io::Read::read_to_string(&mut pipe, &mut stderr).or_fail();
            }
            panic!("a conductor with an untrusted etcd client certificate kept running:\n{stderr}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        std::io::Read::read_to_string(&mut pipe, &mut stderr).or_fail();
    }
    assert_eq!(status.code(), Some(2), "a certificate etcd refuses is configuration: {stderr}");
    assert!(stderr.contains("certificate"), "says what failed: {stderr}");
}
