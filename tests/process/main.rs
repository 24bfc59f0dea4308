//! Tests of the real binary as a process: crashes, signals, power cuts, configuration errors, exported traces.

mod container;
mod crash;
mod observability;
mod otlp_receiver;
mod power_cut;
mod publish;
mod instances;
mod service;
#[path = "../support/smtp_sink.rs"]
mod smtp_sink;
mod startup_errors;
mod traces;
