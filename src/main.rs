//! The `blog` binary: parse the command line, run the command (see `blog::commands`).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    blog::commands::run(blog::cli::Cli::parse())
}
