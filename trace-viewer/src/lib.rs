//! A development view of traces, not a trace store: it receives OTLP/HTTP
//! protobuf, waits until a trace has been quiet for a moment, prints it as a
//! tree, and forgets it. Memory is bounded: at most `max_traces` traces wait
//! (the oldest is printed early when more arrive), and at most
//! 1000 spans a trace are kept (the rest are counted as
//! dropped).

use std::{
    collections::HashMap,
    fmt::Write as _,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::Router;
use otlp_receive::{
    DecodeError, ReceivedSpan, SpanKind, StatusCode as SpanStatus, decode_request,
    http_receiver::{self, ExportSink},
};
use span_tree::{MAX_INDENT_DEPTH, Mark, Node};

/// Spans kept per trace; more are counted as dropped.
pub(crate) const MAX_SPANS_PER_TRACE: usize = 1000;

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
    http_receiver::router(viewer, max_body_bytes)
}

impl ExportSink for Viewer {
    fn accept(&self, protobuf: &[u8], _gzipped: bool) -> Result<(), DecodeError> {
        let request = decode_request(protobuf)?;
        for tree in self.receive(otlp_receive::spans(request)) {
            print!("{tree}");
        }
        Ok(())
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

/// `spans` of trace `trace_id` as a tree: roots first, children in start
/// order, placed by [`span_tree::walk`]. Every span is drawn exactly once: a
/// span that cannot hang under a root (its parent never arrived, it is its
/// own parent, its id repeats an earlier span's, or its parents form a
/// cycle) is drawn at the top level, marked with why.
pub fn render(trace_id: &str, spans: &[ReceivedSpan], colour: bool) -> String {
    let paint = |code: &'static str| if colour { code } else { "" };
    let nodes: Vec<Node> = spans
        .iter()
        .map(|span| Node {
            span_id: &span.span_id,
            parent_span_id: (!span.parent_span_id.is_empty())
                .then_some(span.parent_span_id.as_str()),
            start: span.start_unix_nano,
        })
        .collect();
    let placed = span_tree::walk(&nodes);
    let mut out = String::new();
    let head = placed
        .iter()
        .find(|p| p.mark == Some(Mark::Root))
        .or(placed.first())
        .map(|p| &spans[p.index]);
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
    for p in placed {
        let span = &spans[p.index];
        line(&mut out, span, p.depth, &paint);
        let why = match p.mark {
            Some(Mark::Orphan) => format!("its parent {} never arrived", span.parent_span_id),
            Some(Mark::OwnParent) => "it names itself as its parent".to_owned(),
            Some(Mark::DuplicateId) => format!("an earlier span has the same id {}", span.span_id),
            Some(Mark::Cycle) => format!(
                "its parents form a cycle through {}, never reaching a root",
                span.parent_span_id
            ),
            Some(Mark::Root) | None => continue,
        };
        let _ = writeln!(out, "   ({why})");
    }
    out
}

/// One span's line, indented for `depth` up to [`MAX_INDENT_DEPTH`], with
/// the depth written out beyond it.
fn line(
    out: &mut String,
    span: &ReceivedSpan,
    depth: usize,
    paint: &dyn Fn(&'static str) -> &'static str,
) {
    let error = span.status == SpanStatus::Error;
    let deep = span_tree::depth_label(depth);
    let _ = writeln!(
        out,
        "{}└─ {deep}{}{:<14}{} {:<24} {:<6} {:>9}{}{}{}{}",
        "   ".repeat(depth.min(MAX_INDENT_DEPTH)),
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(id: &str, parent: &str, start: u64) -> ReceivedSpan {
        ReceivedSpan {
            service_name: "svc".to_owned(),
            resource: HashMap::new(),
            scope: Default::default(),
            name: format!("span-{id}"),
            kind: SpanKind::Internal,
            trace_id: "ab".repeat(16),
            span_id: id.to_owned(),
            parent_span_id: parent.to_owned(),
            attributes: HashMap::new(),
            status: SpanStatus::Unset,
            start_unix_nano: start,
            end_unix_nano: start + 1,
        }
    }

    /// The lines that draw a span (not the header, not a reason).
    fn span_lines(tree: &str) -> Vec<&str> {
        tree.lines().filter(|l| l.contains("└─ ")).collect()
    }

    #[test]
    fn a_span_with_a_root_s_id_naming_itself_as_parent_is_drawn_marked_not_followed() {
        let root = span("0000000000000001", "", 1);
        let twin = span("0000000000000001", "0000000000000001", 2);
        let tree = render("t", &[root, twin], false);
        assert_eq!(span_lines(&tree).len(), 2, "{tree}");
        assert!(
            tree.contains("(an earlier span has the same id 0000000000000001)"),
            "{tree}"
        );
    }

    #[test]
    fn a_span_that_is_its_own_parent_is_drawn_marked() {
        let tree = render(
            "t",
            &[span("00000000000000aa", "00000000000000aa", 1)],
            false,
        );
        assert_eq!(span_lines(&tree).len(), 1, "{tree}");
        assert!(tree.contains("(it names itself as its parent)"), "{tree}");
    }

    #[test]
    fn two_spans_that_are_each_others_parent_are_both_drawn() {
        let a = span("000000000000000a", "000000000000000b", 1);
        let b = span("000000000000000b", "000000000000000a", 2);
        let tree = render("t", &[b, a], false);
        let lines = span_lines(&tree);
        assert_eq!(lines.len(), 2, "{tree}");
        assert!(lines[0].starts_with("└─ ") && lines[0].contains("span-000000000000000a"));
        assert!(lines[1].starts_with("   └─ ") && lines[1].contains("span-000000000000000b"));
        assert!(
            tree.contains(
                "(its parents form a cycle through 000000000000000b, never reaching a root)"
            ),
            "{tree}"
        );
    }

    #[test]
    fn a_five_thousand_span_chain_draws_without_growing_the_stack_or_the_indent() {
        let spans: Vec<ReceivedSpan> = (0..5000u64)
            .map(|i| {
                let parent = if i == 0 {
                    String::new()
                } else {
                    format!("{i:016x}")
                };
                span(&format!("{:016x}", i + 1), &parent, i)
            })
            .collect();
        // A small stack: a recursive walk of 5,000 levels would overflow it.
        let tree = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || render("t", &spans, false))
            .unwrap()
            .join()
            .expect("no stack overflow");
        let lines = span_lines(&tree);
        assert_eq!(lines.len(), 5000);
        let widest = lines.iter().map(|l| l.find("└─").unwrap()).max().unwrap();
        assert_eq!(widest, 3 * MAX_INDENT_DEPTH);
        assert!(lines[4999].contains("[depth 4999] "), "{}", lines[4999]);
        assert!(!lines[MAX_INDENT_DEPTH].contains("[depth"));
        assert!(
            lines[MAX_INDENT_DEPTH + 1].contains(&format!("[depth {}] ", MAX_INDENT_DEPTH + 1))
        );
    }

    mod property {
        use proptest::prelude::*;

        use super::*;

        /// Up to 60 spans over 6 ids, so ids repeat, parents point at
        /// each other, at themselves, at nothing and in circles.
        fn spans() -> impl Strategy<Value = Vec<(u8, Option<u8>, u64)>> {
            prop::collection::vec((0u8..6, prop::option::of(0u8..8), 0u64..50), 0..60)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            #[test]
            fn every_span_received_is_drawn_once_or_counted_as_dropped(raw in spans()) {
                let id = |n: u8| format!("{:016x}", u64::from(n) + 1);
                let spans: Vec<ReceivedSpan> = raw
                    .iter()
                    .enumerate()
                    .map(|(i, (own, parent, start))| {
                        let mut s = span(&id(*own), &parent.map(id).unwrap_or_default(), *start);
                        s.name = format!("n{i}");
                        s
                    })
                    .collect();
                let tree = render("t", &spans, false);
                let lines = span_lines(&tree);
                prop_assert_eq!(lines.len(), spans.len(), "{}", tree);
                for s in &spans {
                    let name = format!(" {} ", s.name);
                    prop_assert_eq!(lines.iter().filter(|l| l.contains(&name)).count(), 1, "{}", tree);
                }

                // Through the viewer: what is over its bound is counted.
                let viewer = Viewer::new(Duration::ZERO, 1, false);
                let _ = viewer.receive(spans.clone());
                let printed: usize = viewer.finished(true).iter().map(|t| span_lines(t).len()).sum();
                let (_, dropped) = viewer.counts();
                prop_assert_eq!(printed as u64 + dropped, spans.len() as u64);
            }
        }
    }
}
