//! The blog's actors and the contracts they keep with the outside.
//!
//! - [`event`]: the event envelope and the typed events inside it.
//! - [`rules`]: the domain rules (posts, tags, orders) the API and every worker apply.
//! - [`worker`]: who a worker is (its spec: name, event types, mailbox) and the list of them.
//! - [`trace_context`]: the W3C trace context a message carries, and its bridge to spans.
//! - [`delivery`]: what a transport hands the queue reader, and how a delivery is settled.
//! - [`ports`]: the store and mail traits the workers use; adapters live in the service.
//! - [`messages`]: the messages actors exchange.
//! - [`queue_reader`]: forwards deliveries to workers, then acks, retries or parks them; [`verdicts`]: its checks and the verdict on an answer.
//! - [`breaker`]: the circuit breaker per worker; [`steering`]: breakers and pause-by-hand turned into the reader's decisions; [`pause`]: the switch that tells a transport how much to feed each worker.
//! - [`tag_aggregator`], [`emailer`], [`projector`], [`feed_writer`]: the workers, one file each; [`post_change`]: what the three post workers share.
//! - [`supervision`]: what a worker does (the [`supervision::Worker`] trait: its handler) and the one supervised actor every worker runs in: guard, deadline, panic → restart, metrics.
//! - [`redact`]: credentials and mail addresses taken out of what is logged or served.
//! - [`retry`]: the attempt limit and backoff delays.
//! - [`metrics`]: per-actor counters, histograms and states.
//! - [`stall_watch`]: names the workers that hold work and settle none of it.
//! - `fault_hooks` (feature `fault-hooks`, test builds only): faults a test can trigger with an event.

pub mod breaker;
pub mod delivery;
pub mod emailer;
pub mod event;
#[cfg(feature = "fault-hooks")]
pub mod fault_hooks;
pub mod feed_writer;
pub mod messages;
pub mod metrics;
pub mod pause;
pub mod ports;
pub mod post_change;
pub mod projector;
pub mod queue_reader;
pub mod redact;
pub mod retry;
pub mod rules;
pub mod stall_watch;
pub mod steering;
pub mod supervision;
pub mod tag_aggregator;
pub mod trace_context;
pub mod verdicts;
pub mod worker;
