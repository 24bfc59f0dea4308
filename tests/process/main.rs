//! Tests of the real binary as a process: crashes, signals, power cuts, configuration errors, exported traces.

mod cluster;
mod container;
mod crash;
mod crash_loop;
mod observability;
mod otlp_receiver;
mod power_cut;
mod publish;
mod instances;
mod service;
#[path = "../support/cluster.rs"]
mod support_cluster;
#[path = "../support/smtp_sink.rs"]
mod smtp_sink;
mod startup_errors;
mod traces;
