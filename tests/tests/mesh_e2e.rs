//! The live mesh test (`make mesh-e2e`) cannot run here, so what it relies
//! on is checked against the files it drives: the deployments it waits for,
//! the greetings it expects, its pinned tools, and the workflow that runs it.

use std::collections::BTreeSet;

use e2e::manifests::{deployment_name, deployments, make_plan, repo_root};
use formatter_svc::greeting::FormatterVersion;
use serde_json::Value;

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn script() -> String {
    read("scripts/mesh-e2e.sh")
}

/// The value of a `NAME=value` or `NAME="value"` line of the script.
fn assignment(script: &str, name: &str) -> String {
    script
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("the script sets {name}"))
        .trim_matches('"')
        .to_owned()
}

fn workflow(name: &str) -> Value {
    serde_norway::from_str(&read(&format!(".github/workflows/{name}")))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn the_live_test_waits_for_every_deployment_the_app_ships() {
    let script = script();
    let waited: BTreeSet<&str> = script
        .lines()
        .find_map(|l| l.strip_prefix("for deployment in "))
        .and_then(|l| l.strip_suffix("; do"))
        .expect("the script loops over the app's deployments")
        .split_whitespace()
        .collect();
    let shipped: BTreeSet<String> = deployments()
        .iter()
        .map(|d| deployment_name(d).to_owned())
        .collect();
    assert_eq!(
        waited,
        shipped.iter().map(String::as_str).collect::<BTreeSet<_>>()
    );
    // The addon's Deployment is `jaeger`, in istio-system.
    assert!(script.contains("wait_rollout istio-system jaeger"));
}

#[test]
fn the_live_test_expects_the_greetings_the_formatter_makes() {
    let script = script();
    assert_eq!(
        assignment(&script, "V1"),
        FormatterVersion::V1.greet("Brian")
    );
    assert_eq!(
        assignment(&script, "V2"),
        FormatterVersion::V2.greet("Brian")
    );
}

#[test]
fn the_live_test_pins_every_tool_it_downloads() {
    let script = script();
    let semver = regex::Regex::new(r"^v\d+\.\d+\.\d+$").unwrap();
    for tool in ["KIND_VERSION", "KUBECTL_VERSION"] {
        let version = assignment(&script, tool);
        assert!(
            semver.is_match(&version),
            "{tool}={version} is an exact version"
        );
    }
    let node = assignment(&script, "KIND_NODE_IMAGE");
    assert!(
        regex::Regex::new(r"^kindest/node:v\d+\.\d+\.\d+$")
            .unwrap()
            .is_match(&node),
        "{node} is a pinned node image"
    );
    // istioctl's version is the Makefile's, read at run time.
    assert!(script.contains("ISTIO_VERSION=$(sed -n 's/^ISTIO_VERSION := //p' Makefile)"));
    assert!(
        read("Makefile")
            .lines()
            .any(|l| l == "ISTIO_VERSION := 1.30.3")
    );
    // Every download names its version; none is "latest" or "stable".
    for line in script.lines().filter(|l| l.contains("https://")) {
        assert!(
            !line.contains("latest") && !line.contains("stable"),
            "an unpinned download: {line}"
        );
    }
}

#[test]
fn the_workflow_runs_the_live_test_for_both_providers_on_main_and_by_hand() {
    let mesh = workflow("mesh-e2e.yml");
    assert!(
        mesh["on"]["push"]["branches"]
            .as_array()
            .is_some_and(|b| b.iter().any(|b| b == "main"))
    );
    assert!(mesh["on"].get("workflow_dispatch").is_some());
    let job = &mesh["jobs"]["mesh-e2e"];
    let matrix: Vec<&str> = job["strategy"]["matrix"]["tracing"]
        .as_array()
        .expect("a tracing matrix")
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(matrix, ["zipkin", "otel"]);
    assert!(
        job["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["run"].as_str() == Some("make mesh-e2e TRACING=\"$TRACING\"")),
        "a step runs make mesh-e2e with the matrix's provider"
    );

    let ci = workflow("ci.yml");
    assert!(
        ci["jobs"]["ci"]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["run"].as_str() == Some("bash .ci/run")),
        "ci.yml runs .ci/run"
    );
}

#[test]
fn make_mesh_e2e_takes_either_provider_and_refuses_another() {
    for provider in ["zipkin", "otel"] {
        let plan = make_plan(&["mesh-e2e", &format!("TRACING={provider}")]);
        assert!(plan.status.success());
        assert!(
            String::from_utf8_lossy(&plan.stdout)
                .contains(&format!("TRACING={provider} ./scripts/mesh-e2e.sh")),
            "{plan:?}"
        );
    }
    let refused = make_plan(&["mesh-e2e", "TRACING=jaeger"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("make mesh-e2e: TRACING=jaeger is not one of: zipkin otel"),
        "{refused:?}"
    );
}
