//! The blog's own rules: what a valid post is ([`post`]) and what a post write
//! decides before a store keeps it ([`post_write`]).

pub mod post;
pub mod post_write;
