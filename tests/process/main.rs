//! Tests of the real binary as a process: crashes, signals, power cuts, configuration errors.

mod container;
mod crash;
mod observability;
mod power_cut;
mod publish;
mod instances;
mod service;
#[path = "../support/smtp_sink.rs"]
mod smtp_sink;
mod startup_errors;
