//! Tests of the real binary as a process: crashes, signals, configuration errors.

mod container;
mod crash;
mod observability;
mod service;
mod startup_errors;
