//! The ambient data plane's manifests (`k8s/ambient/`), checked without a
//! cluster as thoroughly as the sidecar path's: the Gateway API kinds
//! against the vendored v1.5.1 schemas, every reference between objects,
//! the waypoint, the namespace, the idle timeout, the hardening, and the
//! vendored CRDs themselves. Which version a request reaches is in
//! `tests/tests/routing_contract.rs`.

use std::collections::BTreeMap;

use deploy_checks::{
    gateway_api_routing::{GATEWAY_GROUP, HttpRoute},
    manifests::{
        Dataplane, Manifest, deployment_name, deployments, find, load, make_plan, of_kind, parsed,
        pod_labels, repo_root, selects, service_selector,
    },
    openapi_schema::{gateway_api_schemas, validate_resource},
};
use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const WAYPOINT_CLASS: &str = "istio-waypoint";
const USE_WAYPOINT: &str = "istio.io/use-waypoint";

fn ambient() -> Vec<Manifest> {
    Dataplane::Ambient.deployed()
}

fn named<'a>(manifests: &'a [Manifest], kind: &str, name: &str) -> &'a Manifest {
    find(manifests, kind, name).unwrap_or_else(|| panic!("no {kind} {name} in k8s/ambient"))
}

fn http_routes(manifests: &[Manifest]) -> Vec<(&Manifest, HttpRoute)> {
    manifests
        .iter()
        .filter(|m| m.kind() == "HTTPRoute")
        .map(|m| (m, parsed(m)))
        .collect()
}

fn service<'a>(services: &'a [Service], name: &str) -> Option<&'a Service> {
    services
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some(name))
}

fn has_port(service: &Service, port: u16) -> bool {
    service
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .is_some_and(|ports| ports.iter().any(|p| p.port == i32::from(port)))
}

fn label<'a>(manifest: &'a Manifest, key: &str) -> Option<&'a str> {
    manifest.value["metadata"]["labels"][key].as_str()
}

#[test]
fn the_gateway_api_kinds_validate_against_the_vendored_v1_5_1_schemas() {
    let mut checked = 0;
    for manifest in ambient()
        .iter()
        .filter(|m| m.api_version().starts_with(GATEWAY_GROUP))
    {
        let key = format!("{}/{}", manifest.api_version(), manifest.kind());
        let schema = gateway_api_schemas()
            .get(&key)
            .unwrap_or_else(|| panic!("{}: no vendored schema", manifest.describe()));
        let errors = validate_resource(&manifest.value, schema);
        assert!(errors.is_empty(), "{}: {errors:#?}", manifest.describe());
        checked += 1;
    }
    assert_eq!(checked, 4, "two Gateways and two HTTPRoutes");
}

#[test]
fn the_evaluators_defaults_are_the_ones_the_vendored_crd_fills_in() {
    let schema = &gateway_api_schemas()["gateway.networking.k8s.io/v1/HTTPRoute"];
    let spec = &schema["properties"]["spec"]["properties"];
    let rule = &spec["rules"]["items"]["properties"];
    let prefix_root = json!({"type": "PathPrefix", "value": "/"});
    assert_eq!(rule["matches"]["default"], json!([{"path": prefix_root}]));
    let a_match = &rule["matches"]["items"]["properties"];
    assert_eq!(a_match["path"]["default"], prefix_root);
    assert_eq!(
        a_match["headers"]["items"]["properties"]["type"]["default"],
        "Exact"
    );
    let parent = &spec["parentRefs"]["items"]["properties"];
    assert_eq!(parent["group"]["default"], GATEWAY_GROUP);
    assert_eq!(parent["kind"]["default"], "Gateway");
}

#[test]
fn every_service_parent_is_a_core_service_that_uses_an_existing_waypoint() {
    let manifests = ambient();
    let services: Vec<Service> = of_kind(&manifests, "Service");
    let mut service_parents = 0;
    for (manifest, route) in http_routes(&manifests) {
        for parent in &route.spec.parent_refs {
            match parent.group_kind() {
                ("", "Service") => {
                    service_parents += 1;
                    let target = service(&services, &parent.name).unwrap_or_else(|| {
                        panic!(
                            "{}: parent {} is no Service",
                            manifest.describe(),
                            parent.name
                        )
                    });
                    let port = parent.port.expect("a Service parent names its port");
                    assert!(has_port(target, port), "{}: port {port}", parent.name);
                    let waypoint = target
                        .metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get(USE_WAYPOINT))
                        .unwrap_or_else(|| {
                            panic!(
                                "{}: without {USE_WAYPOINT}, Istio accepts the route but no \
                                 waypoint enforces it",
                                parent.name
                            )
                        });
                    let gateway = named(&manifests, "Gateway", waypoint);
                    assert_eq!(gateway.value["spec"]["gatewayClassName"], WAYPOINT_CLASS);
                }
                (GATEWAY_GROUP, "Gateway") => {
                    let gateway = named(&manifests, "Gateway", &parent.name);
                    assert_eq!(gateway.value["spec"]["gatewayClassName"], "istio");
                }
                (group, kind) => panic!(
                    "{}: parent {group}/{kind} {}: a Service parent's group is \"\"",
                    manifest.describe(),
                    parent.name
                ),
            }
        }
    }
    assert_eq!(service_parents, 1, "the formatter-svc route");
}

#[test]
fn every_backend_is_a_service_port_and_each_version_service_selects_one_deployment() {
    let manifests = ambient();
    let services: Vec<Service> = of_kind(&manifests, "Service");
    let deployments = deployments();
    for (manifest, route) in http_routes(&manifests) {
        let gamma = route
            .spec
            .parent_refs
            .iter()
            .any(|p| p.group_kind() == ("", "Service"));
        for backend in route.spec.rules.iter().flat_map(|r| &r.backend_refs) {
            let target = service(&services, &backend.name).unwrap_or_else(|| {
                panic!(
                    "{}: backend {} is no Service",
                    manifest.describe(),
                    backend.name
                )
            });
            let port = backend.port.expect("a Service backend names its port");
            assert!(has_port(target, port), "{}: port {port}", backend.name);
            let selector = service_selector(target);
            let selected: Vec<&str> = deployments
                .iter()
                .filter(|d| selects(&selector, &pod_labels(d)))
                .map(deployment_name)
                .collect();
            assert_eq!(selected.len(), 1, "{}: selects {selected:?}", backend.name);
            if gamma {
                // A version Service is named after the version it selects.
                let version = &selector["version"];
                assert_eq!(backend.name, format!("formatter-svc-{version}"));
            }
        }
    }
}

#[test]
fn the_waypoint_is_an_hbone_gateway_for_service_traffic() {
    let manifests = ambient();
    let waypoint = named(&manifests, "Gateway", "waypoint");
    assert_eq!(waypoint.value["spec"]["gatewayClassName"], WAYPOINT_CLASS);
    assert_eq!(
        waypoint.value["spec"]["listeners"],
        json!([{"name": "mesh", "port": 15008, "protocol": "HBONE"}]),
        "what istioctl waypoint generate writes"
    );
    assert_eq!(label(waypoint, "istio.io/waypoint-for"), Some("service"));
}

#[test]
fn the_namespace_is_ambient_with_no_injection_and_only_the_formatter_uses_the_waypoint() {
    let namespace = load("ambient/namespace.yaml");
    assert_eq!(namespace.len(), 1);
    let labels = &namespace[0].value["metadata"]["labels"];
    assert_eq!(
        labels,
        &json!({"istio.io/dataplane-mode": "ambient"}),
        "no istio-injection label: an injected pod is left out of ambient"
    );
    let manifests = ambient();
    let users: Vec<&str> = manifests
        .iter()
        .filter(|m| label(m, USE_WAYPOINT).is_some())
        .map(Manifest::name)
        .collect();
    assert_eq!(users, ["formatter-svc"]);
}

#[test]
fn the_waypoint_to_formatter_hop_gets_the_sidecar_paths_idle_timeout() {
    let sidecar_rule = load("sidecar/routing.yaml")
        .into_iter()
        .find(|m| m.kind() == "DestinationRule")
        .expect("the sidecar DestinationRule");
    let sidecar_policy = &sidecar_rule.value["spec"]["trafficPolicy"];
    let manifests = ambient();
    let (_, route) = http_routes(&manifests)
        .into_iter()
        .find(|(m, _)| m.name() == "formatter-svc")
        .expect("the formatter-svc route");
    let mut backends: Vec<&str> = route
        .spec
        .rules
        .iter()
        .flat_map(|r| &r.backend_refs)
        .map(|b| b.name.as_str())
        .collect();
    backends.sort();
    let mut hosts = Vec::new();
    for rule in manifests.iter().filter(|m| m.kind() == "DestinationRule") {
        assert_eq!(
            &rule.value["spec"]["trafficPolicy"],
            sidecar_policy,
            "{}",
            rule.describe()
        );
        assert!(rule.value["spec"]["subsets"].is_null(), "no subsets");
        hosts.push(rule.value["spec"]["host"].as_str().unwrap());
    }
    hosts.sort();
    assert_eq!(hosts, backends, "one DestinationRule per backend Service");
}

/// The principal of a ServiceAccount in the namespace the manifests assume.
fn principal(account: &str) -> String {
    format!("cluster.local/ns/default/sa/{account}")
}

#[test]
fn the_ambient_hardening_puts_l7_rules_on_the_waypoint_and_admits_only_it_at_the_pods() {
    let hardening = Dataplane::Ambient.hardening();
    let schemas = deploy_checks::openapi_schema::istio_schemas();
    for manifest in &hardening {
        let key = format!("{}/{}", manifest.api_version(), manifest.kind());
        let errors = validate_resource(&manifest.value, &schemas[&key]);
        assert!(errors.is_empty(), "{}: {errors:#?}", manifest.describe());
    }
    let peer = named(&hardening, "PeerAuthentication", "default");
    assert_eq!(peer.value["spec"]["mtls"]["mode"], "STRICT");

    let manifests = ambient();
    let l7 = &named(&hardening, "AuthorizationPolicy", "formatter-svc-callers").value["spec"];
    assert!(l7["selector"].is_null(), "ztunnel would enforce a selector");
    assert_eq!(
        l7["targetRefs"],
        json!([{"group": "", "kind": "Service", "name": "formatter-svc"}])
    );
    let target = named(&manifests, "Service", "formatter-svc");
    assert!(
        label(target, USE_WAYPOINT).is_some(),
        "a waypoint enforces it"
    );
    assert_eq!(
        l7["rules"][0]["from"][0]["source"]["principals"],
        json!([principal("hello-svc")])
    );
    assert_eq!(
        l7["rules"][0]["to"][0]["operation"],
        json!({"methods": ["GET"], "paths": ["/formatGreeting"]})
    );

    // Every selector policy is L4 only: ztunnel sees no HTTP, so an L7
    // field there would deny everything.
    let l4 = named(
        &hardening,
        "AuthorizationPolicy",
        "formatter-svc-via-waypoint",
    );
    for policy in hardening
        .iter()
        .filter(|m| m.kind() == "AuthorizationPolicy")
    {
        if !policy.value["spec"]["selector"].is_null() {
            assert!(
                policy.value["spec"]["rules"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|r| r["to"].is_null()),
                "{}",
                policy.describe()
            );
        }
    }
    // The waypoint's identity: Istio names its ServiceAccount after the
    // Gateway, with no class suffix for istio-waypoint.
    let waypoint = label(target, USE_WAYPOINT).unwrap();
    assert_eq!(
        l4.value["spec"]["rules"][0]["from"][0]["source"]["principals"],
        json!([principal(waypoint)])
    );
    let selector: BTreeMap<String, String> =
        serde_json::from_value(l4.value["spec"]["selector"]["matchLabels"].clone()).unwrap();
    let all = deployments();
    let guarded: Vec<&str> = all
        .iter()
        .filter(|d| selects(&selector, &pod_labels(d)))
        .map(deployment_name)
        .collect();
    assert_eq!(guarded, ["formatter-svc-v1", "formatter-svc-v2"]);
    let accounts: Vec<ServiceAccount> = of_kind(&load("app.yaml"), "ServiceAccount");
    assert!(
        accounts
            .iter()
            .any(|a| a.metadata.name.as_deref() == Some("hello-svc"))
    );
}

#[test]
fn make_hostport_reads_the_service_istio_deploys_for_the_ingress_gateway() {
    let manifests = ambient();
    let gateway = named(&manifests, "Gateway", "hello-gateway");
    // Istio's name for a Gateway's Deployment and Service: the Gateway's
    // name, `-`, its class (pilot/pkg/config/kube/gatewaycommon/
    // gateway_utils.go, GetDefaultName); the Service's ports are named after
    // the listeners (deploymentcontroller.go, extractServicePorts).
    let class = gateway.value["spec"]["gatewayClassName"].as_str().unwrap();
    let service = format!("{}-{class}", gateway.name());
    let listener = gateway.value["spec"]["listeners"][0]["name"]
        .as_str()
        .unwrap();
    let plan = make_plan(&["hostport", "DATAPLANE=ambient"]);
    let plan = String::from_utf8_lossy(&plan.stdout);
    assert!(
        plan.contains(&format!(
            "kubectl -n default get service {service} -o jsonpath"
        )),
        "{plan}"
    );
    assert!(
        plan.contains(&format!("{{.spec.ports[?(@.name==\"{listener}\")].port}}")),
        "{plan}"
    );
}

/// The vendored CRD file: the SHA-256 its header cites, and the body.
fn vendored_crds() -> (String, String) {
    let path = repo_root().join("k8s/gateway-api/standard-install.yaml");
    let text = std::fs::read_to_string(path).expect("the vendored CRDs are readable");
    let (header, body) = text
        .split_once("# --- vendored content below ---\n")
        .expect("a marker line ends the header");
    let cited = header
        .lines()
        .find_map(|l| l.strip_prefix("# sha256:"))
        .expect("the header cites a SHA-256")
        .to_owned();
    (cited, body.to_owned())
}

#[test]
fn the_vendored_gateway_api_crds_are_v1_5_1_unchanged_and_the_schemas_come_from_them() {
    let (cited, body) = vendored_crds();
    let digest: String = Sha256::digest(body.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(digest, cited, "the body is not the copy the header cites");
    assert_eq!(
        cited, "d5ab888ec5434d9176a6ee7ce5d20c7538762835b1000e74f0629a7c9cd01b3c",
        "re-vendoring is a reviewed change"
    );
    let versions: Vec<&str> = body
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("gateway.networking.k8s.io/bundle-version: ")
        })
        .collect();
    // Each CRD carries the release; upstream's ValidatingAdmissionPolicy
    // `safe-upgrades` in the same file still says v1.5.0-dev.
    let crds = body
        .lines()
        .filter(|l| *l == "kind: CustomResourceDefinition")
        .count();
    assert_eq!(crds, 8, "the standard channel's eight CRDs");
    assert_eq!(
        versions.iter().filter(|v| **v == "v1.5.1").count(),
        crds,
        "{versions:?}"
    );
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(
            repo_root().join("deploy-checks/fixtures/gateway-api-v1-schemas.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(fixture["gateway_api_version"], "v1.5.1");
}
