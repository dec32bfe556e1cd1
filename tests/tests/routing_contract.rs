//! The mesh contract: the routing rules in `k8s/` evaluated, as Envoy would,
//! on the headers hello-svc really sends. This is where the chapter's demo
//! silently breaks when a regex never matches the real header.
//!
//! Both data planes are asked every time: the sidecar path's VirtualService
//! (`k8s/sidecar/routing.yaml`) and the ambient path's HTTPRoute
//! (`k8s/ambient/routing.yaml`, as the waypoint evaluates it) must send
//! each request to the same version.

use std::collections::BTreeMap;

use deploy_checks::{
    gateway_api_routing::HttpRoute,
    istio_routing::{HttpRequest, VirtualService},
    manifests::{Dataplane, Manifest, find, load, parsed},
};
use hello_contract::USER_AGENT_BAGGAGE_KEY;
use mesh_propagation::{w3c_baggage::baggage_header, with_member_first};
use opentelemetry::baggage::Baggage;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use serde_json::Value;
use test_harness::{TestApp, otlp_receiver::Transport, traceresponse_trace_id};

const NETSCAPE: &str = "Mozilla/4.0 (compatible; Netscape)";

fn manifest(file: &str, kind: &str, name: &str) -> Manifest {
    find(&load(file), kind, name)
        .cloned()
        .unwrap_or_else(|| panic!("no {kind} {name} in k8s/{file}"))
}

fn virtual_service(file: &str, name: &str) -> VirtualService {
    parsed(&manifest(file, "VirtualService", name))
}

fn http_route(file: &str, name: &str) -> HttpRoute {
    parsed(&manifest(file, "HTTPRoute", name))
}

/// formatter-svc's routing on both data planes, and the `version` label
/// each destination selects.
struct Routing {
    sidecar: VirtualService,
    ambient: HttpRoute,
    /// DestinationRule subset (sidecar) → version label.
    subset_versions: BTreeMap<String, String>,
    /// Service (ambient) → the version label its selector picks.
    service_versions: BTreeMap<String, String>,
}

fn routing() -> Routing {
    let rule = manifest("sidecar/routing.yaml", "DestinationRule", "formatter-svc");
    let subset_versions = rule.value["spec"]["subsets"]
        .as_array()
        .expect("subsets")
        .iter()
        .map(|s| {
            let version = s["labels"]["version"].as_str().expect("a version label");
            (s["name"].as_str().unwrap().to_owned(), version.to_owned())
        })
        .collect();
    let service_versions = Dataplane::Ambient
        .deployed()
        .iter()
        .filter(|m| m.kind() == "Service")
        .filter_map(|m| {
            let version = m.value["spec"]["selector"]["version"].as_str()?;
            Some((m.name().to_owned(), version.to_owned()))
        })
        .collect();
    Routing {
        sidecar: virtual_service("sidecar/routing.yaml", "formatter-svc"),
        ambient: http_route("ambient/routing.yaml", "formatter-svc"),
        subset_versions,
        service_versions,
    }
}

impl Routing {
    /// The version `request` reaches, the same on both data planes (a
    /// disagreement fails the test).
    fn version(&self, request: &HttpRequest) -> Option<String> {
        let sidecar = self.sidecar.route(request).map(|destination| {
            let subset = destination.subset.as_deref().expect("a subset");
            self.subset_versions[subset].clone()
        });
        let ambient = self
            .ambient
            .route(request)
            .map(|backend| self.service_versions[&backend.name].clone());
        assert_eq!(
            sidecar, ambient,
            "the sidecar (left) and ambient (right) routing disagree on {request:#?}"
        );
        sidecar
    }
}

/// Sends one request through the real hello-svc and returns what the
/// formatter received, as Envoy in front of the formatter would see it.
async fn formatter_request(path: &str, headers: &[(&str, &str)]) -> HttpRequest {
    let app = TestApp::builder().start().await;
    let response = app.get(path, headers).await;
    assert_eq!(response.status(), 200);
    as_envoy_sees_it(&app)
}

/// The formatter's last request, as Envoy in front of it would match it.
fn as_envoy_sees_it(app: &TestApp) -> HttpRequest {
    let received = app.last_formatter_request();
    HttpRequest {
        path: received
            .uri
            .split('?')
            .next()
            .unwrap_or_default()
            .to_owned(),
        headers: received.headers,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_netscape_user_agent_on_say_hello_routes_to_v2_and_curl_to_v1() {
    let routing = routing();

    let netscape = formatter_request("/sayHello/Brian", &[("user-agent", NETSCAPE)]).await;
    assert_eq!(
        routing.version(&netscape).as_deref(),
        Some("v2"),
        "headers sent: {:#?}",
        netscape.headers
    );

    let curl = formatter_request("/sayHello/Brian", &[("user-agent", "curl/8.5.0")]).await;
    assert_eq!(
        routing.version(&curl).as_deref(),
        Some("v1"),
        "headers sent: {:#?}",
        curl.headers
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_route_holds_whatever_other_baggage_the_caller_carries() {
    let routing = routing();
    let with_baggage = formatter_request(
        "/sayHello/Brian",
        &[
            ("user-agent", NETSCAPE),
            ("baggage", "tenant=blue,region=eu;ttl=60"),
        ],
    )
    .await;
    assert_eq!(
        routing.version(&with_baggage).as_deref(),
        Some("v2"),
        "{:#?}",
        with_baggage.headers
    );

    // A caller cannot reach v2 by claiming Netscape in its own baggage:
    // hello-svc overwrites user-agent with the real User-Agent.
    let spoofed = formatter_request(
        "/sayHello/Brian",
        &[
            ("user-agent", "curl/8.5.0"),
            ("baggage", "user-agent=Netscape"),
        ],
    )
    .await;
    assert_eq!(
        routing.version(&spoofed).as_deref(),
        Some("v1"),
        "{:#?}",
        spoofed.headers
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_caller_cannot_choose_v2_with_its_own_baggage_even_without_a_user_agent_or_with_a_full_one()
 {
    let routing = routing();
    let route = |request: &HttpRequest| routing.version(request);
    let sent_baggage = |request: &HttpRequest| {
        request
            .headers
            .iter()
            .find(|(name, _)| name == "baggage")
            .map(|(_, value)| value.clone())
            .unwrap_or_default()
    };

    // No User-Agent header at all: the caller's member is removed.
    let anonymous = formatter_request(
        "/sayHello/Brian",
        &[("baggage", "user-agent=Netscape,tenant=blue")],
    )
    .await;
    assert_eq!(
        route(&anonymous).as_deref(),
        Some("v1"),
        "{:#?}",
        anonymous.headers
    );
    assert_eq!(sent_baggage(&anonymous), "tenant=blue");

    // A caller baggage of about 8 KiB leaves no room: the caller's members
    // yield to the real User-Agent, never the other way round.
    let filler: Vec<String> = (0..60)
        .map(|i| format!("k{i:02}={}", "v".repeat(130)))
        .collect();
    let full = format!("user-agent=Netscape,{}", filler.join(","));
    assert!(full.len() > 8000, "{} bytes", full.len());
    let curl = formatter_request(
        "/sayHello/Brian",
        &[("user-agent", "curl/8.5.0"), ("baggage", &full)],
    )
    .await;
    assert_eq!(route(&curl).as_deref(), Some("v1"), "{:#?}", curl.headers);
    let baggage = sent_baggage(&curl);
    assert!(baggage.len() <= 8192, "{} bytes", baggage.len());
    assert!(
        baggage.split(',').any(|m| m == "user-agent=curl/8.5.0"),
        "{baggage}"
    );

    let netscape = formatter_request(
        "/sayHello/Brian",
        &[("user-agent", NETSCAPE), ("baggage", &full)],
    )
    .await;
    assert_eq!(
        route(&netscape).as_deref(),
        Some("v2"),
        "{:#?}",
        netscape.headers
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_netscape_user_agent_too_long_for_baggage_is_left_out_logged_marked_and_routed_to_v1() {
    let routing = routing();
    let app = TestApp::builder()
        .exporting_over(Transport::HttpProtobuf)
        .start()
        .await;
    let user_agent = format!("{NETSCAPE} {}", "x".repeat(5_000 - NETSCAPE.len() - 1));
    assert_eq!(user_agent.len(), 5_000);
    let response = app
        .get(
            "/sayHello/Brian",
            &[
                ("user-agent", &user_agent),
                ("baggage", "user-agent=Netscape,tenant=blue"),
            ],
        )
        .await;
    assert_eq!(response.status(), 200, "the request itself is served");
    let trace_id = traceresponse_trace_id(response.headers());

    // Left out whole, never truncated, and the caller's claim with it: the
    // request routes as one without a User-Agent.
    let sent = as_envoy_sees_it(&app);
    let baggage: Vec<&str> = sent
        .headers
        .iter()
        .filter(|(name, _)| name == "baggage")
        .map(|(_, value)| value.as_str())
        .collect();
    assert_eq!(baggage, ["tenant=blue"]);
    assert_eq!(
        routing.version(&sent).as_deref(),
        Some("v1"),
        "{:#?}",
        sent.headers
    );

    // Said once in the log, in the request's trace, with the size...
    let line = app
        .hello
        .log_line("the left-out line", |line| {
            serde_json::from_str::<Value>(line).is_ok_and(|l| {
                l["trace_id"] == trace_id
                    && l["fields"]["message"]
                        .as_str()
                        .is_some_and(|m| m.starts_with("user-agent left out of baggage"))
            })
        })
        .await;
    let line: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(line["level"], "WARN");
    assert_eq!(line["fields"]["limit"], 4096);
    let bytes = line["fields"]["bytes"].as_i64().unwrap();
    assert!(bytes > 5_000, "the encoded member: {bytes}");

    // ...and on the SERVER span, as an int.
    let spans = app.trace(&trace_id, 2).await;
    let server = spans.iter().find(|s| s.kind == SpanKind::Server).unwrap();
    assert_eq!(
        server.int_attr("app.baggage.user_agent.left_out_bytes"),
        Some(bytes)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn say_hello2_lands_on_v1_even_for_netscape_because_it_sets_no_baggage() {
    let routing = routing();
    let request = formatter_request("/sayHello2/Brian", &[("user-agent", NETSCAPE)]).await;
    assert_eq!(
        routing.version(&request).as_deref(),
        Some("v1"),
        "{:#?}",
        request.headers
    );
}

#[test]
fn the_regex_needs_the_user_agent_key_not_just_the_word() {
    let routing = routing();
    let with_baggage = |baggage: &str| HttpRequest {
        path: "/formatGreeting".into(),
        headers: vec![("baggage".into(), baggage.into())],
    };
    for (baggage, expected) in [
        ("user-agent=Netscape", "v2"),
        (
            "tenant=blue, user-agent=Mozilla/4.0%20(compatible%3B%20Netscape)",
            "v2",
        ),
        ("x-user-agent=Netscape", "v1"),
        ("user-agent=curl,browser=Netscape", "v1"),
        ("user-agent=netscape", "v1"),
    ] {
        assert_eq!(
            routing.version(&with_baggage(baggage)).as_deref(),
            Some(expected),
            "baggage: {baggage}"
        );
    }
}

#[test]
fn the_routing_regex_matches_the_member_the_shared_key_produces() {
    let routing = routing();
    let route = |user_agent: &str| {
        let (baggage, left_out) =
            with_member_first(&Baggage::new(), USER_AGENT_BAGGAGE_KEY, Some(user_agent));
        assert_eq!(left_out, None);
        let header = baggage_header(&baggage).expect("one member");
        let request = HttpRequest {
            path: "/formatGreeting".into(),
            headers: vec![("baggage".into(), header)],
        };
        routing.version(&request)
    };
    assert_eq!(route(NETSCAPE).as_deref(), Some("v2"));
    assert_eq!(route("curl/8.5.0").as_deref(), Some("v1"));
}

#[test]
fn the_gateway_sends_both_hello_paths_to_hello_svc_and_nothing_else_on_both_data_planes() {
    let sidecar = virtual_service("sidecar/gateway.yaml", "hello");
    let ambient = http_route("ambient/gateway.yaml", "hello");
    let at = |path: &str| HttpRequest {
        path: path.into(),
        headers: Vec::new(),
    };
    for path in ["/sayHello/Brian", "/sayHello2/Brian"] {
        let destination = sidecar
            .route(&at(path))
            .unwrap_or_else(|| panic!("{path} is not routed"));
        assert_eq!(destination.host, "hello-svc");
        let backend = ambient
            .route(&at(path))
            .unwrap_or_else(|| panic!("{path} is not routed by the HTTPRoute"));
        assert_eq!(backend.name, "hello-svc");
    }
    assert!(
        sidecar.route(&at("/healthz")).is_none() && ambient.route(&at("/healthz")).is_none(),
        "probes stay inside the cluster"
    );
    // A Gateway API PathPrefix matches whole segments: /sayHello alone does
    // not cover /sayHello2, which is why both are listed.
    let mut one_prefix = ambient.clone();
    one_prefix.spec.rules[0]
        .matches
        .as_mut()
        .expect("written matches")
        .truncate(1);
    assert!(one_prefix.route(&at("/sayHello2/Brian")).is_none());
}

#[test]
fn the_httproute_routes_the_same_whatever_order_its_rules_are_written_in() {
    let routing = routing();
    assert_eq!(
        routing.ambient.precedence(),
        ["netscape-to-v2", "everyone-else-to-v1"]
    );
    let mut reversed = routing.ambient.clone();
    reversed.spec.rules.reverse();
    assert_eq!(
        reversed.precedence(),
        ["netscape-to-v2", "everyone-else-to-v1"],
        "Gateway API precedence: the rule with a header match first"
    );
    let request = HttpRequest {
        path: "/formatGreeting".into(),
        headers: vec![(
            "baggage".into(),
            "user-agent=Mozilla/4.0%20(compatible%3B%20Netscape)".into(),
        )],
    };
    let backend = |route: &HttpRoute| route.route(&request).map(|b| b.name.clone());
    assert_eq!(backend(&reversed), backend(&routing.ambient));
    assert_eq!(backend(&reversed).as_deref(), Some("formatter-svc-v2"));
}
