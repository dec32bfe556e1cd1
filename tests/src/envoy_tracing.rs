//! Envoy's tracers as Istio's two providers configure them
//! (`make install-istio TRACING=zipkin|otel`), as far as context headers go:
//! what a gateway or sidecar takes as its span's parent, and what it writes
//! on the request it forwards. Every other header passes through untouched,
//! a stale `x-b3-*` or `traceparent` included.
//!
//! Copied from envoyproxy/envoy's tracers (the proxy Istio 1.30.3 ships):
//! - **otel**, `source/extensions/tracers/opentelemetry/`:
//!   `span_context_extractor.cc` reads the parent from `traceparent` only;
//!   `tracer.cc`, `Span::injectContext`, sets `traceparent`
//!   (`00-<trace>-<span>-<sampled>`) and `tracestate`, both with
//!   `setByReferenceKey`, which replaces the header, `tracestate` even when
//!   empty. Istio 1.30.3 configures no other format for this provider
//!   (`pilot/pkg/networking/core/tracing.go`).
//! - **zipkin** with `USE_B3_WITH_W3C_PROPAGATION`
//!   (`k8s/istio/tracing-zipkin.yaml`): `api/envoy/config/trace/v3/zipkin.proto`,
//!   `TraceContextOption`: "Extract from B3 headers first, fallback to W3C
//!   traceparent … Inject both B3 and W3C traceparent headers";
//!   `source/extensions/tracers/zipkin/zipkin_tracer_impl.cc`,
//!   `ZipkinSpan::injectContext`, sets `x-b3-traceid`, `x-b3-spanid`,
//!   `x-b3-parentspanid` and `x-b3-sampled` with `setByReferenceKey`; the
//!   single `b3` header is read (`span_context_extractor.cc`) but never
//!   written, so a client's passes through.
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

/// A span an Envoy made on one hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvoySpan {
    /// 32 lower-hex digits.
    pub trace_id: String,
    /// 16 lower-hex digits.
    pub span_id: String,
    /// The span it continues, or `None` when it started the trace.
    pub parent_span_id: Option<String>,
}

fn get<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
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

fn is_hex(value: &str, len: usize) -> bool {
    value.len() == len
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `(trace id, span id)` from a version-00 `traceparent`.
fn traceparent_parent(headers: &Headers) -> Option<(String, String)> {
    let fields: Vec<&str> = get(headers, "traceparent")?.split('-').collect();
    match fields[..] {
        ["00", trace, span, flags] if is_hex(trace, 32) && is_hex(span, 16) && is_hex(flags, 2) => {
            Some((trace.to_owned(), span.to_owned()))
        }
        _ => None,
    }
}

/// `(trace id, span id)` from B3: the single `b3` header first, then
/// `x-b3-traceid`/`x-b3-spanid`.
fn b3_parent(headers: &Headers) -> Option<(String, String)> {
    if let Some(single) = get(headers, "b3") {
        let fields: Vec<&str> = single.split('-').collect();
        if fields.len() >= 2 && is_hex(fields[0], 32) && is_hex(fields[1], 16) {
            return Some((fields[0].to_owned(), fields[1].to_owned()));
        }
    }
    let trace = get(headers, "x-b3-traceid")?;
    let span = get(headers, "x-b3-spanid")?;
    (is_hex(trace, 32) && is_hex(span, 16)).then(|| (trace.to_owned(), span.to_owned()))
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

    /// The parent this provider's Envoy reads from `headers`.
    pub fn parent(self, headers: &Headers) -> Option<(String, String)> {
        match self {
            Self::Zipkin => b3_parent(headers).or_else(|| traceparent_parent(headers)),
            Self::Otel => traceparent_parent(headers),
        }
    }

    /// One Envoy span on the way: it continues the parent it reads (or
    /// starts trace `new_trace_id`), takes `span_id`, and writes its context
    /// into `headers` for the next hop.
    pub fn hop(self, headers: &mut Headers, span_id: &str, new_trace_id: &str) -> EnvoySpan {
        let parent = self.parent(headers);
        let trace_id = parent
            .as_ref()
            .map_or_else(|| new_trace_id.to_owned(), |(t, _)| t.clone());
        let parent_span_id = parent.map(|(_, s)| s);
        set(
            headers,
            "traceparent",
            format!("00-{trace_id}-{span_id}-01"),
        );
        match self {
            Self::Otel => {
                let tracestate = get(headers, "tracestate").unwrap_or_default().to_owned();
                set(headers, "tracestate", tracestate);
            }
            Self::Zipkin => {
                set(headers, "x-b3-traceid", trace_id.clone());
                set(headers, "x-b3-spanid", span_id.to_owned());
                match &parent_span_id {
                    Some(parent) => set(headers, "x-b3-parentspanid", parent.clone()),
                    None => headers.retain(|(n, _)| n != "x-b3-parentspanid"),
                }
                set(headers, "x-b3-sampled", "1".to_owned());
            }
        }
        EnvoySpan {
            trace_id,
            span_id: span_id.to_owned(),
            parent_span_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Headers {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    const T1: &str = "11111111111111111111111111111111";
    const T2: &str = "22222222222222222222222222222222";

    #[test]
    fn the_otel_provider_reads_and_writes_traceparent_and_leaves_b3_stale() {
        let mut h = headers(&[
            ("traceparent", &format!("00-{T1}-aaaaaaaaaaaaaaaa-01")),
            ("x-b3-traceid", T2),
            ("x-b3-spanid", "bbbbbbbbbbbbbbbb"),
        ]);
        let span = Provider::Otel.hop(&mut h, "cccccccccccccccc", T2);
        assert_eq!(span.trace_id, T1);
        assert_eq!(span.parent_span_id.as_deref(), Some("aaaaaaaaaaaaaaaa"));
        assert_eq!(
            get(&h, "traceparent"),
            Some(format!("00-{T1}-cccccccccccccccc-01").as_str())
        );
        assert_eq!(get(&h, "tracestate"), Some(""));
        assert_eq!(get(&h, "x-b3-spanid"), Some("bbbbbbbbbbbbbbbb"));
    }

    #[test]
    fn the_zipkin_provider_prefers_b3_and_writes_both_formats_for_its_span() {
        let mut h = headers(&[
            ("traceparent", &format!("00-{T1}-aaaaaaaaaaaaaaaa-01")),
            ("x-b3-traceid", T2),
            ("x-b3-spanid", "bbbbbbbbbbbbbbbb"),
        ]);
        let span = Provider::Zipkin.hop(&mut h, "cccccccccccccccc", T1);
        assert_eq!(span.trace_id, T2);
        assert_eq!(span.parent_span_id.as_deref(), Some("bbbbbbbbbbbbbbbb"));
        assert_eq!(
            get(&h, "traceparent"),
            Some(format!("00-{T2}-cccccccccccccccc-01").as_str())
        );
        assert_eq!(get(&h, "x-b3-spanid"), Some("cccccccccccccccc"));
        assert_eq!(get(&h, "x-b3-parentspanid"), Some("bbbbbbbbbbbbbbbb"));
    }

    #[test]
    fn with_nothing_to_continue_envoy_starts_the_trace() {
        let mut h = headers(&[("user-agent", "curl/8.5.0")]);
        for provider in Provider::ALL {
            let span = provider.hop(&mut h.clone(), "cccccccccccccccc", T1);
            assert_eq!(span.trace_id, T1);
            assert_eq!(span.parent_span_id, None);
        }
        let span = Provider::Zipkin.hop(&mut h, "cccccccccccccccc", T1);
        assert_eq!(span.parent_span_id, None);
        assert!(get(&h, "x-b3-parentspanid").is_none());
    }
}
