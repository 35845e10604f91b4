//! The `http` kind: one HTTP request; the response body is the task's result.
//!
//! Settings: `method` (default GET), `url` (http or https), `headers`, `json` (sent as
//! JSON, with `content-type: application/json` unless `headers` gives one) or `body` (sent
//! as is), and `expect`, the statuses that count as success (default: any 2xx). A JSON
//! response (by its content type) becomes the result as JSON, anything else as text, an
//! empty body as null. Any other status is a failure naming it, with the end of the body.
//!
//! TLS is rustls (ring), trusting the system's roots and Mozilla's. Redirects are not
//! followed (a 3xx is a status like any other: list it in `expect` to accept it), so a
//! request never moves to another host. Proxy variables are not read. Neither headers
//! nor bodies nor the URL's query are logged, as any of them may carry a secret.
//!
//! With an allow list (`--http-allow`, [`allow`]) a URL whose host it does not
//! allow fails the task before any connection, and a name that resolves only to
//! internal addresses the list does not hold fails when it is resolved.

pub mod allow;
mod resolve;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use flows::Failure;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, USER_AGENT};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Map, Value};

use super::with::{invalid, tail_text, text_of, type_name, Moment, Reader};
use super::{Call, Kind};

/// Most response body read; more is a failure (results live in the logbook).
pub const MAX_BODY: usize = 1024 * 1024;
/// How much of a body (its end) a failure carries.
pub const BODY_TAIL: usize = 4 * 1024;

const SETTINGS: &[&str] = &["method", "url", "headers", "json", "body", "expect"];

/// The `http` kind, with its connection pool.
#[derive(Clone)]
pub struct Http {
    client: Client<HttpsConnector<HttpConnector<resolve::Checked>>, Full<Bytes>>,
    /// `--http-allow`; `None`: any host.
    allow: Option<Arc<allow::AllowList>>,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http").finish_non_exhaustive()
    }
}

impl Default for Http {
    fn default() -> Self {
        Self::new()
    }
}

impl Http {
    /// An `http` kind trusting the system's root certificates and Mozilla's.
    pub fn new() -> Self {
        Self::allowing(None)
    }

    /// An `http` kind that reaches only what `allow` allows (`None`: any host).
    pub fn allowing(allow: Option<allow::AllowList>) -> Self {
        let allow = allow.map(Arc::new);
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        // A host without a system store (a bare container) still has Mozilla's roots.
        let native = rustls_native_certs::load_native_certs();
        let (added, ignored) = roots.add_parsable_certificates(native.certs);
        tracing::debug!(
            added,
            ignored,
            errors = native.errors.len(),
            "http kind loaded the system's root certificates"
        );
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports rustls's default protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut plain = HttpConnector::new_with_resolver(resolve::Checked::new(allow.clone()));
        plain.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(plain);
        Http { client: Client::builder(TokioExecutor::new()).build(connector), allow }
    }
}

/// An http task's settings, read.
#[derive(Debug)]
struct Settings {
    method: Method,
    url: Option<Uri>,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Option<(Bytes, bool)>,
    expect: Option<Vec<u16>>,
}

impl Settings {
    fn read(with: &Map<String, Value>, moment: Moment) -> Result<Settings, Vec<String>> {
        let mut reader = Reader::new(with, moment);
        reader.unknown_keys(SETTINGS);
        let method = match reader.string("method") {
            None => Method::GET,
            Some(name) => Method::from_bytes(name.to_ascii_uppercase().as_bytes()).unwrap_or_else(|_| {
                reader.problem("method", format!("`{name}` is not an HTTP method"));
                Method::GET
            }),
        };
        if !reader.given("url") {
            reader.problem("url", "required");
        }
        let url = reader.string("url").filter(|text| !reader.templated(text)).and_then(|text| match url(&text) {
            Ok(uri) => Some(uri),
            Err(what) => {
                // The text itself may carry a secret (a token in the query): not repeated.
                reader.problem("url", what);
                None
            }
        });
        let mut headers = Vec::new();
        for (name, value) in reader.text_map("headers").unwrap_or_default() {
            match (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(&value)) {
                (Ok(name), Ok(value)) => headers.push((name, value)),
                (Err(_), _) => reader.problem(&format!("headers.{name}"), "not a valid header name"),
                (_, Err(_)) => {
                    reader.problem(&format!("headers.{name}"), "the value has characters a header cannot carry")
                }
            }
        }
        let body = match (reader.given("json"), reader.given("body")) {
            (true, true) => {
                reader.problem("body", "give either `json` or `body`, not both");
                None
            }
            (true, false) => reader.value("json").map(|value| (Bytes::from(value.to_string()), true)),
            (false, true) => reader.value("body").map(|value| (Bytes::from(text_of(value)), false)),
            (false, false) => None,
        };
        let expect = expect(&mut reader);
        reader.finish()?;
        Ok(Settings { method, url, headers, body, expect })
    }
}

/// `url`: absolute, http or https.
fn url(text: &str) -> Result<Uri, &'static str> {
    let uri: Uri = text.parse().map_err(|_| "not a valid URL")?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(_) => return Err("the scheme must be http or https"),
        None => return Err("must be absolute: http://host/... or https://host/..."),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("names no host");
    }
    Ok(uri)
}

/// `expect`: a status or a list of statuses.
fn expect(reader: &mut Reader<'_>) -> Option<Vec<u16>> {
    let items = match reader.value("expect")? {
        Value::Array(items) => items.clone(),
        single @ Value::Number(_) => vec![single.clone()],
        other => {
            reader.problem("expect", format!("must be a list of statuses, not {}", type_name(other)));
            return None;
        }
    };
    if items.is_empty() {
        reader.problem("expect", "the list is empty: no status could succeed");
    }
    let mut statuses = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        if reader.later(item) {
            continue;
        }
        match item.as_u64().and_then(|n| u16::try_from(n).ok()).filter(|n| (100..=599).contains(n)) {
            Some(status) => statuses.push(status),
            None => reader.problem(&format!("expect[{i}]"), format!("must be a status from 100 to 599, not {item}")),
        }
    }
    Some(statuses)
}

/// `scheme://host[:port]` of a URL: what logs may show.
fn origin(uri: &Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or("http");
    let host = uri.host().unwrap_or_default();
    let port = uri.port_u16().map(|p| format!(":{p}")).unwrap_or_default();
    format!("{scheme}://{host}{port}")
}

/// `scheme://host[:port]/path` of a URL: what failures show (no credentials, no query).
fn target(uri: &Uri) -> String {
    format!("{}{}", origin(uri), uri.path())
}

#[async_trait]
impl Kind for Http {
    fn name(&self) -> &'static str {
        "http"
    }

    fn settings(&self) -> &'static [&'static str] {
        SETTINGS
    }

    fn check(&self, with: &Map<String, Value>) -> Vec<String> {
        Settings::read(with, Moment::Check).err().unwrap_or_default()
    }

    async fn run(&self, with: Map<String, Value>, call: &Call) -> Result<Value, Failure> {
        let settings = Settings::read(&with, Moment::Run).map_err(|problems| invalid("http", problems))?;
        let Some(uri) = settings.url else {
            return Err(invalid("http", vec!["url: required".to_owned()]));
        };
        let label = format!("{} {}", settings.method, target(&uri));
        if let Some(allow) = &self.allow {
            allow.check_url(&uri).map_err(|why| Failure::task(format!("{label}: {why}")))?;
        }
        // Logs name the origin only: a path can carry a value as sensitive as a query's.
        let logged = format!("{} {}", settings.method, origin(&uri));
        let mut request = Request::builder().method(settings.method).uri(uri);
        let given = |name: &HeaderName| settings.headers.iter().any(|(n, _)| n == name);
        if !given(&USER_AGENT) {
            request = request.header(USER_AGENT, concat!("baton/", env!("CARGO_PKG_VERSION")));
        }
        if matches!(settings.body, Some((_, true))) && !given(&CONTENT_TYPE) {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        for (name, value) in settings.headers {
            request = request.header(name, value);
        }
        let body = settings.body.map(|(bytes, _)| bytes).unwrap_or_default();
        let request = request
            .body(Full::new(body))
            .map_err(|err| Failure::task(format!("{label}: cannot build the request: {err}")))?;

        tracing::debug!(atom = %call.atom, attempt = call.attempt, request = %logged, "http task sending");
        let exchange = async {
            let response =
                self.client.request(request).await.map_err(|err| Failure::task(format!("{label}: {}", chain(&err))))?;
            let (parts, body) = response.into_parts();
            let read = read_body(body, MAX_BODY)
                .await
                .map_err(|err| Failure::task(format!("{label}: reading the response: {err}")))?;
            Ok::<_, Failure>((parts, read))
        };
        let deadline = async {
            match call.timeout {
                Some(limit) => tokio::time::sleep(limit).await,
                None => std::future::pending().await,
            }
        };
        let (parts, (body, overflowed)) = tokio::select! {
            done = exchange => done?,
            () = deadline => {
                let limit = call.timeout.unwrap_or_default();
                return Err(Failure::new(Failure::TIMEOUT, format!("{label} exceeded its timeout of {} ms", limit.as_millis())));
            }
            () = call.cancel.cancelled() => return Err(Failure::new(flows::CANCELLED, format!("{label} was cancelled"))),
        };
        tracing::debug!(atom = %call.atom, attempt = call.attempt, request = %logged, status = parts.status.as_u16(), "http task answered");

        if !expected(parts.status, settings.expect.as_deref()) {
            let wanted = match &settings.expect {
                None => "2xx".to_owned(),
                Some(list) => list.iter().map(u16::to_string).collect::<Vec<_>>().join(", "),
            };
            let body_tail = tail_text(&body, BODY_TAIL);
            let last_line = body_tail.lines().rev().find(|l| !l.trim().is_empty()).map(str::trim).unwrap_or_default();
            let mut message = format!("{label} answered {}, expected {wanted}", parts.status);
            if parts.status.is_redirection() {
                message.push_str(" (redirects are not followed)");
            }
            if !last_line.is_empty() {
                message.push_str(&format!(": {}", last_line.chars().take(200).collect::<String>()));
            }
            let location = parts
                .headers
                .get(http::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .and_then(|l| l.parse::<Uri>().ok());
            return Err(Failure::task(message).with_details(json!({
                "status": parts.status.as_u16(),
                "body_tail": body_tail,
                "location": location.as_ref().map(target),
            })));
        }
        if overflowed {
            return Err(Failure::task(format!(
                "{label}: the response body is larger than {MAX_BODY} bytes; a result must be smaller"
            )));
        }
        result(&parts.headers, body, &label)
    }
}

/// Whether `status` counts as success.
fn expected(status: StatusCode, expect: Option<&[u16]>) -> bool {
    match expect {
        None => status.is_success(),
        Some(list) => list.contains(&status.as_u16()),
    }
}

/// Reads a body, keeping at most `limit` bytes; true when it was longer (the rest is
/// not read: the connection is dropped instead).
async fn read_body(mut body: hyper::body::Incoming, limit: usize) -> Result<(Vec<u8>, bool), hyper::Error> {
    let mut kept = Vec::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            if kept.len() + data.len() > limit {
                kept.extend_from_slice(&data[..limit - kept.len()]);
                return Ok((kept, true));
            }
            kept.extend_from_slice(&data);
        }
    }
    Ok((kept, false))
}

/// The task's result from the response body.
fn result(headers: &http::HeaderMap, body: Vec<u8>, label: &str) -> Result<Value, Failure> {
    if body.is_empty() {
        return Ok(Value::Null);
    }
    let json =
        headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).and_then(|v| v.split(';').next()).is_some_and(|mime| {
            mime.trim().eq_ignore_ascii_case("application/json") || mime.trim().to_ascii_lowercase().ends_with("+json")
        });
    if json {
        serde_json::from_slice(&body).map_err(|err| {
            Failure::task(format!("{label}: the response says JSON but is not ({err})"))
                .with_details(json!({"body_tail": tail_text(&body, BODY_TAIL)}))
        })
    } else {
        Ok(Value::String(String::from_utf8_lossy(&body).into_owned()))
    }
}

/// An error and its sources, as one line ("client error (Connect): connection refused").
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
