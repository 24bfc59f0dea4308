//! The W3C trace context a message carries across the queue (`traceparent`,
//! `tracestate`), and its bridge to the spans of `tracing`.
//!
//! Input is hostile until checked: a malformed `traceparent` is dropped (the
//! span then starts a new trace) and never passed on as it came; a `tracestate`
//! that is too long or holds control characters is dropped alone. Without the
//! OpenTelemetry layer installed the bridge does nothing.

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Header and column names, as the W3C and the OpenTelemetry messaging conventions spell them.
pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";
/// The W3C limit is 32 members; 512 characters keeps hostile input from bloating every message.
pub const TRACESTATE_MAX: usize = 512;

/// A checked trace context; `traceparent` is always in the canonical version-00 form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    pub traceparent: String,
    pub tracestate: Option<String>,
}

impl TraceContext {
    /// The context of a `traceparent` (and `tracestate`), or `None` when the traceparent is malformed.
    pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Option<Self> {
        let (trace_id, parent_id, flags) = parts(traceparent.trim())?;
        Some(Self {
            traceparent: format!("00-{trace_id}-{parent_id}-{flags}"),
            tracestate: tracestate.map(str::trim).filter(|s| acceptable_state(s)).map(str::to_owned),
        })
    }

    /// The 32 hex digits of the trace id.
    pub fn trace_id(&self) -> &str {
        &self.traceparent[3..35]
    }

    /// The context of the innermost span entered here that the OpenTelemetry layer
    /// records (entering a span activates its context), if any.
    pub fn current() -> Option<Self> {
        Self::of(&opentelemetry::Context::current())
    }

    /// The context of `span`, if the OpenTelemetry layer records it.
    pub fn of_span(span: &tracing::Span) -> Option<Self> {
        Self::of(&span.context())
    }

    fn of(cx: &opentelemetry::Context) -> Option<Self> {
        let span_ref = cx.span();
        let sc = span_ref.span_context();
        if !sc.is_valid() {
            return None;
        }
        let flags = sc.trace_flags().to_u8();
        let traceparent = format!("00-{}-{}-{flags:02x}", sc.trace_id(), sc.span_id());
        let state = sc.trace_state().header();
        Self::parse(&traceparent, Some(state.as_str()).filter(|s| !s.is_empty()))
    }

    /// Makes this context the parent of `span`, which must not have been entered yet.
    /// A no-op without the OpenTelemetry layer.
    pub fn adopt_as_parent(&self, span: &tracing::Span) {
        let cx = opentelemetry::Context::new().with_remote_span_context(self.span_context());
        // Fails only when no layer records the span: then there is nothing to link.
        let _ = span.set_parent(cx);
    }

    fn span_context(&self) -> SpanContext {
        let field = |range: std::ops::Range<usize>| &self.traceparent[range];
        let trace_id = TraceId::from_hex(field(3..35)).unwrap_or(TraceId::INVALID);
        let span_id = SpanId::from_hex(field(36..52)).unwrap_or(SpanId::INVALID);
        let flags = u8::from_str_radix(field(53..55), 16).map_or(TraceFlags::default(), TraceFlags::new);
        let state = self.tracestate.as_deref().and_then(|s| s.parse::<TraceState>().ok()).unwrap_or_default();
        SpanContext::new(trace_id, span_id, flags, true, state)
    }
}

/// The trace id of a `traceparent`, if it is well formed (for the correlation id).
pub fn trace_id_of(traceparent: &str) -> Option<&str> {
    parts(traceparent.trim()).map(|(trace_id, _, _)| trace_id)
}

/// `version-traceid-parentid-flags`, checked as W3C Trace Context level 1 says.
fn parts(traceparent: &str) -> Option<(&str, &str, &str)> {
    let mut parts = traceparent.split('-');
    let (version, trace, parent, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, len| s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    // Version ff is forbidden; version 00 has exactly four parts (a later one may add
    // more after a dash); all-zero ids are invalid.
    let well_formed = hex(version, 2)
        && version != "ff"
        && (version != "00" || parts.next().is_none())
        && hex(trace, 32)
        && trace.bytes().any(|b| b != b'0')
        && hex(parent, 16)
        && parent.bytes().any(|b| b != b'0')
        && hex(flags, 2);
    well_formed.then_some((trace, parent, flags))
}

/// Short, printable ASCII (tabs and spaces allowed between members, nothing else unprintable).
fn acceptable_state(state: &str) -> bool {
    !state.is_empty()
        && state.len() <= TRACESTATE_MAX
        && state.bytes().all(|b| b == b' ' || b == b'\t' || b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_well_formed_context_is_kept_in_canonical_form() {
        let cx = TraceContext::parse(&format!(" {TP} "), Some("congo=t61rcWkgMzE")).unwrap();
        assert_eq!(cx.traceparent, TP);
        assert_eq!(cx.tracestate.as_deref(), Some("congo=t61rcWkgMzE"));
        assert_eq!(cx.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        // A later version is read by its first four fields and passed on as version 00.
        let later = TraceContext::parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes", None);
        assert_eq!(later.unwrap().traceparent, TP);
    }

    #[test]
    fn a_malformed_traceparent_is_dropped_never_passed_on() {
        for tp in [
            "",
            "nonsense",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1\n",
            "00-4bf92f3577b34da6a3ce929d0e0e4736\r\n-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::parse(tp, Some("a=b")), None, "{tp:?}");
        }
    }

    #[test]
    fn a_hostile_tracestate_is_dropped_alone() {
        let long = "a=".to_owned() + &"b".repeat(TRACESTATE_MAX);
        for state in [long.as_str(), "a=b\r\nx-evil: 1", "a=\u{7f}", "é=1", ""] {
            let cx = TraceContext::parse(TP, Some(state)).unwrap();
            assert_eq!(cx.tracestate, None, "{state:?}");
        }
    }

    #[test]
    fn without_the_opentelemetry_layer_there_is_no_current_context() {
        let span = tracing::info_span!("no layer");
        TraceContext::parse(TP, None).unwrap().adopt_as_parent(&span);
        assert_eq!(TraceContext::of_span(&span), None);
    }

    #[test]
    fn the_span_context_round_trips() {
        let cx = TraceContext::parse(TP, Some("congo=t61rcWkgMzE")).unwrap();
        let sc = cx.span_context();
        assert!(sc.is_valid() && sc.is_remote() && sc.is_sampled());
        assert_eq!(sc.trace_id().to_string(), cx.trace_id());
        assert_eq!(sc.trace_state().header(), "congo=t61rcWkgMzE");
    }
}
