//! Tests of the real binary as a process: crashes, signals, configuration errors.

mod crash;
mod service;
mod startup_errors;
