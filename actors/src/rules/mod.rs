//! The blog's domain rules, in one place for every door: the HTTP API applies
//! them to what clients send, and every worker applies them again to each event
//! it takes, whoever published it. An event that breaks them is parked as invalid.
//!
//! - [`text`]: characters no text field may hold, and length bounds.
//! - [`tag`]: the one canonical form of a tag (NFKC + full case folding).
//! - [`post`]: titles, descriptions, versions.
//! - [`order`]: the fields of an `order.fulfilled`.

pub mod order;
pub mod post;
pub mod tag;
pub mod text;
