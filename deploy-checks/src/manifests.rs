//! The manifests in `k8s/`, read as the API server would read them.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{Container, Service},
};

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::Value;

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the repository")
        .to_path_buf()
}

/// One YAML document of one manifest file.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The file, relative to `k8s/`.
    pub file: String,
    /// The document as JSON.
    pub value: Value,
}

impl Manifest {
    /// `apiVersion`, for example `apps/v1`.
    pub fn api_version(&self) -> &str {
        self.value["apiVersion"].as_str().unwrap_or_default()
    }

    /// `kind`, for example `Deployment`.
    pub fn kind(&self) -> &str {
        self.value["kind"].as_str().unwrap_or_default()
    }

    /// `metadata.name`.
    pub fn name(&self) -> &str {
        self.value["metadata"]["name"].as_str().unwrap_or_default()
    }

    /// `kind/name in file`, for messages.
    pub fn describe(&self) -> String {
        format!("{}/{} in k8s/{}", self.kind(), self.name(), self.file)
    }

    /// Deserializes into `T` and checks that nothing was dropped on the way:
    /// a field `T` does not know (a typo, a wrong indent) is an error here,
    /// as it is for `kubectl apply` with strict field validation.
    pub fn typed<T: DeserializeOwned + Serialize>(&self) -> Result<T, String> {
        let typed: T = serde_json::from_value(self.value.clone())
            .map_err(|error| format!("{}: {error}", self.describe()))?;
        let round_trip = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
        let mut dropped = Vec::new();
        dropped_fields(&self.value, &round_trip, String::new(), &mut dropped);
        if dropped.is_empty() {
            Ok(typed)
        } else {
            Err(format!("{}: unknown fields {dropped:?}", self.describe()))
        }
    }
}

/// Reads every document of `k8s/<file>`.
pub fn load(file: &str) -> Vec<Manifest> {
    let path = repo_root().join("k8s").join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    serde_norway::Deserializer::from_str(&text)
        .map(|document| {
            let value = Value::deserialize(document)
                .unwrap_or_else(|error| panic!("k8s/{file} is not valid YAML: {error}"));
            Manifest {
                file: file.to_owned(),
                value,
            }
        })
        .filter(|manifest| !manifest.value.is_null())
        .collect()
}

/// Every document of every file `k8s/kustomization.yaml` lists: the whole
/// application on the sidecar data plane.
pub fn load_all() -> Vec<Manifest> {
    load_kustomization("")
}

/// Every document of every file the kustomization in `k8s/<folder>` lists,
/// each named relative to `k8s/`.
pub fn load_kustomization(folder: &str) -> Vec<Manifest> {
    kustomization_resources(folder)
        .iter()
        .flat_map(|file| load(file))
        .collect()
}

/// The files `k8s/<folder>/kustomization.yaml` lists under `resources`,
/// relative to `k8s/`. Kustomize refuses a file outside a kustomization's
/// folder, so a listed `..` is an error here too.
pub fn kustomization_resources(folder: &str) -> Vec<String> {
    let prefix = if folder.is_empty() {
        String::new()
    } else {
        format!("{folder}/")
    };
    let kustomization = load(&format!("{prefix}kustomization.yaml"));
    kustomization[0].value["resources"]
        .as_array()
        .expect("kustomization.yaml lists resources")
        .iter()
        .map(|file| {
            let file = file.as_str().expect("resources are file names");
            assert!(
                !file.split('/').any(|part| part == ".."),
                "k8s/{prefix}kustomization.yaml lists {file}, outside its folder"
            );
            format!("{prefix}{file}")
        })
        .collect()
}

/// A data plane `make deploy-app DATAPLANE=…` deploys the app on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dataplane {
    /// An Envoy sidecar beside each app (the book's): `k8s/sidecar/`.
    Sidecar,
    /// ztunnel on each node and a waypoint: `k8s/ambient/`.
    Ambient,
}

impl Dataplane {
    /// Both, sidecar first (the default).
    pub const ALL: [Self; 2] = [Self::Sidecar, Self::Ambient];

    /// The `DATAPLANE` value, which is also the folder under `k8s/`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sidecar => "sidecar",
            Self::Ambient => "ambient",
        }
    }

    /// What `make deploy-app DATAPLANE=…` applies, in order: `k8s/app.yaml`
    /// and the data plane's kustomization (ambient labels the namespace
    /// first, with `k8s/ambient/namespace.yaml`). A test holds this to the
    /// Makefile's plan.
    pub fn deployed(self) -> Vec<Manifest> {
        let mut manifests = Vec::new();
        if self == Self::Ambient {
            manifests.extend(load("ambient/namespace.yaml"));
        }
        manifests.extend(load("app.yaml"));
        manifests.extend(load_kustomization(self.name()));
        manifests
    }

    /// What `make deploy-hardening DATAPLANE=…` applies.
    pub fn hardening(self) -> Vec<Manifest> {
        load_kustomization(&format!("{}/hardening", self.name()))
    }
}

/// What `make -n ARGS` would run in the repository, with no `TRACING` or
/// `DATAPLANE` from the caller's environment.
pub fn make_plan(args: &[&str]) -> std::process::Output {
    std::process::Command::new("make")
        .arg("-n")
        .args(args)
        .current_dir(repo_root())
        .env_remove("TRACING")
        .env_remove("DATAPLANE")
        .output()
        .expect("make runs")
}

/// Every Deployment that `k8s/app.yaml` holds (both data planes run the
/// same ones), typed.
pub fn deployments() -> Vec<Deployment> {
    load("app.yaml")
        .iter()
        .filter(|m| m.kind() == "Deployment")
        .map(|m| m.typed().unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

/// The labels of a Deployment's pod template.
pub fn pod_labels(deployment: &Deployment) -> BTreeMap<String, String> {
    deployment
        .spec
        .as_ref()
        .and_then(|spec| spec.template.metadata.as_ref())
        .and_then(|metadata| metadata.labels.clone())
        .unwrap_or_default()
}

/// Whether a label selector (`matchLabels` or a Service's `selector`)
/// selects `labels`; an empty selector selects nothing here, as for a
/// Service.
pub fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// A Service's `selector`; empty when it has none.
pub fn service_selector(service: &Service) -> BTreeMap<String, String> {
    service
        .spec
        .as_ref()
        .and_then(|spec| spec.selector.clone())
        .unwrap_or_default()
}

/// The document of kind `kind` named `name`, if `manifests` has one.
pub fn find<'a>(manifests: &'a [Manifest], kind: &str, name: &str) -> Option<&'a Manifest> {
    manifests
        .iter()
        .find(|m| m.kind() == kind && m.name() == name)
}

/// A document read into one of this crate's own types (the routing
/// evaluators', which refuse the fields they do not implement).
pub fn parsed<T: DeserializeOwned>(manifest: &Manifest) -> T {
    serde_json::from_value(manifest.value.clone())
        .unwrap_or_else(|e| panic!("{}: {e}", manifest.describe()))
}

/// The documents of `manifests` of kind `kind`, typed.
pub fn of_kind<T: DeserializeOwned + Serialize>(manifests: &[Manifest], kind: &str) -> Vec<T> {
    manifests
        .iter()
        .filter(|m| m.kind() == kind)
        .map(|m| m.typed().unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

/// `metadata.name` of a Deployment.
pub fn deployment_name(deployment: &Deployment) -> &str {
    deployment.metadata.name.as_deref().unwrap_or_default()
}

/// The containers of a Deployment's pod template.
pub fn containers(deployment: &Deployment) -> &[Container] {
    deployment
        .spec
        .as_ref()
        .and_then(|spec| spec.template.spec.as_ref())
        .map_or(&[], |pod| pod.containers.as_slice())
}

/// The annotations of a Deployment's pod template.
pub fn pod_annotations(deployment: &Deployment) -> BTreeMap<String, String> {
    deployment
        .spec
        .as_ref()
        .and_then(|spec| spec.template.metadata.as_ref())
        .and_then(|metadata| metadata.annotations.clone())
        .unwrap_or_default()
}

/// A container's literal `env` values, by name.
pub fn container_env(container: &Container) -> BTreeMap<String, String> {
    container
        .env
        .iter()
        .flatten()
        .map(|var| (var.name.clone(), var.value.clone().unwrap_or_default()))
        .collect()
}

fn dropped_fields(original: &Value, round_trip: &Value, path: String, dropped: &mut Vec<String>) {
    match (original, round_trip) {
        (Value::Object(original), Value::Object(round_trip)) => {
            for (key, value) in original {
                let here = format!("{path}.{key}");
                match round_trip.get(key) {
                    Some(kept) => dropped_fields(value, kept, here, dropped),
                    None if !value.is_null() => dropped.push(here),
                    None => {}
                }
            }
        }
        (Value::Array(original), Value::Array(round_trip)) => {
            for (index, (value, kept)) in original.iter().zip(round_trip).enumerate() {
                dropped_fields(value, kept, format!("{path}[{index}]"), dropped);
            }
        }
        _ => {}
    }
}
