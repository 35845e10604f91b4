//! Endpoints that stall as a stopped or half-broken conductor does, on real loopback sockets.
//!
//! - [`Silent`]: accepts connections and never says a word (a SIGSTOPped process's
//!   socket: the kernel completes the handshake, nobody reads).
//! - [`OneWayProxy`]: forwards what the client sends to a real conductor and drops every
//!   byte of the answer, so a request takes effect and its answer is lost.
//!
//! Both hold their sockets until dropped, then shut them all down so their threads end.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often an accept loop looks at its stop flag.
const POLL: Duration = Duration::from_millis(10);

/// The sockets a stall holds, and the flag that stops it.
#[derive(Default)]
struct Held {
    stop: AtomicBool,
    accepted: AtomicUsize,
    sockets: Mutex<Vec<TcpStream>>,
}

impl Held {
    fn keep(&self, socket: &TcpStream) {
        if let Ok(clone) = socket.try_clone() {
            self.sockets.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(clone);
        }
    }

    fn close_all(&self) {
        self.stop.store(true, Ordering::SeqCst);
        for socket in self.sockets.lock().unwrap_or_else(std::sync::PoisonError::into_inner).drain(..) {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
}

/// Accepts on `listener` until stopped, handing each connection to `serve`.
fn accept_loop(
    listener: TcpListener,
    held: Arc<Held>,
    serve: impl Fn(TcpStream, &Arc<Held>) + Send + 'static,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        while !held.stop.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((socket, _)) => {
                    let _ = socket.set_nonblocking(false);
                    held.accepted.fetch_add(1, Ordering::SeqCst);
                    held.keep(&socket);
                    serve(socket, &held);
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(POLL),
                Err(_) => std::thread::sleep(POLL),
            }
        }
    })
}

fn bind() -> io::Result<TcpListener> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// A listener that accepts and never answers.
pub struct Silent {
    address: SocketAddr,
    held: Arc<Held>,
    thread: Option<JoinHandle<()>>,
}

impl Silent {
    /// Listens on a free loopback port.
    pub fn start() -> io::Result<Silent> {
        let listener = bind()?;
        let address = listener.local_addr()?;
        let held = Arc::new(Held::default());
        let thread = accept_loop(listener, held.clone(), |_, _| {});
        Ok(Silent { address, held, thread: Some(thread) })
    }

    /// Its URL, for `--endpoint`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.held.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.held.close_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A proxy that delivers requests and loses the answers.
pub struct OneWayProxy {
    address: SocketAddr,
    held: Arc<Held>,
    thread: Option<JoinHandle<()>>,
}

impl OneWayProxy {
    /// Listens on a free loopback port and forwards to `target` (`host:port`).
    pub fn start(target: SocketAddr) -> io::Result<OneWayProxy> {
        let listener = bind()?;
        let address = listener.local_addr()?;
        let held = Arc::new(Held::default());
        let thread = accept_loop(listener, held.clone(), move |client, held| {
            let Ok(upstream) = TcpStream::connect(target) else {
                let _ = client.shutdown(Shutdown::Both);
                return;
            };
            held.keep(&upstream);
            let (Ok(client_reader), Ok(upstream_writer)) = (client.try_clone(), upstream.try_clone()) else {
                return;
            };
            std::thread::spawn(move || forward(client_reader, upstream_writer));
            std::thread::spawn(move || drain(upstream));
        });
        Ok(OneWayProxy { address, held, thread: Some(thread) })
    }

    /// Its URL, for `--endpoint`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.held.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for OneWayProxy {
    fn drop(&mut self) {
        self.held.close_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Copies `from` to `to` until either side closes.
fn forward(mut from: TcpStream, mut to: TcpStream) {
    let mut buffer = [0u8; 16 * 1024];
    while let Ok(read) = from.read(&mut buffer) {
        if read == 0 || to.write_all(&buffer[..read]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// Reads and drops everything the conductor answers, so it never blocks on a full window.
fn drain(mut from: TcpStream) {
    let mut buffer = [0u8; 16 * 1024];
    while matches!(from.read(&mut buffer), Ok(read) if read > 0) {}
}
