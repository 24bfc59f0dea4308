//! The event envelope every transport carries, and the typed events inside it.
//!
//! Unknown extra fields are ignored; a missing or invalid required field makes
//! the event invalid, which parks it at once (retrying cannot fix it).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::rules;

pub const POST_CREATED: &str = "post.created";
pub const POST_UPDATED: &str = "post.updated";
pub const POST_DELETED: &str = "post.deleted";
pub const ORDER_FULFILLED: &str = "order.fulfilled";

/// The post event types: what the workers that keep state derived from posts take.
pub const POST_EVENTS: &[&str] = &[POST_CREATED, POST_UPDATED, POST_DELETED];
/// Every event type a worker handles.
pub const KNOWN_TYPES: [&str; 4] = [POST_CREATED, POST_UPDATED, POST_DELETED, ORDER_FULFILLED];
/// The types other services send (`POST /events`, `blog publish`). Post events
/// are made only by our own outbox, in the transaction of the write they describe.
pub const EXTERNAL_TYPES: [&str; 1] = [ORDER_FULFILLED];

/// The JSON envelope: the body of every message on every transport.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    /// Unique per event; also the message id on the broker.
    pub id: Uuid,
    /// The event type, also the routing key.
    #[serde(rename = "type")]
    pub event_type: String,
    pub occurred_at: DateTime<Utc>,
    /// Carried from the request that caused the event into every log line it causes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// Kept as the JSON text it came in: decoded once, into the typed event
    /// (building a `Value` tree per delivery and dropping it was a quarter of
    /// the reader thread's time in the events benchmark).
    pub data: Box<RawValue>,
}

/// Why a message is not a valid event.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum InvalidEvent {
    #[error("not a valid event envelope: {0}")]
    Envelope(String),
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    #[error("invalid {event_type} data: {reason}")]
    Data { event_type: String, reason: String },
}

/// A post as the API returns it; the data of `post.created` and `post.updated`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PostSnapshot {
    pub id: Uuid,
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

/// `post.updated` data: the post after the change, and the tags it had before.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PostUpdated {
    #[serde(flatten)]
    pub post: PostSnapshot,
    pub previous_tags: Vec<String>,
}

/// `post.deleted` data.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PostDeleted {
    pub id: Uuid,
    pub version: i64,
    pub tags: Vec<String>,
}

/// `order.fulfilled` data, sent by the shop.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderFulfilled {
    pub order_id: String,
    pub customer: Customer,
    pub lines: Vec<OrderLine>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Customer {
    pub name: String,
    pub email: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderLine {
    pub sku: String,
    pub name: String,
    pub quantity: u32,
}

/// A decoded, validated event.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    PostCreated(PostSnapshot),
    PostUpdated(PostUpdated),
    PostDeleted(PostDeleted),
    OrderFulfilled(OrderFulfilled),
}

/// What a post event did to its post, as the workers keeping derived state apply it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PostChange<'a> {
    /// Created or updated: the post as it is now.
    Upserted(&'a PostSnapshot),
    /// Deleted at this version.
    Deleted(&'a PostDeleted),
}

impl Event {
    /// The change to a post this event carries; `None` for an event about something else.
    pub fn post_change(&self) -> Option<PostChange<'_>> {
        match self {
            Event::PostCreated(p) => Some(PostChange::Upserted(p)),
            Event::PostUpdated(u) => Some(PostChange::Upserted(&u.post)),
            Event::PostDeleted(d) => Some(PostChange::Deleted(d)),
            Event::OrderFulfilled(_) => None,
        }
    }
}

impl Envelope {
    /// A new envelope with a fresh id, stamped now.
    pub fn new(event_type: &str, data: serde_json::Value, correlation_id: Option<String>) -> Self {
        Self {
            id: Uuid::now_v7(),
            event_type: event_type.to_owned(),
            occurred_at: Utc::now(),
            correlation_id,
            data: raw(&data),
        }
    }

    /// Decodes a message body.
    pub fn decode(body: &[u8]) -> Result<Self, InvalidEvent> {
        serde_json::from_slice(body).map_err(|e| InvalidEvent::Envelope(e.to_string()))
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an envelope always serialises")
    }

    /// The typed, validated event inside.
    pub fn event(&self) -> Result<Event, InvalidEvent> {
        let event = match self.event_type.as_str() {
            POST_CREATED => Event::PostCreated(self.data_as()?),
            POST_UPDATED => Event::PostUpdated(self.data_as()?),
            POST_DELETED => Event::PostDeleted(self.data_as()?),
            ORDER_FULFILLED => Event::OrderFulfilled(self.data_as()?),
            other => return Err(InvalidEvent::UnknownType(other.to_owned())),
        };
        event.validate().map_err(|reason| self.invalid(reason))?;
        Ok(event)
    }

    fn data_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, InvalidEvent> {
        serde_json::from_str(self.data.get()).map_err(|e| self.invalid(e.to_string()))
    }

    fn invalid(&self, reason: String) -> InvalidEvent {
        InvalidEvent::Data { event_type: self.event_type.clone(), reason }
    }
}

/// `data` as the JSON text an envelope carries.
pub fn raw(data: &serde_json::Value) -> Box<RawValue> {
    serde_json::value::to_raw_value(data).expect("a JSON value always serialises")
}

impl Event {
    /// The domain rules of [`crate::rules`], applied to what the event carries.
    fn validate(&self) -> Result<(), String> {
        match self {
            Event::PostCreated(p) => validate_post(p),
            Event::PostUpdated(u) => {
                validate_post(&u.post)?;
                rules::tag::check_canonical(&u.previous_tags).map_err(|e| format!("previous_tags: {e}"))
            }
            Event::PostDeleted(d) => {
                rules::post::check_version(d.version)?;
                rules::tag::check_canonical(&d.tags)
            }
            Event::OrderFulfilled(o) => rules::order::check_order(&rules::order::OrderFields {
                order_id: &o.order_id,
                customer_name: &o.customer.name,
                customer_email: &o.customer.email,
                lines: o.lines.iter().map(|l| (l.sku.as_str(), l.name.as_str(), l.quantity)).collect(),
            }),
        }
    }
}

fn validate_post(post: &PostSnapshot) -> Result<(), String> {
    rules::post::check_post(&rules::post::PostFields {
        title: &post.title,
        description: &post.description,
        tags: &post.tags,
        version: post.version,
        created_at: post.created_at,
        updated_at: post.updated_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn order(email: &str) -> Envelope {
        Envelope::new(
            ORDER_FULFILLED,
            json!({"order_id": "A-1", "customer": {"name": "Ada", "email": email},
                   "lines": [{"sku": "BK-1", "name": "Book", "quantity": 1}], "extra": true}),
            None,
        )
    }

    #[test]
    fn an_order_with_extra_fields_is_valid() {
        assert!(matches!(order("ada@example.com").event(), Ok(Event::OrderFulfilled(_))));
    }

    #[test]
    fn an_order_with_a_bad_address_is_invalid() {
        let err = order("not-an-address").event().unwrap_err();
        assert!(err.to_string().contains("not an email address"), "{err}");
    }

    #[test]
    fn a_post_with_an_empty_tag_is_invalid() {
        let post = |tags: &[&str]| {
            Envelope::new(
                POST_CREATED,
                json!({"id": uuid::Uuid::now_v7(), "title": "T", "description": "D", "tags": tags,
                       "created_at": "2026-12-01T00:00:00Z", "updated_at": "2026-12-01T00:00:00Z", "version": 1}),
                None,
            )
        };
        assert!(matches!(post(&["rust"]).event(), Ok(Event::PostCreated(_))));
        let err = post(&["rust", " "]).event().unwrap_err();
        assert!(err.to_string().contains("tag"), "{err}");
    }

    #[test]
    fn an_unknown_type_is_invalid() {
        let e = Envelope::new("user.signed_up", json!({}), None);
        assert_eq!(e.event(), Err(InvalidEvent::UnknownType("user.signed_up".into())));
    }

    #[test]
    fn an_envelope_passes_its_data_on_unchanged_and_decodes_it_typed() {
        let body = br#"{"id":"01a22228-89fa-753b-8935-69f78e05b686","type":"post.deleted",
            "occurred_at":"2026-11-28T12:00:00Z","data":{"id":"01a22228-89fa-753b-8935-69f78e05b686",
            "version":3,"tags":["a"],"extra":{"kept":[1,2]}}}"#;
        let envelope = Envelope::decode(body).unwrap();
        let again = Envelope::decode(&envelope.to_bytes()).unwrap();
        let data: serde_json::Value = serde_json::from_str(again.data.get()).unwrap();
        assert_eq!(data["extra"], json!({"kept": [1, 2]}), "unknown fields travel on");
        match again.event().unwrap() {
            Event::PostDeleted(d) => assert_eq!((d.version, d.tags), (3, vec!["a".to_owned()])),
            other => panic!("{other:?}"),
        }
    }

    proptest::proptest! {
        #[test]
        fn decoding_any_bytes_never_panics(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            if let Ok(envelope) = Envelope::decode(&body) {
                let _ = envelope.event();
            }
        }

        #[test]
        fn an_envelope_of_any_order_round_trips_or_is_refused(
            order_id in "\\PC{0,80}", name in "\\PC{0,40}", email in "[a-z@.]{0,20}", quantity in proptest::prelude::any::<u32>()
        ) {
            let data = json!({"order_id": order_id, "customer": {"name": name, "email": email},
                              "lines": [{"sku": "S", "name": "N", "quantity": quantity}]});
            let envelope = Envelope::new(ORDER_FULFILLED, data, None);
            let again = Envelope::decode(&envelope.to_bytes()).unwrap();
            proptest::prop_assert_eq!(again.event(), envelope.event());
            if let Ok(Event::OrderFulfilled(order)) = envelope.event() {
                proptest::prop_assert!(order.lines[0].quantity >= 1 && order.lines[0].quantity <= crate::rules::order::QUANTITY_MAX);
            }
        }
    }

    #[test]
    fn garbage_is_not_an_envelope() {
        assert!(matches!(Envelope::decode(b"{nope"), Err(InvalidEvent::Envelope(_))));
    }
}
