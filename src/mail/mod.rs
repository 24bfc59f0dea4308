//! Mail adapters for the emailer: .eml files in the embedded mode, SMTP in production.

pub mod file;
mod message;
pub mod smtp;

pub use file::FileMailer;
pub use message::build_message;
pub use smtp::SmtpMailer;
