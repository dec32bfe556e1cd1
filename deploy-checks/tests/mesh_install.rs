//! The Istio install the project ships, checked without a cluster: both
//! tracing providers on both data planes, the Telemetry that names each, the
//! vendored Jaeger v2 addon they report to, our own OTLP export kept out of
//! the sidecars, and `make deploy-app` refusing a data plane that is not the
//! one installed.

use std::collections::BTreeSet;

use deploy_checks::{
    manifests::{
        Manifest, container_env, containers, deployment_name, deployments, load, make_plan,
        pod_annotations, repo_root,
    },
    openapi_schema::{istio_schemas, validate_resource},
    stand_ins,
};
use serde_json::Value;

/// What `make install-istio TRACING=…` accepts.
const PROVIDERS: [&str; 2] = ["zipkin", "otel"];

const ADDON: &str = "istio/addons/jaeger.yaml";

fn one(file: &str, kind: &str) -> Manifest {
    let mut found: Vec<Manifest> = load(file)
        .into_iter()
        .filter(|m| m.kind() == kind)
        .collect();
    assert_eq!(found.len(), 1, "k8s/{file} holds one {kind}");
    found.remove(0)
}

fn addon(kind: &str, name: &str) -> Manifest {
    load(ADDON)
        .into_iter()
        .find(|m| m.kind() == kind && m.name() == name)
        .unwrap_or_else(|| panic!("the Jaeger addon has no {kind} {name}"))
}

/// Every key under `value` is a field of MeshConfig message `message`, as
/// the vendored Istio 1.30 field list names them; enum values are checked too.
fn check_mesh_fields(value: &Value, message: &str, path: &str, errors: &mut Vec<String>) {
    static FIELDS: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    let fields = FIELDS.get_or_init(|| {
        let path = repo_root().join("deploy-checks/fixtures/istio-1.30-meshconfig-fields.json");
        let text = std::fs::read_to_string(path).expect("the MeshConfig field list is readable");
        serde_json::from_str::<Value>(&text).expect("it is JSON")["messages"].take()
    });
    let known = &fields[message];
    assert!(known.is_object(), "no field list for {message}");
    let items: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    for item in items {
        let Some(object) = item.as_object() else {
            continue;
        };
        for (key, child) in object {
            let here = format!("{path}.{key}");
            match &known[key] {
                Value::Null if !known.as_object().unwrap().contains_key(key) => {
                    errors.push(format!("{here}: no such field in Istio 1.30's {message}"));
                }
                Value::String(nested) => check_mesh_fields(child, nested, &here, errors),
                Value::Array(values) if !values.contains(child) => {
                    errors.push(format!("{here}: {child} is not one of {values:?}"));
                }
                _ => {}
            }
        }
    }
}

#[test]
fn each_tracing_provider_installs_with_fields_istio_1_30_knows_and_a_telemetry_that_names_it() {
    for provider in PROVIDERS {
        let install = one(&format!("istio/tracing-{provider}.yaml"), "IstioOperator");
        assert_eq!(install.api_version(), "install.istio.io/v1alpha1");
        let mut errors = Vec::new();
        check_mesh_fields(
            &install.value["spec"],
            "IstioOperatorSpec",
            ".spec",
            &mut errors,
        );
        assert!(errors.is_empty(), "{}: {errors:#?}", install.describe());
        let mesh = &install.value["spec"]["meshConfig"];
        assert_eq!(mesh["enableTracing"], true, "{provider}");
        let declared: Vec<&Value> = mesh["extensionProviders"]
            .as_array()
            .expect("extensionProviders")
            .iter()
            .filter(|p| p["name"] == provider)
            .collect();
        assert_eq!(declared.len(), 1, "{provider} is declared once");

        let telemetry = one(&format!("istio/telemetry-{provider}.yaml"), "Telemetry");
        let schema = &istio_schemas()["telemetry.istio.io/v1/Telemetry"];
        let errors = validate_resource(&telemetry.value, schema);
        assert!(errors.is_empty(), "{}: {errors:#?}", telemetry.describe());
        assert_eq!(
            telemetry.value["metadata"]["namespace"], "istio-system",
            "the root namespace makes it mesh-wide"
        );
        let tracing = &telemetry.value["spec"]["tracing"][0];
        assert_eq!(tracing["randomSamplingPercentage"], 100);
        assert_eq!(
            tracing["providers"],
            serde_json::json!([{ "name": provider }]),
            "the Telemetry names the provider its install declares"
        );
    }
}

#[test]
fn the_zipkin_provider_writes_b3_and_w3c_and_the_otel_provider_exports_otlp() {
    let zipkin = &one("istio/tracing-zipkin.yaml", "IstioOperator").value["spec"]["meshConfig"]["extensionProviders"]
        [0]["zipkin"];
    assert_eq!(zipkin["traceContextOption"], "USE_B3_WITH_W3C_PROPAGATION");
    let otel = &one("istio/tracing-otel.yaml", "IstioOperator").value["spec"]["meshConfig"]["extensionProviders"]
        [0]["opentelemetry"];
    assert!(
        otel["http"].is_null(),
        "no `http` block: Envoy exports OTLP over gRPC"
    );

    // Both report to the addon's collector Service, on a port it exposes
    // for that protocol.
    let collector = addon("Service", "jaeger-collector");
    let host = format!(
        "{}.{}.svc.cluster.local",
        collector.name(),
        collector.value["metadata"]["namespace"].as_str().unwrap()
    );
    for (provider, expected_port) in [(zipkin, 9411), (otel, 4317)] {
        assert_eq!(provider["service"], host.as_str());
        assert_eq!(provider["port"], expected_port);
        assert!(
            collector.value["spec"]["ports"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["port"] == expected_port),
            "jaeger-collector exposes {expected_port}"
        );
    }
}

#[test]
fn make_install_istio_applies_the_chosen_provider_and_the_vendored_addon() {
    for (args, provider) in [
        (vec!["install-istio"], "zipkin"),
        (vec!["install-istio", "TRACING=zipkin"], "zipkin"),
        (vec!["install-istio", "TRACING=otel"], "otel"),
    ] {
        let output = make_plan(&args);
        assert!(output.status.success(), "{args:?}");
        let plan = String::from_utf8_lossy(&output.stdout);
        let commands: Vec<&str> = plan
            .lines()
            .filter(|l| l.starts_with("istioctl install") || l.starts_with("kubectl apply"))
            .collect();
        assert_eq!(
            commands,
            [
                format!("istioctl install -y -f k8s/istio/tracing-{provider}.yaml"),
                format!("kubectl apply -f k8s/{ADDON}"),
                format!("kubectl apply -f k8s/istio/telemetry-{provider}.yaml"),
            ],
            "{args:?}"
        );
    }

    let refused = make_plan(&["install-istio", "TRACING=jaeger"]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains("TRACING=jaeger is not one of: zipkin otel"),
        "{stderr}"
    );
}

#[test]
fn the_pinned_istio_release_is_the_one_whose_schemas_and_addon_are_vendored() {
    let makefile = std::fs::read_to_string(repo_root().join("Makefile")).unwrap();
    let pinned = makefile
        .lines()
        .find_map(|l| l.strip_prefix("ISTIO_VERSION := "))
        .expect("the Makefile pins ISTIO_VERSION");
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("deploy-checks/fixtures/istio-v1-schemas.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        fixture["istio_version"], pinned,
        "re-vendor the CRD schemas"
    );
    let addon_text = std::fs::read_to_string(repo_root().join("k8s").join(ADDON)).unwrap();
    assert!(
        addon_text
            .lines()
            .next()
            .unwrap()
            .contains(&format!("Istio {pinned} ")),
        "re-vendor the Jaeger addon"
    );
}

#[test]
fn the_jaeger_addon_is_v2_and_make_jaeger_opens_its_ui_port_and_base_path() {
    let deployment = addon("Deployment", "jaeger");
    let image = deployment.value["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap();
    let tag = image
        .strip_prefix("docker.io/jaegertracing/jaeger:")
        .unwrap_or_else(|| panic!("{image} is Jaeger v2's single image"));
    assert!(tag.starts_with("2."), "{image}");

    let config = addon("ConfigMap", "jaeger");
    let config: Value =
        serde_norway::from_str(config.value["data"]["config.yaml"].as_str().unwrap()).unwrap();
    let base_path = config["extensions"]["jaeger_query"]["base_path"]
        .as_str()
        .unwrap();

    let ui = addon("Service", "tracing");
    let port = ui.value["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["targetPort"] == 16686)
        .expect("the tracing Service reaches the query UI");
    let plan = String::from_utf8_lossy(&make_plan(&["jaeger"]).stdout).into_owned();
    assert!(
        plan.contains(&format!(
            "kubectl -n istio-system port-forward service/tracing 16686:{}",
            port["port"]
        )),
        "{plan}"
    );
    assert!(
        plan.contains(&format!("http://localhost:16686{base_path}")),
        "{plan}"
    );

    // The docs' local `docker run` uses the addon's tag, so both are v2
    // and known to exist.
    let readme = std::fs::read_to_string(repo_root().join("docs/kubernetes.md")).unwrap();
    let tags: BTreeSet<&str> = readme
        .match_indices("jaegertracing/jaeger:")
        .map(|(at, prefix)| {
            let rest = &readme[at + prefix.len()..];
            &rest[..rest.find(|c: char| c.is_whitespace() || c == '`').unwrap()]
        })
        .collect();
    assert_eq!(
        tags,
        BTreeSet::from([tag]),
        "docs/kubernetes.md's Jaeger tags"
    );
}

/// The port of an OTLP endpoint URL: explicit, or the scheme's default.
fn url_port(url: &str) -> u16 {
    let authority = url.split("://").nth(1).unwrap().split('/').next().unwrap();
    match authority.rsplit_once(':') {
        Some((_, port)) => port.parse().unwrap(),
        None if url.starts_with("https") => 443,
        None => 80,
    }
}

#[test]
fn every_pod_sends_its_otlp_export_around_its_sidecar_on_the_port_it_exports_to() {
    let collector = addon("Service", "jaeger-collector");
    for deployment in deployments() {
        let excluded: BTreeSet<u16> = pod_annotations(&deployment)
            .get("traffic.sidecar.istio.io/excludeOutboundPorts")
            .map(|ports| {
                ports
                    .split(',')
                    .map(|p| p.trim().parse().unwrap())
                    .collect()
            })
            .unwrap_or_default();
        for container in containers(&deployment) {
            let env = container_env(container);
            let endpoint = env
                .get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
                .or_else(|| env.get("OTEL_EXPORTER_OTLP_ENDPOINT"))
                .unwrap_or_else(|| panic!("{}: no OTLP endpoint", deployment_name(&deployment)));
            let port = url_port(endpoint);
            assert!(
                excluded.contains(&port),
                "{}: exports to {endpoint} but excludes only {excluded:?}",
                deployment_name(&deployment)
            );
            // And the endpoint is the addon's collector, on its OTLP port
            // for the protocol the container uses.
            let host = endpoint
                .split("://")
                .nth(1)
                .unwrap()
                .split(':')
                .next()
                .unwrap();
            assert_eq!(host, "jaeger-collector.istio-system");
            let port_name = match env.get("OTEL_EXPORTER_OTLP_PROTOCOL").map(String::as_str) {
                Some("grpc") => "grpc-otel",
                _ => "http-otel",
            };
            assert!(
                collector.value["spec"]["ports"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|p| p["name"] == port_name && p["port"] == port),
                "{}: {endpoint} is not the collector's {port_name} port",
                deployment_name(&deployment)
            );
        }
    }
}

/// `make install-istio TRACING=provider DATAPLANE=dataplane`, run for real
/// with the stand-ins on `PATH` and istioctl answering as `istioctl_version`.
fn install_with_stand_ins(
    provider: &str,
    dataplane: &str,
    istioctl_version: &str,
) -> (std::process::Output, Vec<String>) {
    stand_ins::run(
        &format!("install-istio-{provider}-{dataplane}-{istioctl_version}"),
        "make",
        &[
            "--no-print-directory",
            "install-istio",
            &format!("TRACING={provider}"),
            &format!("DATAPLANE={dataplane}"),
        ],
        &[("STAND_IN_ISTIOCTL_VERSION", istioctl_version)],
    )
}

#[test]
fn make_install_istio_gets_past_the_version_gate_with_istioctl_1_30_3s_real_output() {
    for provider in PROVIDERS {
        let (output, calls) = install_with_stand_ins(provider, "sidecar", "1.30.3");
        assert!(
            output.status.success(),
            "{provider}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            calls,
            [
                "istioctl version --remote=false --short".to_owned(),
                format!("istioctl install -y -f k8s/istio/tracing-{provider}.yaml"),
                format!("kubectl apply -f k8s/{ADDON}"),
                format!("kubectl apply -f k8s/istio/telemetry-{provider}.yaml"),
            ],
            "{provider}"
        );
    }
}

/// What a refusing target wrote on stderr, less make's own `make: ***`
/// line: the one line the project promises.
fn refusal_lines(output: &std::process::Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter(|l| !l.starts_with("make: ***"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn make_install_istio_refuses_another_istio_minor_in_one_line() {
    let (output, calls) = install_with_stand_ins("zipkin", "ambient", "1.29.2");
    assert!(!output.status.success());
    let ours = refusal_lines(&output);
    assert_eq!(
        ours,
        [
            "make install-istio: istioctl 1.29.2 found; this project is tested with Istio 1.30.3: \
          https://istio.io/latest/docs/setup/additional-setup/download-istio-release/"
        ],
        "{ours:#?}"
    );
    assert_eq!(
        calls,
        ["istioctl version --remote=false --short"],
        "nothing installed"
    );
}

/// What `make install-istio DATAPLANE=ambient TRACING=provider` runs: the
/// Gateway API CRDs, then the ambient profile over the provider's file.
fn ambient_install(provider: &str) -> Vec<String> {
    vec![
        "kubectl apply --server-side -f k8s/gateway-api/standard-install.yaml".to_owned(),
        format!("istioctl install -y -f k8s/istio/tracing-{provider}.yaml --set profile=ambient"),
        format!("kubectl apply -f k8s/{ADDON}"),
        format!("kubectl apply -f k8s/istio/telemetry-{provider}.yaml"),
    ]
}

#[test]
fn make_install_istio_ambient_applies_the_gateway_api_crds_then_the_ambient_profile() {
    for provider in PROVIDERS {
        let output = make_plan(&[
            "install-istio",
            &format!("TRACING={provider}"),
            "DATAPLANE=ambient",
        ]);
        assert!(output.status.success(), "{provider}");
        let plan = String::from_utf8_lossy(&output.stdout);
        let commands: Vec<&str> = plan
            .lines()
            .filter(|l| l.starts_with("istioctl install") || l.starts_with("kubectl apply"))
            .collect();
        assert_eq!(commands, ambient_install(provider), "{provider}");

        let (output, calls) = install_with_stand_ins(provider, "ambient", "1.30.3");
        assert!(
            output.status.success(),
            "{provider}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let mut expected = vec!["istioctl version --remote=false --short".to_owned()];
        expected.extend(ambient_install(provider));
        assert_eq!(calls, expected, "{provider}");
    }
}

/// `make install-istio DATAPLANE=installed`, then `make deploy-app
/// DATAPLANE=deployed`, against the stand-ins (whose cluster keeps what was
/// installed).
fn install_then_deploy(installed: &str, deployed: &str) -> (std::process::Output, Vec<String>) {
    let script = format!(
        "make --no-print-directory install-istio DATAPLANE={installed} >/dev/null && \
         make --no-print-directory deploy-app DATAPLANE={deployed}"
    );
    stand_ins::run(
        &format!("deploy-app-{installed}-{deployed}"),
        "bash",
        &["-c", &script],
        &[],
    )
}

#[test]
fn make_deploy_app_deploys_on_the_installed_data_plane_and_refuses_the_other_in_one_line() {
    for dataplane in ["sidecar", "ambient"] {
        let (output, calls) = install_then_deploy(dataplane, dataplane);
        assert!(
            output.status.success(),
            "{dataplane}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let applied = if dataplane == "sidecar" {
            "kubectl apply -k k8s/sidecar"
        } else {
            "kubectl apply -k k8s/ambient"
        };
        assert_eq!(
            calls.last().map(String::as_str),
            Some(applied),
            "{calls:#?}"
        );
    }
    for (installed, deployed) in [("sidecar", "ambient"), ("ambient", "sidecar")] {
        let (output, calls) = install_then_deploy(installed, deployed);
        assert!(!output.status.success());
        let ours = refusal_lines(&output);
        assert_eq!(
            ours,
            [format!(
                "make deploy-app: DATAPLANE={deployed}, but Istio in this cluster is installed for \
                 {installed}; use make deploy-app DATAPLANE={installed}, or reinstall with make \
                 install-istio DATAPLANE={deployed}"
            )],
            "{ours:#?}"
        );
        assert_eq!(
            calls.last().map(String::as_str),
            Some("kubectl -n istio-system get daemonset ztunnel --ignore-not-found -o name"),
            "nothing applied"
        );
    }
}
