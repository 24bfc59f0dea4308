//! What the bench sends: post events and post bodies with the tag shape of
//! `blog load --synthetic` (one to five tags, Zipf over 10k tags, `tag-<rank>`).

use rand::rngs::StdRng;
use rand::Rng;
use rand_distr::{Distribution, Zipf};
use serde_json::json;

use crate::amqp::Message;

/// Distinct tags, as in the HTTP data set.
pub const TAGS: u32 = 10_000;

const WORDS: [&str; 16] = [
    "actor", "broker", "cache", "durable", "event", "index", "latency", "message", "outbox", "queue", "replica",
    "store", "stream", "supervisor", "throughput", "worker",
];

/// Draws posts; one per connection or publisher, seeded.
pub struct Posts {
    zipf: Zipf<f64>,
}

impl Default for Posts {
    fn default() -> Self {
        Self { zipf: Zipf::new(f64::from(TAGS), 1.0).expect("valid Zipf parameters") }
    }
}

impl Posts {
    pub fn tags(&self, rng: &mut StdRng) -> Vec<String> {
        let wanted = rng.random_range(1..=5);
        let mut tags: Vec<String> = Vec::new();
        for _ in 0..wanted * 4 {
            if tags.len() == wanted {
                break;
            }
            let tag = format!("tag-{}", self.zipf.sample(rng) as u32);
            if !tags.contains(&tag) {
                tags.push(tag);
            }
        }
        tags
    }

    fn words(rng: &mut StdRng, n: usize) -> String {
        (0..n).map(|_| WORDS[rng.random_range(0..WORDS.len())]).collect::<Vec<_>>().join(" ")
    }

    /// A `POST /posts` body.
    pub fn input(&self, rng: &mut StdRng) -> Vec<u8> {
        let body = json!({
            "title": Self::words(rng, 5),
            "description": Self::words(rng, 60),
            "tags": self.tags(rng),
        });
        serde_json::to_vec(&body).expect("JSON")
    }

    /// A `post.created` envelope for a new post, as the outbox relay would publish it.
    pub fn created_event(&self, rng: &mut StdRng) -> Message {
        // Time-ordered ids, as the service makes them for posts and events.
        let (id, event_id) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
        let now = chrono::Utc::now();
        let envelope = json!({
            "id": event_id, "type": "post.created", "occurred_at": now,
            "data": {
                "id": id, "title": Self::words(rng, 5), "description": Self::words(rng, 60),
                "tags": self.tags(rng), "created_at": now, "updated_at": now, "version": 1,
            },
        });
        Message { routing_key: "post.created".into(), id: event_id.to_string(), body: serde_json::to_vec(&envelope).expect("JSON") }
    }

    /// A `POST /posts` body: the embedded queue's way in (post events come only
    /// from the service's outbox, written with the post).
    pub fn post_input(&self, rng: &mut StdRng) -> Vec<u8> {
        let post = json!({ "title": Self::words(rng, 5), "description": Self::words(rng, 60), "tags": self.tags(rng) });
        serde_json::to_vec(&post).expect("JSON")
    }
}
