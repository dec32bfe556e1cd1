//! Envoy's tracers as Istio's two providers configure them
//! (`make install-istio TRACING=zipkin|otel`), as far as context headers go:
//! what a gateway, sidecar or waypoint takes as its span's parent, and what
//! it writes on the request it forwards. Every other header passes through
//! untouched, a stale `x-b3-*` or `traceparent` included.
//!
//! Istio 1.30.3 ships Envoy `4f1e006e2db1c4263924993bc1dae3ed9e3b886a`
//! (istio/istio `1.30.3` `istio.deps` names istio/proxy `81864a1c`, whose
//! `WORKSPACE` sets `ENVOY_SHA`). The source store this was written from
//! holds no copy of envoyproxy/envoy at that commit; each point below names
//! the stored commit it was read at instead (all older than `4f1e006e`,
//! their dates not given by the store), and the file and function, which
//! keep their names at `4f1e006e`.
//!
//! **Zipkin tracer** (`source/extensions/tracers/zipkin/`), with
//! `USE_B3_WITH_W3C_PROPAGATION` (`k8s/istio/tracing-zipkin.yaml`):
//! - `zipkin_tracer_impl.cc` `Driver::startSpan` (read at `00e8a1bb`, which
//!   has `TraceContextOption`): a context found continues; none found starts
//!   a root span; an `ExtractorException` returns a `Tracing::NullSpan`: no
//!   span, nothing injected, so every header passes on unchanged.
//! - `span_context_extractor.cc` `SpanContextExtractor::extractSpanContext`
//!   (read at `91a08d05`): a `b3` header, when present, is the only one read
//!   (`extractSpanContextFromB3SingleFormat`, which throws on a malformed
//!   value and returns "no context" for a lone sampling flag); otherwise
//!   `x-b3-traceid` and `x-b3-spanid` must both be there (else no context),
//!   and each, and `x-b3-parentspanid` when not empty, goes through
//!   `StringUtil::atoull(…, 16)` (`source/common/common/utility.cc`:
//!   `strtoull`, the whole value consumed, no overflow), which takes 64-bit
//!   and shorter ids and upper-case hex; a 32-digit trace id is split in two
//!   halves. A failure throws `ExtractorException`. `api/envoy/config/trace/
//!   v3/zipkin.proto` `TraceContextOption`: "Extract from B3 headers first,
//!   fallback to W3C traceparent"; the fallback (a valid `traceparent` with
//!   no B3 context) is modelled as the OpenTelemetry extractor reads it, and
//!   an invalid `traceparent` there as no context (not read in source here).
//! - Injection (read as `ZipkinSpan::injectContext` at `1b03764d`; at
//!   `00e8a1bb` the tracer's `Span` is the `Tracing::Span` itself and
//!   injects the same way): `x-b3-traceid` (16 digits for a 64-bit trace,
//!   32 for a 128-bit one), `x-b3-spanid`, `x-b3-sampled`, each with
//!   `setByReferenceKey` (replacing the header), as lower-case hex
//!   (`Hex::uint64ToHex`); `x-b3-parentspanid` only
//!   `if (span_.isSetParentId())`, so a root span leaves a client's alone.
//!   With the W3C option it also writes `traceparent`; a 64-bit trace id is
//!   written there zero-padded to 32 digits (the only form W3C allows).
//!
//! **OpenTelemetry tracer** (`source/extensions/tracers/opentelemetry/`):
//! - `opentelemetry_tracer_impl.cc` `Driver::startSpan` (read at
//!   `e05a2af4`): no `traceparent` starts a root span; one that does not
//!   parse returns a `NullSpan` ("If we can't, just return a null span").
//!   B3 is never read. Istio 1.30.3 configures no other propagator for it
//!   (`pilot/pkg/networking/core/tracing.go`, `otelConfig`).
//! - `span_context_extractor.cc` `SpanContextExtractor::extractSpanContext`
//!   (read at `3b0bcb12`): exactly 55 characters, four `-`-separated fields
//!   of 2, 32, 16 and 2 digits, each `absl::ascii_isxdigit` (either case),
//!   so any two-digit version; an all-zero trace or parent id is refused.
//!   Several `tracestate` lines are joined with `,`.
//! - `tracer.cc` `Span::injectContext` (read at `cd146a02`): `traceparent`
//!   as `00-<trace>-<span>-<flags>` in lower case (`absl::BytesToHexString`
//!   of the ids), and `tracestate` set to the span's own, both with
//!   `setByReferenceKey`; `Tracer::startSpan` copies the parent's
//!   `tracestate`, and a root span has none, so it writes an empty one.
//!
//! **Which spans a proxy makes** (istio/istio `1.30.3`,
//! `pilot/pkg/networking/core/`): `tracing.go` `configureFromProviderConfig`
//! sets `spawn_upstream_span` for `proxy.Type == model.Router` only, so a
//! gateway makes a SERVER span and the router's CLIENT span, a sidecar one
//! span per listener, and a waypoint, whose inner connection manager
//! `listener_waypoint.go` `buildWaypointInboundHTTPFilters` builds as
//! sidecar inbound, one SERVER span. A `NullSpan`'s child is a `NullSpan`,
//! and it injects nothing (envoyproxy/envoy `source/common/tracing/
//! null_span_impl.h`, `NullSpan::spawnChild` and `injectContext`, read at
//! the stored commit `1b4a464b`).
//!
//! Sampling is always on: the demo profile and `k8s/istio/telemetry-*.yaml`
//! sample 100 %.

/// A request's headers: lower-case names, in order; a name may repeat.
pub type Headers = Vec<(String, String)>;

/// One of Istio's tracing providers, as this project installs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// Envoy's Zipkin tracer with `USE_B3_WITH_W3C_PROPAGATION`.
    Zipkin,
    /// Envoy's OpenTelemetry tracer.
    Otel,
}

/// An Envoy in the request's path, by what Istio makes of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proxy {
    /// An ingress gateway (`model.Router`): a SERVER span and the router's
    /// CLIENT span under it.
    Gateway,
    /// A sidecar's inbound or outbound listener: one span.
    Sidecar,
    /// An ambient waypoint: one SERVER span on the destination's side.
    Waypoint,
}

impl Proxy {
    /// How many spans this proxy makes for one request.
    pub fn spans(self) -> usize {
        match self {
            Self::Gateway => 2,
            Self::Sidecar | Self::Waypoint => 1,
        }
    }
}

/// A span an Envoy made on one hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvoySpan {
    /// The trace id as Envoy writes it in `traceparent`: 32 lower-hex digits.
    pub trace_id: String,
    /// 16 lower-hex digits.
    pub span_id: String,
    /// The span it continues, or `None` when it started the trace.
    pub parent_span_id: Option<String>,
}

/// What an Envoy did with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hop {
    /// It made this span and wrote its context into the request.
    Span(EnvoySpan),
    /// It could not read the context it was sent: a `NullSpan`, and the
    /// request's headers left exactly as they came.
    Null,
}

impl Hop {
    /// The span, which the caller expects there to be.
    #[track_caller]
    pub fn span(self) -> EnvoySpan {
        match self {
            Self::Span(span) => span,
            Self::Null => panic!("expected a span, Envoy made a NullSpan"),
        }
    }
}

/// A parent read from the headers: `(trace, span)`, lower-hex, the trace id
/// 16 or 32 digits as the format carried it.
type Parent = (String, String);

/// What an extractor made of the headers.
enum Context {
    /// Nothing to continue: a root span.
    None,
    /// Continue this parent.
    Parent(Parent),
    /// Malformed: a `NullSpan`.
    Malformed,
}

/// The first line of header `name`, if any.
pub fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Replaces every `name` line with one `name: value`, as Envoy's
/// `setByReferenceKey` does.
fn set(headers: &mut Headers, name: &str, value: String) {
    headers.retain(|(n, _)| n != name);
    headers.push((name.to_owned(), value));
}

/// `StringUtil::atoull(value, out, 16)`: `strtoull` in base 16 (an optional
/// `0x`, hex digits of either case) that must consume the whole value and
/// not overflow. (`strtoull`'s leading blanks and sign are not modelled:
/// HTTP trims the one, and no test sends the other.)
fn atoull16(value: &str) -> Option<u64> {
    let digits = value
        .strip_prefix("0x")
        .or_else(|| value.strip_prefix("0X"))
        .unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(digits, 16).ok()
}

fn hex16(id: u64) -> String {
    format!("{id:016x}")
}

/// A B3 trace id as Envoy parses it: 32 characters in two `atoull` halves,
/// anything else in one. Returns it as Envoy writes it back.
fn b3_trace_id(value: &str) -> Option<String> {
    if value.len() == 32 {
        let (high, low) = (atoull16(&value[..16])?, atoull16(&value[16..])?);
        // `is128BitTraceId` is `trace_id_high != 0`.
        Some(if high == 0 {
            hex16(low)
        } else {
            format!("{}{}", hex16(high), hex16(low))
        })
    } else {
        atoull16(value).map(hex16)
    }
}

/// `extractSpanContextFromB3SingleFormat`: `trace-span[-sampled[-parent]]`,
/// or a lone sampling flag (no context).
fn b3_single(value: &str) -> Context {
    if matches!(value, "0" | "1" | "d") {
        return Context::None;
    }
    let fields: Vec<&str> = value.split('-').collect();
    let parsed = (|| {
        let (trace, span) = (fields.first()?, fields.get(1)?);
        if !matches!(trace.len(), 16 | 32) || span.len() != 16 || fields.len() > 4 {
            return None;
        }
        if let Some(sampled) = fields.get(2) {
            matches!(*sampled, "0" | "1" | "d").then_some(())?;
        }
        if let Some(parent) = fields.get(3) {
            (parent.len() == 16).then_some(())?;
            atoull16(parent)?;
        }
        Some((b3_trace_id(trace)?, hex16(atoull16(span)?)))
    })();
    parsed.map_or(Context::Malformed, Context::Parent)
}

/// `SpanContextExtractor::extractSpanContext` of the Zipkin tracer, B3 only.
fn b3_context(headers: &Headers) -> Context {
    if let Some(single) = header(headers, "b3") {
        return b3_single(single);
    }
    let (Some(trace), Some(span)) = (
        header(headers, "x-b3-traceid"),
        header(headers, "x-b3-spanid"),
    ) else {
        return Context::None;
    };
    let parent_ok = header(headers, "x-b3-parentspanid")
        .filter(|p| !p.is_empty())
        .is_none_or(|p| atoull16(p).is_some());
    match (b3_trace_id(trace), atoull16(span)) {
        (Some(trace), Some(span)) if parent_ok => Context::Parent((trace, hex16(span))),
        _ => Context::Malformed,
    }
}

/// The OpenTelemetry tracer's `SpanContextExtractor::extractSpanContext`.
fn traceparent_context(headers: &Headers) -> Context {
    let Some(value) = header(headers, "traceparent") else {
        return Context::None;
    };
    let fields: Vec<&str> = value.split('-').filter(|f| !f.is_empty()).collect();
    let hex = |f: &str| f.bytes().all(|b| b.is_ascii_hexdigit());
    let zeros = |f: &str| f.bytes().all(|b| b == b'0');
    match fields[..] {
        [version, trace, span, flags]
            if value.len() == 55
                && [(version, 2), (trace, 32), (span, 16), (flags, 2)]
                    .iter()
                    .all(|(f, len)| f.len() == *len && hex(f))
                && !zeros(trace)
                && !zeros(span) =>
        {
            Context::Parent((trace.to_ascii_lowercase(), span.to_ascii_lowercase()))
        }
        _ => Context::Malformed,
    }
}

/// Every `tracestate` line, joined with `,`.
fn tracestate(headers: &Headers) -> String {
    headers
        .iter()
        .filter(|(n, _)| n == "tracestate")
        .map(|(_, v)| v.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// A trace id as `traceparent` carries it: 32 digits, a 64-bit one padded.
fn w3c_trace_id(trace: &str) -> String {
    format!("{trace:0>32}")
}

impl Provider {
    /// Both providers, zipkin (the default) first.
    pub const ALL: [Provider; 2] = [Provider::Zipkin, Provider::Otel];

    /// `TRACING=` of `make install-istio`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Zipkin => "zipkin",
            Self::Otel => "otel",
        }
    }

    /// What this provider's Envoy reads from `headers`.
    fn context(self, headers: &Headers) -> Context {
        match self {
            Self::Otel => traceparent_context(headers),
            Self::Zipkin => match b3_context(headers) {
                // The W3C fallback; an invalid `traceparent` is no context.
                Context::None => match traceparent_context(headers) {
                    Context::Malformed => Context::None,
                    found => found,
                },
                found => found,
            },
        }
    }

    /// The parent this provider's Envoy continues from `headers`, if it
    /// makes a span and does not start the trace.
    pub fn parent(self, headers: &Headers) -> Option<(String, String)> {
        match self.context(headers) {
            Context::Parent((trace, span)) => Some((w3c_trace_id(&trace), span)),
            Context::None | Context::Malformed => None,
        }
    }

    /// One Envoy span on the way: it continues the parent it reads (or
    /// starts trace `new_trace_id`), takes `span_id`, and writes its context
    /// into `headers` for the next hop; or, when what it reads is malformed,
    /// a [`Hop::Null`] that leaves `headers` as they are.
    pub fn hop(self, headers: &mut Headers, span_id: &str, new_trace_id: &str) -> Hop {
        let (trace_id, parent_span_id) = match self.context(headers) {
            Context::Malformed => return Hop::Null,
            Context::None => (new_trace_id.to_owned(), None),
            Context::Parent((trace, span)) => (trace, Some(span)),
        };
        let w3c_trace = w3c_trace_id(&trace_id);
        set(
            headers,
            "traceparent",
            format!("00-{w3c_trace}-{span_id}-01"),
        );
        match self {
            Self::Otel => {
                let state = if parent_span_id.is_some() {
                    tracestate(headers)
                } else {
                    String::new()
                };
                set(headers, "tracestate", state);
            }
            Self::Zipkin => {
                set(headers, "x-b3-traceid", trace_id);
                set(headers, "x-b3-spanid", span_id.to_owned());
                if let Some(parent) = &parent_span_id {
                    set(headers, "x-b3-parentspanid", parent.clone());
                }
                set(headers, "x-b3-sampled", "1".to_owned());
            }
        }
        Hop::Span(EnvoySpan {
            trace_id: w3c_trace,
            span_id: span_id.to_owned(),
            parent_span_id,
        })
    }

    /// The request through one `proxy`, whose spans take `span_ids` in
    /// order (one per [`Proxy::spans`]), each the child of the one before.
    /// Once one is a [`Hop::Null`], so are the rest.
    pub fn through(
        self,
        proxy: Proxy,
        headers: &mut Headers,
        span_ids: &[&str],
        new_trace_id: &str,
    ) -> Vec<Hop> {
        assert_eq!(
            span_ids.len(),
            proxy.spans(),
            "{proxy:?} makes that many spans"
        );
        let mut hops = Vec::with_capacity(span_ids.len());
        for span_id in span_ids {
            let hop = match hops.last() {
                Some(Hop::Null) => Hop::Null,
                _ => self.hop(headers, span_id, new_trace_id),
            };
            hops.push(hop);
        }
        hops
    }
}

#[cfg(test)]
#[path = "envoy_tracing_tests.rs"]
mod tests;
