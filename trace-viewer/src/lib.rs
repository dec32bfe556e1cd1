//! A development view of traces, not a trace store: it receives OTLP/HTTP
//! protobuf, waits until a trace has been quiet for a moment, prints it as a
//! tree, and forgets it. Memory is bounded: at most `max_traces` traces wait
//! (the oldest is printed early when more arrive), and at most
//! [`MAX_SPANS_PER_TRACE`] spans a trace are kept (the rest are counted as
//! dropped).

use std::{
    collections::HashMap,
    fmt::Write as _,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Bytes,
    extract::{DefaultBodyLimit, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use otlp_spans::{ReceivedSpan, SpanKind, StatusCode as SpanStatus, decode_http_body};

/// Spans kept per trace; more are counted as dropped.
pub const MAX_SPANS_PER_TRACE: usize = 1000;

/// What the viewer holds between receiving spans and printing trees.
#[derive(Debug)]
pub struct Viewer {
    pending: Mutex<Pending>,
    quiet: Duration,
    max_traces: usize,
    colour: bool,
}

#[derive(Debug, Default)]
struct Pending {
    traces: HashMap<String, Trace>,
    dropped_spans: u64,
    shown: u64,
}

#[derive(Debug)]
struct Trace {
    spans: Vec<ReceivedSpan>,
    first: Instant,
    last: Instant,
}

impl Viewer {
    /// A viewer that prints a trace once no span of it arrived for `quiet`,
    /// holding at most `max_traces` at once.
    pub fn new(quiet: Duration, max_traces: usize, colour: bool) -> Arc<Self> {
        Arc::new(Self {
            pending: Mutex::new(Pending::default()),
            quiet,
            max_traces: max_traces.max(1),
            colour,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes in `spans`; returns the trees of traces pushed out early by
    /// the bound on waiting traces.
    pub fn receive(&self, spans: Vec<ReceivedSpan>) -> Vec<String> {
        let now = Instant::now();
        let mut pending = self.lock();
        let mut early = Vec::new();
        for span in spans {
            if !pending.traces.contains_key(&span.trace_id)
                && pending.traces.len() >= self.max_traces
                && let Some(oldest) = pending
                    .traces
                    .iter()
                    .min_by_key(|(_, t)| t.first)
                    .map(|(id, _)| id.clone())
            {
                let trace = pending.traces.remove(&oldest).expect("just found");
                pending.shown += 1;
                early.push(render(&oldest, &trace.spans, self.colour));
            }
            let trace = pending
                .traces
                .entry(span.trace_id.clone())
                .or_insert(Trace {
                    spans: Vec::new(),
                    first: now,
                    last: now,
                });
            trace.last = now;
            if trace.spans.len() < MAX_SPANS_PER_TRACE {
                trace.spans.push(span);
            } else {
                pending.dropped_spans += 1;
            }
        }
        early
    }

    /// The trees of traces quiet for the viewer's period (all of them when
    /// `everything`), removed from memory.
    pub fn finished(&self, everything: bool) -> Vec<String> {
        let now = Instant::now();
        let mut pending = self.lock();
        let done: Vec<String> = pending
            .traces
            .iter()
            .filter(|(_, t)| everything || now.duration_since(t.last) >= self.quiet)
            .map(|(id, _)| id.clone())
            .collect();
        let mut trees = Vec::new();
        for id in done {
            let trace = pending.traces.remove(&id).expect("just listed");
            pending.shown += 1;
            let started = trace.spans.iter().map(|s| s.start_unix_nano).min();
            trees.push((started, render(&id, &trace.spans, self.colour)));
        }
        // In the order the traces started.
        trees.sort_by_key(|(started, _)| *started);
        trees.into_iter().map(|(_, tree)| tree).collect()
    }

    /// Traces shown and spans dropped so far.
    pub fn counts(&self) -> (u64, u64) {
        let pending = self.lock();
        (pending.shown, pending.dropped_spans)
    }
}

/// The OTLP/HTTP endpoint, `POST /v1/traces`, with bodies of at most
/// `max_body_bytes` (413 past it, 400 for what is not OTLP).
pub fn router(viewer: Arc<Viewer>, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/v1/traces", post(export))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state((viewer, max_body_bytes as u64))
}

fn plain(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn export(
    State((viewer, max)): State<(Arc<Viewer>, u64)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let gzipped = headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|e| e == "gzip");
    match decode_http_body(&body, gzipped, max) {
        Ok(request) => {
            for tree in viewer.receive(otlp_spans::spans(request)) {
                print!("{tree}");
            }
            // An empty ExportTraceServiceResponse.
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/x-protobuf")],
                Vec::new(),
            )
                .into_response()
        }
        Err(otlp_spans::DecodeError::TooLarge) => {
            plain(StatusCode::PAYLOAD_TOO_LARGE, "body too large\n".into())
        }
        Err(error) => plain(StatusCode::BAD_REQUEST, format!("{error}\n")),
    }
}

const BOLD: &str = "\x1b[1m";
const DIM: &str = "\x1b[2m";
const RED: &str = "\x1b[31m";
const CYAN: &str = "\x1b[36m";
const RESET: &str = "\x1b[0m";

fn ms(span: &ReceivedSpan) -> String {
    format!("{:.2} ms", span.duration().as_secs_f64() * 1e3)
}

fn kind(span: &ReceivedSpan) -> &'static str {
    match span.kind {
        SpanKind::Internal => "INTERNAL",
        SpanKind::Server => "SERVER",
        SpanKind::Client => "CLIENT",
        SpanKind::Producer => "PRODUCER",
        SpanKind::Consumer => "CONSUMER",
        SpanKind::Unspecified => "SPAN",
    }
}

/// The few attributes worth a glance, in a fixed order.
fn highlights(span: &ReceivedSpan) -> String {
    let mut out = String::new();
    for key in [
        "http.response.status_code",
        "user_agent.original",
        "url.full",
        "baggage.user_agent",
        "error.type",
    ] {
        if let Some(value) = span.attributes.get(key) {
            let key = if key == "baggage.user_agent" {
                "baggage user-agent"
            } else {
                key
            };
            let _ = write!(out, "  {key}={value}");
        }
    }
    out
}

/// `spans` of trace `trace_id` as a tree: roots first (a span whose parent
/// never arrived is a root, marked so), children in start order.
pub fn render(trace_id: &str, spans: &[ReceivedSpan], colour: bool) -> String {
    let paint = |code: &'static str| if colour { code } else { "" };
    let ids: std::collections::HashSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    let mut roots: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|s| s.parent_span_id.is_empty() || !ids.contains(s.parent_span_id.as_str()))
        .collect();
    roots.sort_by_key(|s| s.start_unix_nano);
    let mut out = String::new();
    let head = roots.first().copied();
    let status = head
        .and_then(|s| s.int_attr("http.response.status_code"))
        .map(|code| format!(" → {code}"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "{}trace {trace_id}{}  {}{status}  {}",
        paint(BOLD),
        paint(RESET),
        head.map_or("", |s| s.name.as_str()),
        head.map(ms).unwrap_or_default(),
    );
    fn walk(
        out: &mut String,
        spans: &[ReceivedSpan],
        span: &ReceivedSpan,
        depth: usize,
        orphan: bool,
        paint: &dyn Fn(&'static str) -> &'static str,
    ) {
        let error = span.status == SpanStatus::Error;
        let _ = writeln!(
            out,
            "{}└─ {}{:<14}{} {:<24} {:<6} {:>9}{}{}{}{}",
            "   ".repeat(depth),
            paint(CYAN),
            span.service_name,
            paint(RESET),
            span.name,
            kind(span),
            ms(span),
            if error { paint(RED) } else { paint(DIM) },
            highlights(span),
            if error { "  ERROR" } else { "" },
            paint(RESET),
        );
        if orphan {
            let _ = writeln!(
                out,
                "{}   (its parent {} never arrived)",
                "   ".repeat(depth),
                span.parent_span_id
            );
        }
        let mut children: Vec<&ReceivedSpan> = spans
            .iter()
            .filter(|s| s.parent_span_id == span.span_id)
            .collect();
        children.sort_by_key(|s| s.start_unix_nano);
        for child in children {
            walk(out, spans, child, depth + 1, false, paint);
        }
    }
    for root in roots {
        let orphan = !root.parent_span_id.is_empty();
        walk(&mut out, spans, root, 0, orphan, &paint);
    }
    out
}
