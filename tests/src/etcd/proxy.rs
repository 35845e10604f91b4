//! `TcpProxy`: a loopback TCP forwarder a test can cut and heal, to cut one
//! client off etcd (a network partition) while etcd itself keeps running.
//!
//! Two ways to cut ([`CutMode`]): `Close` closes every connection and refuses new ones
//! (the client sees errors at once, as when a host is down and refuses), `Drop` keeps every
//! connection open and accepts new ones but forwards nothing (the client sees silence, as
//! behind a firewall that drops packets, and must notice by its own timeouts). A connection
//! that lost bytes to a `Drop` cut carries a broken stream, so healing closes it; the
//! client reconnects. Connections idle through the cut go on.
//!
//! It can also record what clients send ([`TcpProxy::record`]), so that a test can tell
//! which keys a client's requests named (gRPC messages are not compressed).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How [`TcpProxy::cut_with`] cuts the link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CutMode {
    /// Close every open connection and refuse new ones.
    Close,
    /// Keep connections open (and accept new ones) but silently drop every byte.
    Drop,
}

/// What the proxy does with connections now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Link {
    Up,
    Cut(CutMode),
}

/// Forwards `127.0.0.1:<port>` to a target address until cut.
#[derive(Debug)]
pub struct TcpProxy {
    port: u16,
    link: Arc<watch::Sender<Link>>,
    /// The bytes clients sent since `record`, while recording.
    sent: Tap,
}

/// Where client bytes are recorded, when they are.
type Tap = Arc<Mutex<Option<Vec<u8>>>>;

impl TcpProxy {
    /// Starts forwarding to `target` (`host:port`) on a free loopback port. Needs a tokio runtime.
    pub async fn start(target: &str) -> TcpProxy {
        let listener =
            TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("cannot bind a proxy port: {e}"));
        let port =
            listener.local_addr().map(|a| a.port()).unwrap_or_else(|e| panic!("cannot read the proxy port: {e}"));
        let link = Arc::new(watch::channel(Link::Up).0);
        let target = target.to_string();
        let state = link.clone();
        let sent = Tap::default();
        let tap = sent.clone();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if *state.borrow() == Link::Cut(CutMode::Close) {
                    continue; // refuse by closing at once
                }
                tokio::spawn(forward(inbound, target.clone(), state.subscribe(), tap.clone()));
            }
        });
        TcpProxy { port, link, sent }
    }

    /// Starts recording the bytes clients send (afresh).
    pub fn record(&self) {
        *self.sent.lock().unwrap_or_else(|e| e.into_inner()) = Some(Vec::new());
    }

    /// Stops recording; returns what clients sent since [`Self::record`]. A request whose
    /// reply the client has is in it: bytes are recorded before they are forwarded.
    pub fn recorded(&self) -> Vec<u8> {
        self.sent.lock().unwrap_or_else(|e| e.into_inner()).take().unwrap_or_default()
    }

    /// The proxy's URL, to give to a client instead of etcd's.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Closes every forwarded connection and refuses new ones (`cut_with(CutMode::Close)`).
    pub fn cut(&self) {
        self.cut_with(CutMode::Close);
    }

    /// Cuts the link the given way until [`Self::heal`].
    pub fn cut_with(&self, mode: CutMode) {
        self.link.send_replace(Link::Cut(mode));
    }

    /// Forwards again; connections that lost bytes to a `Drop` cut are closed.
    pub fn heal(&self) {
        self.link.send_replace(Link::Up);
    }
}

/// One client connection: connects to the target and pumps both ways until either side
/// ends, a `Close` cut, or a heal after this connection lost bytes.
async fn forward(inbound: TcpStream, target: String, mut link: watch::Receiver<Link>, tap: Tap) {
    let Ok(outbound) = TcpStream::connect(&target).await else { return };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let lost = AtomicBool::new(false);
    let (client_read, client_write) = inbound.into_split();
    let (server_read, server_write) = outbound.into_split();
    let pumps = futures::future::join(
        pump(client_read, server_write, link.clone(), &lost, Some(tap)),
        pump(server_read, client_write, link.clone(), &lost, None),
    );
    let ends = link.wait_for(|now| match now {
        Link::Cut(CutMode::Close) => true,
        Link::Up => lost.load(Ordering::Relaxed),
        Link::Cut(CutMode::Drop) => false,
    });
    tokio::select! {
        _ = pumps => {}
        _ = ends => {}
    }
}

/// Copies `from` to `to` while the link is up (into `tap` too, while it records),
/// discards while it drops, stops on a close.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    link: watch::Receiver<Link>,
    lost: &AtomicBool,
    tap: Option<Tap>,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let now = *link.borrow();
        match now {
            Link::Up => {
                if let Some(tap) = &tap {
                    if let Some(sent) = tap.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
                        sent.extend_from_slice(&buffer[..n]);
                    }
                }
                if to.write_all(&buffer[..n]).await.is_err() {
                    break;
                }
            }
            Link::Cut(CutMode::Drop) => lost.store(true, Ordering::Relaxed),
            Link::Cut(CutMode::Close) => break,
        }
    }
    let _ = to.shutdown().await;
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::{CutMode, TcpProxy};

    /// Long enough for a forwarded byte to come back on loopback, many times over.
    const QUIET: Duration = Duration::from_millis(300);

    /// An echo server on loopback; returns its `host:port`.
    async fn echo_server() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address").to_string();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buffer = [0u8; 64];
                    while let Ok(n @ 1..) = stream.read(&mut buffer).await {
                        if stream.write_all(&buffer[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        address
    }

    async fn connect(proxy: &TcpProxy) -> TcpStream {
        TcpStream::connect(proxy.endpoint().trim_start_matches("http://")).await.expect("connect to the proxy")
    }

    /// Sends one byte and says what came back within `QUIET`: `Some(byte)`, `Some(None)`
    /// for a closed connection, `None` for silence.
    async fn round_trip(stream: &mut TcpStream, byte: u8) -> Option<Option<u8>> {
        let _ = stream.write_all(&[byte]).await;
        let mut buffer = [0u8; 1];
        match tokio::time::timeout(QUIET, stream.read(&mut buffer)).await {
            Ok(Ok(1)) => Some(Some(buffer[0])),
            Ok(_) => Some(None),
            Err(_) => None,
        }
    }

    #[tokio::test]
    async fn close_mode_closes_connections_and_refuses_new_ones() {
        let proxy = TcpProxy::start(&echo_server().await).await;
        let mut open = connect(&proxy).await;
        assert_eq!(round_trip(&mut open, b'a').await, Some(Some(b'a')));
        proxy.cut_with(CutMode::Close);
        assert_eq!(round_trip(&mut open, b'b').await, Some(None), "an open connection is closed");
        let mut new = connect(&proxy).await;
        assert_eq!(round_trip(&mut new, b'c').await, Some(None), "a new connection is closed at once");
        proxy.heal();
        let mut healed = connect(&proxy).await;
        assert_eq!(round_trip(&mut healed, b'd').await, Some(Some(b'd')));
    }

    #[tokio::test]
    async fn drop_mode_keeps_connections_silent_and_heal_closes_the_broken_ones() {
        let proxy = TcpProxy::start(&echo_server().await).await;
        let mut talking = connect(&proxy).await;
        let mut idle = connect(&proxy).await;
        assert_eq!(round_trip(&mut talking, b'a').await, Some(Some(b'a')));
        assert_eq!(round_trip(&mut idle, b'b').await, Some(Some(b'b')));
        proxy.cut_with(CutMode::Drop);
        assert_eq!(round_trip(&mut talking, b'c').await, None, "open, but nothing comes back");
        let mut new = connect(&proxy).await;
        assert_eq!(round_trip(&mut new, b'd').await, None, "a new connection is accepted, and silent");
        proxy.heal();
        assert_eq!(round_trip(&mut talking, b'e').await, Some(None), "a connection that lost bytes is closed");
        assert_eq!(round_trip(&mut idle, b'f').await, Some(Some(b'f')), "an idle one goes on");
        let mut healed = connect(&proxy).await;
        assert_eq!(round_trip(&mut healed, b'g').await, Some(Some(b'g')));
    }
}
