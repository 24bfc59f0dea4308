//! Message properties and our headers.
//!
//! Our headers carry no `x-` prefix: from RabbitMQ 3.13/4.0 the broker drops
//! client-set `x-*` headers. `attempt` is the next attempt's number,
//! `original-routing-key` the event type once a message travelled through a
//! retry or parking queue (whose routing keys are queue names).

use std::hash::Hasher;
use std::time::{SystemTime, UNIX_EPOCH};

use amqprs::{BasicProperties, FieldTable, FieldValue, GetOk, DELIVERY_MODE_PERSISTENT};
use chrono::{DateTime, SecondsFormat, Utc};

use super::confirm::truncate;
use super::topology::key;
use blog_actors::trace_context::{TraceContext, TRACEPARENT, TRACESTATE};

use crate::transport::OutgoingMessage;
use crate::transport::ParkedMessage;

pub(super) const ATTEMPT: &str = "attempt";
pub(super) const LAST_ERROR: &str = "last-error";
pub(super) const ORIGINAL_ROUTING_KEY: &str = "original-routing-key";
pub(super) const PARKED_ID: &str = "parked-id";
pub(super) const PARKED_REASON: &str = "parked-reason";
pub(super) const PARKED_AT: &str = "parked-at";
pub(super) const ATTEMPTS: &str = "attempts";
pub(super) const WORKER: &str = "worker";

/// The properties of a newly published event.
pub(super) fn event_properties(entry: &OutgoingMessage) -> BasicProperties {
    let mut props = BasicProperties::default();
    props
        .with_delivery_mode(DELIVERY_MODE_PERSISTENT)
        .with_content_type("application/json")
        .with_message_id(&entry.message_id.to_string())
        .with_message_type(truncate(&entry.routing_key, 255))
        .with_timestamp(unix_now());
    if let Some(correlation_id) = &entry.correlation_id {
        // A short string: a longer id (it may come from an HTTP header) is cut, not a panic.
        props.with_correlation_id(truncate(correlation_id, 255));
    }
    match &entry.trace {
        // As the OpenTelemetry messaging conventions say: W3C headers on the message.
        // Retries, parking and replay copy our headers, so the context stays with it.
        Some(trace) => with_headers(&props, trace_headers(trace), &[]),
        None => props,
    }
}

fn trace_headers(trace: &TraceContext) -> Vec<(&'static str, FieldValue)> {
    let mut headers = vec![(TRACEPARENT, FieldValue::from(trace.traceparent.as_str()))];
    if let Some(state) = &trace.tracestate {
        headers.push((TRACESTATE, FieldValue::from(state.as_str())));
    }
    headers
}

/// The trace context of a delivery, if its headers hold a well-formed one.
pub(super) fn trace_context(props: &BasicProperties) -> Option<TraceContext> {
    TraceContext::parse(&header_str(props, TRACEPARENT)?, header_str(props, TRACESTATE).as_deref())
}

/// `props` with `headers` set (or replaced) and `remove` taken out; persistent.
/// The table is built afresh with each key inserted once: amqp_serde's
/// `FieldTable` keeps a running byte length that `insert` over an existing key
/// (and `remove`) miscounts, and the broker then fails to parse the table and
/// closes the connection (541 INTERNAL_ERROR) — seen on a message's second retry.
/// Broker-owned `x-` headers (`x-death` and friends) are not ours to send: dropped.
pub(super) fn with_headers(props: &BasicProperties, set: Vec<(&str, FieldValue)>, remove: &[&str]) -> BasicProperties {
    let mut headers = FieldTable::new();
    if let Some(old) = props.headers() {
        for (name, value) in old.as_ref() {
            let name_str: &String = name.as_ref();
            let replaced = set.iter().any(|(n, _)| n == name_str);
            if !name_str.starts_with("x-") && !remove.contains(&name_str.as_str()) && !replaced {
                headers.insert(name.clone(), value.clone());
            }
        }
    }
    for (name, value) in set {
        headers.insert(key(name), value);
    }
    let mut props = props.clone();
    props.with_headers(headers).with_delivery_mode(DELIVERY_MODE_PERSISTENT);
    props
}

/// Our headers that describe a parking; dropped when a message is replayed.
pub(super) const PARKING_HEADERS: [&str; 6] = [PARKED_ID, PARKED_REASON, PARKED_AT, ATTEMPTS, WORKER, LAST_ERROR];

/// The headers that park a message.
pub(super) fn parking_headers(worker: &str, routing_key: &str, reason: &str, attempts: u32) -> Vec<(&'static str, FieldValue)> {
    vec![
        (PARKED_ID, FieldValue::from(uuid::Uuid::new_v4().to_string())),
        (PARKED_REASON, FieldValue::from(reason)),
        (PARKED_AT, FieldValue::from(Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true))),
        (ATTEMPTS, FieldValue::l(i64::from(attempts))),
        (WORKER, FieldValue::from(worker)),
        (ORIGINAL_ROUTING_KEY, FieldValue::from(routing_key)),
    ]
}

pub(super) fn header_str(props: &BasicProperties, name: &str) -> Option<String> {
    match props.headers()?.get(&key(name))? {
        FieldValue::S(text) => Some(text.to_string()),
        FieldValue::x(bytes) => Some(String::from_utf8_lossy(&Vec::<u8>::from(bytes.clone())).into_owned()),
        _ => None,
    }
}

/// An integer header of any integer type (other clients pick other widths).
pub(super) fn header_int(props: &BasicProperties, name: &str) -> Option<i64> {
    Some(match props.headers()?.get(&key(name))? {
        FieldValue::b(v) => i64::from(*v),
        FieldValue::B(v) => i64::from(*v),
        FieldValue::s(v) => i64::from(*v),
        FieldValue::u(v) => i64::from(*v),
        FieldValue::I(v) => i64::from(*v),
        FieldValue::i(v) => i64::from(*v),
        FieldValue::l(v) => *v,
        FieldValue::S(text) => text.to_string().trim().parse().ok()?,
        _ => return None,
    })
}

/// The attempt a delivery is: its `attempt` header, 1 when absent or nonsense.
pub(super) fn attempt(props: &BasicProperties) -> u32 {
    header_int(props, ATTEMPT).and_then(|a| u32::try_from(a).ok()).filter(|a| *a >= 1).unwrap_or(1)
}

/// The event type: from our header after a detour, else the delivery's routing key.
pub(super) fn routing_key(props: &BasicProperties, delivered_with: &str) -> String {
    header_str(props, ORIGINAL_ROUTING_KEY).unwrap_or_else(|| delivered_with.to_owned())
}

/// The id the admin API uses: the parking's own id (unique even when two workers
/// parked the same event), else the message id, else a hash of the body.
pub(super) fn parked_id(props: &BasicProperties, body: &[u8]) -> String {
    header_str(props, PARKED_ID)
        .or_else(|| props.message_id().cloned())
        .unwrap_or_else(|| format!("body-{:016x}", fnv1a(body)))
}

/// A message read from parking lot `worker` as the admin API shows it.
pub(super) fn parked_message(worker: &str, get: &GetOk, props: &BasicProperties, body: &[u8]) -> ParkedMessage {
    let parked_at = header_str(props, PARKED_AT)
        .and_then(|at| DateTime::parse_from_rfc3339(&at).ok().map(|at| at.with_timezone(&Utc)))
        .or_else(|| props.timestamp().and_then(|s| DateTime::from_timestamp(i64::try_from(s).ok()?, 0)))
        .unwrap_or_default();
    let body_value = serde_json::from_slice(body)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(body).into_owned()));
    ParkedMessage {
        id: parked_id(props, body),
        worker: worker.to_owned(),
        routing_key: routing_key(props, get.routing_key()),
        message_id: props.message_id().cloned(),
        correlation_id: props.correlation_id().cloned(),
        body: body_value,
        reason: header_str(props, PARKED_REASON).or_else(|| broker_reason(props)).unwrap_or_default(),
        attempts: header_int(props, ATTEMPTS).or_else(|| header_int(props, "x-delivery-count")).and_then(|a| u32::try_from(a).ok()).unwrap_or(0),
        parked_at,
        headers: header_strings(props),
    }
}

/// Every header with a text or integer value, as text (the broker's death
/// records are tables: their first reason is shown through `reason`).
fn header_strings(props: &BasicProperties) -> std::collections::BTreeMap<String, String> {
    let Some(table) = props.headers() else { return Default::default() };
    table
        .as_ref()
        .keys()
        .filter_map(|name| {
            let name: &String = name.as_ref();
            let value = header_str(props, name).or_else(|| header_int(props, name).map(|n| n.to_string()))?;
            Some((name.clone(), value))
        })
        .collect()
}

/// Why the broker itself dead-lettered a message into a parking lot: a quorum
/// worker queue's `x-delivery-limit` (the process kept dying while holding it).
fn broker_reason(props: &BasicProperties) -> Option<String> {
    let reason = header_str(props, "x-first-death-reason")?;
    Some(match reason.as_str() {
        "delivery_limit" => {
            let count = header_int(props, "x-delivery-count").map(|n| format!(" ({n} deliveries)")).unwrap_or_default();
            format!("redelivered too often{count}: the broker's delivery limit (BLOG_AMQP_DELIVERY_LIMIT) was reached, so handling it may crash the process")
        }
        other => format!("dead-lettered by the broker: {other}"),
    })
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// FNV-1a: stable across builds and Rust versions, unlike `DefaultHasher`.
fn fnv1a(bytes: &[u8]) -> u64 {
    struct Fnv(u64);
    impl Hasher for Fnv {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            for b in bytes {
                self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
            }
        }
    }
    let mut hasher = Fnv(0xcbf2_9ce4_8422_2325);
    hasher.write(bytes);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempt_defaults_to_one_and_reads_any_integer_width() {
        let props = BasicProperties::default();
        assert_eq!(attempt(&props), 1);
        let props = with_headers(&props, vec![(ATTEMPT, FieldValue::I(3))], &[]);
        assert_eq!(attempt(&props), 3);
        let props = with_headers(&props, vec![(ATTEMPT, FieldValue::l(0))], &[]);
        assert_eq!(attempt(&props), 1, "nonsense counts as a first attempt");
    }

    #[test]
    fn a_detour_keeps_the_event_type() {
        let props = with_headers(&BasicProperties::default(), vec![(ORIGINAL_ROUTING_KEY, FieldValue::from("post.created"))], &[]);
        assert_eq!(routing_key(&props, "p.projector"), "post.created");
        assert_eq!(routing_key(&BasicProperties::default(), "post.updated"), "post.updated");
    }

    #[test]
    fn the_trace_context_travels_in_w3c_headers_through_a_retry_and_a_parking() {
        let trace = TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", Some("k=v"));
        let entry = OutgoingMessage {
            message_id: uuid::Uuid::new_v4(),
            routing_key: "post.created".into(),
            body: b"{}".to_vec(),
            correlation_id: None,
            trace: trace.clone(),
        };
        let published = event_properties(&entry);
        let retried = with_headers(&published, vec![(ATTEMPT, FieldValue::l(2))], &[]);
        let parked = with_headers(&retried, parking_headers("projector", "post.created", "bad", 2), &[]);
        let replayed = with_headers(&parked, vec![(ATTEMPT, FieldValue::l(1))], &PARKING_HEADERS);
        for props in [&published, &retried, &parked, &replayed] {
            assert_eq!(trace_context(props), trace);
        }
        let forged = with_headers(&published, vec![(TRACEPARENT, FieldValue::from("00-zz-nonsense-01"))], &[]);
        assert_eq!(trace_context(&forged), None, "a malformed header starts a new trace");
    }

    #[test]
    fn a_message_the_broker_parked_for_its_delivery_limit_says_so() {
        let mut headers = FieldTable::new();
        headers.insert(key("x-first-death-reason"), FieldValue::from("delivery_limit"));
        headers.insert(key("x-delivery-count"), FieldValue::l(3));
        let mut props = BasicProperties::default();
        props.with_headers(headers);
        let reason = broker_reason(&props).unwrap();
        assert!(reason.starts_with("redelivered too often (3 deliveries)"), "{reason}");
        assert_eq!(broker_reason(&BasicProperties::default()), None);
    }

    #[test]
    fn replay_drops_the_parking_headers_only() {
        let parked = with_headers(&BasicProperties::default(), parking_headers("emailer", "order.fulfilled", "bad", 5), &[]);
        let replayed = with_headers(&parked, vec![(ATTEMPT, FieldValue::l(1))], &PARKING_HEADERS);
        assert_eq!(header_str(&replayed, PARKED_REASON), None);
        assert_eq!(header_str(&replayed, ORIGINAL_ROUTING_KEY).as_deref(), Some("order.fulfilled"));
        assert_eq!(attempt(&replayed), 1);
    }
}
