//! The projector: keeps the de-normalized posts of the read model (CQRS) current.

use std::sync::Arc;

use crate::event::{Envelope, Event, PostChange, PostSnapshot};
use crate::messages::HandlerError;
use crate::post_change::apply_post_change;
use crate::ports::{PostView, ReadModelStore};
use crate::supervision::Worker;
use crate::worker::WorkerSpec;

const EXCERPT_CHARS: usize = 200;
const WORDS_PER_MINUTE: u32 = 200;

/// Writes each post change into the queries database.
pub struct Projector {
    /// The read model; it refuses versions older than what it holds.
    pub store: Arc<dyn ReadModelStore>,
}

impl Worker for Projector {
    const SPEC: &'static WorkerSpec = &WorkerSpec::on_post_events("projector");

    /// Project one post change.
    fn handle(&self, _: Arc<Envelope>, event: Event) -> impl std::future::Future<Output = Result<(), HandlerError>> + 'static {
        apply_post_change(self.store.clone(), event, async |store, change| match change {
            PostChange::Upserted(p) => store.upsert_post_view(&view_of(p)).await,
            PostChange::Deleted(d) => store.remove_post_view(d.id, d.version).await,
        })
    }
}

/// The read model's shape of a post: what the list and detail pages need, precomputed.
pub fn view_of(post: &PostSnapshot) -> PostView {
    let word_count = post.description.split_whitespace().count() as u32;
    PostView {
        id: post.id,
        slug: slugify(&post.title),
        title: post.title.clone(),
        description: post.description.clone(),
        excerpt: excerpt(&post.description),
        tags: post.tags.clone(),
        word_count,
        reading_time_minutes: word_count.div_ceil(WORDS_PER_MINUTE).max(1),
        version: post.version,
        created_at: post.created_at,
        updated_at: post.updated_at,
    }
}

/// Lower-case words joined by hyphens: "Hello, World!" → "hello-world".
pub fn slugify(title: &str) -> String {
    title
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join("-")
}

/// The opening of the body, cut at a word boundary, with an ellipsis when cut.
pub fn excerpt(body: &str) -> String {
    let flat = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= EXCERPT_CHARS {
        return flat;
    }
    let cut: String = flat.chars().take(EXCERPT_CHARS).collect();
    let at_word = cut.rfind(' ').map_or(cut.as_str(), |i| &cut[..i]);
    format!("{at_word}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_keep_words_only() {
        assert_eq!(slugify("  Hello, World! Ünïcode 2 "), "hello-world-ünïcode-2");
    }

    #[test]
    fn long_bodies_are_cut_at_a_word() {
        let body = "word ".repeat(100);
        let e = excerpt(&body);
        assert!(e.ends_with("word…"), "{e}");
        assert!(e.chars().count() <= EXCERPT_CHARS + 1);
        assert_eq!(excerpt("short  body"), "short body");
    }
}
