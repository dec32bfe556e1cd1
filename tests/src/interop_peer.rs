//! The OpenTelemetry Python and JS SDKs as peers of hello-svc, run as
//! processes from `target/interop/` (installed by `scripts/interop-deps.sh`,
//! which `make test` runs).

use std::{
    io::Write,
    path::PathBuf,
    process::{Command, Stdio},
};

use serde_json::{Value, json};

use deploy_checks::manifests::repo_root;

/// One SDK's peer script and the interpreter that runs it.
#[derive(Debug, Clone)]
pub struct Peer {
    /// `python` or `node`.
    pub name: &'static str,
    program: PathBuf,
    script: PathBuf,
    node_path: Option<PathBuf>,
}

/// What a peer's `inject` produced: a span of its own, with baggage.
#[derive(Debug, Clone)]
pub struct Injected {
    /// The headers its SDK wrote.
    pub headers: Vec<(String, String)>,
    /// Its span's trace id.
    pub trace_id: String,
    /// Its span id.
    pub span_id: String,
}

/// What a peer's SDK read from headers.
#[derive(Debug, Clone)]
pub struct Extracted {
    /// The trace id, if the SDK found a valid context.
    pub trace_id: Option<String>,
    /// The parent span id.
    pub span_id: Option<String>,
    /// The sampled flag.
    pub sampled: bool,
    /// The baggage, decoded by the SDK.
    pub baggage: serde_json::Map<String, Value>,
}

fn interop_dir() -> PathBuf {
    repo_root().join("target/interop")
}

/// The peers installed here; each one that is not is reported skipped, or
/// under `CI=true` fails the test.
pub fn installed_peers(test: &str) -> Vec<Peer> {
    let dir = interop_dir();
    let scripts = repo_root().join("tests/interop");
    let candidates = [
        Peer {
            name: "python",
            program: dir.join("venv/bin/python"),
            script: scripts.join("otel_peer.py"),
            node_path: None,
        },
        Peer {
            name: "node",
            program: PathBuf::from("node"),
            script: scripts.join("otel_peer.cjs"),
            node_path: Some(dir.join("node/node_modules")),
        },
    ];
    candidates
        .into_iter()
        .filter(|peer| {
            let ok = peer.run("extract", Some(&json!({ "headers": {} }))).is_ok();
            if !ok {
                test_harness::skipped_unless_ci(
                    &format!("{test} with the {} peer", peer.name),
                    "not installed; scripts/interop-deps.sh (run by make test) installs it",
                );
            }
            ok
        })
        .collect()
}

impl Peer {
    fn run(&self, mode: &str, stdin: Option<&Value>) -> Result<Value, String> {
        self.run_with(&[mode], stdin)
    }

    fn run_with(&self, args: &[&str], stdin: Option<&Value>) -> Result<Value, String> {
        let mut command = Command::new(&self.program);
        command
            .arg(&self.script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(path) = &self.node_path {
            command.env("NODE_PATH", path);
        }
        let mut child = command.spawn().map_err(|e| e.to_string())?;
        let input = stdin.map(Value::to_string).unwrap_or_default();
        child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(input.as_bytes())
            .map_err(|e| e.to_string())?;
        let output = child.wait_with_output().map_err(|e| e.to_string())?;
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).into_owned());
        }
        serde_json::from_slice(&output.stdout).map_err(|e| e.to_string())
    }

    /// A span of the peer's own, with `baggage`, as its SDK writes it.
    pub fn inject(&self, baggage: &[(&str, &str)]) -> Injected {
        let baggage: serde_json::Map<String, Value> = baggage
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
            .collect();
        let spec = json!({ "baggage": baggage }).to_string();
        let out = self
            .run_with(&["inject", &spec], None)
            .unwrap_or_else(|e| panic!("{} inject: {e}", self.name));
        Injected {
            headers: out["headers"]
                .as_object()
                .expect("headers")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect(),
            trace_id: out["trace_id"].as_str().unwrap().to_owned(),
            span_id: out["span_id"].as_str().unwrap().to_owned(),
        }
    }

    /// What the peer's SDK reads from `headers` (repeated names joined with
    /// commas, as an HTTP server hands them to it).
    pub fn extract(&self, headers: &[(String, String)]) -> Extracted {
        let mut joined = serde_json::Map::new();
        for (name, value) in headers {
            let entry = joined.entry(name.clone()).or_insert(Value::from(""));
            let text = entry.as_str().unwrap_or_default();
            *entry = Value::from(if text.is_empty() {
                value.clone()
            } else {
                format!("{text},{value}")
            });
        }
        let out = self
            .run("extract", Some(&json!({ "headers": joined })))
            .unwrap_or_else(|e| panic!("{} extract: {e}", self.name));
        Extracted {
            trace_id: out["trace_id"].as_str().map(str::to_owned),
            span_id: out["span_id"].as_str().map(str::to_owned),
            sampled: out["sampled"].as_bool().unwrap_or_default(),
            baggage: out["baggage"].as_object().cloned().unwrap_or_default(),
        }
    }
}
