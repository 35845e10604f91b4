//! systemd's notify protocol on a socket the test provides as `NOTIFY_SOCKET` (issue 12):
//! READY=1 only once the board session exists (etcd started after the conductor),
//! STATUS= lines, WATCHDOG=1 pings that go on while etcd is down, STOPPING=1 on SIGTERM.

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use tests::conductor::{ConductorConfig, ConductorProcess, OrFail};
use tests::etcd::{unique_prefix, EtcdProcess};

/// The notifications received so far, in order.
struct Socket {
    socket: UnixDatagram,
    seen: Vec<String>,
}

impl Socket {
    fn drain(&mut self) {
        let mut buffer = [0u8; 4096];
        while let Ok(n) = self.socket.recv(&mut buffer) {
            self.seen.push(String::from_utf8_lossy(&buffer[..n]).into_owned());
        }
    }

    /// Waits (bounded) for a message containing `wanted`; returns its index.
    fn wait_for(&mut self, wanted: &str, after: usize) -> usize {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            self.drain();
            if let Some(i) = self.seen.iter().skip(after).position(|m| m.contains(wanted)) {
                return after + i;
            }
            assert!(Instant::now() < deadline, "no {wanted:?} after message {after}; got {:?}", self.seen);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn ready_waits_for_the_board_and_the_watchdog_outlives_an_outage() {
    let mut etcd = EtcdProcess::start();
    etcd.stop();
    let dir = tempfile::tempdir().or_fail();
    let path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).or_fail();
    socket.set_nonblocking(true).or_fail();
    let mut socket = Socket { socket, seen: Vec::new() };

    let mut config =
        ConductorConfig::etcd(&etcd.endpoint(), &unique_prefix("notify"), "notified", Duration::from_secs(3));
    config.env = vec![("NOTIFY_SOCKET".into(), path.display().to_string()), ("WATCHDOG_USEC".into(), "400000".into())];
    let mut conductor = ConductorProcess::spawn(&config).or_fail();

    // Serving, but no board yet: it says so, and is not READY.
    let unavailable = socket.wait_for("STATUS=board unavailable", 0);
    socket.wait_for("WATCHDOG=1", 0);
    socket.drain();
    assert!(!socket.seen.iter().any(|m| m.contains("READY=1")), "READY before the board: {:?}", socket.seen);

    etcd.restart();
    let ready = socket.wait_for("READY=1", unavailable);
    assert!(
        socket.seen[ready].contains("STATUS=serving") && socket.seen[ready].contains("jobs held"),
        "{:?}",
        socket.seen[ready]
    );

    // etcd goes away: the watchdog keeps pinging (systemd must not kill the conductor).
    etcd.stop();
    let gone = socket.seen.len();
    let first = socket.wait_for("WATCHDOG=1", gone);
    socket.wait_for("WATCHDOG=1", first + 1);

    conductor.send_sigterm().or_fail();
    socket.wait_for("STOPPING=1", gone);
    let status = conductor.wait_exit().or_fail();
    assert!(status.success(), "a graceful stop exits 0: {status}");
    assert_eq!(socket.seen.iter().filter(|m| m.contains("READY=1")).count(), 1, "READY is sent once");
}
