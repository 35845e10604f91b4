//! The one mapping from Baton's errors to gRPC status codes.
//!
//! Every handler turns its errors into a `tonic::Status` here, so that a code
//! means the same thing on every call: NOT_FOUND for an unknown job,
//! INVALID_ARGUMENT for a request that can never succeed as written,
//! UNAVAILABLE for a board that may come back (retry), and so on. Every message
//! is cut to `limits::MAX_ERROR_BYTES`.

use flows::RegistryError;
use tonic::{Code, Status};

use super::limits;

/// The gRPC status for a job board error.
pub fn from_board(err: &jobboard::Error) -> Status {
    use jobboard::Error as E;
    let code = match err {
        E::NotFound(_) | E::UnknownFlow { .. } | E::TokenNotFound | E::UnknownSchedule(_) => Code::NotFound,
        E::CompletionConflict { .. } | E::ScheduleExists(_) => Code::AlreadyExists,
        E::ParkClosed { .. } => Code::FailedPrecondition,
        E::InvalidInput(_) => Code::InvalidArgument,
        // The message names the limit; the request cannot succeed as it is.
        E::TooLarge { .. } => Code::InvalidArgument,
        E::AlreadyClaimed { .. } => Code::Aborted,
        E::NotClaimable { .. } | E::ClaimLost { .. } | E::FlowInUse { .. } => Code::FailedPrecondition,
        // An operator's request the job's state refuses (suspend a finished job, retry a successful one).
        E::IllegalTransition { .. } => Code::FailedPrecondition,
        E::Unavailable { .. } | E::Closed => Code::Unavailable,
        _ => Code::Internal,
    };
    Status::new(code, limits::message(error_chain(err)))
}

/// UNAVAILABLE for a conductor with no usable board now, naming the cause:
/// retry (on another conductor, or later).
pub fn board_unavailable(cause: &str) -> Status {
    Status::unavailable(format!("job board unavailable: {cause}"))
}

/// The gRPC status for a flow registry refusal (unknown flow, inputs that break
/// their rules): always INVALID_ARGUMENT, with a message naming the flow and
/// every field with the rule it breaks.
pub fn from_registry(err: &RegistryError) -> Status {
    Status::invalid_argument(limits::message(err.to_string()))
}

/// The gRPC status for a catalog refusal: a post or graph of a flow it cannot resolve.
pub fn from_catalog(err: &crate::catalog::CatalogError) -> Status {
    use crate::catalog::CatalogError as E;
    match err {
        E::UnknownFlow { .. } | E::UnknownVersion { .. } | E::NotVersioned { .. } => {
            Status::invalid_argument(limits::message(err.to_string()))
        }
        E::Unbuildable { .. } => Status::failed_precondition(limits::message(err.to_string())),
        E::Board(_) => Status::unavailable(err.to_string()),
    }
}

/// INVALID_ARGUMENT naming the bad field.
pub fn invalid(field: &str, message: impl std::fmt::Display) -> Status {
    Status::invalid_argument(limits::message(format!("{field}: {message}")))
}

/// An error and its sources, joined with `: `.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Backends often repeat their source's message; do not say it twice.
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use jobboard::{Error, JobState};
    use uuid::Uuid;

    use super::*;

    #[test]
    fn board_errors_map_to_their_codes() {
        let id = Uuid::new_v4();
        let cases = [
            (Error::NotFound(id), Code::NotFound),
            (Error::InvalidInput("empty flow name".into()), Code::InvalidArgument),
            (Error::TooLarge { what: "store".into(), size: 10, limit: 5 }, Code::InvalidArgument),
            (Error::AlreadyClaimed { job: id, owner: "c1".into() }, Code::Aborted),
            (Error::NotClaimable { job: id, state: JobState::Complete }, Code::FailedPrecondition),
            (Error::ClaimLost { job: id, token: 3 }, Code::FailedPrecondition),
            (Error::Unavailable { message: "etcd down".into(), source: None }, Code::Unavailable),
            (Error::Closed, Code::Unavailable),
            (Error::TokenNotFound, Code::NotFound),
            (Error::CompletionConflict { atom: "a".into() }, Code::AlreadyExists),
            (Error::ParkClosed { atom: "a".into(), why: "its deadline passed".into() }, Code::FailedPrecondition),
            (Error::Backend { message: "corrupt row".into(), source: None }, Code::Internal),
        ];
        for (err, code) in cases {
            let status = from_board(&err);
            assert_eq!(status.code(), code, "{err}");
            assert_eq!(status.message(), err.to_string());
        }
    }

    #[test]
    fn too_large_names_the_limit() {
        let status = from_board(&Error::TooLarge { what: "store".into(), size: 2_000_000, limit: 1_048_576 });
        assert!(status.message().contains("1048576"), "{}", status.message());
    }

    #[test]
    fn unavailable_includes_its_source() {
        let source: jobboard::error::BoxError = "connection refused".into();
        let err = Error::Unavailable { message: "etcd at 127.0.0.1:2379".into(), source: Some(source) };
        let status = from_board(&err);
        assert_eq!(status.code(), Code::Unavailable);
        assert!(status.message().contains("connection refused"), "{}", status.message());
    }

    #[test]
    fn registry_errors_are_invalid_argument_naming_culprits() {
        let unknown = RegistryError::UnknownFlow { name: "nope".into(), known: vec!["chain".into()] };
        let status = from_registry(&unknown);
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains("nope"));
        let problems = vec![
            flows::InputProblem {
                path: "steps".into(),
                rule: flows::Rule::Minimum,
                message: "must be an integer >= 1, got -1".into(),
            },
            flows::InputProblem {
                path: "step_ms".into(),
                rule: flows::Rule::Required,
                message: "is required (integer >= 0) and was not given".into(),
            },
        ];
        let status = from_registry(&RegistryError::InvalidInputs { flow: "chain".into(), problems });
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(
            status.message(),
            "flow \"chain\" refuses its inputs: steps: must be an integer >= 1, got -1; \
             step_ms: is required (integer >= 0) and was not given"
        );
    }
}
