//! Driving load with oha and reading its JSON report.

use std::process::Command;

use serde_json::Value;

/// One oha run's outcome.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Run {
    /// Requests answered 200.
    pub ok: u64,
    /// Requests answered otherwise, or failed (connection errors, timeouts).
    pub errors: u64,
    /// Requests cut off by the end of the run: they may or may not have
    /// reached the service, so they are neither successes nor errors.
    pub cut_off: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Latency percentiles, in seconds.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
}

/// Runs `oha` against `url` for `seconds`, with `connections`, at most
/// `rate` requests a second when given (open-loop pacing), else as fast as
/// the connections allow.
pub(crate) fn run(
    oha: &str,
    url: &str,
    seconds: u64,
    connections: u32,
    rate: Option<u32>,
) -> Result<Run, String> {
    let mut command = Command::new(oha);
    command.args([
        "-z",
        &format!("{seconds}s"),
        "-c",
        &connections.to_string(),
        "--no-tui",
        "--output-format",
        "json",
    ]);
    if let Some(rate) = rate {
        // Latency from the intended send time, so a stall is not hidden by
        // the generator waiting for it (coordinated omission).
        command.args(["-q", &rate.to_string(), "--latency-correction"]);
    }
    let output = command
        .arg(url)
        .output()
        .map_err(|error| format!("cannot run {oha}: {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "{oha} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let report: Value =
        serde_json::from_slice(&output.stdout).map_err(|e| format!("oha's JSON: {e}"))?;
    let count = |value: &Value| value.as_u64().unwrap_or_default();
    let statuses = report["statusCodeDistribution"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let failures = report["errorDistribution"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let percentile = |key: &str| {
        report["latencyPercentiles"][key]
            .as_f64()
            .unwrap_or(f64::NAN)
    };
    Ok(Run {
        ok: statuses.get("200").map(count).unwrap_or_default(),
        errors: statuses
            .iter()
            .filter(|(code, _)| *code != "200")
            .map(|(_, n)| count(n))
            .sum::<u64>()
            + failures
                .iter()
                .filter(|(kind, _)| !kind.contains("deadline"))
                .map(|(_, n)| count(n))
                .sum::<u64>(),
        cut_off: failures
            .iter()
            .filter(|(kind, _)| kind.contains("deadline"))
            .map(|(_, n)| count(n))
            .sum(),
        seconds: report["summary"]["total"].as_f64().unwrap_or(f64::NAN),
        p50: percentile("p50"),
        p99: percentile("p99"),
        p999: percentile("p99.9"),
    })
}
