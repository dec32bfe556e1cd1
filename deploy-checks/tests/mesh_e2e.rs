//! The live mesh test (`make mesh-e2e`) cannot run here, so its script runs
//! against stand-ins of the pinned releases (`deploy-checks/fixtures/`): the
//! deployments it waits for, the greetings it expects, the releases it
//! downloads, and its failures are its behaviour there, not its text. The
//! workflow that runs it is checked as data.

use std::collections::BTreeSet;

use deploy_checks::{
    manifests::{deployment_name, deployments, make_plan, repo_root},
    stand_ins,
};
use formatter_svc::greeting::FormatterVersion;
use serde_json::Value;

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn workflow(name: &str) -> Value {
    serde_norway::from_str(&read(&format!(".github/workflows/{name}")))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn the_workflow_runs_the_live_test_for_both_data_planes_and_providers_on_main_and_by_hand() {
    let mesh = workflow("mesh-e2e.yml");
    assert!(
        mesh["on"]["push"]["branches"]
            .as_array()
            .is_some_and(|b| b.iter().any(|b| b == "main"))
    );
    assert!(mesh["on"].get("workflow_dispatch").is_some());
    let job = &mesh["jobs"]["mesh-e2e"];
    let axis = |name: &str| -> Vec<&str> {
        job["strategy"]["matrix"][name]
            .as_array()
            .unwrap_or_else(|| panic!("a {name} matrix"))
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect()
    };
    assert_eq!(axis("dataplane"), ["sidecar", "ambient"]);
    assert_eq!(axis("tracing"), ["zipkin", "otel"]);
    let steps = job["steps"].as_array().unwrap();
    let run = steps
        .iter()
        .find(|s| {
            s["run"].as_str() == Some("make mesh-e2e TRACING=\"$TRACING\" DATAPLANE=\"$DATAPLANE\"")
        })
        .expect("a step runs make mesh-e2e with the matrix's provider and data plane");
    assert_eq!(run["env"]["TRACING"], "${{ matrix.tracing }}");
    assert_eq!(run["env"]["DATAPLANE"], "${{ matrix.dataplane }}");
    // What each job keeps is where the script writes it.
    let kept = steps
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/upload-artifact"))
        })
        .expect("an artifact step");
    assert_eq!(
        kept["with"]["path"],
        "target/mesh-e2e/${{ matrix.dataplane }}-${{ matrix.tracing }}"
    );
    assert!(
        read("scripts/mesh-e2e.sh")
            .contains(r#"out=${MESH_E2E_OUT:-"$root/target/mesh-e2e/$DATAPLANE-$TRACING"}"#)
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
fn make_mesh_e2e_takes_either_provider_and_data_plane_and_refuses_another() {
    for provider in ["zipkin", "otel"] {
        let plan = make_plan(&["mesh-e2e", &format!("TRACING={provider}")]);
        assert!(plan.status.success());
        assert!(
            String::from_utf8_lossy(&plan.stdout).contains(&format!(
                "TRACING={provider} DATAPLANE=sidecar ./scripts/mesh-e2e.sh"
            )),
            "sidecar by default: {plan:?}"
        );
        let plan = make_plan(&[
            "mesh-e2e",
            &format!("TRACING={provider}"),
            "DATAPLANE=ambient",
        ]);
        assert!(
            String::from_utf8_lossy(&plan.stdout).contains(&format!(
                "TRACING={provider} DATAPLANE=ambient ./scripts/mesh-e2e.sh"
            )),
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

/// What one run of `scripts/mesh-e2e.sh` against the stand-ins did.
struct StandInRun {
    status: std::process::ExitStatus,
    output: String,
    /// Every stand-in command, with its arguments, in order.
    calls: Vec<String>,
    out: std::path::PathBuf,
}

/// Runs the live test's script with `deploy-checks/fixtures/mesh-e2e-stand-ins`
/// first on `PATH`: docker, kind, kubectl and istioctl that answer as the
/// pinned versions would, and port-forwards that serve a gateway and Jaeger's
/// query API from `jaeger-check`'s fixtures.
fn run_against_stand_ins(
    dataplane: &str,
    provider: &str,
    extra_env: &[(&str, &str)],
) -> StandInRun {
    // Tests run in parallel in one process: each run gets a folder of its own.
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let work = std::env::temp_dir().join(format!(
        "mesh-e2e-stand-in-{dataplane}-{provider}-{}-{run}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let log = work.join("calls.log");
    let free_port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port()
            .to_string()
    };
    let output = stand_ins::command("bash", &["scripts/mesh-e2e.sh"], &[], &log)
        .env("TRACING", provider)
        .env("DATAPLANE", dataplane)
        .env("MESH_E2E_CLUSTER", "stand-in")
        .env("MESH_E2E_OUT", work.join("out"))
        .env(
            "MESH_E2E_CHECK",
            test_harness::service_process::binary_path("jaeger-check"),
        )
        .env("MESH_E2E_GATEWAY_PORT", free_port())
        .env("STAND_IN_V1_GREETING", FormatterVersion::V1.greet("Brian"))
        .env("STAND_IN_V2_GREETING", FormatterVersion::V2.greet("Brian"))
        .env("MESH_E2E_JAEGER_PORT", free_port())
        .envs(extra_env.iter().copied())
        .output()
        .expect("bash runs");
    StandInRun {
        status: output.status,
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
        calls: stand_ins::calls(&log),
        out: work.join("out"),
    }
}

/// python3 and curl serve and fetch the stand-ins' answers.
fn stand_ins_can_run(test: &str) -> bool {
    let present = |tool: &str| {
        std::process::Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let ok = present("python3") && present("curl");
    if !ok {
        test_harness::skipped_unless_ci(test, "python3 or curl is not installed");
    }
    ok
}

#[test]
fn the_live_test_passes_on_a_good_mesh_and_always_deletes_its_cluster() {
    if !stand_ins_can_run("the_live_test_passes_on_a_good_mesh_and_always_deletes_its_cluster") {
        return;
    }
    let run = run_against_stand_ins("sidecar", "zipkin", &[]);
    assert!(run.status.success(), "{}", run.output);
    assert!(
        run.output
            .contains("mesh-e2e passed on the sidecar data plane with the zipkin provider")
    );
    // The trees it read are printed: v2 reached with the Netscape agent.
    assert!(
        run.output.contains(
            "formatter-svc Server [app formatter-svc] GET /formatGreeting 300µs service.version=v2"
        ),
        "{}",
        run.output
    );
    let called = |prefix: &str| run.calls.iter().any(|c| c.starts_with(prefix));
    assert_kind_and_images(&run);
    assert!(
        run.calls
            .contains(&"istioctl install -y -f k8s/istio/tracing-zipkin.yaml".to_owned())
    );
    assert!(called(
        "kubectl -n istio-system port-forward service/istio-ingressgateway"
    ));
    assert!(called("kubectl apply -f k8s/istio/telemetry-zipkin.yaml"));
    assert!(called("istioctl kube-inject -f k8s/app.yaml"));
    // It waits for every Deployment the app ships, and for Jaeger's.
    let waited: BTreeSet<&str> = run
        .calls
        .iter()
        .filter_map(|c| c.strip_prefix("kubectl -n default rollout status deployment/"))
        .filter_map(|rest| rest.split_whitespace().next())
        .collect();
    let shipped: BTreeSet<String> = deployments()
        .iter()
        .map(|d| deployment_name(d).to_owned())
        .collect();
    assert_eq!(
        waited,
        shipped.iter().map(String::as_str).collect::<BTreeSet<_>>()
    );
    assert!(called(
        "kubectl -n istio-system rollout status deployment/jaeger"
    ));
    assert_eq!(
        run.calls.last().map(String::as_str),
        Some("kind delete cluster --name stand-in"),
        "the cluster is deleted last"
    );
    // Jaeger's answers are kept.
    for kept in ["say-hello-v1.json", "say-hello-v2.json", "say-hello2.json"] {
        assert!(run.out.join(kept).exists(), "{kept} is kept");
    }
}

/// The node image by kind v0.30.0's digest, and the images loaded through
/// a `docker save` archive of this machine's platform only
/// (kubernetes-sigs/kind#3795).
fn assert_kind_and_images(run: &StandInRun) {
    let position = |call: &str| {
        run.calls
            .iter()
            .position(|c| c == call)
            .unwrap_or_else(|| panic!("no call {call:?} in {:#?}", run.calls))
    };
    position(
        "kind create cluster --name stand-in --image kindest/node:v1.34.0@sha256:\
         7416a61b42b1662ca6ca89f02028ac133a309a2a30ba309614e8ec94d976dc5a --wait 180s",
    );
    position("docker build --target hello-svc -t hello-svc:latest .");
    let archive = run.out.join("images.tar");
    // The script's names for this machine's architecture (uname -m).
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => panic!("the live test has no builds for {other}"),
    };
    let saved = position(&format!(
        "docker save --platform linux/{arch} -o {} hello-svc:latest formatter-svc:latest",
        archive.display()
    ));
    let loaded = position(&format!(
        "kind load image-archive --name stand-in {}",
        archive.display()
    ));
    assert!(saved < loaded, "saved before it is loaded");
    assert!(
        !run.calls
            .iter()
            .any(|c| c.starts_with("kind load docker-image")),
        "kind load docker-image fails on the containerd image store"
    );
    assert!(!archive.exists(), "the archive is removed once loaded");
}

/// The ambient install, rollouts, deploy and Gateway wait, in this order.
fn assert_ambient_install_and_deploy_in_order(run: &StandInRun, provider: &str) {
    let expected_in_order = [
        "kubectl apply --server-side -f k8s/gateway-api/standard-install.yaml".to_owned(),
        format!("istioctl install -y -f k8s/istio/tracing-{provider}.yaml --set profile=ambient"),
        "kubectl -n istio-system rollout status daemonset/istio-cni-node --timeout=300s".to_owned(),
        "kubectl -n istio-system rollout status daemonset/ztunnel --timeout=300s".to_owned(),
        "kubectl -n istio-system get daemonset ztunnel --ignore-not-found -o name".to_owned(),
        "kubectl apply -f k8s/ambient/namespace.yaml".to_owned(),
        "kubectl apply -f k8s/app.yaml".to_owned(),
        "kubectl apply -k k8s/ambient".to_owned(),
        "kubectl wait --for=condition=Programmed gateways.gateway.networking.k8s.io/hello-gateway \
         gateways.gateway.networking.k8s.io/waypoint --timeout=300s"
            .to_owned(),
    ];
    let mut from = 0;
    for call in &expected_in_order {
        let at = run.calls[from..]
            .iter()
            .position(|c| c == call)
            .unwrap_or_else(|| {
                panic!(
                    "{provider}: no {call:?} after call {from}: {:#?}",
                    run.calls
                )
            });
        from += at + 1;
    }
}

#[test]
fn the_live_test_passes_on_a_good_ambient_mesh_under_either_provider() {
    if !stand_ins_can_run("the_live_test_passes_on_a_good_ambient_mesh_under_either_provider") {
        return;
    }
    for provider in ["zipkin", "otel"] {
        let run = run_against_stand_ins("ambient", provider, &[]);
        assert!(run.status.success(), "{provider}: {}", run.output);
        assert!(
            run.output.contains(&format!(
                "mesh-e2e passed on the ambient data plane with the {provider} provider"
            )),
            "{}",
            run.output
        );
        // The ambient tree it read is printed: the waypoint's span, and the
        // Netscape agent's request reaching v2 through it.
        assert!(
            run.output.contains(
                "waypoint.default Server [waypoint] formatter-svc-v2.default.svc.cluster.local:8080/*"
            ),
            "{}",
            run.output
        );
        assert_kind_and_images(&run);
        assert_ambient_install_and_deploy_in_order(&run, provider);
        for route in ["hello", "formatter-svc"] {
            for condition in ["Accepted", "ResolvedRefs"] {
                let wait = format!(
                    "kubectl wait --timeout=120s httproute/{route} --for=jsonpath={{.status.parents[0]\
                     .conditions[?(@.type==\"{condition}\")].status}}=True"
                );
                assert!(run.calls.contains(&wait), "{wait}: {:#?}", run.calls);
            }
        }
        assert!(
            run.output
                .contains("HTTPRoute formatter-svc: All waypoints resolved"),
            "{}",
            run.output
        );
        assert!(run.calls.iter().any(|c| {
            c.starts_with("kubectl -n default port-forward service/hello-gateway-istio ")
        }));
        assert!(
            !run.calls.iter().any(|c| c.contains("istio-ingressgateway")),
            "the ambient profile has no istio-ingressgateway"
        );
        assert_eq!(
            run.calls.last().map(String::as_str),
            Some("kind delete cluster --name stand-in")
        );
    }
}

#[test]
fn the_ambient_live_test_fails_when_no_waypoint_enforces_the_route_or_the_trace_lacks_it() {
    if !stand_ins_can_run(
        "the_ambient_live_test_fails_when_no_waypoint_enforces_the_route_or_the_trace_lacks_it",
    ) {
        return;
    }
    // ResolvedWaypoints is True either way; its message is what differs.
    let run = run_against_stand_ins(
        "ambient",
        "zipkin",
        &[
            ("STAND_IN_NO_USE_WAYPOINT", "1"),
            ("MESH_E2E_ROUTE_WAIT", "3"),
        ],
    );
    assert_eq!(run.status.code(), Some(1), "{}", run.output);
    assert!(
        run.output.contains(
            "mesh-e2e: HTTPRoute formatter-svc: no waypoint enforces it after 3 s: \"istio.io/use-waypoint \
             label missing from parent and parent namespace; in ambient mode, route will not be \
             respected\""
        ),
        "{}",
        run.output
    );
    assert!(
        !run.calls.iter().any(|c| c.contains("port-forward")),
        "no request is sent to a mesh that does not route"
    );

    let run = run_against_stand_ins(
        "ambient",
        "otel",
        &[("STAND_IN_BROKEN", "1"), ("MESH_E2E_TRACE_WAIT", "3")],
    );
    assert_eq!(run.status.code(), Some(1), "{}", run.output);
    assert!(
        run.output.contains("FAILED: no waypoint SERVER span"),
        "{}",
        run.output
    );
    assert_eq!(
        run.calls.last().map(String::as_str),
        Some("kind delete cluster --name stand-in")
    );
}

#[test]
fn the_live_test_fails_on_a_broken_trace_says_why_and_still_deletes_its_cluster() {
    if !stand_ins_can_run(
        "the_live_test_fails_on_a_broken_trace_says_why_and_still_deletes_its_cluster",
    ) {
        return;
    }
    let run = run_against_stand_ins(
        "sidecar",
        "otel",
        &[("STAND_IN_BROKEN", "1"), ("MESH_E2E_TRACE_WAIT", "3")],
    );
    assert_eq!(run.status.code(), Some(1), "{}", run.output);
    assert!(
        run.output.contains(
            "FAILED: formatter's sidecar inbound span should be a child of hello's sidecar \
             outbound span, but its parent b000000000000002 is not in the trace (the join is missing)"
        ),
        "{}",
        run.output
    );
    assert!(
        run.output
            .contains("mesh-e2e: say-hello-v1: the trace was not as expected after 3 s"),
        "{}",
        run.output
    );
    assert!(
        run.calls
            .iter()
            .any(|c| c.starts_with("istioctl install -y -f k8s/istio/tracing-otel.yaml"))
    );
    assert!(
        run.out.join("cluster-state.txt").exists(),
        "the cluster's state is saved"
    );
    assert_eq!(
        run.calls.last().map(String::as_str),
        Some("kind delete cluster --name stand-in"),
        "the cluster is deleted on failure too"
    );
}

#[test]
fn the_live_test_refuses_a_docker_too_old_for_save_platform_before_any_cluster() {
    if !stand_ins_can_run(
        "the_live_test_refuses_a_docker_too_old_for_save_platform_before_any_cluster",
    ) {
        return;
    }
    let run = run_against_stand_ins("sidecar", "zipkin", &[("STAND_IN_DOCKER_API", "1.47")]);
    assert_eq!(run.status.code(), Some(1), "{}", run.output);
    assert!(
        run.output.contains(
            "mesh-e2e: Docker's API is 1.47; `docker save --platform` needs 1.48 (Docker 28) or later"
        ),
        "{}",
        run.output
    );
    assert!(
        !run.calls.iter().any(|c| c.starts_with("kind create")),
        "{:#?}",
        run.calls
    );
}

#[test]
fn the_live_test_compares_the_answers_with_the_greetings_the_formatter_makes() {
    if !stand_ins_can_run(
        "the_live_test_compares_the_answers_with_the_greetings_the_formatter_makes",
    ) {
        return;
    }
    // The good run passes with the formatter's own words (above); a gateway
    // that answers other words for the Netscape agent fails it.
    let run = run_against_stand_ins(
        "sidecar",
        "zipkin",
        &[("STAND_IN_V2_GREETING", "Good news, Brian!")],
    );
    assert_eq!(run.status.code(), Some(1), "{}", run.output);
    assert!(
        run.output.contains(&format!(
            "expected \"{}\", got \"Good news, Brian!\"",
            FormatterVersion::V2.greet("Brian")
        )),
        "{}",
        run.output
    );
}

/// The URLs the live test's script tries to download on a machine whose
/// `uname -s` and `uname -m` say `system` and `machine`, with `env` making
/// a stand-in play another release (so the script fetches the pinned one). A
/// fake curl records each URL and fails, so nothing leaves this machine and
/// the script stops at its first download.
fn downloads(system: &str, machine: &str, env: &[(&str, &str)]) -> Vec<String> {
    let work = std::env::temp_dir().join(format!(
        "mesh-e2e-downloads-{system}-{machine}-{}-{}",
        env.len(),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let log = work.join("calls.log");
    let fake = |name: &str, body: &str| {
        let path = work.join(name);
        std::fs::write(&path, format!("#!/usr/bin/env bash\n{body}\n")).unwrap();
        let mut permissions = std::fs::metadata(&path).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
        std::fs::set_permissions(&path, permissions).unwrap();
    };
    fake(
        "uname",
        &format!("case \"$1\" in -s) echo {system} ;; -m) echo {machine} ;; esac"),
    );
    // A curl that records each download it is asked for and fails it with
    // curl's exit code 7, "Failed to connect to host" (curl/curl,
    // include/curl/curl.h, CURLE_COULDNT_CONNECT), as curl does offline.
    fake(
        "curl",
        "for a in \"$@\"; do case \"$a\" in https://*) echo \"curl $a\" >>\"$STAND_IN_LOG\" ;; esac; done; exit 7",
    );
    let output = stand_ins::command("bash", &["scripts/mesh-e2e.sh"], &[&work], &log)
        .env("TRACING", "zipkin")
        .env("MESH_E2E_OUT", work.join("out"))
        // A checker that is not there ends the run right after the tools,
        // before any cluster step, and without a release build.
        .env("MESH_E2E_CHECK", work.join("no-checker"))
        .envs(env.iter().copied())
        .output()
        .expect("bash runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot download") || stderr.contains("no-checker was not built"),
        "the run ends at a failed download or at the missing checker: {stderr}"
    );
    stand_ins::calls(&log)
        .into_iter()
        .filter_map(|c| c.strip_prefix("curl ").map(str::to_owned))
        .collect()
}

#[test]
fn the_live_test_downloads_only_the_pinned_release_of_each_tool() {
    if !stand_ins_can_run("the_live_test_downloads_only_the_pinned_release_of_each_tool") {
        return;
    }
    for (older, pinned) in [
        (
            ("STAND_IN_KIND_VERSION", "v0.29.0"),
            "https://kind.sigs.k8s.io/dl/v0.30.0/kind-linux-amd64",
        ),
        (
            ("STAND_IN_KUBECTL_VERSION", "v1.33.4"),
            "https://dl.k8s.io/release/v1.34.1/bin/linux/amd64/kubectl",
        ),
        (
            ("STAND_IN_ISTIOCTL_VERSION", "1.29.2"),
            "https://github.com/istio/istio/releases/download/1.30.3/istioctl-1.30.3-linux-amd64.tar.gz",
        ),
    ] {
        assert_eq!(
            downloads("Linux", "x86_64", &[older]),
            [pinned],
            "{older:?}"
        );
    }
    // With every tool at its pinned release, nothing is downloaded.
    assert_eq!(downloads("Linux", "x86_64", &[]), Vec::<String>::new());
}

#[test]
fn on_a_mac_the_live_test_downloads_istios_osx_archives() {
    if !stand_ins_can_run("on_a_mac_the_live_test_downloads_istios_osx_archives") {
        return;
    }
    for (machine, archive) in [("x86_64", "osx"), ("arm64", "osx-arm64")] {
        assert_eq!(
            downloads(
                "Darwin",
                machine,
                &[("STAND_IN_ISTIOCTL_VERSION", "1.29.2")]
            ),
            [format!(
                "https://github.com/istio/istio/releases/download/1.30.3/istioctl-1.30.3-{archive}.tar.gz"
            )]
        );
    }
}
