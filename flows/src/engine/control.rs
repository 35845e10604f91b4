//! `EngineControl`: suspend or cancel a run from another task.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

#[derive(Debug, Default)]
struct Inner {
    suspend: AtomicBool,
    cancel: AtomicBool,
    /// Wakes the engine's loop (one waiter; a permit is kept if it is not waiting).
    wake: Notify,
    /// Wakes every job waiting out a retry delay (no permit: they check the flags first).
    stop: Notify,
}

/// A cloneable handle on a running engine.
#[derive(Debug, Clone, Default)]
pub struct EngineControl {
    inner: Arc<Inner>,
}

impl EngineControl {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// No new atoms start; running ones finish; the flow ends SUSPENDED (or in
    /// its final state if everything finished meanwhile). A later run continues.
    /// A retry waiting out its backoff stops waiting (it stays RETRYING).
    pub fn suspend(&self) {
        self.inner.suspend.store(true, Ordering::SeqCst);
        self.inner.wake.notify_one();
        self.inner.stop.notify_waiters();
    }

    /// No new atoms start; running ones finish; everything that ran is reverted
    /// and the flow ends REVERTED with a `Cancelled` failure. A retry waiting out
    /// its backoff stops waiting and is reverted too.
    pub fn cancel(&self) {
        self.inner.cancel.store(true, Ordering::SeqCst);
        self.inner.wake.notify_one();
        self.inner.stop.notify_waiters();
    }

    pub(crate) fn suspend_requested(&self) -> bool {
        self.inner.suspend.load(Ordering::SeqCst)
    }

    pub(crate) fn cancel_requested(&self) -> bool {
        self.inner.cancel.load(Ordering::SeqCst)
    }

    /// Clears a suspend request once honoured, so the next run proceeds.
    pub(crate) fn clear_suspend(&self) {
        self.inner.suspend.store(false, Ordering::SeqCst);
    }

    /// Clears a cancel request once honoured, so a later run (which starts a
    /// REVERTED flow over) is not cancelled by the same, old request.
    pub(crate) fn clear_cancel(&self) {
        self.inner.cancel.store(false, Ordering::SeqCst);
    }

    /// Resolves when `suspend` or `cancel` is called (or was, since the last wait).
    pub(crate) async fn woken(&self) {
        self.inner.wake.notified().await;
    }

    /// Resolves once a suspend or cancel is pending (at once if one already is).
    pub(crate) async fn stop_requested(&self) {
        let notified = self.inner.stop.notified();
        tokio::pin!(notified);
        // Registered before the flags are read, so a request made in between still wakes us.
        notified.as_mut().enable();
        if self.suspend_requested() || self.cancel_requested() {
            return;
        }
        notified.await;
    }
}
