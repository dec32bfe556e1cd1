//! The command line `scripts/mesh-e2e.sh` runs: `--dataplane` picks the tree
//! to expect, `sidecar` when not given, and the exit code says the verdict.

use std::process::Command;

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Runs jaeger-check with `args` and returns its exit code and stdout.
fn run(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_jaeger-check"))
        .args(args)
        .output()
        .expect("jaeger-check runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn the_data_plane_defaults_to_sidecar() {
    let sidecar = fixture("say-hello-v1-zipkin.json");
    assert_eq!(run(&["say-hello", "--version", "v1", &sidecar]).0, Some(0));
    let ambient = fixture("ambient-say-hello-v1-zipkin.json");
    let (code, out) = run(&["say-hello", "--version", "v1", &ambient]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("FAILED: no hello's sidecar inbound span"),
        "{out}"
    );
}

#[test]
fn dataplane_ambient_passes_the_good_ambient_traces() {
    for (args, file) in [
        (
            &["say-hello", "--version", "v1"][..],
            "ambient-say-hello-v1-zipkin.json",
        ),
        (
            &["say-hello", "--version", "v2"][..],
            "ambient-say-hello-v2-otel.json",
        ),
        (&["say-hello2"][..], "ambient-say-hello2-zipkin.json"),
    ] {
        let file = fixture(file);
        let mut all = args.to_vec();
        all.extend(["--dataplane", "ambient", &file]);
        let (code, out) = run(&all);
        assert_eq!(code, Some(0), "{all:?}: {out}");
        assert!(out.ends_with("ok\n"), "{out}");
    }
}

#[test]
fn dataplane_ambient_fails_each_broken_ambient_trace() {
    for (file, version) in [
        ("ambient-say-hello-no-waypoint.json", "v1"),
        ("ambient-say-hello-formatter-under-hello.json", "v1"),
        ("ambient-say-hello-waypoint-wrong-version.json", "v2"),
        ("ambient-say-hello-no-gateway-parent.json", "v1"),
    ] {
        let file = fixture(file);
        let args = [
            "say-hello",
            "--version",
            version,
            "--dataplane",
            "ambient",
            &file,
        ];
        let (code, out) = run(&args);
        assert_eq!(code, Some(1), "{file}: {out}");
        assert!(out.contains("FAILED: "), "{out}");
    }
}

#[test]
fn an_unknown_data_plane_is_refused_by_the_parser() {
    let file = fixture("ambient-say-hello2-zipkin.json");
    let out = Command::new(env!("CARGO_BIN_EXE_jaeger-check"))
        .args(["say-hello2", "--dataplane", "sidecars", &file])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("invalid value 'sidecars' for '--dataplane <DATAPLANE>'")
            && stderr.contains("[possible values: sidecar, ambient]"),
        "{stderr}"
    );
}
