//! W3C trace context (`traceparent`): parsed from incoming requests or started fresh, kept in a
//! task-local for the request's lifetime, logged with every line and forwarded to every backend
//! call, so one trace id follows a request from the gateway through all services.

use rand::Rng;

/// The `traceparent` header name.
pub const HEADER: &str = "traceparent";

/// A W3C trace context: trace id, the id of the current span, and the sampled flag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: String,
    pub span_id: String,
    pub sampled: bool,
}

tokio::task_local! {
    static CURRENT: TraceParent;
}

impl TraceParent {
    /// Parses `00-<32 hex>-<16 hex>-<2 hex>`; anything else (or all-zero ids) is rejected.
    pub fn parse(header: &str) -> Option<Self> {
        let mut parts = header.trim().split('-');
        let (version, trace_id, span_id, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let hex = |s: &str, len| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
        let valid = version == "00"
            && parts.next().is_none()
            && hex(trace_id, 32)
            && hex(span_id, 16)
            && hex(flags, 2)
            && trace_id.bytes().any(|b| b != b'0')
            && span_id.bytes().any(|b| b != b'0');
        valid.then(|| Self {
            trace_id: trace_id.to_ascii_lowercase(),
            span_id: span_id.to_ascii_lowercase(),
            sampled: u8::from_str_radix(flags, 16).is_ok_and(|f| f & 1 == 1),
        })
    }

    /// A new trace (for requests that arrive without one).
    pub fn new_root() -> Self {
        let mut rng = rand::rng();
        Self {
            trace_id: format!("{:032x}", rng.random::<u128>() | 1),
            span_id: format!("{:016x}", rng.random::<u64>() | 1),
            sampled: true,
        }
    }

    /// The same trace with a new span id: what this service sends to the next hop.
    pub fn child(&self) -> Self {
        Self {
            trace_id: self.trace_id.clone(),
            span_id: format!("{:016x}", rand::rng().random::<u64>() | 1),
            sampled: self.sampled,
        }
    }

    pub fn header_value(&self) -> String {
        format!(
            "00-{}-{}-{}",
            self.trace_id,
            self.span_id,
            if self.sampled { "01" } else { "00" }
        )
    }

    /// The context of the request being handled by this task, if any.
    pub fn current() -> Option<Self> {
        CURRENT.try_with(Clone::clone).ok()
    }

    /// Runs `fut` with `self` as the current trace context.
    pub async fn scope<F: Future>(self, fut: F) -> F::Output {
        CURRENT.scope(self, fut).await
    }
}

/// The header to send on an outgoing call: a child of the current context, or a new root.
pub fn outgoing_header() -> String {
    TraceParent::current()
        .map(|t| t.child())
        .unwrap_or_else(TraceParent::new_root)
        .header_value()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_spec_example() {
        let t = TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
            .expect("valid");
        assert_eq!(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(t.sampled);
        assert_eq!(
            t.header_value(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
    }

    #[test]
    fn rejects_malformed_and_zero_ids() {
        for bad in [
            "",
            "00-abc-def-01",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn child_keeps_the_trace_and_changes_the_span() {
        let root = TraceParent::new_root();
        let header = root.clone().scope(async { outgoing_header() }).await;
        let sent = TraceParent::parse(&header).expect("valid header");
        assert_eq!(sent.trace_id, root.trace_id);
        assert_ne!(sent.span_id, root.span_id);
    }
}
