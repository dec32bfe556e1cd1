//! The live mesh test's assertions, against query API answers of the shapes
//! a good and a broken mesh produce.

use jaeger_check::{
    Dataplane, Kind, Maker, Reference, Response, Trace, check_no_export_traces, check_say_hello,
    check_say_hello2,
};

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

fn trace(name: &str) -> Trace {
    Trace::from_json(&fixture(name)).expect("the fixture is one trace")
}

#[test]
fn a_joined_up_say_hello_trace_passes_with_either_provider() {
    assert_eq!(
        check_say_hello(&trace("say-hello-v1-zipkin.json"), "v1", Dataplane::Sidecar),
        Vec::<String>::new()
    );
    assert_eq!(
        check_say_hello(&trace("say-hello-v2-otel.json"), "v2", Dataplane::Sidecar),
        Vec::<String>::new()
    );
}

#[test]
fn spans_are_told_apart_by_who_made_them() {
    let trace = trace("say-hello-v1-zipkin.json");
    let maker = |op: &str| {
        let span = trace.spans.iter().find(|s| s.operation_name == op).unwrap();
        (trace.maker(span), Trace::kind(span))
    };
    assert_eq!(
        maker("GET /sayHello/{name}"),
        (Maker::App("hello-svc".into()), Kind::Server)
    );
    assert_eq!(maker("GET"), (Maker::App("hello-svc".into()), Kind::Client));
    assert_eq!(
        maker("GET /formatGreeting"),
        (Maker::App("formatter-svc".into()), Kind::Server)
    );
    assert_eq!(
        maker("hello-svc.default.svc.cluster.local:8080/sayHello/*"),
        (Maker::Gateway, Kind::Server)
    );
    assert_eq!(trace.roots().len(), 1);
}

#[test]
fn a_missing_join_is_reported_with_the_parent_that_is_not_there() {
    let findings = check_say_hello(
        &trace("say-hello-missing-join.json"),
        "v1",
        Dataplane::Sidecar,
    );
    assert!(
        findings
            .iter()
            .any(|f| f.starts_with("the trace has 2 roots")),
        "{findings:#?}"
    );
    assert!(
        findings.contains(&"no hello's sidecar outbound span".to_owned()),
        "{findings:#?}"
    );
    assert!(
        findings.iter().any(|f| f
            .starts_with("formatter's sidecar inbound span should be a child of")
            && f.contains("the join is missing")),
        "{findings:#?}"
    );
}

#[test]
fn the_wrong_formatter_version_is_reported() {
    let findings = check_say_hello(&trace("say-hello-v1-zipkin.json"), "v2", Dataplane::Sidecar);
    assert_eq!(
        findings,
        vec!["formatter-svc's service.version is v1, expected v2".to_owned()]
    );
}

#[test]
fn say_hello2_has_sidecars_and_the_formatter_but_no_hello_application_span() {
    assert_eq!(
        check_say_hello2(&trace("say-hello2-zipkin.json"), Dataplane::Sidecar),
        Vec::<String>::new()
    );
    // A /sayHello trace read as /sayHello2's: hello's application sits
    // between its sidecar's spans.
    let findings = check_say_hello2(&trace("say-hello-v1-zipkin.json"), Dataplane::Sidecar);
    assert_eq!(
        findings,
        vec![
            "hello's sidecar outbound span should be a child of hello's sidecar inbound span, \
             but its parent is hello-svc Client `GET`"
                .to_owned(),
            "2 span(s) of hello-svc's application: /sayHello2 only copies headers".to_owned(),
        ]
    );
}

#[test]
fn a_say_hello2_trace_is_not_a_say_hello_trace() {
    let findings = check_say_hello(&trace("say-hello2-zipkin.json"), "v1", Dataplane::Sidecar);
    assert!(
        findings.contains(&"no hello-svc SERVER span".to_owned()),
        "{findings:#?}"
    );
    assert!(
        findings.contains(&"no hello-svc CLIENT span".to_owned()),
        "{findings:#?}"
    );
}

#[test]
fn an_export_call_traced_by_the_sidecar_is_reported() {
    let clean = Response::from_json(&fixture("search-clean.json")).unwrap();
    assert_eq!(clean.data.len(), 2);
    assert_eq!(check_no_export_traces(&clean.data), Vec::<String>::new());

    assert_eq!(
        check_no_export_traces(&[]),
        vec![
            "the search found no trace at all, so it cannot show that none is an export call"
                .to_owned()
        ]
    );

    let leaked = Response::from_json(&fixture("search-with-export-trace.json")).unwrap();
    assert_eq!(
        check_no_export_traces(&leaked.data),
        vec![
            "trace 5c7e0d3a2b1f4e6d8c9b0a1f2e3d4c5b: hello-svc.default \
             `jaeger-collector.istio-system.svc.cluster.local:4318/*` is a call to the collector: \
             the export went through the sidecar"
                .to_owned()
        ]
    );
}

#[test]
fn the_printed_tree_nests_each_span_under_its_parent() {
    let tree = trace("say-hello-v1-zipkin.json").render();
    let lines: Vec<&str> = tree.lines().collect();
    assert_eq!(lines[0], "trace 4bf92f3577b34da6a3ce929d0e0e4736 (8 spans)");
    let indent = |needle: &str| {
        let line = lines.iter().find(|l| l.contains(needle)).unwrap();
        line.len() - line.trim_start().len()
    };
    assert!(indent("Server [app hello-svc]") < indent("Client [app hello-svc]"));
    assert!(indent("Client [app hello-svc]") < indent("Client [sidecar of hello-svc]"));
    assert!(indent("Server [sidecar of formatter-svc]") < indent("Server [app formatter-svc]"));
    assert!(tree.contains("service.version=v1"));
}

#[test]
fn an_answer_that_is_not_the_query_api_s_is_refused() {
    assert!(
        Trace::from_json("{\"data\": []}")
            .unwrap_err()
            .contains("expected one trace")
    );
    assert!(
        Response::from_json("<html>")
            .unwrap_err()
            .starts_with("not a Jaeger query API answer")
    );
}

#[test]
fn the_fixtures_are_what_their_cited_model_writes() {
    let script = format!(
        "{}/tests/fixtures/make_fixtures.py",
        env!("CARGO_MANIFEST_DIR")
    );
    match std::process::Command::new("python3")
        .args([script.as_str(), "--check"])
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => test_harness::skipped_unless_ci(
            "the_fixtures_are_what_their_cited_model_writes",
            &format!("python3 cannot run: {e}"),
        ),
    }
}

#[test]
fn say_hello2_s_gateway_span_keeps_its_reference_to_the_clients_span() {
    let trace = trace("say-hello2-zipkin.json");
    let roots = trace.roots();
    assert_eq!(roots.len(), 1);
    assert_eq!(Trace::parent_id(roots[0]), Some("00f067aa0ba902b7"));
    assert!(trace.span("00f067aa0ba902b7").is_none());
    assert!(
        trace
            .render()
            .contains("(parent 00f067aa0ba902b7 is not in the trace)")
    );
}

/// The lines of a rendered tree that draw a span (not the header, not a note).
fn span_lines(tree: &str) -> usize {
    tree.lines().filter(|l| l.contains('[')).count()
}

#[test]
fn a_root_s_twin_naming_itself_as_parent_is_drawn_once_without_overflowing() {
    let mut trace = trace("say-hello-v1-zipkin.json");
    let root = trace.roots()[0].clone();
    let mut twin = root.clone();
    twin.references = vec![Reference {
        ref_type: "CHILD_OF".to_owned(),
        span_id: root.span_id.clone(),
    }];
    trace.spans.push(twin);
    let tree = trace.render();
    assert_eq!(span_lines(&tree), 9, "{tree}");
    assert!(trace.circular().is_empty());
}

#[test]
fn spans_whose_parents_form_a_circle_are_drawn_and_reported_as_a_finding() {
    let mut trace = trace("say-hello-v1-zipkin.json");
    // formatter-svc's SERVER span made the parent of formatter's sidecar
    // span, which is its own parent: the two go round in a circle, cut off
    // from the gateway's root.
    let id = |op: &str, kind: Kind| {
        let span = trace
            .spans
            .iter()
            .find(|s| s.operation_name == op && Trace::kind(s) == kind)
            .unwrap();
        (
            span.span_id.clone(),
            Trace::parent_id(span).unwrap().to_owned(),
        )
    };
    let (app, sidecar) = id("GET /formatGreeting", Kind::Server);
    for span in &mut trace.spans {
        if span.span_id == sidecar {
            span.references[0].span_id = app.clone();
        }
    }
    let findings = check_say_hello(&trace, "v1", Dataplane::Sidecar);
    assert!(
        findings.iter().any(|f| f
            .starts_with("2 span(s) never reach a root, their parents going round in a circle: ")
            && f.contains(&app)
            && f.contains(&sidecar)),
        "{findings:#?}"
    );
    let tree = trace.render();
    assert_eq!(span_lines(&tree), 8, "every span is drawn: {tree}");
    assert!(
        tree.contains("(no root above: its parents go round in a circle through "),
        "{tree}"
    );
}

#[test]
fn a_five_thousand_span_chain_renders_with_its_depth_written_out() {
    let mut trace = trace("say-hello-v1-zipkin.json");
    let root = trace.roots()[0].clone();
    let mut parent = root.span_id.clone();
    for n in 0..5_000u64 {
        let mut span = root.clone();
        span.span_id = format!("{:016x}", 0x00c0_ffee_0000_0000 + n);
        span.references = vec![Reference {
            ref_type: "CHILD_OF".to_owned(),
            span_id: parent,
        }];
        parent = span.span_id.clone();
        trace.spans.push(span);
    }
    let tree = trace.render();
    assert_eq!(span_lines(&tree), 5_008);
    let deepest = tree
        .lines()
        .find(|l| l.contains("[depth 5001] "))
        .expect("the last span of the chain, under the root, shows its depth");
    let indent = deepest.len() - deepest.trim_start().len();
    assert_eq!(indent, 2 * span_tree::MAX_INDENT_DEPTH);
}

const AMBIENT: Dataplane = Dataplane::Ambient;

#[test]
fn joined_up_ambient_traces_pass_with_either_provider() {
    let none = Vec::<String>::new();
    let v1 = trace("ambient-say-hello-v1-zipkin.json");
    assert_eq!(check_say_hello(&v1, "v1", AMBIENT), none);
    let v2 = trace("ambient-say-hello-v2-otel.json");
    assert_eq!(check_say_hello(&v2, "v2", AMBIENT), none);
    let hello2 = trace("ambient-say-hello2-zipkin.json");
    assert_eq!(check_say_hello2(&hello2, AMBIENT), none);
    // Six spans for /sayHello against eight with sidecars; four for /sayHello2.
    assert_eq!(
        (v1.spans.len(), hello2.spans.len()),
        (6, 4),
        "{}",
        v1.render()
    );
}

#[test]
fn the_ambient_gateway_and_waypoint_are_told_apart_by_their_service_names() {
    let trace = trace("ambient-say-hello-v1-zipkin.json");
    let made = |service: &str| {
        trace
            .spans
            .iter()
            .filter(|s| trace.service(s) == service)
            .map(|s| (trace.maker(s), Trace::kind(s)))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        made("hello-gateway-istio.default"),
        [
            (Maker::Gateway, Kind::Server),
            (Maker::Gateway, Kind::Client)
        ]
    );
    assert_eq!(made("waypoint.default"), [(Maker::Waypoint, Kind::Server)]);
    assert!(trace.render().contains(
        "waypoint.default Server [waypoint] formatter-svc-v1.default.svc.cluster.local:8080/*"
    ));
}

#[test]
fn an_ambient_trace_without_the_waypoint_span_is_reported() {
    assert_eq!(
        check_say_hello(&trace("ambient-say-hello-no-waypoint.json"), "v1", AMBIENT),
        vec![
            "the trace has 2 roots, expected one (the gateway's): hello-gateway-istio.default \
             `hello-svc.default.svc.cluster.local:8080/*`, formatter-svc `GET /formatGreeting`"
                .to_owned(),
            "no waypoint SERVER span".to_owned(),
            "formatter-svc SERVER span should be a child of waypoint SERVER span, but its parent \
             9000000000000001 is not in the trace (the join is missing)"
                .to_owned(),
        ]
    );
}

#[test]
fn formatter_directly_under_hello_s_client_span_is_reported_in_ambient() {
    assert_eq!(
        check_say_hello(
            &trace("ambient-say-hello-formatter-under-hello.json"),
            "v1",
            AMBIENT
        ),
        vec![
            "no waypoint SERVER span".to_owned(),
            "formatter-svc SERVER span should be a child of waypoint SERVER span, but its parent \
             is hello-svc Client `GET`"
                .to_owned(),
        ]
    );
}

#[test]
fn a_waypoint_naming_another_version_than_formatter_reached_is_reported() {
    let broken = trace("ambient-say-hello-waypoint-wrong-version.json");
    assert_eq!(
        check_say_hello(&broken, "v2", AMBIENT),
        vec![
            "waypoint SERVER span is named `formatter-svc-v1.default.svc.cluster.local:8080/*`, \
             expected `formatter-svc-v2.default.svc.cluster.local:8080/*`: the route chose \
             another version"
                .to_owned()
        ]
    );
    assert_eq!(
        jaeger_check::waypoint_operation("v2"),
        "formatter-svc-v2.default.svc.cluster.local:8080/*"
    );
}

#[test]
fn hello_under_no_gateway_span_is_reported_in_ambient() {
    assert_eq!(
        check_say_hello(
            &trace("ambient-say-hello-no-gateway-parent.json"),
            "v1",
            AMBIENT
        ),
        vec![
            "the trace has 2 roots, expected one (the gateway's): hello-gateway-istio.default \
             `hello-svc.default.svc.cluster.local:8080/*`, hello-svc `GET /sayHello/{name}`"
                .to_owned(),
            "hello-svc SERVER span should be a child of gateway CLIENT span, but it is a root"
                .to_owned(),
        ]
    );
}

#[test]
fn each_data_plane_s_trace_fails_the_other_s_check() {
    // Sidecar spans are no part of an ambient trace.
    let sidecar = check_say_hello(&trace("say-hello-v1-zipkin.json"), "v1", AMBIENT);
    assert!(
        sidecar.contains(&"no waypoint SERVER span".to_owned()),
        "{sidecar:#?}"
    );
    assert!(
        sidecar.iter().any(|f| f
            .starts_with("3 span(s) from sidecars, which the ambient data plane has none of: ")),
        "{sidecar:#?}"
    );
    // An ambient trace lacks the sidecar spans the sidecar check expects.
    let ambient = check_say_hello(
        &trace("ambient-say-hello-v1-zipkin.json"),
        "v1",
        Dataplane::Sidecar,
    );
    assert!(
        ambient.contains(&"no hello's sidecar inbound span".to_owned()),
        "{ambient:#?}"
    );
    let ambient2 = check_say_hello2(&trace("ambient-say-hello2-zipkin.json"), Dataplane::Sidecar);
    assert!(
        ambient2.contains(&"no formatter's sidecar inbound span".to_owned()),
        "{ambient2:#?}"
    );
}

#[test]
fn say_hello2_in_ambient_has_no_hello_application_span() {
    let findings = check_say_hello2(&trace("ambient-say-hello-v1-zipkin.json"), AMBIENT);
    assert_eq!(
        findings,
        vec![
            "waypoint SERVER span should be a child of gateway CLIENT span, but its parent is \
             hello-svc Client `GET`"
                .to_owned(),
            "2 span(s) of hello-svc's application: /sayHello2 only copies headers".to_owned(),
        ]
    );
}

#[test]
fn a_client_span_from_the_waypoint_is_reported() {
    let mut trace = trace("ambient-say-hello-v1-zipkin.json");
    let waypoint = trace
        .spans
        .iter()
        .find(|s| trace.maker(s) == Maker::Waypoint)
        .unwrap()
        .clone();
    let mut client = waypoint.clone();
    client.span_id = "9000000000000002".to_owned();
    client.tags.retain(|t| t.key != "span.kind");
    client.tags.push(jaeger_check::Tag {
        key: "span.kind".to_owned(),
        value: "client".into(),
    });
    trace.spans.push(client);
    assert_eq!(
        check_say_hello(&trace, "v1", AMBIENT),
        vec![
            "the waypoint made 1 CLIENT span(s): only a Router proxy (the ingress) spawns one"
                .to_owned()
        ]
    );
}

#[test]
fn envoy_s_spans_carry_the_names_and_tags_envoy_gives_them() {
    for name in [
        "say-hello-v1-zipkin.json",
        "say-hello-v2-otel.json",
        "ambient-say-hello-v1-zipkin.json",
        "ambient-say-hello-v2-otel.json",
    ] {
        let trace = trace(name);
        let text = |span: &jaeger_check::Span, key: &str| {
            span.tags
                .iter()
                .find(|t| t.key == key)
                .map(|t| t.value.as_str().unwrap_or_default().to_owned())
        };
        let router = trace.find(&Maker::Gateway, Kind::Client);
        assert_eq!(router.len(), 1, "{name}");
        assert_eq!(
            router[0].operation_name,
            "router outbound|8080||hello-svc.default.svc.cluster.local; egress",
            "{name}"
        );
        assert_eq!(
            text(router[0], "http.url"),
            None,
            "{name}: an upstream span"
        );
        assert_eq!(
            text(router[0], "upstream_cluster.name").as_deref(),
            Some("outbound|8080||hello-svc.default.svc.cluster.local;"),
            "{name}"
        );
        let server = trace.find(&Maker::Gateway, Kind::Server);
        assert_eq!(
            text(server[0], "http.url").as_deref(),
            Some("http://127.0.0.1:18080/sayHello/Brian"),
            "{name}: built from the client's Host"
        );
        for span in &trace.spans {
            let envoy = !matches!(trace.maker(span), Maker::App(_));
            assert_eq!(
                envoy,
                text(span, "otel.scope.name").is_none(),
                "{name}: `{}` has a scope exactly when an app made it",
                span.operation_name
            );
        }
    }
}
