//! `RecordingServer`: a small HTTP/1 server on 127.0.0.1 that answers from a table and
//! records every request it gets (`METHOD PATH`), for the `http` task kind's tests.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

use crate::conductor::HarnessResult;

/// How the server answers `(method, path)`: a status and a JSON body (empty: no body).
pub type Answer = fn(&str, &str) -> (u16, &'static str);

/// A running server; it stops when dropped.
pub struct RecordingServer {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl RecordingServer {
    /// Starts serving on a free loopback port, on a thread of its own.
    pub fn start(answer: Answer) -> HarnessResult<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let seen = requests.clone();
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
                tokio::pin!(stopped);
                loop {
                    let stream = tokio::select! {
                        _ = &mut stopped => return,
                        accepted = listener.accept() => match accepted {
                            Ok((stream, _)) => stream,
                            Err(_) => continue,
                        },
                    };
                    let seen = seen.clone();
                    tokio::spawn(async move {
                        let service = service_fn(move |request: Request<Incoming>| {
                            let seen = seen.clone();
                            async move { Ok::<_, Infallible>(respond(&request, &seen, answer)) }
                        });
                        let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                    });
                }
            });
        });
        Ok(RecordingServer { addr, requests, stop: Some(stop), thread: Some(thread) })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request so far, as `METHOD PATH`, in arrival order.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

fn respond(request: &Request<Incoming>, seen: &Mutex<Vec<String>>, answer: Answer) -> Response<Full<Bytes>> {
    let (method, path) = (request.method().as_str(), request.uri().path());
    if let Ok(mut seen) = seen.lock() {
        seen.push(format!("{method} {path}"));
    }
    let (status, body) = answer(method, path);
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    if !body.is_empty() {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
    }
    response
}

impl Drop for RecordingServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
