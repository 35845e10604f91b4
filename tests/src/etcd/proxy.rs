//! `TcpProxy`: a loopback TCP forwarder a test can cut and heal, to cut one
//! client off etcd (a network partition) while etcd itself keeps running.

use std::sync::Arc;

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Forwards `127.0.0.1:<port>` to a target address until cut.
#[derive(Debug)]
pub struct TcpProxy {
    port: u16,
    /// `true` while connections are forwarded; cutting closes every open one.
    up: Arc<watch::Sender<bool>>,
}

impl TcpProxy {
    /// Starts forwarding to `target` (`host:port`) on a free loopback port. Needs a tokio runtime.
    pub async fn start(target: &str) -> TcpProxy {
        let listener =
            TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("cannot bind a proxy port: {e}"));
        let port =
            listener.local_addr().map(|a| a.port()).unwrap_or_else(|e| panic!("cannot read the proxy port: {e}"));
        let up = Arc::new(watch::channel(true).0);
        let target = target.to_string();
        let state = up.clone();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if !*state.borrow() {
                    continue; // cut: refuse by closing at once
                }
                let mut cut = state.subscribe();
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(&target).await else { return };
                    let (mut inbound, mut outbound) = (inbound, outbound);
                    tokio::select! {
                        _ = copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        TcpProxy { port, up }
    }

    /// The proxy's URL, to give to a client instead of etcd's.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Closes every forwarded connection and refuses new ones.
    pub fn cut(&self) {
        self.up.send_replace(false);
    }

    /// Forwards new connections again.
    pub fn heal(&self) {
        self.up.send_replace(true);
    }
}
