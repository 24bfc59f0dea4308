//! Logging and traces: human-readable lines by default, JSON by setting;
//! `RUST_LOG` filters the lines. With `BLOG_OTLP_ENDPOINT` set, the service's
//! spans also go out over OTLP/HTTP; unset, no OpenTelemetry layer is installed.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing::level_filters::LevelFilter;
use tracing::Subscriber;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::configuration::LogFormat;

/// The OTLP path of traces under the endpoint, as `OTEL_EXPORTER_OTLP_ENDPOINT` has it.
const TRACES_PATH: &str = "/v1/traces";

/// Spans exported over OTLP/HTTP (protobuf) in batches, from a thread of the SDK's own.
/// The batch size and delay follow the standard `OTEL_BSP_*` variables.
pub struct SpanExport {
    provider: SdkTracerProvider,
}

impl SpanExport {
    /// Exports to `endpoint` (`http://host:4318`; traces go to its `/v1/traces`).
    pub fn to(endpoint: &str) -> anyhow::Result<Self> {
        let exporter = SpanExporter::builder()
            .with_http()
            .with_endpoint(format!("{}{TRACES_PATH}", endpoint.trim_end_matches('/')))
            .build()
            .map_err(|e| anyhow::anyhow!("BLOG_OTLP_ENDPOINT: cannot export there: {e}"))?;
        let resource = Resource::builder().with_service_name(env!("CARGO_PKG_NAME")).build();
        let provider = SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build();
        Ok(Self { provider })
    }

    /// Sends what is still buffered and stops the exporter; call before the process exits.
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("blog: exporting the last spans failed: {}", blog_actors::redact::urls_in(&e.to_string()));
        }
    }
}

/// A subscriber writing to `sink`, so tests can silence it or capture it, and
/// exporting spans when `export` is given.
pub fn subscriber<W>(
    format: LogFormat,
    default_filter: &str,
    sink: W,
    export: Option<&SpanExport>,
) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    // Colour only on a terminal, so piped logs stay plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let lines = tracing_subscriber::fmt::layer().with_ansi(ansi).with_writer(sink);
    let lines: Box<dyn Layer<Registry> + Send + Sync> = match format {
        LogFormat::Human => lines.boxed(),
        LogFormat::Json => lines.json().with_current_span(true).with_span_list(true).boxed(),
    };
    // The service's own spans at info and above, whatever RUST_LOG says about the lines.
    let ours = Targets::new().with_target("blog", LevelFilter::INFO).with_target("blog_actors", LevelFilter::INFO);
    let traces = export.map(|export| {
        tracing_opentelemetry::layer().with_tracer(export.provider.tracer(env!("CARGO_PKG_NAME"))).with_filter(ours)
    });
    Box::new(Registry::default().with(lines.with_filter(filter)).with(traces))
}

/// Installs the subscriber for the whole process; later calls do nothing.
pub fn init(subscriber: Box<dyn Subscriber + Send + Sync>) {
    let _ = tracing::subscriber::set_global_default(subscriber);
}
