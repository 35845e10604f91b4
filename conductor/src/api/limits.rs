//! The sizes the `baton.v1` API accepts, in one place, checked before a request is
//! converted or reaches the board.
//!
//! A request over a limit gets INVALID_ARGUMENT naming the field, the limit and the
//! size it had. No error repeats more than [`flowfile::limits::ECHO_CHARS`]
//! characters of what the caller sent ([`shown`]): a status message travels in the
//! `grpc-message` header, and a client refuses a header list over 16 KiB as
//! RESOURCE_EXHAUSTED, hiding the real answer.
//!
//! | what | limit |
//! |---|---|
//! | a whole request message (decoded) | [`MAX_MESSAGE_BYTES`] |
//! | flow, task, conductor and operator names | [`MAX_NAME_BYTES`] |
//! | idempotency key, page token, callback token | [`MAX_KEY_BYTES`] |
//! | a job id | [`MAX_ID_BYTES`] |
//! | a store (`store_json`), a task's result | [`MAX_STORE_BYTES`] (the board's own limit, checked again on write) |
//! | keys of a store | [`MAX_STORE_KEYS`], each at most [`MAX_NAME_BYTES`] |
//! | a failure message (`CompleteTask`) | [`MAX_FAILURE_BYTES`] |
//! | flow files in one `ApplyFlows` | [`MAX_FLOW_FILES`], each at most [`MAX_FLOW_FILE_BYTES`] |
//! | `ListJobs` page size | 0 means 100; above [`MAX_PAGE_SIZE`] is served as [`MAX_PAGE_SIZE`] (with a next-page token) |
//! | an error message | [`MAX_ERROR_BYTES`] |

use proto::pb;
use tonic::Status;

pub use flowfile::limits::{shown, MAX_FILE_BYTES as MAX_FLOW_FILE_BYTES, MAX_NAME_BYTES};

/// The largest request message the Baton service decodes (tonic's
/// `max_decoding_message_size`); a larger one is refused by tonic, as
/// RESOURCE_EXHAUSTED before any handler runs.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
/// The longest idempotency key, page token or callback token (the board's key limit).
pub const MAX_KEY_BYTES: usize = jobboard::MAX_NAME_BYTES;
/// The longest job id accepted (a UUID is 36 characters; spaces around it are allowed).
pub const MAX_ID_BYTES: usize = 64;
/// The largest store or task result, as JSON text (the board's default value limit).
pub const MAX_STORE_BYTES: usize = 1024 * 1024;
/// The most keys a store may have.
pub const MAX_STORE_KEYS: usize = 1024;
/// The longest failure message `CompleteTask` records.
pub const MAX_FAILURE_BYTES: usize = 64 * 1024;
/// The most flow files one `ApplyFlows` carries.
pub const MAX_FLOW_FILES: usize = 100;
/// The largest `ListJobs` page; a larger page size is served as this one.
pub const MAX_PAGE_SIZE: u32 = 1000;
/// The longest `FlowGraph` format name.
const MAX_FORMAT_BYTES: usize = 16;
/// A cron expression: six fields with lists and ranges fit well within it.
const MAX_CRON_BYTES: usize = 256;
/// The longest error message the API returns; longer ones are cut (an apply's problem list).
pub const MAX_ERROR_BYTES: usize = 8 * 1024;

/// INVALID_ARGUMENT for `field` when `value` is longer than `limit` bytes.
pub fn text(field: &str, value: &str, limit: usize) -> Result<(), Status> {
    if value.len() > limit {
        return Err(over(field, value.len(), limit, Some(value)));
    }
    Ok(())
}

/// INVALID_ARGUMENT naming `field`, its `size`, the `limit`, and the start of `value`.
pub fn over(field: &str, size: usize, limit: usize, value: Option<&str>) -> Status {
    let start = value.map(|v| format!(" ({})", shown(v))).unwrap_or_default();
    Status::invalid_argument(format!("{field}: {size} bytes, over the limit of {limit} bytes{start}"))
}

/// `message` cut to [`MAX_ERROR_BYTES`].
pub fn message(message: String) -> String {
    flowfile::limits::capped(message, MAX_ERROR_BYTES)
}

/// A store's text, before it is parsed.
pub fn store_text(field: &str, text: &str) -> Result<(), Status> {
    if text.len() > MAX_STORE_BYTES {
        return Err(over(field, text.len(), MAX_STORE_BYTES, None));
    }
    Ok(())
}

/// A store's keys, once parsed.
pub fn store_keys(field: &str, store: &serde_json::Map<String, serde_json::Value>) -> Result<(), Status> {
    if store.len() > MAX_STORE_KEYS {
        return Err(Status::invalid_argument(format!(
            "{field}: {} keys, over the limit of {MAX_STORE_KEYS}",
            store.len()
        )));
    }
    for key in store.keys() {
        text(&format!("{field} key"), key, MAX_NAME_BYTES)?;
    }
    Ok(())
}

/// The served page size for a requested one: 0 stays 0 (the board's default), the
/// rest is at most [`MAX_PAGE_SIZE`].
pub fn page_size(requested: u32) -> usize {
    usize::try_from(requested.min(MAX_PAGE_SIZE)).unwrap_or(usize::MAX)
}

/// A request the handlers check before converting it.
pub trait Bounded {
    /// INVALID_ARGUMENT for the first field over its limit.
    fn check(&self) -> Result<(), Status>;
}

/// Checks `request` against its limits.
pub fn check(request: &impl Bounded) -> Result<(), Status> {
    request.check()
}

impl Bounded for pb::PostJobRequest {
    fn check(&self) -> Result<(), Status> {
        text("flow", &self.flow, MAX_NAME_BYTES)?;
        text("idempotency_key", self.idempotency_key.as_deref().unwrap_or_default(), MAX_KEY_BYTES)?;
        store_text("store_json", &self.store_json)
    }
}

impl Bounded for pb::ListJobsRequest {
    fn check(&self) -> Result<(), Status> {
        text("flow", &self.flow, MAX_NAME_BYTES)?;
        text("page_token", &self.page_token, MAX_KEY_BYTES)
    }
}

/// The requests that name one job by its id.
macro_rules! by_id {
    ($($request:ty),*) => {$(
        impl Bounded for $request {
            fn check(&self) -> Result<(), Status> {
                text("id", &self.id, MAX_ID_BYTES)
            }
        }
    )*};
}
by_id!(
    pb::GetJobRequest,
    pb::WatchJobRequest,
    pb::CancelJobRequest,
    pb::SuspendJobRequest,
    pb::ResumeJobRequest,
    pb::RetryJobRequest
);

impl Bounded for pb::RerunJobRequest {
    fn check(&self) -> Result<(), Status> {
        text("id", &self.id, MAX_ID_BYTES)?;
        text("idempotency_key", self.idempotency_key.as_deref().unwrap_or_default(), MAX_KEY_BYTES)?;
        store_text("store_json", &self.store_json)
    }
}

/// The requests that name one flow or conductor.
macro_rules! by_name {
    ($($request:ty),*) => {$(
        impl Bounded for $request {
            fn check(&self) -> Result<(), Status> {
                text("name", &self.name, MAX_NAME_BYTES)
            }
        }
    )*};
}
by_name!(
    pb::DrainRequest,
    pb::GetFlowRequest,
    pb::FlowHistoryRequest,
    pb::DeleteFlowRequest,
    pb::GetScheduleRequest,
    pb::PauseScheduleRequest,
    pb::ResumeScheduleRequest,
    pb::DeleteScheduleRequest
);

impl Bounded for pb::ListSchedulesRequest {
    fn check(&self) -> Result<(), Status> {
        Ok(())
    }
}

impl Bounded for pb::CreateScheduleRequest {
    fn check(&self) -> Result<(), Status> {
        text("name", &self.name, MAX_NAME_BYTES)?;
        text("flow", &self.flow, MAX_NAME_BYTES)?;
        text("cron", &self.cron, MAX_CRON_BYTES)?;
        text("timezone", &self.timezone, MAX_NAME_BYTES)?;
        store_text("store_json", &self.store_json)
    }
}

impl Bounded for pb::FlowGraphRequest {
    fn check(&self) -> Result<(), Status> {
        text("name", &self.name, MAX_NAME_BYTES)?;
        text("format", &self.format, MAX_FORMAT_BYTES)?;
        store_text("store_json", &self.store_json)
    }
}

impl Bounded for pb::ApplyFlowsRequest {
    fn check(&self) -> Result<(), Status> {
        if self.files.len() > MAX_FLOW_FILES {
            return Err(Status::invalid_argument(format!(
                "files: {} flow files, over the limit of {MAX_FLOW_FILES} in one request",
                self.files.len()
            )));
        }
        for (i, file) in self.files.iter().enumerate() {
            text(&format!("files[{i}].file"), &file.file, MAX_NAME_BYTES)?;
            if file.text.len() > MAX_FLOW_FILE_BYTES {
                let field = format!("files[{i}].text ({})", shown(&file.file));
                return Err(over(&field, file.text.len(), MAX_FLOW_FILE_BYTES, None));
            }
        }
        Ok(())
    }
}

impl Bounded for pb::CompleteTaskRequest {
    fn check(&self) -> Result<(), Status> {
        use pb::complete_task_request::{Outcome as O, Target as T};
        match &self.target {
            // Never echoed: the token is a credential.
            Some(T::Token(token)) if token.len() > MAX_KEY_BYTES => {
                return Err(over("token", token.len(), MAX_KEY_BYTES, None))
            }
            Some(T::Task(task)) => {
                text("task.job_id", &task.job_id, MAX_ID_BYTES)?;
                text("task.task", &task.task, MAX_NAME_BYTES)?;
            }
            _ => {}
        }
        match &self.outcome {
            Some(O::ResultJson(json)) => store_text("result_json", json)?,
            Some(O::Failure(message)) if message.len() > MAX_FAILURE_BYTES => {
                return Err(over("failure", message.len(), MAX_FAILURE_BYTES, None))
            }
            _ => {}
        }
        text("operator", &self.operator, MAX_NAME_BYTES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_overlong_name_is_refused_short() {
        let request = pb::PostJobRequest { flow: "f".repeat(100_000), ..Default::default() };
        let status = check(&request).expect_err("over the limit");
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        let expected =
            format!("flow: 100000 bytes, over the limit of 256 bytes (\"{}\"…(100000 bytes))", "f".repeat(64));
        assert_eq!(status.message(), expected);
    }

    #[test]
    fn requests_within_their_limits_pass() {
        let request = pb::PostJobRequest { flow: "chain".into(), store_json: "{\"a\":1}".into(), ..Default::default() };
        assert!(check(&request).is_ok());
        assert!(check(&pb::GetJobRequest { id: uuid::Uuid::new_v4().to_string() }).is_ok());
    }

    #[test]
    fn a_token_is_never_echoed() {
        let secret = "s".repeat(MAX_KEY_BYTES + 1);
        let request = pb::CompleteTaskRequest {
            target: Some(pb::complete_task_request::Target::Token(secret)),
            ..Default::default()
        };
        let status = check(&request).expect_err("over the limit");
        assert!(!status.message().contains("sss"), "{}", status.message());
        assert!(status.message().starts_with("token: 1025 bytes"), "{}", status.message());
    }

    #[test]
    fn store_keys_are_counted_and_measured() {
        let many: serde_json::Map<_, _> =
            (0..=MAX_STORE_KEYS).map(|i| (format!("k{i}"), serde_json::json!(i))).collect();
        assert!(store_keys("store_json", &many).expect_err("too many").message().contains("1025 keys"));
        let long: serde_json::Map<_, _> = [("k".repeat(300), serde_json::json!(1))].into_iter().collect();
        assert!(store_keys("store_json", &long)
            .expect_err("too long")
            .message()
            .starts_with("store_json key: 300 bytes"));
    }

    #[test]
    fn page_sizes_are_clamped() {
        assert_eq!((page_size(0), page_size(10), page_size(u32::MAX)), (0, 10, 1000));
    }
}
