//! `baton flows validate -f FILE...`: flow files checked offline, without any server.
//!
//! Each file is parsed and checked against every built-in task kind (a conductor may allow
//! fewer: `--task-kinds`) exactly as `flows apply` would, compile checks included. For
//! people: every problem as `FILE:LINE:COLUMN: path: what is wrong` and, for a sound file,
//! one line `FILE: OK (flow NAME)`. As JSON: a list of `{file, flow, hash, problems}`, each
//! problem `{line, column, path, message}`. Exit 1 if any file has a problem.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use flowfile::{FlowFile, Kinds, Problem, Problems};
use serde_json::{json, Value};

use crate::args::Output;
use crate::report::io_words;

/// What checking one file found.
enum Checked {
    /// The flow's name and the hash of its canonical form.
    Sound {
        flow: String,
        hash: String,
    },
    Refused(Problems),
}

/// Checks every file; exit 0 only if all are sound.
pub fn run(files: &[PathBuf], out: Output) -> anyhow::Result<ExitCode> {
    let kinds = Kinds::all();
    let results: Vec<(String, Checked)> = files
        .iter()
        .map(|path| {
            let name = path.display().to_string();
            let checked = check(&name, std::fs::read_to_string(path), &kinds);
            (name, checked)
        })
        .collect();
    let text = match out {
        Output::Table => results.iter().map(|(name, checked)| lines(name, checked)).collect::<String>(),
        Output::Json => {
            let list: Value = results.iter().map(|(name, checked)| file_json(name, checked)).collect();
            format!("{}\n", serde_json::to_string_pretty(&list).unwrap_or_else(|_| list.to_string()))
        }
    };
    let mut stdout = io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    let all_sound = results.iter().all(|(_, checked)| matches!(checked, Checked::Sound { .. }));
    Ok(if all_sound { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn check(name: &str, text: io::Result<String>, kinds: &Kinds) -> Checked {
    match text {
        Ok(text) => match FlowFile::parse_with(name, &text, kinds) {
            Ok(file) => Checked::Sound { flow: file.name().to_owned(), hash: file.hash().to_owned() },
            Err(problems) => Checked::Refused(problems),
        },
        // A file that cannot be read is one problem at its start.
        Err(error) => Checked::Refused(Problems {
            file: name.to_owned(),
            list: vec![Problem {
                pos: flowfile::Pos { line: 1, column: 1 },
                path: String::new(),
                message: format!("cannot read the file: {}", io_words(&error)),
            }],
        }),
    }
}

fn lines(name: &str, checked: &Checked) -> String {
    match checked {
        Checked::Sound { flow, .. } => format!("{name}: OK (flow {flow})\n"),
        Checked::Refused(problems) => problems.lines().iter().map(|line| format!("{line}\n")).collect(),
    }
}

fn file_json(name: &str, checked: &Checked) -> Value {
    match checked {
        Checked::Sound { flow, hash } => json!({"file": name, "flow": flow, "hash": hash, "problems": []}),
        Checked::Refused(problems) => {
            let list: Vec<Value> = problems
                .list
                .iter()
                .map(|p| json!({"line": p.pos.line, "column": p.pos.column, "path": p.path, "message": p.message}))
                .collect();
            json!({"file": name, "flow": null, "hash": null, "problems": list})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(text: &str) -> Checked {
        check("f.yaml", Ok(text.to_owned()), &Kinds::all())
    }

    #[test]
    fn a_sound_file_is_one_ok_line() {
        let text = crate::demo::FLOW_FILES[0].1;
        assert_eq!(lines("f.yaml", &checked(text)), "f.yaml: OK (flow chain)\n");
        let value = file_json("f.yaml", &checked(text));
        assert_eq!((&value["flow"], &value["problems"]), (&json!("chain"), &json!([])));
    }

    #[test]
    fn every_problem_is_a_line_with_its_position() {
        let text = "name: x\nflow:\n  linear:\n    - task: a\n      kind: nope\n    - task: b\n      knd: noop\n";
        let shown = lines("f.yaml", &checked(text));
        let shown: Vec<&str> = shown.lines().collect();
        assert!(shown.len() >= 2, "{shown:?}");
        for line in &shown {
            assert!(line.starts_with("f.yaml:"), "{line}");
            let position: Vec<&str> = line.splitn(4, ':').collect();
            assert!(position[1].parse::<usize>().is_ok() && position[2].parse::<usize>().is_ok(), "{line}");
        }
        assert!(shown.iter().any(|l| l.starts_with("f.yaml:5:") && l.contains("nope")), "{shown:?}");
        assert!(shown.iter().any(|l| l.starts_with("f.yaml:7:") && l.contains("knd")), "{shown:?}");
    }

    #[test]
    fn an_unreadable_file_is_a_problem() {
        let missing = check("gone.yaml", Err(io::Error::from(io::ErrorKind::NotFound)), &Kinds::all());
        assert_eq!(lines("gone.yaml", &missing), "gone.yaml:1:1: cannot read the file: entity not found\n");
    }
}
