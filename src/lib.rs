//! The blog service: an actix-web API whose side work runs in supervised actors
//! fed by a durable queue.
//!
//! - [`configuration`]: typed settings from flags, env vars and an optional file.
//! - [`telemetry`]: the tracing subscriber.
//! - [`startup`]: the list of workers; builds the workers, queue reader, relay and HTTP server; runs them until stopped.
//! - [`adapters`]: opens the store, transport and mailer the settings choose.
//! - [`cli`]: the command line (serve, publish, load, healthcheck).
//! - [`commands`]: what each command does; `main.rs` only calls [`commands::run`].
//! - [`load`]: `blog load`, the bulk import of posts (a JSON-lines file or synthetic).
//! - [`healthcheck`]: the container health check, without curl.
//! - [`domain`]: what a valid post is.
//! - [`durable_dir`]: making new directories survive a power cut.
//! - [`routes`]: the HTTP API, one file per area, with its OpenAPI description.
//! - [`http_metrics`]: the middleware counting and timing HTTP requests by route.
//! - [`dead_letter_ops`]: the replay pace, the parked warning threshold and the count of operator actions.
//! - [`parked_watch`]: the warning logged when the parking lots pass `BLOG_PARKED_WARN`.
//! - [`live_figures`]: backlogs and broker state read from the store and transport, sampled on a timer.
//! - [`registry`]: how the registered workers are started.
//! - [`sqlite_failure`]: which kind of failure a SQLite error is (store and embedded queue).
//! - [`store`]: the store traits and their adapters (embedded SQLite, MongoDB).
//! - [`transport`]: the transport traits, the embedded durable queue, RabbitMQ and the outbox relay.
//! - [`mail`]: mail adapters (.eml files, SMTP).

pub mod adapters;
pub mod cli;
pub mod commands;
pub mod configuration;
pub mod dead_letter_ops;
pub mod domain;
pub mod durable_dir;
mod groups;
pub mod healthcheck;
pub mod http_metrics;
pub mod live_figures;
pub mod load;
pub mod mail;
pub mod parked_watch;
pub mod registry;
pub mod routes;
pub mod sqlite_failure;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod transport;
