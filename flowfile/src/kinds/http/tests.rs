//! The `http` kind against a real HTTP server that each test starts on 127.0.0.1 and
//! that records every request it receives.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::Response;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;

use super::*;

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    method: String,
    path: String,
    content_type: Option<String>,
    token: Option<String>,
    body: String,
}

/// A server on a free loopback port; it stops with the test's runtime.
struct Server {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    async fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
        let addr = listener.local_addr().expect("a bound address");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let log = log.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| answer(request, log.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Server { addr, seen }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("the log lock").clone()
    }
}

async fn answer(request: Request<Incoming>, log: Arc<Mutex<Vec<Seen>>>) -> Result<Response<Full<Bytes>>, Infallible> {
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (content_type, token) = (header("content-type"), header("x-token"));
    let method = request.method().to_string();
    let route = request.uri().path().to_owned();
    let path = request.uri().path_and_query().map(ToString::to_string).unwrap_or_default();
    let body = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let body = String::from_utf8_lossy(&body).into_owned();
    log.lock().expect("the log lock").push(Seen {
        method: method.clone(),
        path: path.clone(),
        content_type,
        token,
        body: body.clone(),
    });

    let reply = |status: u16, content_type: &str, body: String| {
        Ok(Response::builder()
            .status(status)
            .header("content-type", content_type)
            .body(Full::new(Bytes::from(body)))
            .expect("a valid response"))
    };
    match (method.as_str(), route.as_str()) {
        ("GET", "/servers/7") => reply(200, "application/json", json!({"id": 7, "name": "n1"}).to_string()),
        ("POST", "/servers") => reply(
            201,
            "application/json; charset=utf-8",
            json!({"created": serde_json::from_str::<Value>(&body).ok()}).to_string(),
        ),
        ("PUT", "/notes") => reply(200, "text/plain", format!("stored {} bytes\n", body.len())),
        ("DELETE", "/servers/7") => {
            Ok(Response::builder().status(204).body(Full::new(Bytes::new())).expect("a valid response"))
        }
        ("GET", "/broken") => reply(500, "text/plain", "trace line\nboom: database down\n".to_owned()),
        ("GET", "/moved") => Ok(Response::builder()
            .status(302)
            .header("location", "http://elsewhere.invalid/x?token=secret")
            .body(Full::new(Bytes::new()))
            .expect("a valid response")),
        ("GET", "/slow") => {
            tokio::time::sleep(Duration::from_secs(600)).await;
            reply(200, "text/plain", "too late".to_owned())
        }
        _ => reply(404, "text/plain", "no such route".to_owned()),
    }
}

fn settings(value: Value) -> Map<String, Value> {
    value.as_object().cloned().expect("settings are a JSON object")
}

fn call(timeout: Option<Duration>) -> Call {
    Call { timeout, ..Call::new("test-task", 1) }
}

async fn run(with: Value) -> Result<Value, Failure> {
    Http::new().run(settings(with), &call(None)).await
}

#[tokio::test]
async fn get_returns_the_json_body_as_the_result() {
    let server = Server::start().await;
    let out = run(json!({"url": server.url("/servers/7"), "expect": [200]})).await.expect("GET succeeds");
    assert_eq!(out, json!({"id": 7, "name": "n1"}));
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!((seen[0].method.as_str(), seen[0].path.as_str(), seen[0].body.as_str()), ("GET", "/servers/7", ""));
}

#[tokio::test]
async fn post_sends_json_with_its_content_type_and_headers() {
    let server = Server::start().await;
    let out = run(json!({
        "method": "post",
        "url": server.url("/servers?zone=a"),
        "headers": {"X-Token": "t-123"},
        "json": {"name": "n1", "size": 2},
    }))
    .await
    .expect("POST succeeds");
    assert_eq!(out, json!({"created": {"name": "n1", "size": 2}}));
    let seen = &server.seen()[0];
    assert_eq!((seen.method.as_str(), seen.path.as_str()), ("POST", "/servers?zone=a"));
    assert_eq!(seen.content_type.as_deref(), Some("application/json"));
    assert_eq!(seen.token.as_deref(), Some("t-123"));
}

#[tokio::test]
async fn body_is_sent_as_is_and_text_comes_back_as_text() {
    let server = Server::start().await;
    let out = run(json!({"method": "PUT", "url": server.url("/notes"), "body": "hello", "headers": {"content-type": "text/plain"}}))
        .await
        .expect("PUT succeeds");
    assert_eq!(out, json!("stored 5 bytes\n"));
    let seen = &server.seen()[0];
    assert_eq!((seen.body.as_str(), seen.content_type.as_deref()), ("hello", Some("text/plain")));
}

#[tokio::test]
async fn delete_reaches_the_server_and_an_empty_answer_is_null() {
    let server = Server::start().await;
    let out = run(json!({"method": "DELETE", "url": server.url("/servers/7"), "expect": [200, 204]}))
        .await
        .expect("DELETE succeeds");
    assert_eq!(out, Value::Null);
    let seen: Vec<(String, String)> = server.seen().into_iter().map(|s| (s.method, s.path)).collect();
    assert_eq!(seen, [("DELETE".to_owned(), "/servers/7".to_owned())]);
}

#[tokio::test]
async fn an_unexpected_status_fails_naming_it_with_the_end_of_the_body() {
    let server = Server::start().await;
    let failure = run(json!({"url": server.url("/broken")})).await.expect_err("a 500 fails");
    assert_eq!(failure.kind, Failure::TASK_ERROR);
    let expected =
        format!("GET {} answered 500 Internal Server Error, expected 2xx: boom: database down", server.url("/broken"));
    assert_eq!(failure.message, expected);
    let details = failure.details.as_ref().expect("details");
    assert_eq!(details["status"], json!(500));
    assert_eq!(details["body_tail"], json!("trace line\nboom: database down\n"));

    let listed =
        run(json!({"url": server.url("/servers/7"), "expect": [201, 202]})).await.expect_err("200 is not listed");
    assert!(listed.message.contains("/servers/7 answered 200 OK, expected 201, 202"), "{listed}");
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let server = Server::start().await;
    let failure = run(json!({"url": server.url("/moved")})).await.expect_err("a 302 is not 2xx");
    assert!(failure.message.contains("answered 302 Found"), "{failure}");
    let details = failure.details.as_ref().expect("details");
    assert_eq!(details["location"], json!("http://elsewhere.invalid/x"), "shown without its query");
    assert_eq!(server.seen().len(), 1, "only the first request was made");
    let accepted = run(json!({"url": server.url("/moved"), "expect": [302]})).await.expect("302 listed");
    assert_eq!(accepted, Value::Null);
}

#[tokio::test]
async fn a_timeout_ends_the_request() {
    let server = Server::start().await;
    let failure = Http::new()
        .run(settings(json!({"url": server.url("/slow?key=secret")})), &call(Some(Duration::from_millis(300))))
        .await
        .expect_err("the request times out");
    assert_eq!(failure.kind, Failure::TIMEOUT);
    assert_eq!(failure.message, format!("GET {} exceeded its timeout of 300 ms", server.url("/slow")));
    assert_eq!(server.seen().len(), 1, "the request did reach the server");
}

#[tokio::test]
async fn cancelling_ends_the_request() {
    let server = Server::start().await;
    let call = call(None);
    let cancel = call.cancel.clone();
    let url = server.url("/slow");
    let task = tokio::spawn(async move { Http::new().run(settings(json!({"url": url})), &call).await });
    for _ in 0..500 {
        if !server.seen().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(server.seen().len(), 1, "the request reached the server before the cancel");
    cancel.cancel();
    let failure = task.await.expect("no panic").expect_err("a cancelled request fails");
    assert_eq!(failure.kind, flows::CANCELLED);
}

#[tokio::test]
async fn a_refused_connection_fails_with_the_reason() {
    // A port that was just free: bound, then released.
    let addr = TcpListener::bind("127.0.0.1:0").await.expect("bind").local_addr().expect("addr");
    let failure = run(json!({"url": format!("http://{addr}/x")})).await.expect_err("nobody listens");
    assert!(failure.message.starts_with(&format!("GET http://{addr}/x: client error (Connect)")), "{failure}");
}

#[tokio::test]
async fn https_speaks_tls_and_refuses_a_plain_http_server() {
    let server = Server::start().await;
    let failure = run(json!({"url": format!("https://{}/servers/7", server.addr)})).await.expect_err("no TLS there");
    assert!(
        failure.message.starts_with(&format!("GET https://{}/servers/7: client error (Connect)", server.addr)),
        "{failure}"
    );
    assert!(
        failure.message.contains("InvalidContentType") || failure.message.contains("corrupt message"),
        "a TLS error: {failure}"
    );
}

#[test]
fn check_reports_every_problem_by_key() {
    let http = Http::new();
    let check = |value: Value| http.check(&settings(value));
    assert_eq!(check(json!({"url": "https://example.org/x"})), Vec::<String>::new());
    assert_eq!(check(json!({})), ["url: required"]);
    assert_eq!(
        check(
            json!({"url": "ftp://example.org/", "method": "GE T", "json": {}, "body": "x", "expect": [200, 700, "ok"]})
        ),
        [
            "method: `GE T` is not an HTTP method",
            "url: the scheme must be http or https",
            "body: give either `json` or `body`, not both",
            "expect[1]: must be a status from 100 to 599, not 700",
            "expect[2]: must be a status from 100 to 599, not \"ok\""
        ]
    );
    assert_eq!(
        check(json!({"url": "http://h/", "expect": []})),
        ["expect: the list is empty: no status could succeed"]
    );
    assert_eq!(check(json!({"url": "/relative"})), ["url: must be absolute: http://host/... or https://host/..."]);
    assert_eq!(
        check(json!({"url": "http://h/", "headers": {"bad name": "x", "ok": "line\nbreak"}})),
        ["headers.bad name: not a valid header name", "headers.ok: the value has characters a header cannot carry"]
    );
    // Whole references are known only at run time; a URL built from one is checked then.
    assert_eq!(
        check(json!({"url": "${endpoint}", "headers": "${headers}", "json": "${doc}", "expect": ["${code}", 204]})),
        Vec::<String>::new()
    );
    assert_eq!(check(json!({"url": "http://h/", "expect": "${codes}"})), Vec::<String>::new());
    assert_eq!(check(json!({"url": "http://inventory.local/servers/${server_id}"})), Vec::<String>::new());
}

/// An `http` kind limited to `entries`.
fn allowing(entries: &[&str]) -> Http {
    Http::allowing(Some(allow::AllowList::parse(entries).expect("valid rules")))
}

#[tokio::test]
async fn an_allowed_host_is_reached_and_a_denied_one_never_contacted() {
    let server = Server::start().await;
    let with = json!({"url": server.url("/servers/7")});
    let port = server.addr.port();
    let out = allowing(&[&format!("127.0.0.1:{port}")]).run(settings(with.clone()), &call(None)).await;
    assert_eq!(out.expect("allowed"), json!({"id": 7, "name": "n1"}));

    for entries in [vec!["api.example.com"], vec!["127.0.0.1:1"], vec!["10.0.0.0/8"]] {
        let failure = allowing(&entries).run(settings(with.clone()), &call(None)).await.expect_err("denied");
        let expected =
            format!("GET http://127.0.0.1:{port}/servers/7: host 127.0.0.1 port {port} is not allowed by --http-allow");
        assert_eq!(failure.message, expected, "{entries:?}");
    }
    assert_eq!(server.seen().len(), 1, "a denied URL was requested");
}

#[tokio::test]
async fn a_name_resolving_to_an_internal_address_needs_a_block() {
    let server = Server::start().await;
    let with = json!({"url": format!("http://localhost:{}/servers/7", server.addr.port())});
    let failure = allowing(&["localhost"]).run(settings(with.clone()), &call(None)).await.expect_err("denied");
    assert!(
        failure.message.contains("localhost resolves only to internal addresses that --http-allow does not list"),
        "{}",
        failure.message
    );
    assert!(server.seen().is_empty(), "the denied address was contacted");
    let out = allowing(&["localhost", "127.0.0.0/8", "::1"]).run(settings(with), &call(None)).await;
    assert_eq!(out.expect("allowed by the block"), json!({"id": 7, "name": "n1"}));
}

#[tokio::test]
async fn a_redirect_to_a_denied_host_is_not_followed() {
    let server = Server::start().await;
    let with = json!({"url": server.url("/moved")});
    let failure = allowing(&["127.0.0.1"]).run(settings(with), &call(None)).await.expect_err("a 302 is no success");
    assert!(
        failure.message.ends_with("answered 302 Found, expected 2xx (redirects are not followed)"),
        "{}",
        failure.message
    );
    assert_eq!(server.seen().len(), 1, "only the first request was made");
}
