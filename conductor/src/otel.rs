//! OpenTelemetry trace export (cargo feature `otel`, off by default): the
//! conductor's `tracing` spans, among them one per job (`job`, with its id and
//! flow) and one per task call (`task`, with flow, atom, kind and call), sent
//! over OTLP/HTTP (protobuf) to `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), read as the OpenTelemetry SDK reads
//! them, with the other standard `OTEL_*` variables. Neither set: nothing is
//! exported. Spans go out in batches from the SDK's own thread, so a slow
//! collector never holds a job up; what is still queued is flushed at exit.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::SpanExporter;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use tracing::Subscriber;
use tracing_opentelemetry::OpenTelemetryLayer;
use tracing_subscriber::registry::LookupSpan;

/// The variables that turn export on.
const ENDPOINT_VARS: [&str; 2] = ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"];

/// Flushes the spans still queued and stops the exporter when dropped (at exit).
#[derive(Debug)]
pub struct Guard(SdkTracerProvider);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Err(error) = self.0.shutdown() {
            eprintln!("conductor: flushing OpenTelemetry spans failed: {error}");
        }
    }
}

/// The export layer, if an endpoint is set; an exporter that cannot be built is
/// reported on stderr (tracing is not installed yet) and leaves export off.
pub fn layer<S>() -> (Option<OpenTelemetryLayer<S, SdkTracer>>, Option<Guard>)
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    let set = ENDPOINT_VARS.iter().any(|var| std::env::var(var).is_ok_and(|v| !v.trim().is_empty()));
    if !set {
        return (None, None);
    }
    let exporter = match SpanExporter::builder().with_http().build() {
        Ok(exporter) => exporter,
        Err(error) => {
            eprintln!("conductor: OpenTelemetry export off: {error}");
            return (None, None);
        }
    };
    let resource = Resource::builder().with_service_name("baton-conductor").build();
    let provider = SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build();
    let tracer = provider.tracer("baton");
    (Some(tracing_opentelemetry::layer().with_tracer(tracer)), Some(Guard(provider)))
}

#[cfg(test)]
mod tests;
