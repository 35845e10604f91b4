//! Failures and results between the worker protocol and `flows`.

use flows::Failure;
use proto::pb;
use serde_json::Value;

/// A flows failure as the wire's `TaskFailure` (the cause chain becomes `causes`).
pub(crate) fn to_wire(failure: &Failure) -> pb::TaskFailure {
    let mut causes = Vec::new();
    let mut next = failure.cause.as_deref();
    while let Some(cause) = next {
        causes.push(pb::TaskFailure {
            kind: cause.kind.clone(),
            message: cause.message.clone(),
            details_json: cause.details.as_ref().map(Value::to_string).unwrap_or_default(),
            causes: Vec::new(),
        });
        next = cause.cause.as_deref();
    }
    pb::TaskFailure {
        kind: failure.kind.clone(),
        message: failure.message.clone(),
        details_json: failure.details.as_ref().map(Value::to_string).unwrap_or_default(),
        causes,
    }
}

/// A wire failure as a flows failure: `causes` (nearest first, each flattened) become the chain.
pub(crate) fn from_wire(failure: &pb::TaskFailure) -> Failure {
    let mut chain: Vec<Failure> = std::iter::once(failure).chain(failure.causes.iter()).map(one).collect();
    let mut built = chain.pop().unwrap_or_else(|| Failure::task("empty failure"));
    while let Some(mut outer) = chain.pop() {
        outer.cause = Some(Box::new(built));
        built = outer;
    }
    built
}

fn one(failure: &pb::TaskFailure) -> Failure {
    let kind = if failure.kind.is_empty() { Failure::TASK_ERROR } else { failure.kind.as_str() };
    let mut out = Failure::new(kind, failure.message.clone());
    if !failure.details_json.is_empty() {
        out.details =
            Some(serde_json::from_str(&failure.details_json).unwrap_or(Value::String(failure.details_json.clone())));
    }
    out
}

/// An outcome as the wire's `Result.outcome`: a park stays a park (what a relaying
/// conductor sends back for its worker's answer).
pub(crate) fn to_outcome(outcome: Result<Value, Failure>) -> pb::result::Outcome {
    match outcome {
        Ok(value) => pb::result::Outcome::Success(pb::Success { result_json: value.to_string() }),
        Err(failure) => match flows::Park::from_failure(&failure) {
            Some(park) => pb::result::Outcome::Parked(pb::Parked {
                timeout_ms: u64::try_from(park.timeout().as_millis()).unwrap_or(u64::MAX),
            }),
            None => pb::result::Outcome::Failure(to_wire(&failure)),
        },
    }
}

/// A JSON text field: empty is null.
pub(crate) fn json(text: &str) -> Result<Value, serde_json::Error> {
    if text.is_empty() {
        Ok(Value::Null)
    } else {
        serde_json::from_str(text)
    }
}

/// A worker's result as the call's outcome, or the protocol error it deserves.
pub(crate) fn outcome(result: &pb::Result, max_bytes: usize) -> (Result<Value, Failure>, Option<pb::ProtocolError>) {
    use pb::protocol_error::Code;
    let size = match &result.outcome {
        Some(pb::result::Outcome::Success(s)) => s.result_json.len(),
        Some(pb::result::Outcome::Failure(f)) => f.message.len() + f.details_json.len(),
        Some(pb::result::Outcome::Parked(_)) | None => 0,
    };
    if size > max_bytes {
        let message = format!("result of {size} bytes is over the limit of {max_bytes}");
        let error = super::state::error(Code::ResultTooLarge, &message, &result.dispatch_id);
        return (Err(Failure::new(super::RESULT_TOO_LARGE, message)), Some(error));
    }
    match &result.outcome {
        Some(pb::result::Outcome::Success(s)) => match json(&s.result_json) {
            Ok(value) => (Ok(value), None),
            Err(e) => {
                let message = format!("result_json is not JSON: {e}");
                let error = super::state::error(Code::BadMessage, &message, &result.dispatch_id);
                (Err(Failure::new("BadResult", message)), Some(error))
            }
        },
        Some(pb::result::Outcome::Failure(f)) => (Err(from_wire(f)), None),
        Some(pb::result::Outcome::Parked(parked)) if parked.timeout_ms > 0 => {
            (Err(flows::Park::after(std::time::Duration::from_millis(parked.timeout_ms)).into()), None)
        }
        Some(pb::result::Outcome::Parked(_)) => {
            let message = "parked with a timeout of 0 ms: a park needs a timeout";
            let error = super::state::error(Code::BadMessage, message, &result.dispatch_id);
            (Err(Failure::new("BadResult", message)), Some(error))
        }
        None => {
            let message = "a result without success or failure";
            let error = super::state::error(Code::BadMessage, message, &result.dispatch_id);
            (Err(Failure::new("BadResult", message)), Some(error))
        }
    }
}
