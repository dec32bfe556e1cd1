//! The Dockerfile, the Makefile and `k8s/` agree with each other and with the
//! code, checked without a cluster, for both data planes.

use std::{collections::BTreeMap, net::SocketAddr, process::Command};

use clap::CommandFactory;
use deploy_checks::{
    istio_routing::VirtualService,
    manifests::{
        Dataplane, Manifest, container_env as env, containers, deployment_name as name,
        deployments, load, load_all, load_kustomization, make_plan, of_kind, parsed, pod_labels,
        repo_root, selects, service_selector,
    },
    openapi_schema::{crd_schema, validate_resource},
};
use k8s_openapi::{
    api::{
        apps::v1::Deployment,
        core::v1::{Namespace, Service, ServiceAccount},
    },
    apimachinery::pkg::util::intstr::IntOrString,
};

/// The Services `make deploy-app DATAPLANE=…` applies.
fn services(dataplane: Dataplane) -> Vec<Service> {
    of_kind(&dataplane.deployed(), "Service")
}

fn virtual_services() -> Vec<VirtualService> {
    load_all()
        .iter()
        .filter(|m| m.kind() == "VirtualService")
        .map(parsed)
        .collect()
}

#[test]
fn every_manifest_of_both_data_planes_parses_into_its_typed_kubernetes_object() {
    let manifests: Vec<Manifest> = Dataplane::ALL
        .iter()
        .flat_map(|dataplane| {
            let mut all = dataplane.deployed();
            all.extend(dataplane.hardening());
            all
        })
        .collect();
    assert!(
        manifests.len() >= 30,
        "found only {} objects",
        manifests.len()
    );
    for manifest in &manifests {
        let schema_key = format!("{}/{}", manifest.api_version(), manifest.kind());
        let outcome = match manifest.kind() {
            "Deployment" => manifest.typed::<Deployment>().map(drop),
            "Service" => manifest.typed::<Service>().map(drop),
            "ServiceAccount" => manifest.typed::<ServiceAccount>().map(drop),
            "Namespace" => manifest.typed::<Namespace>().map(drop),
            _ => match crd_schema(&schema_key) {
                Some(schema) => {
                    let errors = validate_resource(&manifest.value, schema);
                    if errors.is_empty() {
                        Ok(())
                    } else {
                        Err(format!("{}: {errors:#?}", manifest.describe()))
                    }
                }
                None => Err(format!(
                    "{}: no schema for {schema_key}",
                    manifest.describe()
                )),
            },
        };
        if let Err(error) = outcome {
            panic!("{error}");
        }
    }
}

#[test]
fn services_select_the_pods_of_their_deployments_and_every_deployment_is_served() {
    for dataplane in Dataplane::ALL {
        services_select_pods_and_every_deployment_is_served(dataplane);
    }
}

fn services_select_pods_and_every_deployment_is_served(dataplane: Dataplane) {
    let deployments = deployments();
    for deployment in &deployments {
        let selector = deployment
            .spec
            .as_ref()
            .unwrap()
            .selector
            .match_labels
            .clone()
            .unwrap_or_default();
        assert!(
            selects(&selector, &pod_labels(deployment)),
            "{} selects its own pods",
            name(deployment)
        );
        let labels = pod_labels(deployment);
        assert!(
            labels.contains_key("app") && labels.contains_key("version"),
            "{}: Istio needs app and version labels",
            name(deployment)
        );
    }
    let services = services(dataplane);
    for service in &services {
        assert!(
            deployments
                .iter()
                .any(|d| selects(&service_selector(service), &pod_labels(d))),
            "{dataplane:?}: Service {:?} selects no pods",
            service.metadata.name
        );
    }
    for deployment in &deployments {
        assert!(
            services
                .iter()
                .any(|s| selects(&service_selector(s), &pod_labels(deployment))),
            "{dataplane:?}: no Service reaches {}",
            name(deployment)
        );
    }
}

#[test]
fn service_target_ports_reach_container_ports_that_the_binaries_listen_on() {
    let deployments = deployments();
    for service in Dataplane::ALL.into_iter().flat_map(services) {
        let spec = service.spec.as_ref().unwrap();
        let selector = spec.selector.clone().unwrap_or_default();
        for port in spec.ports.iter().flatten() {
            assert_eq!(
                port.name.as_deref(),
                Some("http"),
                "Istio reads the protocol from the port name"
            );
            for deployment in deployments
                .iter()
                .filter(|d| selects(&selector, &pod_labels(d)))
            {
                let container = &containers(deployment)[0];
                let container_port = container
                    .ports
                    .iter()
                    .flatten()
                    .find(|p| match &port.target_port {
                        Some(IntOrString::String(target)) => p.name.as_deref() == Some(target),
                        Some(IntOrString::Int(target)) => p.container_port == *target,
                        None => p.container_port == port.port,
                    })
                    .unwrap_or_else(|| {
                        panic!(
                            "{}: no container port for {:?}",
                            name(deployment),
                            port.target_port
                        )
                    });
                let listen: SocketAddr = env(container)["LISTEN_ADDR"]
                    .parse()
                    .expect("LISTEN_ADDR is an address");
                assert_eq!(
                    i32::from(listen.port()),
                    container_port.container_port,
                    "{}: LISTEN_ADDR",
                    name(deployment)
                );
            }
        }
    }
}

#[test]
fn destination_rules_name_a_service_and_their_subsets_match_the_version_labels() {
    for dataplane in Dataplane::ALL {
        destination_rules_match_services_and_versions(dataplane);
    }
}

/// Every DestinationRule's host is a Service the data plane deploys; its
/// subsets (the sidecar path's) split exactly the Deployments it selects.
fn destination_rules_match_services_and_versions(dataplane: Dataplane) {
    let manifests = dataplane.deployed();
    let deployments = deployments();
    let services = services(dataplane);
    let rules: Vec<_> = manifests
        .iter()
        .filter(|m| m.kind() == "DestinationRule")
        .collect();
    assert!(!rules.is_empty(), "{dataplane:?}: no DestinationRule");
    for rule in rules {
        let host = rule.value["spec"]["host"].as_str().unwrap();
        let service = services
            .iter()
            .find(|s| s.metadata.name.as_deref() == Some(host))
            .unwrap_or_else(|| panic!("{}: host {host} is no Service", rule.describe()));
        let workloads: Vec<_> = deployments
            .iter()
            .filter(|d| selects(&service_selector(service), &pod_labels(d)))
            .collect();
        let Some(subsets) = rule.value["spec"]["subsets"].as_array() else {
            continue;
        };
        for subset in subsets {
            let labels: BTreeMap<String, String> =
                serde_json::from_value(subset["labels"].clone()).unwrap();
            assert!(
                workloads.iter().any(|d| selects(&labels, &pod_labels(d))),
                "subset {} selects no pods",
                subset["name"]
            );
        }
        for workload in workloads {
            let version = &pod_labels(workload)["version"];
            assert!(
                subsets.iter().any(|s| s["labels"]["version"] == *version),
                "{} has no subset",
                name(workload)
            );
        }
    }
}

#[test]
fn virtual_services_name_existing_gateways_services_subsets_and_ports() {
    let manifests = load_all();
    let services = services(Dataplane::Sidecar);
    let gateways: Vec<&str> = manifests
        .iter()
        .filter(|m| m.kind() == "Gateway")
        .map(Manifest::name)
        .collect();
    let service_named = |host: &str| {
        services
            .iter()
            .find(|s| s.metadata.name.as_deref() == Some(host))
    };
    for vs in virtual_services() {
        for gateway in &vs.spec.gateways {
            assert!(
                gateways.contains(&gateway.as_str()),
                "{}: gateway {gateway} does not exist",
                vs.metadata.name
            );
        }
        if vs.spec.gateways.is_empty() {
            for host in &vs.spec.hosts {
                assert!(
                    service_named(host).is_some(),
                    "{}: host {host} is no Service",
                    vs.metadata.name
                );
            }
        }
        for destination in vs
            .spec
            .http
            .iter()
            .flat_map(|rule| &rule.route)
            .map(|r| &r.destination)
        {
            let service = service_named(&destination.host).unwrap_or_else(|| {
                panic!("{}: {} is no Service", vs.metadata.name, destination.host)
            });
            if let Some(port) = &destination.port {
                let ports = service.spec.as_ref().unwrap().ports.iter().flatten();
                assert!(
                    ports.clone().any(|p| p.port == i32::from(port.number)),
                    "{}: port {}",
                    destination.host,
                    port.number
                );
            }
            if let Some(subset) = &destination.subset {
                let defined = manifests.iter().any(|m| {
                    m.kind() == "DestinationRule"
                        && m.value["spec"]["host"] == destination.host.as_str()
                        && m.value["spec"]["subsets"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|s| s["name"] == subset.as_str())
                });
                assert!(
                    defined,
                    "{}: subset {subset} of {} is not defined",
                    vs.metadata.name, destination.host
                );
            }
        }
    }
}

#[test]
fn every_env_var_a_manifest_sets_is_read_and_accepted_by_the_binary() {
    for deployment in deployments() {
        for container in containers(&deployment) {
            let command = match container.name.as_str() {
                "hello-svc" => hello_svc::config::Config::command(),
                "formatter-svc" => formatter_svc::config::Config::command(),
                other => panic!("{}: unknown container {other}", name(&deployment)),
            };
            let mut argv = vec![container.name.clone()];
            for (var, value) in env(container) {
                let arg = command
                    .get_arguments()
                    .find(|arg| arg.get_env().is_some_and(|env| env == var.as_str()))
                    .unwrap_or_else(|| {
                        panic!(
                            "{}: {var} is read by no flag of {}",
                            name(&deployment),
                            container.name
                        )
                    });
                argv.push(format!(
                    "--{}",
                    arg.get_long().expect("env-backed flags are long flags")
                ));
                argv.push(value);
            }
            // The same values, given as flags, must parse: a wrong
            // FORMATTER_VERSION or sampler fails here, not in the cluster.
            if let Err(error) = command.clone().try_get_matches_from(&argv) {
                panic!("{}: {argv:?} is rejected: {error}", name(&deployment));
            }
        }
    }
}

#[test]
fn pods_run_non_root_read_only_with_probes_limits_and_time_to_flush() {
    for deployment in deployments() {
        let pod = deployment
            .spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap();
        assert_eq!(
            pod.security_context
                .as_ref()
                .and_then(|s| s.run_as_non_root),
            Some(true),
            "{}",
            name(&deployment)
        );
        assert!(
            pod.termination_grace_period_seconds.unwrap_or(30) >= 30,
            "{}: time to drain and flush",
            name(&deployment)
        );
        for container in &pod.containers {
            let security = container
                .security_context
                .as_ref()
                .expect("container securityContext");
            assert_eq!(security.read_only_root_filesystem, Some(true));
            assert_eq!(security.allow_privilege_escalation, Some(false));
            let dropped = security
                .capabilities
                .as_ref()
                .and_then(|c| c.drop.clone())
                .unwrap_or_default();
            assert_eq!(dropped, ["ALL"]);
            for probe in [&container.readiness_probe, &container.liveness_probe] {
                let path = probe
                    .as_ref()
                    .and_then(|p| p.http_get.as_ref())
                    .and_then(|h| h.path.as_deref());
                assert_eq!(path, Some("/healthz"), "{}", name(&deployment));
            }
            let resources = container.resources.as_ref().expect("resources");
            assert!(
                resources
                    .requests
                    .as_ref()
                    .is_some_and(|r| r.contains_key("cpu") && r.contains_key("memory"))
            );
            assert!(
                resources
                    .limits
                    .as_ref()
                    .is_some_and(|r| r.contains_key("memory"))
            );
            let policy = container.image_pull_policy.as_deref();
            assert!(
                matches!(policy, Some("IfNotPresent" | "Never")),
                "images built in minikube must not be pulled: {policy:?}"
            );
        }
    }
}

/// The Dockerfile's instructions, continuation lines joined, by stage name.
fn dockerfile_stages() -> BTreeMap<String, Vec<String>> {
    let text = std::fs::read_to_string(repo_root().join("Dockerfile")).unwrap();
    let joined = text.replace("\\\n", " ");
    let mut stages = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in joined
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        if let Some(from) = line.strip_prefix("FROM ") {
            let stage = from
                .split(" AS ")
                .nth(1)
                .expect("every stage is named")
                .trim()
                .to_owned();
            stages.insert(stage.clone(), vec![line.to_owned()]);
            current = Some(stage);
        } else if let Some(stage) = &current {
            stages.get_mut(stage).unwrap().push(line.to_owned());
        }
    }
    stages
}

#[test]
fn images_match_what_make_build_app_tags_and_the_dockerfile_builds() {
    let output = Command::new("make")
        .args(["-n", "build-app"])
        .current_dir(repo_root())
        .output()
        .expect("make runs");
    let plan = String::from_utf8_lossy(&output.stdout);
    let stages = dockerfile_stages();
    for deployment in deployments() {
        for container in containers(&deployment) {
            let image = container.image.as_deref().unwrap();
            let target = image.split(':').next().unwrap();
            assert!(
                plan.contains(&format!("docker build --target {target} -t {image} .")),
                "make build-app does not build {image}:\n{plan}"
            );
            let stage = stages
                .get(target)
                .unwrap_or_else(|| panic!("Dockerfile has no stage {target}"));
            let has = |prefix: &str| stage.iter().any(|l| l.starts_with(prefix));
            // debian12's distroless images reached end of life in September
            // 2026; `cc` has the glibc the builder (trixie) links against.
            assert_eq!(
                stage[0],
                format!("FROM gcr.io/distroless/cc-debian13:nonroot AS {target}"),
                "{target}: a supported, non-root base image"
            );
            assert!(has("USER 65532"), "{target}: runs as a non-root user");
            assert!(has("EXPOSE 8080"), "{target}: exposes the port");
            assert!(
                has(&format!("ENTRYPOINT [\"/usr/local/bin/{target}\"]")),
                "{target}: runs its own binary"
            );
        }
    }
    let builder = stages.get("builder").expect("a builder stage");
    assert_eq!(
        builder[0], "FROM rust:1.95-slim-trixie AS builder",
        "the builder's Debian release is the runtime image's (glibc), and its Rust the workspace's rust-version"
    );
    assert!(
        builder
            .iter()
            .any(|l| l.contains("cargo build --locked --release")),
        "the builder honours Cargo.lock"
    );
    let ignore =
        std::fs::read_to_string(repo_root().join(".dockerignore")).expect(".dockerignore exists");
    assert!(
        ignore.lines().any(|l| l.trim() == "target/"),
        "target/ stays out of the build context"
    );
}

/// `kind/name` of every document, sorted.
fn kinds_and_names(manifests: &[Manifest]) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = manifests
        .iter()
        .map(|m| (m.kind().to_owned(), m.name().to_owned()))
        .collect();
    found.sort();
    found
}

#[test]
fn kustomize_renders_every_manifest_each_kustomization_lists() {
    if Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_err()
    {
        test_harness::skipped_unless_ci(
            "kustomize_renders_every_manifest_each_kustomization_lists",
            "kubectl is not installed (make test installs it where it can)",
        );
        return;
    }
    for folder in [
        "",
        "sidecar",
        "sidecar/hardening",
        "ambient",
        "ambient/hardening",
    ] {
        let output = Command::new("kubectl")
            .args(["kustomize", &format!("k8s/{folder}")])
            .current_dir(repo_root())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "k8s/{folder}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let rendered: Vec<Manifest> =
            serde_norway::Deserializer::from_str(&String::from_utf8_lossy(&output.stdout))
                .map(|doc| Manifest {
                    file: format!("{folder} (rendered)"),
                    value: serde::Deserialize::deserialize(doc).unwrap(),
                })
                .collect();
        assert_eq!(
            kinds_and_names(&rendered),
            kinds_and_names(&load_kustomization(folder)),
            "k8s/{folder}"
        );
    }
}

/// What the sidecar path deployed before `k8s/` held two data planes:
/// `make deploy-app` must still apply exactly these objects.
const SIDECAR_OBJECTS: [(&str, &str); 11] = [
    ("Deployment", "formatter-svc-v1"),
    ("Deployment", "formatter-svc-v2"),
    ("Deployment", "hello-svc"),
    ("DestinationRule", "formatter-svc"),
    ("Gateway", "hello-gateway"),
    ("Service", "formatter-svc"),
    ("Service", "hello-svc"),
    ("ServiceAccount", "formatter-svc"),
    ("ServiceAccount", "hello-svc"),
    ("VirtualService", "formatter-svc"),
    ("VirtualService", "hello"),
];

#[test]
fn the_sidecar_path_deploys_the_same_objects_as_before_and_k8s_kustomization_is_it() {
    let expected: Vec<(String, String)> = SIDECAR_OBJECTS
        .iter()
        .map(|(kind, name)| ((*kind).to_owned(), (*name).to_owned()))
        .collect();
    assert_eq!(kinds_and_names(&Dataplane::Sidecar.deployed()), expected);
    assert_eq!(kinds_and_names(&load_all()), expected);
    let hardening = kinds_and_names(&Dataplane::Sidecar.hardening());
    assert_eq!(
        hardening,
        [
            (
                "AuthorizationPolicy".to_owned(),
                "formatter-svc-callers".to_owned()
            ),
            ("PeerAuthentication".to_owned(), "default".to_owned()),
        ]
    );
}

/// The `kubectl apply`/`istioctl kube-inject` lines of `make -n ARGS`.
fn applies(args: &[&str]) -> Vec<String> {
    let plan = make_plan(args);
    assert!(plan.status.success(), "{args:?}: {plan:?}");
    String::from_utf8_lossy(&plan.stdout)
        .lines()
        .filter(|l| l.starts_with("kubectl apply") || l.starts_with("istioctl kube-inject"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn make_deploy_app_applies_what_the_checks_load_for_each_data_plane() {
    assert_eq!(
        applies(&["deploy-app"]),
        [
            "istioctl kube-inject -f k8s/app.yaml | kubectl apply -f -",
            "kubectl apply -k k8s/sidecar",
        ]
    );
    assert_eq!(
        applies(&["deploy-app", "DATAPLANE=ambient"]),
        [
            "kubectl apply -f k8s/ambient/namespace.yaml",
            "kubectl apply -f k8s/app.yaml",
            "kubectl apply -k k8s/ambient",
        ]
    );
    for dataplane in Dataplane::ALL {
        let name = dataplane.name();
        assert_eq!(
            applies(&["deploy-hardening", &format!("DATAPLANE={name}")]),
            [format!("kubectl apply -k k8s/{name}/hardening")]
        );
    }
    for target in [
        "install-istio",
        "deploy-app",
        "delete-app",
        "deploy-hardening",
        "hostport",
        "mesh-e2e",
    ] {
        let refused = make_plan(&[target, "DATAPLANE=sidecars"]);
        assert!(!refused.status.success(), "{target}");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(stderr.lines().count(), 1, "{target}: one line: {stderr}");
        assert!(
            stderr.contains(&format!(
                "make {target}: DATAPLANE=sidecars is not one of: sidecar ambient"
            )),
            "{stderr}"
        );
    }
}

#[test]
fn make_delete_app_removes_what_deploy_app_made_but_never_the_namespace() {
    for dataplane in Dataplane::ALL {
        let name = dataplane.name();
        let plan = make_plan(&["delete-app", &format!("DATAPLANE={name}")]);
        assert!(plan.status.success(), "{plan:?}");
        let commands: Vec<String> = String::from_utf8_lossy(&plan.stdout)
            .lines()
            .filter(|l| l.starts_with("kubectl"))
            .map(str::to_owned)
            .collect();
        let mut expected = vec![
            format!("kubectl delete --ignore-not-found -k k8s/{name}/hardening"),
            format!("kubectl delete --ignore-not-found -k k8s/{name}"),
            "kubectl delete --ignore-not-found -f k8s/app.yaml".to_owned(),
        ];
        if dataplane == Dataplane::Ambient {
            expected.push("kubectl label namespace default istio.io/dataplane-mode-".to_owned());
        }
        assert_eq!(commands, expected, "{name}");
        // Nothing deleted is a Namespace: `default` is labelled, not owned.
        for folder in [name.to_owned(), format!("{name}/hardening")] {
            assert!(
                load_kustomization(&folder)
                    .iter()
                    .all(|m| m.kind() != "Namespace"),
                "k8s/{folder}"
            );
        }
    }
}

#[test]
fn the_optional_sidecar_hardening_manifests_validate_and_name_real_workloads() {
    let hardening = Dataplane::Sidecar.hardening();
    for manifest in &hardening {
        let key = format!("{}/{}", manifest.api_version(), manifest.kind());
        let schema = crd_schema(&key).unwrap_or_else(|| panic!("no schema for {key}"));
        let errors = validate_resource(&manifest.value, schema);
        assert!(errors.is_empty(), "{}: {errors:#?}", manifest.describe());
    }
    let peer = hardening
        .iter()
        .find(|m| m.kind() == "PeerAuthentication")
        .unwrap();
    assert_eq!(peer.value["spec"]["mtls"]["mode"], "STRICT");

    let policy = hardening
        .iter()
        .find(|m| m.kind() == "AuthorizationPolicy")
        .unwrap();
    let selector: BTreeMap<String, String> =
        serde_json::from_value(policy.value["spec"]["selector"]["matchLabels"].clone()).unwrap();
    let deployments = deployments();
    let protected: Vec<_> = deployments
        .iter()
        .filter(|d| selects(&selector, &pod_labels(d)))
        .collect();
    assert!(!protected.is_empty(), "the policy selects no pods");
    let principal = policy.value["spec"]["rules"][0]["from"][0]["source"]["principals"][0]
        .as_str()
        .unwrap();
    let account = principal.rsplit("/sa/").next().unwrap();
    let callers: Vec<_> = deployments
        .iter()
        .filter(|d| {
            d.spec
                .as_ref()
                .unwrap()
                .template
                .spec
                .as_ref()
                .unwrap()
                .service_account_name
                .as_deref()
                == Some(account)
        })
        .collect();
    assert_eq!(
        callers.len(),
        1,
        "{principal} is the identity of exactly one workload"
    );
    assert_eq!(name(callers[0]), "hello-svc");
    let accounts: Vec<ServiceAccount> = of_kind(&load("app.yaml"), "ServiceAccount");
    assert!(
        accounts
            .iter()
            .any(|a| a.metadata.name.as_deref() == Some(account)),
        "ServiceAccount {account} exists"
    );
    for deployment in &protected {
        let path = &policy.value["spec"]["rules"][0]["to"][0]["operation"]["paths"][0];
        assert_eq!(
            path,
            "/formatGreeting",
            "{} serves what the policy allows",
            name(deployment)
        );
    }
}
