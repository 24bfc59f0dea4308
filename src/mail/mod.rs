//! Mail adapters for the emailer: .eml files in the embedded mode.

pub mod file;
mod message;

pub use file::FileMailer;
pub use message::build_message;
