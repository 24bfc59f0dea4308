//! The command line: `blog` (serve), `blog publish …`, `blog load …`.

use std::path::PathBuf;

use blog_actors::event::{Customer, Envelope, OrderFulfilled, OrderLine, EXTERNAL_TYPES, ORDER_FULFILLED};
use blog_actors::trace_context::{TraceContext, TRACESTATE_MAX};
use clap::{Args, Parser, Subcommand, ValueEnum};
use figment::providers::Serialized;
use figment::Figment;
use serde::Serialize;

/// A blog API whose side work runs in supervised actors fed by a durable queue.
#[derive(Debug, Parser)]
#[command(name = "blog", version)]
pub struct Cli {
    /// A TOML file of settings (keys as the env vars without BLOG_, lower-case).
    #[arg(long, env = "BLOG_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub flags: SettingFlags,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Flags that override the settings from the file and the environment.
#[derive(Debug, Default, Args, Serialize)]
pub struct SettingFlags {
    /// [env: BLOG_HTTP_ADDR] Address to listen on.
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_addr: Option<String>,
    /// [env: BLOG_DATA_DIR] Folder of the embedded store, queue and mail.
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// [env: BLOG_STORE_URL] Store URL; unset: the embedded store.
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_url: Option<String>,
    /// [env: BLOG_BROKER_URL] `embedded` or an amqp:// URL.
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broker_url: Option<String>,
    /// [env: BLOG_MAIL_DIR] Where .eml files go.
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mail_dir: Option<PathBuf>,
    /// [env: BLOG_MAX_ATTEMPTS] Attempts before a message is parked.
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// [env: BLOG_TAG_REBUILD_INTERVAL] e.g. 6h; 0 turns the timer off.
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag_rebuild_interval: Option<String>,
    /// [env: BLOG_SHUTDOWN_TIMEOUT] e.g. 30s.
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shutdown_timeout: Option<String>,
    /// [env: BLOG_LOG_FORMAT] human or json.
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<String>,
    /// [env: BLOG_OTLP_ENDPOINT] OTLP/HTTP collector for spans, e.g. http://localhost:4318; unset: none.
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otlp_endpoint: Option<String>,
}

impl SettingFlags {
    /// The flags as the top settings layer.
    pub fn as_layer(&self) -> Figment {
        Figment::from(Serialized::defaults(self))
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service (the default).
    Serve,
    /// Exit 0 when the service on BLOG_HTTP_ADDR answers ready (for container health checks).
    Healthcheck,
    /// Put an event on the configured transport, as another service would.
    Publish {
        #[command(subcommand)]
        event: PublishCommand,
        #[command(flatten)]
        trace: TraceArgs,
    },
    /// Import posts in bulk (a JSON-lines file, or N synthetic ones), then bring
    /// the tag cloud and the read model up to date. Bypasses the outbox: no events.
    Load(LoadArgs),
}

/// `blog load`: where the posts come from and how they are written.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// A JSON-lines file, one post per line: {"title", "description", "tags", "id"?, "created_at"?}; `-` is stdin.
    #[arg(long, conflicts_with = "synthetic", required_unless_present = "synthetic")]
    pub file: Option<PathBuf>,
    /// Generate this many synthetic posts instead of reading a file.
    #[arg(long)]
    pub synthetic: Option<u64>,
    /// Synthetic posts: how many distinct tags they draw from.
    #[arg(long, default_value_t = 10_000)]
    pub tags: u32,
    /// Synthetic posts: the Zipf exponent of the tag distribution (1.0: rank k drawn with weight 1/k).
    #[arg(long, default_value_t = 1.0)]
    pub zipf_exponent: f64,
    /// Synthetic posts: the seed; the same seed gives the same posts, ids included.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Synthetic posts: write them as JSON lines to this file instead of importing them.
    #[arg(long, requires = "synthetic")]
    pub write_jsonl: Option<PathBuf>,
    /// Posts per write batch; each batch is one transaction.
    #[arg(long, default_value_t = 2000)]
    pub batch: usize,
    /// What a malformed line does: `stop` the load (the lines before it stay imported) or `skip` it.
    #[arg(long, value_enum, default_value_t = OnError::Stop)]
    pub on_error: OnError,
    /// No progress bar (it is hidden anyway when stderr is not a terminal).
    #[arg(long)]
    pub no_progress: bool,
}

/// What `blog load` does with a malformed line; either way it is reported with its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnError {
    Stop,
    Skip,
}

impl LoadArgs {
    pub fn synthetic_settings(&self) -> crate::load::synthetic::Settings {
        crate::load::synthetic::Settings { tags: self.tags, exponent: self.zipf_exponent, seed: self.seed }
    }
}

/// `blog publish`: the W3C trace context the caller's trace goes on with.
#[derive(Debug, Clone, Args)]
pub struct TraceArgs {
    /// W3C traceparent (00-<trace id>-<parent id>-<flags>): the worker's span joins that trace.
    #[arg(long, global = true)]
    pub traceparent: Option<String>,
    /// W3C tracestate passed on with --traceparent (printable ASCII, at most 512 characters).
    #[arg(long, global = true, requires = "traceparent")]
    pub tracestate: Option<String>,
}

impl TraceArgs {
    /// The context to send, checked: a flag given by hand that is malformed is an error, not ignored.
    pub fn context(&self) -> anyhow::Result<Option<TraceContext>> {
        let Some(traceparent) = &self.traceparent else { return Ok(None) };
        let context = TraceContext::parse(traceparent, self.tracestate.as_deref()).ok_or_else(|| {
            anyhow::anyhow!("--traceparent: not a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>, lower case, not all zeros)")
        })?;
        if self.tracestate.is_some() && context.tracestate.is_none() {
            anyhow::bail!("--tracestate: at most {TRACESTATE_MAX} printable ASCII characters");
        }
        Ok(Some(context))
    }
}

#[derive(Debug, Subcommand)]
pub enum PublishCommand {
    /// An `order.fulfilled` event.
    OrderFulfilled(OrderArgs),
    /// An event of a type other services send, with its JSON data, wrapped in a new envelope.
    Event {
        /// The event type, also the routing key (post events come only from the service's outbox).
        #[arg(long = "type")]
        event_type: String,
        /// The event's data as JSON.
        #[arg(long)]
        data: String,
    },
    /// A message body sent exactly as given (for testing how bad input is handled),
    /// on the routing key of a type other services send.
    Raw {
        #[arg(long)]
        routing_key: String,
        #[arg(long)]
        body: String,
    },
}

#[derive(Debug, Args)]
pub struct OrderArgs {
    #[arg(long)]
    pub order_id: String,
    #[arg(long)]
    pub customer_name: String,
    #[arg(long)]
    pub customer_email: String,
    /// A line as SKU:NAME:QUANTITY; repeat for more lines.
    #[arg(long = "line", required = true)]
    pub lines: Vec<String>,
    #[arg(long)]
    pub correlation_id: Option<String>,
}

impl PublishCommand {
    /// The routing key and body to publish.
    pub fn message(&self) -> anyhow::Result<(String, Vec<u8>)> {
        match self {
            PublishCommand::OrderFulfilled(order) => {
                let envelope = order.envelope()?;
                Ok((envelope.event_type.clone(), envelope.to_bytes()))
            }
            PublishCommand::Event { event_type, data } => {
                external("--type", event_type)?;
                let data = serde_json::from_str(data).map_err(|e| anyhow::anyhow!("--data is not JSON: {e}"))?;
                Ok((event_type.clone(), Envelope::new(event_type, data, None).to_bytes()))
            }
            PublishCommand::Raw { routing_key, body } => {
                external("--routing-key", routing_key)?;
                Ok((routing_key.clone(), body.clone().into_bytes()))
            }
        }
    }
}

/// Other services publish only their own types; post events come from the outbox alone.
fn external(flag: &str, event_type: &str) -> anyhow::Result<()> {
    if EXTERNAL_TYPES.contains(&event_type) {
        return Ok(());
    }
    anyhow::bail!("{flag} {event_type:?}: only {} may be published from outside (post events come from the service's outbox)", EXTERNAL_TYPES.join(", "))
}

impl OrderArgs {
    fn envelope(&self) -> anyhow::Result<Envelope> {
        let lines = self.lines.iter().map(|l| parse_line(l)).collect::<anyhow::Result<Vec<_>>>()?;
        let order = OrderFulfilled {
            order_id: self.order_id.clone(),
            customer: Customer { name: self.customer_name.clone(), email: self.customer_email.clone() },
            lines,
        };
        let envelope = Envelope::new(ORDER_FULFILLED, serde_json::to_value(order)?, self.correlation_id.clone());
        envelope.event().map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(envelope)
    }
}

fn parse_line(line: &str) -> anyhow::Result<OrderLine> {
    let mut parts = line.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(sku), Some(name), Some(quantity)) => Ok(OrderLine {
            sku: sku.to_owned(),
            name: name.to_owned(),
            quantity: quantity.parse().map_err(|_| anyhow::anyhow!("--line {line:?}: quantity must be a number"))?,
        }),
        _ => anyhow::bail!("--line {line:?}: expected SKU:NAME:QUANTITY"),
    }
}
