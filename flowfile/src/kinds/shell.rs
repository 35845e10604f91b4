//! The `shell` kind: runs a program (`run`, an argv list) or a script (`script`, by
//! `sh -c`) on the conductor's host.
//!
//! The process starts in a clean environment: only `PATH` (a safe default unless `env`
//! gives one) and what `env` passes, never the conductor's own variables. Values reach it
//! only through `env` and `stdin`; nothing is substituted into `run` or `script`. It runs
//! in a process group of its own, and when it ends, times out or is cancelled, whatever
//! is left of that group (grandchildren included) is stopped: SIGTERM, a short grace,
//! then SIGKILL. Neither `env` values nor `stdin` are ever logged.

mod capture;
mod group;
#[cfg(test)]
mod tests;

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use async_trait::async_trait;
use flows::Failure;
use serde_json::{json, Map, Value};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use tokio_util::task::AbortOnDropHandle;

use self::capture::{read_bounded, read_tail, Captured};
use self::group::Group;
use super::with::{invalid, tail_text, text_of, type_name, Moment, Reader};
use super::{Call, Kind};

/// `PATH` of a task whose `env` does not set one.
pub const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
/// How long a stopped task's processes get between SIGTERM and SIGKILL.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(2);
/// Most stdout kept as the result; more is a failure (results live in the logbook).
pub const MAX_STDOUT: usize = 1024 * 1024;
/// How much of stderr (its end) a failure carries.
pub const STDERR_TAIL: usize = 4 * 1024;
/// How long output may stay open after the task's processes are gone (a process that
/// left the group can hold the pipes; the task does not wait for it).
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);

const SETTINGS: &[&str] = &["run", "script", "env", "dir", "stdin", "output"];

/// The `shell` kind.
#[derive(Debug, Clone)]
pub struct Shell {
    grace: Duration,
}

impl Default for Shell {
    fn default() -> Self {
        Shell { grace: DEFAULT_GRACE }
    }
}

impl Shell {
    /// A `shell` kind with the default grace between SIGTERM and SIGKILL.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the grace between SIGTERM and SIGKILL when stopping a task's processes.
    #[must_use]
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }
}

/// What to run.
#[derive(Debug, Clone, PartialEq)]
enum Program {
    Argv(Vec<String>),
    Script(String),
}

/// How stdout becomes the result.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Output {
    /// Text, one trailing newline stripped.
    Text,
    /// Parsed as JSON; invalid JSON is a failure.
    Json,
}

/// A shell task's settings, read.
#[derive(Debug)]
struct Settings {
    program: Option<Program>,
    env: Vec<(String, String)>,
    dir: Option<PathBuf>,
    stdin: Option<Vec<u8>>,
    output: Output,
}

impl Settings {
    fn read(with: &Map<String, Value>, moment: Moment) -> Result<Settings, Vec<String>> {
        let mut reader = Reader::new(with, moment);
        reader.unknown_keys(SETTINGS);
        let program = match (reader.given("run"), reader.given("script")) {
            (true, true) => {
                reader.problem("run", "give either `run` or `script`, not both");
                None
            }
            (false, false) => {
                reader.problem("run", "required: `run` (an argv list) or `script` (run by sh -c)");
                None
            }
            (true, false) => argv(&mut reader).map(Program::Argv),
            (false, true) => script(&mut reader).map(Program::Script),
        };
        let env = reader.text_map("env").unwrap_or_default();
        for (name, value) in &env {
            if name.is_empty() || name.contains(['=', '\0']) {
                reader.problem(&format!("env.{name}"), "a variable name must be non-empty, without `=` or NUL");
            }
            // Says which variable, never what it holds.
            if value.contains('\0') {
                reader.problem(&format!("env.{name}"), "the value contains a NUL byte");
            }
        }
        let dir = reader.string("dir").map(PathBuf::from);
        let stdin = reader.value("stdin").map(|value| text_of(value).into_bytes());
        let output = match reader.value("output") {
            None => Output::Text,
            Some(Value::String(name)) if name == "text" => Output::Text,
            Some(Value::String(name)) if name == "json" => Output::Json,
            Some(other) => {
                reader.problem("output", format!("must be `text` or `json`, not {}", shorten(&other.to_string(), 40)));
                Output::Text
            }
        };
        reader.finish()?;
        Ok(Settings { program, env, dir, stdin, output })
    }
}

/// `run`: a non-empty list of scalars (numbers and booleans as their text, so
/// `[sleep, 5]` works); references are never substituted here.
fn argv(reader: &mut Reader<'_>) -> Option<Vec<String>> {
    let Some(value) = reader.value("run") else {
        reader.problem("run", "must be a list (argv), not a reference; pass values through `env` or `stdin`");
        return None;
    };
    let Value::Array(items) = value else {
        reader.problem(
            "run",
            format!("must be a list (argv), not {}; use `script` for a shell command line", type_name(value)),
        );
        return None;
    };
    if items.is_empty() {
        reader.problem("run", "must name a program: the list is empty");
        return None;
    }
    let mut args = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item {
            Value::String(_) | Value::Number(_) | Value::Bool(_) => args.push(text_of(item)),
            other => reader.problem(&format!("run[{i}]"), format!("must be a string, not {}", type_name(other))),
        }
    }
    if args.iter().any(|arg| arg.contains('\0')) {
        reader.problem("run", "an argument contains a NUL byte");
    }
    if args[0].is_empty() {
        reader.problem("run[0]", "the program name is empty");
    }
    (args.len() == items.len()).then_some(args)
}

/// `script`: a string run by `sh -c`.
fn script(reader: &mut Reader<'_>) -> Option<String> {
    match reader.value("script") {
        Some(Value::String(text)) if text.contains('\0') => {
            reader.problem("script", "contains a NUL byte");
            None
        }
        Some(Value::String(text)) => Some(text.clone()),
        Some(other) => {
            reader.problem("script", format!("must be a string, not {}", type_name(other)));
            None
        }
        None => {
            reader
                .problem("script", "must be the script's text, not a reference; pass values through `env` or `stdin`");
            None
        }
    }
}

#[async_trait]
impl Kind for Shell {
    fn name(&self) -> &'static str {
        "shell"
    }

    fn settings(&self) -> &'static [&'static str] {
        SETTINGS
    }

    /// `${X}` in a command is the shell's own syntax: values come in through `env` or `stdin` only.
    fn verbatim(&self) -> &'static [&'static str] {
        &["run", "script"]
    }

    fn check(&self, with: &Map<String, Value>) -> Vec<String> {
        Settings::read(with, Moment::Check).err().unwrap_or_default()
    }

    async fn run(&self, with: Map<String, Value>, call: &Call) -> Result<Value, Failure> {
        let settings = Settings::read(&with, Moment::Run).map_err(|problems| invalid("shell", problems))?;
        let Some(program) = settings.program else {
            return Err(invalid("shell", vec!["run: nothing to run".to_owned()]));
        };
        let (mut command, label) = match &program {
            Program::Argv(args) => {
                let mut command = Command::new(&args[0]);
                command.args(&args[1..]);
                (command, format!("`{}`", args[0]))
            }
            Program::Script(text) => {
                let mut command = Command::new("/bin/sh");
                command.arg("-c").arg(text);
                (command, "the script".to_owned())
            }
        };
        command.env_clear().env("PATH", DEFAULT_PATH);
        command.envs(settings.env.iter().map(|(name, value)| (name, value)));
        if let Some(dir) = &settings.dir {
            command.current_dir(dir);
        }
        command
            .stdin(if settings.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own group, so that stopping it reaches every process it started.
            .process_group(0)
            .kill_on_drop(true);

        let mut child = command.spawn().map_err(|err| {
            let place = settings.dir.as_ref().map(|d| format!(" in {}", d.display())).unwrap_or_default();
            Failure::task(format!("cannot start {label}{place}: {err}"))
        })?;
        let mut group = Group::new(child.id());
        tracing::debug!(atom = %call.atom, attempt = call.attempt, program = %label, pid = ?child.id(), "shell task started");

        let stdin_task = match (child.stdin.take(), settings.stdin) {
            (Some(mut pipe), Some(bytes)) => Some(AbortOnDropHandle::new(tokio::spawn(async move {
                // A program that does not read its stdin closes the pipe early: not an error.
                let _ = pipe.write_all(&bytes).await;
                let _ = pipe.shutdown().await;
            }))),
            _ => None,
        };
        let stdout =
            child.stdout.take().map(|pipe| AbortOnDropHandle::new(tokio::spawn(read_bounded(pipe, MAX_STDOUT))));
        let stderr = child.stderr.take().map(|pipe| AbortOnDropHandle::new(tokio::spawn(read_tail(pipe, STDERR_TAIL))));

        let deadline = async {
            match call.timeout {
                Some(limit) => tokio::time::sleep(limit).await,
                None => std::future::pending().await,
            }
        };
        let ended = tokio::select! {
            status = child.wait() => Ended::Exited(status),
            () = deadline => Ended::TimedOut,
            () = call.cancel.cancelled() => Ended::Cancelled,
        };
        let status = group.stop(&mut child, self.grace).await;
        drop(stdin_task);
        let stdout = finish_reading(stdout).await;
        let stderr = finish_reading(stderr).await;
        let stderr_tail = tail_text(&stderr.bytes, STDERR_TAIL);
        tracing::debug!(atom = %call.atom, attempt = call.attempt, program = %label, ?status, "shell task ended");

        let status = match ended {
            Ended::Exited(status) => status.map_err(|err| Failure::task(format!("cannot wait for {label}: {err}")))?,
            Ended::TimedOut => {
                let limit = call.timeout.unwrap_or_default();
                return Err(Failure::new(
                    Failure::TIMEOUT,
                    format!("{label} exceeded its timeout of {} ms; its processes were stopped", limit.as_millis()),
                )
                .with_details(json!({"stderr_tail": stderr_tail})));
            }
            Ended::Cancelled => {
                return Err(Failure::new(
                    flows::CANCELLED,
                    format!("{label} was cancelled; its processes were stopped"),
                )
                .with_details(json!({"stderr_tail": stderr_tail})));
            }
        };
        if !status.success() {
            return Err(exit_failure(&label, status, &stderr_tail));
        }
        if stdout.overflowed {
            return Err(Failure::task(format!(
                "{label} wrote more than {MAX_STDOUT} bytes to stdout; a result must be smaller (redirect bulk output to a file)"
            )));
        }
        result(settings.output, stdout.bytes, &label)
    }
}

/// How waiting for the process ended.
enum Ended {
    Exited(std::io::Result<ExitStatus>),
    TimedOut,
    Cancelled,
}

/// The output a reader collected, or nothing if it was still blocked when the task's
/// processes were gone (a process outside the group holds the pipe).
async fn finish_reading(reader: Option<AbortOnDropHandle<Captured>>) -> Captured {
    let Some(reader) = reader else { return Captured::default() };
    match tokio::time::timeout(DRAIN_AFTER_EXIT, reader).await {
        Ok(Ok(captured)) => captured,
        Ok(Err(_)) | Err(_) => {
            tracing::warn!("a process outside the shell task's group kept its output open; output after that is lost");
            Captured::default()
        }
    }
}

/// The failure of a process that did not exit with status 0.
fn exit_failure(label: &str, status: ExitStatus, stderr_tail: &str) -> Failure {
    let last_line = stderr_tail.lines().rev().find(|line| !line.trim().is_empty()).map(|line| line.trim());
    let how = match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => format!("ended with {status}"),
    };
    let message = match last_line {
        Some(line) => format!("{label} {how}: {}", shorten(line, 200)),
        None => format!("{label} {how}"),
    };
    Failure::task(message).with_details(json!({
        "exit_code": status.code(),
        "signal": status.signal(),
        "stderr_tail": stderr_tail,
    }))
}

/// The task's result from its stdout.
fn result(output: Output, mut stdout: Vec<u8>, label: &str) -> Result<Value, Failure> {
    match output {
        Output::Json => serde_json::from_slice(&stdout).map_err(|err| {
            Failure::task(format!("{label} printed invalid JSON on stdout ({err})"))
                .with_details(json!({"stdout_tail": tail_text(&stdout, STDERR_TAIL)}))
        }),
        Output::Text => {
            if stdout.ends_with(b"\n") {
                stdout.pop();
                if stdout.ends_with(b"\r") {
                    stdout.pop();
                }
            }
            Ok(Value::String(String::from_utf8_lossy(&stdout).into_owned()))
        }
    }
}

/// `text` cut to at most `limit` characters.
fn shorten(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}
