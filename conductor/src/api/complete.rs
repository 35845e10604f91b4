//! `CompleteTask`: a parked task's result or failure, by callback token or by
//! an operator's override, as one board call. Shared by the gRPC handler and
//! the HTTP webhook (`callbacks`), so both answer alike.
//!
//! The token is a credential: it is never logged here (only the job and task
//! it names, which its readable prefix says anyway).

use flows::Failure;
use jobboard::{Completed, JobBoard, Presenter, TaskOutcome};
use serde_json::Value;

/// What is to complete the task.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// A callback token (the credential).
    Token(String),
    /// An operator's override: job, task, and who.
    Operator { job: jobboard::JobId, task: String, operator: String },
}

/// Why a completion request is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// The result is not JSON.
    #[error("result is not JSON: {0}")]
    Result(String),
    /// Neither a result nor a failure was given.
    #[error("give a result or a failure")]
    Missing,
}

/// A task outcome from the wire: a JSON result text, or a failure message.
pub fn outcome(result_json: Option<&str>, failure: Option<&str>) -> Result<TaskOutcome, Malformed> {
    match (result_json, failure) {
        (Some(text), _) => {
            serde_json::from_str::<Value>(text).map(TaskOutcome::Result).map_err(|e| Malformed::Result(e.to_string()))
        }
        (None, Some(message)) => Ok(TaskOutcome::Failure(Failure::task(message))),
        (None, None) => Err(Malformed::Missing),
    }
}

/// Completes the task `target` names with `outcome`.
pub async fn complete(
    board: &dyn JobBoard,
    target: &Target,
    outcome: TaskOutcome,
) -> Result<Completed, jobboard::Error> {
    let failed = matches!(outcome, TaskOutcome::Failure(_));
    let answer = match target {
        Target::Token(token) => board.complete_task(token, outcome).await,
        Target::Operator { job, task, operator } => {
            let answer = board.complete(*job, task, Presenter::Operator(operator), outcome).await;
            if answer.is_ok() {
                tracing::info!(job = %job, task = %task, %operator, failed, "parked task completed by an operator");
            }
            answer
        }
    };
    if let (Target::Token(token), Ok(done)) = (target, &answer) {
        // The readable prefix only: never the secret.
        if let Ok(parsed) = flows::CallbackToken::parse(token) {
            let name = parsed.name();
            tracing::info!(job = %name.job, task = %name.atom, attempt = name.attempt, failed, repeat = *done == Completed::Already, "parked task completed");
        }
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_from_the_wire() {
        assert_eq!(outcome(Some("{\"ok\":true}"), None), Ok(TaskOutcome::Result(serde_json::json!({"ok": true}))));
        assert_eq!(outcome(None, Some("no")), Ok(TaskOutcome::Failure(Failure::task("no"))));
        assert!(matches!(outcome(Some("{"), None), Err(Malformed::Result(_))));
        assert_eq!(outcome(None, None), Err(Malformed::Missing));
    }
}
