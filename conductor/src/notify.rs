//! systemd's notify protocol (`Type=notify`), in a few lines over `NOTIFY_SOCKET`.
//!
//! - `READY=1` once the gRPC listener is bound *and* a board session exists (the first
//!   time the board slot is filled), so `systemctl start` returns when the conductor can
//!   serve, and units ordered after it start then.
//! - `STATUS=...` whenever the board comes or goes, and on draining.
//! - `WATCHDOG=1` every half of `WATCHDOG_USEC` (systemd's `WatchdogSec`), from a task on
//!   the conductor's own runtime: it keeps pinging while the board is unavailable (an
//!   etcd outage must never make systemd kill conductors), and stops only when the
//!   process's runtime is stuck.
//! - `STOPPING=1` when shutdown begins.
//!
//! Without `NOTIFY_SOCKET` every call is a no-op. Paths and abstract (`@name`) sockets work.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::Arc;
use std::time::Duration;

use crate::api::BoardSlot;
use crate::local::LocalStatus;

/// Where notifications go; `Default`: nowhere.
#[derive(Debug, Clone, Default)]
pub struct Notifier {
    target: Option<Arc<(UnixDatagram, SocketAddr)>>,
}

impl Notifier {
    /// From `NOTIFY_SOCKET`; a socket that cannot be used is logged once and ignored.
    pub fn from_env() -> Notifier {
        let Some(path) = std::env::var_os("NOTIFY_SOCKET") else { return Notifier::default() };
        let path = path.to_string_lossy().into_owned();
        let address = match path.strip_prefix('@') {
            Some(name) => SocketAddr::from_abstract_name(name.as_bytes()),
            None => SocketAddr::from_pathname(&path),
        };
        match (UnixDatagram::unbound(), address) {
            (Ok(socket), Ok(address)) => Notifier { target: Some(Arc::new((socket, address))) },
            (Err(error), _) | (_, Err(error)) => {
                tracing::warn!(socket = %path, %error, "NOTIFY_SOCKET cannot be used; not notifying systemd");
                Notifier::default()
            }
        }
    }

    /// Sends one notification (`READY=1`, `STATUS=...`); failures are logged at debug.
    pub fn notify(&self, message: &str) {
        if let Some(target) = &self.target {
            let (socket, address) = &**target;
            if let Err(error) = socket.send_to_addr(message.as_bytes(), address) {
                tracing::debug!(%error, message, "cannot notify systemd");
            }
        }
    }

    /// Whether there is a socket to notify.
    pub fn is_active(&self) -> bool {
        self.target.is_some()
    }

    /// Pings `WATCHDOG=1` every half of `WATCHDOG_USEC` (when systemd asks for it, for this pid).
    pub fn start_watchdog(&self) {
        let Some(interval) = watchdog_interval() else { return };
        if !self.is_active() {
            return;
        }
        let notifier = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            loop {
                ticks.tick().await;
                notifier.notify("WATCHDOG=1");
            }
        });
    }

    /// READY=1 the first time the board slot is filled; STATUS= lines as it comes and goes,
    /// and every [`STATUS_EVERY`] with the jobs held and whether the conductor drains.
    pub fn follow_board(&self, slot: BoardSlot, local: Arc<LocalStatus>) {
        if !self.is_active() {
            return;
        }
        let notifier = self.clone();
        tokio::spawn(async move {
            let mut seen = slot.get().map(|_| ());
            let mut ready = false;
            loop {
                let status = status_line(&seen, &local);
                if seen.is_ok() && !ready {
                    ready = true;
                    notifier.notify(&format!("READY=1\n{status}"));
                } else {
                    notifier.notify(&status);
                }
                tokio::select! {
                    now = slot.changed(&seen) => seen = now,
                    () = tokio::time::sleep(STATUS_EVERY) => {}
                }
            }
        });
    }
}

/// How often the STATUS line is refreshed when nothing else changes.
const STATUS_EVERY: Duration = Duration::from_secs(10);

/// `STATUS=serving; board available; 3 jobs held; draining` or `STATUS=board unavailable: why`.
fn status_line(board: &Result<(), String>, local: &LocalStatus) -> String {
    let held = local.running_jobs().len();
    let draining = if local.drain.is_draining() { "; draining" } else { "" };
    match board {
        Ok(()) => format!("STATUS=serving; board available; {held} jobs held{draining}"),
        Err(cause) => format!("STATUS=board unavailable: {}; {held} jobs held{draining}", one_line(cause)),
    }
}

/// Half the watchdog timeout systemd set for this process, if any.
fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Some(pid) = std::env::var("WATCHDOG_PID").ok().and_then(|p| p.parse::<u32>().ok()) {
        if pid != std::process::id() {
            return None;
        }
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

fn one_line(text: &str) -> String {
    text.replace('\n', " ")
}
