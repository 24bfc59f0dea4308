//! The outbox the relay drains: oldest first, marked after the transport confirmed.

use blog_actors::trace_context::TraceContext;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;
use uuid::Uuid;

use super::{post, TestStore};

pub(crate) async fn pending_gives_the_oldest_unsent_entries_in_order(store: impl TestStore) {
    let ids: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    for (i, id) in ids.iter().enumerate() {
        store.enqueue("order.fulfilled", *id, format!("{i}").into_bytes(), Some(format!("c{i}"))).await.unwrap();
    }
    let first_two = store.pending(2).await.unwrap();
    assert_eq!(first_two.iter().map(|e| e.message.message_id).collect::<Vec<_>>(), ids[..2]);
    assert_eq!(first_two[1].message.body, b"1");
    assert_eq!(first_two[1].message.correlation_id.as_deref(), Some("c1"));
    assert_eq!(first_two[0].message.correlation_id.as_deref(), Some("c0"));
    assert!(first_two[0].seq < first_two[1].seq);
}

pub(crate) async fn marked_entries_leave_the_backlog(store: impl TestStore) {
    for _ in 0..3 {
        store.enqueue("order.fulfilled", Uuid::new_v4(), b"{}".to_vec(), None).await.unwrap();
    }
    let pending = store.pending(10).await.unwrap();
    assert_eq!(pending[0].message.correlation_id, None);
    store.mark_sent(&[pending[0].seq, pending[1].seq]).await.unwrap();
    assert_eq!(store.backlog().await.unwrap(), 1);
    let left = store.pending(10).await.unwrap();
    assert_eq!(left, vec![pending[2].clone()]);
    // Marking again, or nothing, changes nothing.
    store.mark_sent(&[pending[0].seq]).await.unwrap();
    store.mark_sent(&[]).await.unwrap();
    assert_eq!(store.pending(10).await.unwrap(), left);
}

pub(crate) async fn binary_bodies_round_trip_byte_for_byte(store: impl TestStore) {
    let body: Vec<u8> = (0..=255).collect();
    store.enqueue("order.fulfilled", Uuid::new_v4(), body.clone(), None).await.unwrap();
    assert_eq!(store.pending(1).await.unwrap()[0].message.body, body);
}

pub(crate) async fn pending_with_limit_zero_gives_nothing(store: impl TestStore) {
    store.enqueue("order.fulfilled", Uuid::new_v4(), b"{}".to_vec(), None).await.unwrap();
    assert!(store.pending(0).await.unwrap().is_empty());
}

/// The trace context current at a write (a post change or a plain enqueue) travels
/// with its event; where no span is recorded none is made up.
pub(crate) async fn an_event_keeps_the_trace_context_of_its_write(store: impl TestStore) {
    let recording = record_spans_on_this_thread();
    let caller = TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", Some("k=v")).unwrap();
    let write = tracing::info_span!("write");
    caller.adopt_as_parent(&write);
    store.create_post(post("Traced", &["t"]), None).instrument(write.clone()).await.unwrap();
    store.enqueue("order.fulfilled", Uuid::new_v4(), b"{}".to_vec(), None).instrument(write).await.unwrap();
    drop(recording);
    store.enqueue("order.fulfilled", Uuid::new_v4(), b"{}".to_vec(), None).await.unwrap();
    let pending = store.pending(10).await.unwrap();
    for traced in &pending[..2] {
        let trace = traced.message.trace.as_ref().unwrap_or_else(|| panic!("{} lost its trace context", traced.message.routing_key));
        assert_eq!((trace.trace_id(), trace.tracestate.as_deref()), (caller.trace_id(), Some("k=v")));
        assert_ne!(trace.traceparent, caller.traceparent, "the write's own span is the parent, not its caller");
    }
    assert_eq!(pending[2].message.trace, None);
}

/// Spans of this thread recorded by an OpenTelemetry layer (nothing exported), as
/// the service records them when it exports traces; until the guard drops.
fn record_spans_on_this_thread() -> tracing::subscriber::DefaultGuard {
    let tracer = SdkTracerProvider::builder().build().tracer("contract");
    let recording = tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(tracer));
    tracing::subscriber::set_default(recording)
}

pub(crate) async fn every_write_with_an_event_wakes_the_relay(store: impl TestStore) {
    let woken = store.written();
    let wait = || tokio::time::timeout(std::time::Duration::from_secs(5), woken.notified());
    let post = store.create_post(super::post("One", &["a"]), None).await.unwrap();
    wait().await.expect("a create wakes the relay");
    store.update_post(post.id, super::post("Two", &["a"]), None, None).await.unwrap();
    wait().await.expect("an update wakes the relay");
    store.delete_post(post.id, None).await.unwrap();
    wait().await.expect("a delete wakes the relay");
    store.enqueue("order.fulfilled", Uuid::new_v4(), b"{}".to_vec(), None).await.unwrap();
    wait().await.expect("an enqueue wakes the relay");
}
