//! A shell task's process group, and stopping everything in it.
//!
//! The task's process leads a group of its own (`process_group(0)`), which its children
//! and grandchildren inherit, so one signal to the group reaches all of them. Stopping is
//! SIGTERM, a grace for the processes to exit, then SIGKILL for whatever is left (a
//! process that ignores SIGTERM included). If the task's future is dropped instead (the
//! engine's own timeout, a job being torn down), the group gets SIGKILL at once.

use std::process::ExitStatus;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::process::Child;

/// How often stopping checks whether the group is empty.
const POLL: Duration = Duration::from_millis(20);
/// How long to wait for the leader to be reaped after SIGKILL (it cannot ignore it).
const REAP: Duration = Duration::from_secs(5);

/// The process group of a running task; SIGKILLs it when dropped unless it was stopped.
#[derive(Debug)]
pub(super) struct Group {
    pgid: Option<Pid>,
}

impl Group {
    /// The group led by the process `leader` (a child started with `process_group(0)`).
    pub(super) fn new(leader: Option<u32>) -> Self {
        Group { pgid: leader.and_then(|pid| i32::try_from(pid).ok()).map(Pid::from_raw) }
    }

    /// Sends `signal` to the group; false when the group no longer exists.
    fn signal(&self, signal: Option<Signal>) -> bool {
        let Some(pgid) = self.pgid else { return false };
        match killpg(pgid, signal) {
            Ok(()) => true,
            Err(Errno::ESRCH) => false,
            Err(err) => {
                tracing::warn!(pgid = pgid.as_raw(), ?signal, %err, "cannot signal a shell task's process group");
                false
            }
        }
    }

    /// Stops every process left in the group and reaps the leader: nothing to do when
    /// the leader has exited and took its group with it; otherwise SIGTERM, up to
    /// `grace` for the group to empty, then SIGKILL. Returns the leader's exit status.
    pub(super) async fn stop(&mut self, leader: &mut Child, grace: Duration) -> Option<ExitStatus> {
        if self.pgid.is_some() && self.alive(leader) {
            self.signal(Some(Signal::SIGTERM));
            let deadline = tokio::time::Instant::now() + grace;
            while self.alive(leader) && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(POLL).await;
            }
            self.signal(Some(Signal::SIGKILL));
        }
        let status = tokio::time::timeout(REAP, leader.wait()).await.ok().and_then(Result::ok);
        // The group is empty or killed; a later SIGKILL could only reach a stranger
        // reusing the number.
        self.pgid = None;
        status
    }

    /// Whether any process of the group is still running. The leader counts until it is
    /// reaped (a zombie is still a member), so it is reaped here as soon as it exits.
    fn alive(&self, leader: &mut Child) -> bool {
        match leader.try_wait() {
            Ok(None) => true,
            Ok(Some(_)) | Err(_) => self.signal(None),
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.signal(Some(Signal::SIGKILL));
    }
}
