//! `EngineControl`: suspend or cancel a run from another task.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

#[derive(Debug, Default)]
struct Inner {
    suspend: AtomicBool,
    cancel: AtomicBool,
    wake: Notify,
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
    pub fn suspend(&self) {
        self.inner.suspend.store(true, Ordering::SeqCst);
        self.inner.wake.notify_one();
    }

    /// No new atoms start; running ones finish; everything that ran is reverted
    /// and the flow ends REVERTED with a `Cancelled` failure.
    pub fn cancel(&self) {
        self.inner.cancel.store(true, Ordering::SeqCst);
        self.inner.wake.notify_one();
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

    /// Resolves when `suspend` or `cancel` is called (or was, since the last wait).
    pub(crate) async fn woken(&self) {
        self.inner.wake.notified().await;
    }
}
