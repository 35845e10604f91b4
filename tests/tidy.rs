//! Tidy: repository rules checked mechanically by `cargo test`.
//!
//! Modelled on rust-analyzer's `tidy.rs`: each rule here is written down in
//! ARCHITECTURE.md or DEVELOPERS' guide, and checking it by machine keeps it true.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root (this crate lives in `<root>/tests`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// Every `.rs` file of ours, skipping build output and hidden folders.
fn rust_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || name == "target" {
                continue;
            }
            if path.is_dir() {
                walk(&path, out);
            } else if name.ends_with(".rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    for krate in ["flows", "flowfile", "jobboard", "proto", "conductor", "baton-cli", "worker", "tests", "examples"] {
        walk(&root().join(krate), &mut files);
    }
    assert!(files.len() > 10, "tidy found only {} .rs files; is the walk broken?", files.len());
    files
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root()).unwrap_or(path).display().to_string()
}

#[test]
fn every_rust_file_starts_with_a_module_doc() {
    let offenders: Vec<String> = rust_files()
        .into_iter()
        .filter(|p| !fs::read_to_string(p).unwrap_or_default().trim_start().starts_with("//!"))
        .map(|p| relative(&p))
        .collect();
    assert!(offenders.is_empty(), "files without a `//!` doc at the top: {offenders:#?}");
}

#[test]
fn no_file_grows_past_six_hundred_lines() {
    let offenders: Vec<String> = rust_files()
        .into_iter()
        .filter_map(|p| {
            let lines = fs::read_to_string(&p).unwrap_or_default().lines().count();
            (lines > 600).then(|| format!("{} ({lines} lines)", relative(&p)))
        })
        .collect();
    assert!(offenders.is_empty(), "split these files: {offenders:#?}");
}

#[test]
fn no_banned_markers() {
    // Built from pieces so that this file does not flag itself.
    let banned = [
        ["#[", "ignore"].concat(),
        ["#[", "should_panic"].concat(),
        ["dbg", "!("].concat(),
        ["todo", "!("].concat(),
        ["unimplemented", "!("].concat(),
    ];
    let mut offenders = Vec::new();
    for path in rust_files() {
        let text = fs::read_to_string(&path).unwrap_or_default();
        for (n, line) in text.lines().enumerate() {
            for marker in &banned {
                if line.contains(marker.as_str()) {
                    offenders.push(format!("{}:{}: {marker}", relative(&path), n + 1));
                }
            }
        }
    }
    assert!(offenders.is_empty(), "banned markers: {offenders:#?}");
}

/// Our crates' normal (non-dev, non-build) dependencies, from `cargo metadata`.
fn crate_dependencies() -> BTreeMap<String, Vec<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(root())
        .output()
        .expect("cargo metadata runs");
    assert!(output.status.success(), "cargo metadata failed: {}", String::from_utf8_lossy(&output.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON");
    let mut deps = BTreeMap::new();
    for package in meta["packages"].as_array().expect("packages list") {
        let name = package["name"].as_str().expect("package name").to_owned();
        let names = package["dependencies"]
            .as_array()
            .expect("dependencies list")
            .iter()
            .filter(|d| d["kind"].is_null())
            .filter_map(|d| d["name"].as_str().map(str::to_owned))
            .collect();
        deps.insert(name, names);
    }
    deps
}

#[test]
fn crate_edges_point_one_way() {
    let deps = crate_dependencies();
    // flows <- jobboard <- conductor -> proto; flows <- flowfile <- conductor; baton-cli -> proto,
    // flows, flowfile (never a board or the daemon); worker -> proto only (the Rust worker SDK
    // speaks the wire protocol, nothing else of ours); `tests` may use everything.
    let ours =
        ["flows", "flowfile", "jobboard", "proto", "conductor", "baton-cli", "worker", "tests", "rust-conductor"];
    let allowed: &[(&str, &[&str])] = &[
        ("flows", &[]),
        ("flowfile", &["flows"]),
        ("jobboard", &["flows"]),
        ("proto", &[]),
        ("conductor", &["flows", "flowfile", "jobboard", "proto"]),
        ("baton-cli", &["proto", "flows", "flowfile"]),
        ("worker", &["proto"]),
        ("tests", &["flows", "flowfile", "jobboard", "proto", "conductor", "worker"]),
        // The library path for Rust users: flows and the daemon's builder, nothing else of ours.
        ("rust-conductor", &["flows", "conductor"]),
    ];
    for (krate, may_use) in allowed {
        let used = deps.get(*krate).unwrap_or_else(|| panic!("crate {krate} missing from the workspace"));
        for dep in used.iter().filter(|d| ours.contains(&d.as_str())) {
            assert!(may_use.contains(&dep.as_str()), "{krate} must not depend on {dep}");
        }
    }
    // Protocol and process concerns stay out of the libraries.
    let forbidden: &[(&str, &[&str])] = &[
        ("flows", &["etcd-client", "tonic", "prost", "clap", "anyhow", "rusqlite", "serde_yaml"]),
        // Flow files are checked offline (by the CLI too): no board, protocol or daemon concerns.
        ("flowfile", &["etcd-client", "tonic", "prost", "clap", "anyhow", "rusqlite", "serde_yaml"]),
        // jobboard may use tonic privately (etcd-client reports errors as tonic statuses), never in its API.
        ("jobboard", &["clap", "anyhow", "serde_yaml", "proto"]),
        ("proto", &["clap", "anyhow", "etcd-client"]),
        // The CLI talks gRPC to conductors and checks flow files offline; it opens no board.
        ("baton-cli", &["etcd-client", "rusqlite", "serde_yaml"]),
        // A worker process runs task code: no board, no daemon, no flow engine.
        ("worker", &["etcd-client", "rusqlite", "serde_yaml", "clap"]),
    ];
    for (krate, banned) in forbidden {
        for dep in &deps[*krate] {
            assert!(!banned.contains(&dep.as_str()), "{krate} must not depend on {dep}");
        }
    }
}

#[test]
fn yaml_is_parsed_in_one_module() {
    // flowfile/src/yaml.rs reads every YAML of the project (flow files, store files, the
    // daemon's config) with a maintained YAML 1.2 parser that reports positions.
    let offenders: Vec<String> = rust_files()
        .into_iter()
        .filter(|p| !p.ends_with("flowfile/src/yaml.rs") && !p.ends_with("tests/tidy.rs"))
        .filter(|p| {
            let text = fs::read_to_string(p).unwrap_or_default();
            text.contains("serde_yaml::") || text.contains("saphyr_parser::")
        })
        .map(|p| relative(&p))
        .collect();
    assert!(offenders.is_empty(), "YAML parsed outside flowfile/src/yaml.rs: {offenders:#?}");
}
