//! End-to-end tests of the service in this process: real HTTP, real store files,
//! real queue. Only faults are injected, by wrapping one real adapter.

mod breaker;
mod broker_outage;
mod cluster;
mod consumer_timeout;
mod corpus;
mod dead_letter_api;
mod dead_letter_bulk;
mod dead_letter_console;
mod emails;
mod faults;
mod feeds;
mod helpers;
mod hostile;
mod http_contract;
mod observability;
mod poison;
mod post_life;
mod rabbit_resilience;
mod read_cache;
mod retries;
mod smtp;
mod stalls;
mod standin;
mod store_failures;
#[path = "../support/cluster.rs"]
mod support_cluster;
#[path = "../support/smtp_sink.rs"]
mod smtp_sink;
mod supervision;
mod tls;
