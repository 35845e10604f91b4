//! What the scale bench hears from the board: the intervals during which its background
//! listing of the queue was ranging etcd (`jobboard::etcd::QUEUE_LISTING_TARGET` events), so
//! that claims and etcd pings can be told apart by whether a page was in flight.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jobboard::etcd::QUEUE_LISTING_TARGET;
use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

/// The listing's pages, as `[asked, answered]` intervals, and when it finished.
#[derive(Clone, Default)]
pub struct Listing(Arc<Mutex<Heard>>);

#[derive(Default)]
struct Heard {
    pages: Vec<(Instant, Instant)>,
    whole: Option<Instant>,
}

impl Listing {
    /// Installs the process's tracing subscriber: this layer only.
    pub fn install() -> Self {
        let listing = Listing::default();
        let subscriber = tracing_subscriber::registry().with(listing.clone());
        if tracing::subscriber::set_global_default(subscriber).is_err() {
            eprintln!("  (a tracing subscriber was already set: claims are not split by listing)");
        }
        listing
    }

    /// Forgets what was heard (before a new board connects).
    pub fn reset(&self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Heard::default();
    }

    /// Whether `[from, from + took]` overlaps a page's range.
    pub fn overlaps(&self, from: Instant, took: Duration) -> bool {
        let heard = self.0.lock().unwrap_or_else(|e| e.into_inner());
        heard.pages.iter().any(|(asked, answered)| from <= *answered && *asked <= from + took)
    }

    /// Pages listed, the longest page's time, and when the listing finished.
    pub fn summary(&self) -> (usize, Duration, Option<Instant>) {
        let heard = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let longest = heard.pages.iter().map(|(asked, answered)| *answered - *asked).max().unwrap_or_default();
        (heard.pages.len(), longest, heard.whole)
    }
}

impl<S: Subscriber> Layer<S> for Listing {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if metadata.target() == QUEUE_LISTING_TARGET {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let now = Instant::now();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut heard = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if fields.message == "queue listed whole" {
            heard.whole = Some(now);
        } else if let Some(ms) = fields.elapsed_ms {
            heard.pages.push((now - Duration::from_secs_f64(ms / 1000.0), now));
        }
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    elapsed_ms: Option<f64>,
}

impl Visit for Fields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        if field.name() == "elapsed_ms" {
            self.elapsed_ms = Some(value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        }
    }
}
