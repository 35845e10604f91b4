//! `EngineControl`: suspend or cancel a run from another task, or deliver a
//! parked atom's result.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::park::Delivery;

use tokio::sync::Notify;

#[derive(Debug, Default)]
struct Inner {
    suspend: AtomicBool,
    cancel: AtomicBool,
    /// Wakes the engine's loop (one waiter; a permit is kept if it is not waiting).
    wake: Notify,
    /// Wakes every job waiting out a retry delay (no permit: they check the flags first).
    stop: Notify,
    /// Results and failures for parked atoms, not yet folded into a run.
    deliveries: Mutex<Vec<Delivery>>,
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

    /// Hands a parked atom its result or failure. A running engine folds it in at
    /// once; otherwise the next `run` does, before anything starts. A delivery for
    /// an atom that is not parked, or for another attempt, is dropped by the run.
    pub fn deliver(&self, delivery: Delivery) {
        self.inner.deliveries.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(delivery);
        self.inner.wake.notify_one();
    }

    /// Deliveries not yet folded in, oldest first.
    pub(crate) fn take_deliveries(&self) -> Vec<Delivery> {
        std::mem::take(&mut *self.inner.deliveries.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// True if deliveries wait to be folded in.
    pub fn has_deliveries(&self) -> bool {
        !self.inner.deliveries.lock().unwrap_or_else(std::sync::PoisonError::into_inner).is_empty()
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

    /// Resolves when `suspend`, `cancel` or `deliver` is called (or was, since the last wait).
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
