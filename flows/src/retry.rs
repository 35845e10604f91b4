//! Retry controllers: what to do when something inside a (sub)flow fails.
//!
//! As in TaskFlow a retry is the first atom of its flow. Its `execute` value
//! (attempt number, the current item, ...) is visible to the flow's tasks;
//! when one of them fails, `on_failure` decides: RETRY (revert the subflow and
//! run it again), REVERT (ask the enclosing retry; revert all if there is
//! none, TaskFlow's `defer_reverts` behaviour) or REVERT_ALL. Beyond TaskFlow,
//! a [`Backoff`] delays each new attempt.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use serde_json::Value;

use crate::failure::Failure;
use crate::logbook::Attempt;
use crate::task::Inputs;

/// A retry controller's answer to a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Revert the retry's subflow, then run it again.
    Retry,
    /// Give up on this subflow; the enclosing retry (if any) decides next.
    Revert,
    /// Give up on the whole flow.
    RevertAll,
}

/// Custom retry logic. `history` holds one [`Attempt`] per `execute` so far,
/// each with the failures that happened under it.
pub trait RetryController: Send + Sync + 'static {
    /// The value for the next attempt (published under the retry's `provides`).
    fn execute(&self, history: &[Attempt], inputs: &Inputs) -> Result<Value, Failure>;
    /// What to do now that the latest attempt failed.
    fn on_failure(&self, history: &[Attempt], inputs: &Inputs) -> Decision;
    /// Inputs the controller needs (looked up like a task's).
    fn requires(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Delay between attempts: `initial * factor^(n-1)`, capped, minus up to `jitter` of itself.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Delay before the second attempt.
    pub initial: Duration,
    /// Growth per attempt.
    pub factor: f64,
    /// Upper bound of any delay.
    pub cap: Duration,
    /// Fraction (0..=1) of the delay that is randomly taken off.
    pub jitter: f64,
}

impl Backoff {
    /// The delay before attempt `attempt` (1-based; the first attempt is never delayed).
    pub fn delay(&self, attempt: usize) -> Duration {
        if attempt <= 1 {
            return Duration::ZERO;
        }
        let exp = i32::try_from(attempt - 2).unwrap_or(i32::MAX);
        let raw = self.initial.as_secs_f64() * self.factor.max(1.0).powi(exp);
        let capped = raw.min(self.cap.as_secs_f64());
        let jitter = self.jitter.clamp(0.0, 1.0);
        let cut = if jitter > 0.0 { rand::rng().random_range(0.0..=jitter) } else { 0.0 };
        Duration::from_secs_f64(capped * (1.0 - cut))
    }
}

/// A retry controller attached to a flow with [`Flow::retry`](crate::Flow::retry).
#[derive(Clone)]
pub struct Retry {
    pub(crate) name: Option<String>,
    pub(crate) provides: Option<String>,
    pub(crate) controller: Arc<dyn RetryController>,
    pub(crate) backoff: Option<Backoff>,
}

impl Retry {
    /// A retry around a custom controller.
    pub fn custom(controller: impl RetryController) -> Self {
        Retry { name: None, provides: None, controller: Arc::new(controller), backoff: None }
    }

    /// Up to `attempts` attempts in all; then REVERT. Provides the attempt number (1-based).
    pub fn times(attempts: usize) -> Self {
        Self::custom(Times { attempts, revert_all: false })
    }

    /// Like [`Retry::times`], but REVERT_ALL once exhausted.
    pub fn times_then_revert_all(attempts: usize) -> Self {
        Self::custom(Times { attempts, revert_all: true })
    }

    /// One attempt per value, in order; provides the current value; REVERT once exhausted.
    pub fn for_each<I: IntoIterator<Item = Value>>(values: I) -> Self {
        Self::custom(ForEach { values: values.into_iter().collect() })
    }

    /// Like [`Retry::for_each`], with the values read from the array input `store_key`.
    pub fn parameterized_for_each(store_key: impl Into<String>) -> Self {
        Self::custom(ParameterizedForEach { key: store_key.into() })
    }

    /// Never retries: REVERT (the enclosing retry decides).
    pub fn always_revert() -> Self {
        Self::custom(Fixed(Decision::Revert))
    }

    /// Never retries: REVERT_ALL.
    pub fn always_revert_all() -> Self {
        Self::custom(Fixed(Decision::RevertAll))
    }

    /// Names the retry atom (default `<flow>_retry`).
    #[must_use]
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Publishes the retry's value under `name` for the flow's tasks.
    #[must_use]
    pub fn provides(mut self, name: impl Into<String>) -> Self {
        self.provides = Some(name.into());
        self
    }

    /// Waits `initial * factor^(n-2)` (capped at `cap`, minus up to `jitter` of it) before attempt `n`.
    #[must_use]
    pub fn backoff(mut self, initial: Duration, factor: f64, cap: Duration, jitter: f64) -> Self {
        self.backoff = Some(Backoff { initial, factor, cap, jitter });
        self
    }

    /// A fixed delay between attempts.
    #[must_use]
    pub fn delay(self, delay: Duration) -> Self {
        self.backoff(delay, 1.0, delay, 0.0)
    }
}

impl fmt::Debug for Retry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("name", &self.name)
            .field("provides", &self.provides)
            .field("backoff", &self.backoff)
            .finish_non_exhaustive()
    }
}

fn give_up(revert_all: bool) -> Decision {
    if revert_all {
        Decision::RevertAll
    } else {
        Decision::Revert
    }
}

struct Times {
    attempts: usize,
    revert_all: bool,
}

impl RetryController for Times {
    fn execute(&self, history: &[Attempt], _: &Inputs) -> Result<Value, Failure> {
        Ok(Value::from(history.len() + 1))
    }
    fn on_failure(&self, history: &[Attempt], _: &Inputs) -> Decision {
        if history.len() < self.attempts {
            Decision::Retry
        } else {
            give_up(self.revert_all)
        }
    }
}

struct Fixed(Decision);

impl RetryController for Fixed {
    fn execute(&self, _: &[Attempt], _: &Inputs) -> Result<Value, Failure> {
        Ok(Value::Null)
    }
    fn on_failure(&self, _: &[Attempt], _: &Inputs) -> Decision {
        self.0
    }
}

/// The first value not tried yet, or `None` when all were.
fn next_value<'a>(values: &'a [Value], history: &[Attempt]) -> Option<&'a Value> {
    values.iter().find(|v| !history.iter().any(|a| &a.value == *v))
}

fn for_each_execute(values: &[Value], history: &[Attempt]) -> Result<Value, Failure> {
    if values.is_empty() {
        return Err(Failure::new(Failure::NOT_FOUND, "no values to iterate over"));
    }
    next_value(values, history)
        .cloned()
        .ok_or_else(|| Failure::new(Failure::NOT_FOUND, "every value was already tried"))
}

fn for_each_on_failure(values: &[Value], history: &[Attempt]) -> Decision {
    if next_value(values, history).is_some() {
        Decision::Retry
    } else {
        Decision::Revert
    }
}

struct ForEach {
    values: Vec<Value>,
}

impl RetryController for ForEach {
    fn execute(&self, history: &[Attempt], _: &Inputs) -> Result<Value, Failure> {
        for_each_execute(&self.values, history)
    }
    fn on_failure(&self, history: &[Attempt], _: &Inputs) -> Decision {
        for_each_on_failure(&self.values, history)
    }
}

struct ParameterizedForEach {
    key: String,
}

impl ParameterizedForEach {
    fn values(&self, inputs: &Inputs) -> Vec<Value> {
        inputs.get(&self.key).and_then(Value::as_array).cloned().unwrap_or_default()
    }
}

impl RetryController for ParameterizedForEach {
    fn execute(&self, history: &[Attempt], inputs: &Inputs) -> Result<Value, Failure> {
        for_each_execute(&self.values(inputs), history)
    }
    fn on_failure(&self, history: &[Attempt], inputs: &Inputs) -> Decision {
        for_each_on_failure(&self.values(inputs), history)
    }
    fn requires(&self) -> Vec<String> {
        vec![self.key.clone()]
    }
}
