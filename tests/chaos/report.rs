//! `Report`: the run's evidence directory, its timeline (every fault, heal and check, with
//! the time since the start, written as it happens) and its findings (failed checks).

use std::collections::BTreeMap;
use std::fmt::Display;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

/// One failed check.
#[derive(Debug, Clone)]
pub struct Finding {
    /// Which check, a short stable name.
    pub check: &'static str,
    pub detail: String,
}

/// Shared by every thread of the run.
#[derive(Debug)]
pub struct Report {
    dir: PathBuf,
    started: Instant,
    timeline: Mutex<File>,
    findings: Mutex<Vec<Finding>>,
}

impl Report {
    /// Starts the timeline in `dir`, which must exist.
    pub fn new(dir: &Path) -> Report {
        let path = dir.join("timeline.log");
        let timeline = File::create(&path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        Report {
            dir: dir.to_path_buf(),
            started: Instant::now(),
            timeline: Mutex::new(timeline),
            findings: Mutex::default(),
        }
    }

    /// The time since the run started, as the timeline writes it.
    pub fn clock(&self) -> String {
        format!("[{:8.3}s]", self.started.elapsed().as_secs_f64())
    }

    /// Notes an event in the timeline (and on stderr, to follow a run).
    pub fn event(&self, text: impl Display) {
        let line = format!("{} {text}", self.clock());
        eprintln!("{line}");
        let mut timeline = self.timeline.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(timeline, "{line}");
    }

    /// Records a failed check (also in the timeline).
    pub fn fail(&self, check: &'static str, detail: impl Into<String>) {
        let detail = detail.into();
        self.event(format_args!("FAILED {check}: {detail}"));
        self.findings.lock().unwrap_or_else(|e| e.into_inner()).push(Finding { check, detail });
    }

    /// Records findings of the checker.
    pub fn add(&self, findings: Vec<Finding>) {
        for finding in findings {
            self.fail(finding.check, finding.detail);
        }
    }

    /// Every failed check so far.
    pub fn findings(&self) -> Vec<Finding> {
        self.findings.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Writes one more evidence file.
    pub fn write(&self, name: &str, contents: &str) {
        let path = self.dir.join(name);
        if let Err(error) = std::fs::write(&path, contents) {
            eprintln!("chaos: cannot write {}: {error}", path.display());
        }
    }

    /// Findings by check, then the first few details of each, for the end of the run.
    pub fn findings_text(&self) -> String {
        let mut by_check: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for finding in self.findings() {
            by_check.entry(finding.check).or_default().push(finding.detail);
        }
        let mut text = String::new();
        for (check, details) in by_check {
            text.push_str(&format!("{check}: {} finding(s)\n", details.len()));
            for detail in details.iter().take(5) {
                text.push_str(&format!("  - {detail}\n"));
            }
            if details.len() > 5 {
                text.push_str(&format!("  - ... and {} more (findings.txt)\n", details.len() - 5));
            }
        }
        text
    }

    /// Every finding, one per line, for `findings.txt`.
    pub fn findings_file(&self) -> String {
        self.findings().iter().map(|f| format!("{}: {}\n", f.check, f.detail)).collect()
    }
}
