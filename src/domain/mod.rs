//! The blog's own rules: what a valid post is.

pub mod post;
