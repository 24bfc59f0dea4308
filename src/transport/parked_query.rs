//! Which parked messages an operator means (a filter), how they group (by
//! worker and a fingerprint of the reason), and one page of them. Both
//! transports read their parking lots and hand the rows here, so a filter and
//! a group mean the same thing on RabbitMQ and on the embedded queue.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::ParkedMessage;

/// Which parked messages: every field that is set must match.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParkedFilter {
    /// The worker that parked it (`unrouted` for events no worker takes).
    pub worker: Option<String>,
    /// The event type (routing key), exactly.
    pub event_type: Option<String>,
    /// Text the reason contains, case-insensitively.
    pub reason: Option<String>,
    /// Parked at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// The reason's fingerprint, exactly: one group of the console.
    pub group: Option<String>,
}

impl ParkedFilter {
    /// Whether a message parked by `worker` for `reason` at `parked_at` matches.
    pub fn matches(&self, worker: &str, event_type: &str, reason: &str, parked_at: DateTime<Utc>) -> bool {
        self.worker.as_deref().is_none_or(|w| w == worker)
            && self.event_type.as_deref().is_none_or(|t| t == event_type)
            && self.reason.as_deref().is_none_or(|r| reason.to_lowercase().contains(&r.to_lowercase()))
            && self.since.is_none_or(|since| parked_at >= since)
            && self.group.as_deref().is_none_or(|g| fingerprint(reason) == g)
    }

    pub fn matches_message(&self, m: &ParkedMessage) -> bool {
        self.matches(&m.worker, &m.routing_key, &m.reason, m.parked_at)
    }
}

/// Parked messages of one worker that failed the same way.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ParkedGroup {
    pub worker: String,
    /// The reason with ids, numbers, addresses and hex replaced by placeholders.
    pub fingerprint: String,
    pub count: u64,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// One reason of the group as it was written.
    pub example_reason: String,
}

/// One page of the messages a filter matches, how many match in all, and their groups.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ParkedPage {
    /// The page, oldest first.
    pub items: Vec<ParkedMessage>,
    /// Messages matching the filter.
    pub total: u64,
    /// Every matching message grouped, the largest group first.
    pub groups: Vec<ParkedGroup>,
    /// The offset of the next page; absent on the last one.
    pub next_offset: Option<u64>,
}

/// Collects the groups of the matching messages as a transport reads them.
#[derive(Debug, Default)]
pub struct Grouper {
    groups: BTreeMap<(String, String), ParkedGroup>,
    total: u64,
}

impl Grouper {
    pub fn add(&mut self, worker: &str, reason: &str, parked_at: DateTime<Utc>) {
        self.total += 1;
        let fingerprint = fingerprint(reason);
        let group = self.groups.entry((worker.to_owned(), fingerprint.clone())).or_insert_with(|| ParkedGroup {
            worker: worker.to_owned(),
            fingerprint,
            count: 0,
            first_seen: parked_at,
            last_seen: parked_at,
            example_reason: reason.to_owned(),
        });
        group.count += 1;
        group.first_seen = group.first_seen.min(parked_at);
        group.last_seen = group.last_seen.max(parked_at);
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    /// The page built from `items` (already the page, oldest first) and the groups seen.
    pub fn page(self, items: Vec<ParkedMessage>, offset: usize) -> ParkedPage {
        let mut groups: Vec<ParkedGroup> = self.groups.into_values().collect();
        groups.sort_by(|a, b| b.count.cmp(&a.count).then(a.first_seen.cmp(&b.first_seen)));
        let end = (offset + items.len()) as u64;
        let next_offset = (end < self.total && !items.is_empty()).then_some(end);
        ParkedPage { items, total: self.total, groups, next_offset }
    }
}

/// The reason with what differs between messages of one cause replaced: email
/// addresses by `<email>`, UUIDs by `<uuid>`, long hex by `<hex>`, numbers and
/// words holding digits (order ids such as `R-1042`) by `<n>`/`<id>`, quoted
/// values by `"…"`. Two orders refused by the same SMTP error share a fingerprint.
pub fn fingerprint(reason: &str) -> String {
    let mut out = String::with_capacity(reason.len());
    let mut chars = reason.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '"' {
            // A quoted value is data (an id, a field's content): the quote marks stay.
            let mut closed = false;
            for q in chars.by_ref() {
                if q == '"' {
                    closed = true;
                    break;
                }
            }
            out.push_str(if closed { "\"…\"" } else { "\"…" });
            continue;
        }
        if is_word(c) {
            let mut word = String::from(c);
            while let Some(&n) = chars.peek() {
                if !is_word(n) {
                    break;
                }
                word.push(n);
                chars.next();
            }
            out.push_str(&placeholder(&word));
            continue;
        }
        out.push(c);
    }
    out
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '-' | '_' | '@' | '.' | '+')
}

fn placeholder(word: &str) -> String {
    // A word may end a sentence: keep the full stop out of the token.
    let (token, tail) = match word.strip_suffix('.') {
        Some(token) => (token, "."),
        None => (word, ""),
    };
    let kind = if token.contains('@') && token.contains('.') {
        Some("<email>")
    } else if is_uuid(token) {
        Some("<uuid>")
    } else if token.len() >= 8 && token.chars().all(|c| c.is_ascii_hexdigit()) && token.chars().any(|c| c.is_ascii_digit()) {
        Some("<hex>")
    } else if !token.is_empty() && token.chars().all(|c| c.is_ascii_digit() || c == '.') && token.chars().any(|c| c.is_ascii_digit()) {
        Some("<n>")
    } else if token.chars().any(|c| c.is_ascii_digit()) && token.chars().any(char::is_alphabetic) {
        Some("<id>")
    } else {
        None
    };
    match kind {
        Some(kind) => format!("{kind}{tail}"),
        None => word.to_owned(),
    }
}

fn is_uuid(token: &str) -> bool {
    token.len() == 36 && uuid::Uuid::parse_str(token).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_cause_with_different_ids_has_one_fingerprint() {
        let a = fingerprint("gave up after 5 attempts: mail for order R-1042 to ada@example.com: SMTP 421 try again");
        let b = fingerprint("gave up after 5 attempts: mail for order R-77 to bob@mail.example.org: SMTP 421 try again");
        assert_eq!(a, b);
        assert_eq!(a, "gave up after <n> attempts: mail for order <id> to <email>: SMTP <n> try again");
    }

    #[test]
    fn uuids_hex_and_quoted_values_are_placeholders() {
        assert_eq!(fingerprint("post 3f2b8c1e-9d4a-4f6b-8a7e-0c1d2e3f4a5b not found"), "post <uuid> not found");
        assert_eq!(fingerprint("digest deadbeef00112233 mismatch."), "digest <hex> mismatch.");
        assert_eq!(fingerprint(r#"no worker subscribes to event type "user.signed_up""#), r#"no worker subscribes to event type "…""#);
        assert_eq!(fingerprint(r#"unterminated "quote"#), r#"unterminated "…"#);
    }

    #[test]
    fn different_causes_stay_apart() {
        assert_ne!(fingerprint("SMTP: Connection error"), fingerprint("invalid event: missing field `customer`"));
    }

    #[test]
    fn a_filter_matches_on_every_field_it_sets() {
        let at = DateTime::from_timestamp(1_000, 0).unwrap();
        let filter = ParkedFilter { worker: Some("emailer".into()), reason: Some("smtp".into()), ..Default::default() };
        assert!(filter.matches("emailer", "order.fulfilled", "SMTP refused", at));
        assert!(!filter.matches("projector", "order.fulfilled", "SMTP refused", at));
        assert!(!filter.matches("emailer", "order.fulfilled", "invalid", at));
        let since = ParkedFilter { since: Some(at), ..Default::default() };
        assert!(since.matches("w", "t", "r", at));
        assert!(!since.matches("w", "t", "r", DateTime::from_timestamp(999, 0).unwrap()));
    }

    #[test]
    fn groups_count_and_span_their_messages_and_pages_say_what_follows() {
        let mut grouper = Grouper::default();
        let t = |s| DateTime::from_timestamp(s, 0).unwrap();
        grouper.add("emailer", "SMTP 421 for R-1", t(20));
        grouper.add("emailer", "SMTP 421 for R-2", t(10));
        grouper.add("projector", "panic", t(15));
        assert_eq!(grouper.total(), 3);
        let page = grouper.page(Vec::new(), 0);
        assert_eq!(page.groups.len(), 2);
        assert_eq!((page.groups[0].count, page.groups[0].first_seen, page.groups[0].last_seen), (2, t(10), t(20)));
        assert_eq!(page.next_offset, None, "an empty page has nothing after it");
    }
}
