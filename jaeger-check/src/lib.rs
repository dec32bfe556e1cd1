//! Reads traces from Jaeger's query API and checks the trees the mesh should
//! make. `scripts/mesh-e2e.sh` fetches the JSON from a live cluster; the
//! tests here feed it fixtures of the same shape.
//!
//! The JSON is what Jaeger's UI reads, and Jaeger v2 still serves it:
//! `GET /api/traces/{trace-id}` for one trace, `GET /api/traces?service=…`
//! for a search. Both answer `{"data": [trace, …]}`, each trace holding
//! `spans` (with `references` to their parents and `tags`) and `processes`
//! (the `serviceName` and resource tags a span's `processID` points at).
//!
//! Who made a span is read from its service name. Istio gives every Envoy's
//! tracer the node's service cluster (`configureFromProviderConfig` in
//! istio/istio 1.30.3 `pilot/pkg/networking/core/tracing.go` passes
//! `proxy.XdsNode.Cluster`), which `serviceClusterOrDefault`
//! (`pkg/bootstrap/config.go`) makes `<app>.<namespace>`, `<app>` being the
//! pod's `app`, else `app.kubernetes.io/name`, else
//! `service.istio.io/canonical-name` label (`pkg/kube/labels/labels.go`):
//! - the sidecar data plane's ingress gateway: `istio-ingressgateway.<namespace>`;
//! - the ambient data plane's Gateway API ingress: its Deployment is
//!   `<Gateway name>-<class>` (`GetDefaultName`,
//!   `pilot/pkg/config/kube/gatewaycommon/gateway_utils.go`), so
//!   `hello-gateway-istio`, and its pods carry only the canonical-name label
//!   (`manifests/charts/istio-control/istio-discovery/files/kube-gateway.yaml`):
//!   `hello-gateway-istio.<namespace>`;
//! - the ambient waypoint: the `istio-waypoint` class adds no suffix
//!   (`DisableNameSuffix`, `gatewaycommon/classinfo.go`), so the Gateway
//!   `waypoint` makes `waypoint.<namespace>` (`files/waypoint.yaml`);
//! - a sidecar's Envoy: `<app label>.<namespace>`, or any span tagged
//!   `component=proxy`;
//! - the application: its `OTEL_SERVICE_NAME`, which has no dot.

use std::{
    collections::{HashMap, HashSet},
    fmt::Write as _,
};

use serde::Deserialize;
use serde_json::Value;
use span_tree::{MAX_INDENT_DEPTH, Mark, Node, Placed};

/// A query API answer: one trace, or a search's many.
#[derive(Debug, Clone, Deserialize)]
pub struct Response {
    /// The traces found.
    #[serde(default)]
    pub data: Vec<Trace>,
}

/// One trace as the query API returns it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Trace {
    /// 32 (or 16) lowercase hex digits.
    #[serde(rename = "traceID")]
    pub trace_id: String,
    /// Every span Jaeger holds for the trace, in no particular order.
    pub spans: Vec<Span>,
    /// The processes (services) the spans' `processID`s name.
    pub processes: HashMap<String, Process>,
}

/// One span.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Span {
    /// 16 lowercase hex digits.
    #[serde(rename = "spanID")]
    pub span_id: String,
    /// The span's name.
    pub operation_name: String,
    /// Its parent, as a `CHILD_OF` reference (none for a root).
    #[serde(default)]
    pub references: Vec<Reference>,
    /// Microseconds since the epoch.
    #[serde(default)]
    pub start_time: u64,
    /// Microseconds.
    #[serde(default)]
    pub duration: u64,
    /// Attributes; the span kind is the `span.kind` tag.
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// The key of its process in [`Trace::processes`].
    #[serde(rename = "processID")]
    pub process_id: String,
}

/// A link from a span to another.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reference {
    /// `CHILD_OF` (the parent) or `FOLLOWS_FROM`.
    pub ref_type: String,
    /// The other span's id.
    #[serde(rename = "spanID")]
    pub span_id: String,
}

/// A typed key and value.
#[derive(Debug, Clone, Deserialize)]
pub struct Tag {
    /// The attribute's name.
    pub key: String,
    /// Its value: a string, number or boolean as `type` says.
    pub value: Value,
}

/// The service that made spans, with its resource attributes as tags.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Process {
    /// `service.name`.
    pub service_name: String,
    /// The other resource attributes (`service.version`, …).
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// Which data plane carried the request: what spans the mesh adds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Dataplane {
    /// An Envoy sidecar beside every pod: each hop has a CLIENT span on the
    /// caller's side and a SERVER span on the callee's.
    #[default]
    Sidecar,
    /// ztunnel (no spans) and a waypoint in front of formatter-svc: one
    /// SERVER span per request there, none on the caller's side.
    Ambient,
}

/// The app part of the ambient ingress's service name (see the crate docs).
pub const AMBIENT_GATEWAY: &str = "hello-gateway-istio";
/// The app part of the ambient waypoint's service name (see the crate docs).
pub const WAYPOINT: &str = "waypoint";
/// The app part of the sidecar data plane's ingress gateway's service name.
pub const SIDECAR_GATEWAY: &str = "istio-ingressgateway";

/// Who made a span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Maker {
    /// The ingress gateway's Envoy: `istio-ingressgateway` with sidecars,
    /// the Gateway API Gateway's `hello-gateway-istio` in ambient.
    Gateway,
    /// The ambient waypoint's Envoy.
    Waypoint,
    /// The Envoy sidecar of the workload with this `app` label.
    Sidecar(String),
    /// The application with this `service.name`.
    App(String),
}

/// `span.kind` as Jaeger writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Received a request.
    Server,
    /// Sent one.
    Client,
    /// Anything else, or no kind.
    Other,
}

fn tag<'a>(tags: &'a [Tag], key: &str) -> Option<&'a Value> {
    tags.iter().find(|t| t.key == key).map(|t| &t.value)
}

fn tag_text(tags: &[Tag], key: &str) -> Option<String> {
    tag(tags, key).map(|v| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

impl Trace {
    /// Parses a query API answer holding exactly one trace.
    pub fn from_json(json: &str) -> Result<Self, String> {
        let mut response = Response::from_json(json)?;
        match response.data.len() {
            1 => Ok(response.data.remove(0)),
            n => Err(format!("expected one trace in the answer, found {n}")),
        }
    }

    fn process(&self, span: &Span) -> Option<&Process> {
        self.processes.get(&span.process_id)
    }

    /// The service name of the span's process.
    pub fn service(&self, span: &Span) -> &str {
        self.process(span).map_or("?", |p| p.service_name.as_str())
    }

    /// Who made `span`.
    pub fn maker(&self, span: &Span) -> Maker {
        let service = self.service(span);
        let proxy = tag_text(&span.tags, "component").as_deref() == Some("proxy");
        if service.starts_with(SIDECAR_GATEWAY) {
            Maker::Gateway
        } else if let Some((app, _namespace)) = service.split_once('.') {
            match app {
                AMBIENT_GATEWAY => Maker::Gateway,
                WAYPOINT => Maker::Waypoint,
                _ => Maker::Sidecar(app.to_owned()),
            }
        } else if proxy {
            Maker::Sidecar(service.to_owned())
        } else {
            Maker::App(service.to_owned())
        }
    }

    /// The span's kind, from its `span.kind` tag.
    pub fn kind(span: &Span) -> Kind {
        match tag_text(&span.tags, "span.kind").as_deref() {
            Some("server") => Kind::Server,
            Some("client") => Kind::Client,
            _ => Kind::Other,
        }
    }

    /// The span's parent id, if it names one.
    pub fn parent_id(span: &Span) -> Option<&str> {
        span.references
            .iter()
            .find(|r| r.ref_type == "CHILD_OF")
            .map(|r| r.span_id.as_str())
    }

    /// The span with this id.
    pub fn span(&self, id: &str) -> Option<&Span> {
        self.spans.iter().find(|s| s.span_id == id)
    }

    /// The spans `maker` made with `kind`.
    pub fn find(&self, maker: &Maker, kind: Kind) -> Vec<&Span> {
        self.spans
            .iter()
            .filter(|s| self.maker(s) == *maker && Self::kind(s) == kind)
            .collect()
    }

    /// A resource attribute of the span's process.
    pub fn resource(&self, span: &Span, key: &str) -> Option<String> {
        self.process(span).and_then(|p| tag_text(&p.tags, key))
    }

    /// Spans whose parent is not in the trace, or that have none: one, the
    /// gateway's SERVER span, when the trace is joined up.
    pub fn roots(&self) -> Vec<&Span> {
        let ids: HashSet<&str> = self.spans.iter().map(|s| s.span_id.as_str()).collect();
        self.spans
            .iter()
            .filter(|s| Self::parent_id(s).is_none_or(|p| !ids.contains(p)))
            .collect()
    }

    /// The trace as [`span_tree::walk`] places it: down from the roots, then
    /// each span no root reaches, marked.
    fn walk(&self) -> Vec<Placed> {
        let nodes: Vec<Node> = self
            .spans
            .iter()
            .map(|span| Node {
                span_id: &span.span_id,
                parent_span_id: Self::parent_id(span),
                start: span.start_time,
            })
            .collect();
        span_tree::walk(&nodes)
    }

    /// Spans no walk down from a root reaches: their parents go round in a
    /// circle (a span naming itself as parent is the smallest), or hang
    /// under one that does.
    pub fn circular(&self) -> Vec<&Span> {
        let mut in_circle = false;
        let mut circular = Vec::new();
        for placed in self.walk() {
            if let Some(mark) = placed.mark {
                in_circle = matches!(mark, Mark::Cycle | Mark::OwnParent);
            }
            if in_circle {
                circular.push(&self.spans[placed.index]);
            }
        }
        circular
    }

    /// The trace as an indented tree, children by start time, for a person
    /// reading a failure. Every span is drawn once; what no root reaches is
    /// drawn after the roots, marked. Past [`MAX_INDENT_DEPTH`] levels the
    /// indent stops growing and the depth is written out.
    pub fn render(&self) -> String {
        let mut out = format!("trace {} ({} spans)\n", self.trace_id, self.spans.len());
        for placed in self.walk() {
            let span = &self.spans[placed.index];
            let parent = Self::parent_id(span).unwrap_or_default();
            let why = match placed.mark {
                Some(Mark::Cycle | Mark::OwnParent) => {
                    format!("no root above: its parents go round in a circle through {parent}")
                }
                Some(Mark::Orphan) => format!("parent {parent} is not in the trace"),
                Some(Mark::DuplicateId) => {
                    format!("an earlier span has the same id {}", span.span_id)
                }
                Some(Mark::Root) | None => String::new(),
            };
            if !why.is_empty() {
                let _ = writeln!(out, "  ({why})");
            }
            self.render_span(span, placed.depth + 1, &mut out);
        }
        out
    }

    fn render_span(&self, span: &Span, depth: usize, out: &mut String) {
        let maker = match self.maker(span) {
            Maker::Gateway => "gateway".to_owned(),
            Maker::Waypoint => "waypoint".to_owned(),
            Maker::Sidecar(app) => format!("sidecar of {app}"),
            Maker::App(service) => format!("app {service}"),
        };
        let version = self
            .resource(span, "service.version")
            .map(|v| format!(" service.version={v}"))
            .unwrap_or_default();
        let deep = span_tree::depth_label(depth);
        let _ = writeln!(
            out,
            "{:indent$}{deep}{} {:?} [{}] {} {}µs{version}",
            "",
            self.service(span),
            Self::kind(span),
            maker,
            span.operation_name,
            span.duration,
            indent = depth.min(MAX_INDENT_DEPTH) * 2
        );
    }
}

impl Response {
    /// Parses a query API answer.
    pub fn from_json(json: &str) -> Result<Self, String> {
        serde_json::from_str(json).map_err(|e| format!("not a Jaeger query API answer: {e}"))
    }
}

/// What went wrong in a trace, one sentence each; empty when it is right.
pub type Findings = Vec<String>;

const HELLO: &str = "hello-svc";
const FORMATTER: &str = "formatter-svc";

/// Checks the parent of `child` is one of `parents`; says what it is if not.
fn expect_parent(
    trace: &Trace,
    child: &Span,
    child_name: &str,
    parents: &[&Span],
    parent_name: &str,
    findings: &mut Findings,
) {
    let parent = Trace::parent_id(child);
    if parents.iter().any(|p| Some(p.span_id.as_str()) == parent) {
        return;
    }
    let actual = match parent.map(|id| (id, trace.span(id))) {
        None => "it is a root".to_owned(),
        Some((id, None)) => format!("its parent {id} is not in the trace (the join is missing)"),
        Some((_, Some(p))) => format!(
            "its parent is {} {:?} `{}`",
            trace.service(p),
            Trace::kind(p),
            p.operation_name
        ),
    };
    findings.push(format!(
        "{child_name} should be a child of {parent_name}, but {actual}"
    ));
}

/// The one span `maker` made with `kind`, or a finding.
fn one<'a>(
    trace: &'a Trace,
    maker: &Maker,
    kind: Kind,
    name: &str,
    findings: &mut Findings,
) -> Option<&'a Span> {
    let found = trace.find(maker, kind);
    match found.as_slice() {
        [span] => Some(span),
        [] => {
            findings.push(format!("no {name}"));
            None
        }
        many => {
            findings.push(format!(
                "{} spans look like {name}, expected one",
                many.len()
            ));
            None
        }
    }
}

fn joined_up(trace: &Trace, findings: &mut Findings) {
    let circular = trace.circular();
    if !circular.is_empty() {
        findings.push(format!(
            "{} span(s) never reach a root, their parents going round in a circle: {}",
            circular.len(),
            circular
                .iter()
                .map(|s| format!("{} `{}` {}", trace.service(s), s.operation_name, s.span_id))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let roots = trace.roots();
    if roots.len() != 1 {
        findings.push(format!(
            "the trace has {} roots, expected one (the gateway's): {}",
            roots.len(),
            roots
                .iter()
                .map(|s| format!("{} `{}`", trace.service(s), s.operation_name))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
}

/// One span a request should make: who makes it, its kind, and its name in
/// findings.
type Step = (Maker, Kind, &'static str);

/// Finds each step's one span, and checks each is the child of the step
/// before it (the first, of one of `gateway`'s spans). Returns the spans found.
fn check_path<'a>(
    trace: &'a Trace,
    path: &[Step],
    gateway: &[&Span],
    findings: &mut Findings,
) -> Vec<Option<&'a Span>> {
    let found: Vec<Option<&Span>> = path
        .iter()
        .map(|(maker, kind, name)| one(trace, maker, *kind, name, findings))
        .collect();
    if let Some(first) = found[0].filter(|_| !gateway.is_empty()) {
        expect_parent(trace, first, path[0].2, gateway, "a gateway span", findings);
    }
    for step in 1..path.len() {
        // With its expected parent missing (already reported), a span is
        // still checked, so the finding says where it hangs instead.
        if let Some(child) = found[step] {
            let parents: Vec<&Span> = found[step - 1].into_iter().collect();
            let (parent_name, child_name) = (path[step - 1].2, path[step].2);
            expect_parent(trace, child, child_name, &parents, parent_name, findings);
        }
    }
    found
}

fn gateway_spans(trace: &Trace) -> Vec<&Span> {
    trace
        .spans
        .iter()
        .filter(|s| trace.maker(s) == Maker::Gateway)
        .collect()
}

/// The spans a `/sayHello` request makes, each the parent of the next.
///
/// With sidecars, below any of the gateway's spans: hello's sidecar
/// (inbound), hello-svc's SERVER and CLIENT spans, hello's sidecar
/// (outbound), formatter's sidecar (inbound), formatter-svc's SERVER span.
///
/// In ambient, from the root: the gateway's SERVER and CLIENT spans (a
/// Router proxy spawns the upstream span), hello-svc's SERVER and CLIENT
/// spans, the waypoint's one SERVER span, formatter-svc's SERVER span.
/// ztunnel makes none.
fn say_hello_path(dataplane: Dataplane) -> Vec<Step> {
    let (hello, formatter) = (HELLO.to_owned(), FORMATTER.to_owned());
    let app_spans = [
        (
            Maker::App(hello.clone()),
            Kind::Server,
            "hello-svc SERVER span",
        ),
        (
            Maker::App(hello.clone()),
            Kind::Client,
            "hello-svc CLIENT span",
        ),
    ];
    let formatter_server = (
        Maker::App(formatter.clone()),
        Kind::Server,
        "formatter-svc SERVER span",
    );
    match dataplane {
        Dataplane::Sidecar => vec![
            (
                Maker::Sidecar(hello.clone()),
                Kind::Server,
                "hello's sidecar inbound span",
            ),
            app_spans[0].clone(),
            app_spans[1].clone(),
            (
                Maker::Sidecar(hello),
                Kind::Client,
                "hello's sidecar outbound span",
            ),
            (
                Maker::Sidecar(formatter),
                Kind::Server,
                "formatter's sidecar inbound span",
            ),
            formatter_server,
        ],
        Dataplane::Ambient => vec![
            (Maker::Gateway, Kind::Server, "gateway SERVER span"),
            (Maker::Gateway, Kind::Client, "gateway CLIENT span"),
            app_spans[0].clone(),
            app_spans[1].clone(),
            (Maker::Waypoint, Kind::Server, "waypoint SERVER span"),
            formatter_server,
        ],
    }
}

/// Checks `path` (see [`say_hello_path`]): with sidecars its first span
/// must hang under a gateway span; in ambient the path starts at the gateway.
fn check_path_on<'a>(
    trace: &'a Trace,
    path: &[Step],
    dataplane: Dataplane,
    findings: &mut Findings,
) -> Vec<Option<&'a Span>> {
    match dataplane {
        Dataplane::Sidecar => {
            let gateway = gateway_spans(trace);
            if gateway.is_empty() {
                findings.push("no span from the ingress gateway".to_owned());
            }
            check_path(trace, path, &gateway, findings)
        }
        Dataplane::Ambient => check_path(trace, path, &[], findings),
    }
}

/// The waypoint's operation name when it routes to formatter-svc `version`:
/// the route decorator `<host>:<port><path>` of the rule's one backend, the
/// Service `formatter-svc-<version>`, with `/*` for a rule with no path
/// match (`GetRouteOperation`, istio/istio 1.30.3
/// `pilot/pkg/networking/core/route/route.go`).
pub fn waypoint_operation(version: &str) -> String {
    format!("{FORMATTER}-{version}.default.svc.cluster.local:8080/*")
}

/// What only the ambient data plane must show: no sidecar span anywhere, no
/// CLIENT span from the waypoint (Istio spawns the upstream span for Router
/// proxies only), and the waypoint's operation naming the `version` the
/// request reached.
fn check_ambient(
    trace: &Trace,
    waypoint: Option<&Span>,
    version: Option<&str>,
    findings: &mut Findings,
) {
    let sidecars: Vec<String> = trace
        .spans
        .iter()
        .filter(|s| matches!(trace.maker(s), Maker::Sidecar(_)))
        .map(|s| format!("{} `{}`", trace.service(s), s.operation_name))
        .collect();
    if !sidecars.is_empty() {
        findings.push(format!(
            "{} span(s) from sidecars, which the ambient data plane has none of: {}",
            sidecars.len(),
            sidecars.join(", ")
        ));
    }
    let clients = trace.find(&Maker::Waypoint, Kind::Client).len();
    if clients > 0 {
        findings.push(format!(
            "the waypoint made {clients} CLIENT span(s): only a Router proxy (the ingress) spawns one"
        ));
    }
    if let (Some(span), Some(version)) = (waypoint, version) {
        let expected = waypoint_operation(version);
        if span.operation_name != expected {
            findings.push(format!(
                "waypoint SERVER span is named `{}`, expected `{expected}`: the route chose another version",
                span.operation_name
            ));
        }
    }
}

/// The span of `found` (as [`check_path`] returns) made by `maker`.
fn found_by<'a>(path: &[Step], found: &[Option<&'a Span>], maker: &Maker) -> Option<&'a Span> {
    path.iter()
        .zip(found)
        .find(|((m, _, _), _)| m == maker)
        .and_then(|(_, span)| *span)
}

/// A `/sayHello` trace through `dataplane`: joined up under one root, each
/// proxy's and app's span on the request's path the parent of the next
/// (gateway, then hello-svc, then the sidecars or the waypoint, then
/// formatter-svc), and formatter-svc's
/// `service.version` is `version`. In ambient, also no sidecar span, no
/// CLIENT span from the waypoint, and the waypoint's operation names
/// `formatter-svc-<version>` ([`waypoint_operation`]).
pub fn check_say_hello(trace: &Trace, version: &str, dataplane: Dataplane) -> Findings {
    let mut findings = Findings::new();
    joined_up(trace, &mut findings);
    let path = say_hello_path(dataplane);
    let found = check_path_on(trace, &path, dataplane, &mut findings);
    if let Some(span) = found_by(&path, &found, &Maker::App(FORMATTER.to_owned())) {
        match trace.resource(span, "service.version") {
            Some(v) if v == version => {}
            Some(v) => findings.push(format!(
                "formatter-svc's service.version is {v}, expected {version}"
            )),
            None => findings.push("formatter-svc's spans have no service.version".to_owned()),
        }
    }
    if dataplane == Dataplane::Ambient {
        let waypoint = found_by(&path, &found, &Maker::Waypoint);
        check_ambient(trace, waypoint, Some(version), &mut findings);
    }
    findings
}

/// A `/sayHello2` trace through `dataplane`: the path of
/// [`check_say_hello`] without hello-svc's own two spans (it only copies
/// headers), and no span of hello-svc's application at all. In ambient, the
/// waypoint's operation must name the version formatter-svc reports.
pub fn check_say_hello2(trace: &Trace, dataplane: Dataplane) -> Findings {
    let mut findings = Findings::new();
    joined_up(trace, &mut findings);
    let path: Vec<Step> = say_hello_path(dataplane)
        .into_iter()
        .filter(|(maker, _, _)| !matches!(maker, Maker::App(app) if app == HELLO))
        .collect();
    let found = check_path_on(trace, &path, dataplane, &mut findings);
    let hello_app = trace
        .spans
        .iter()
        .filter(|s| trace.maker(s) == Maker::App(HELLO.to_owned()))
        .count();
    if hello_app > 0 {
        findings.push(format!(
            "{hello_app} span(s) of hello-svc's application: /sayHello2 only copies headers"
        ));
    }
    if dataplane == Dataplane::Ambient {
        let formatter = found_by(&path, &found, &Maker::App(FORMATTER.to_owned()));
        let version = formatter.and_then(|span| trace.resource(span, "service.version"));
        let waypoint = found_by(&path, &found, &Maker::Waypoint);
        check_ambient(trace, waypoint, version.as_deref(), &mut findings);
    }
    findings
}

/// No span in `traces` is a call to the trace collector: the services'
/// own OTLP export must bypass the sidecars (`excludeOutboundPorts`), or
/// each export would be traced, and its trace exported in turn.
///
/// No trace at all is a finding too: an empty search proves nothing.
pub fn check_no_export_traces(traces: &[Trace]) -> Findings {
    if traces.is_empty() {
        return vec![
            "the search found no trace at all, so it cannot show that none is an export call"
                .to_owned(),
        ];
    }
    traces
        .iter()
        .flat_map(|trace| {
            trace.spans.iter().filter_map(move |span| {
                let to_collector = [
                    Some(span.operation_name.clone()),
                    tag_text(&span.tags, "upstream_cluster"),
                    tag_text(&span.tags, "http.url"),
                    tag_text(&span.tags, "url.full"),
                ]
                .into_iter()
                .flatten()
                .any(|text| {
                    text.contains("jaeger-collector")
                        || text.contains("opentelemetry.proto.collector")
                });
                to_collector.then(|| {
                    format!(
                        "trace {}: {} `{}` is a call to the collector: the export went through the sidecar",
                        trace.trace_id,
                        trace.service(span),
                        span.operation_name
                    )
                })
            })
        })
        .collect()
}
