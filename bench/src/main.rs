//! `make bench`: what tracing costs hello-svc and formatter-svc, measured end
//! to end on loopback with oha, and printed as Markdown.
//!
//! Scenarios with different service settings run on their own processes;
//! the SDK-disabled `/sayHello` and `/sayHello2` share one plain pair, and
//! "formatter direct" calls that pair's formatter. The scenarios run in
//! interleaved rounds, so machine noise hits each alike. Each round measures:
//! - throughput: as fast as `--connections` allow;
//! - latency: at a fixed `--rate`, well below saturation, so the percentiles
//!   are service time rather than queueing.

mod load;
mod measure;
mod report;
mod scenarios;
mod soak;

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use clap::Parser;
use mesh_test_harness::otlp_receiver::{OtlpReceiver, Transport};

use measure::{Tally, cpu_seconds, oha, time_to_ready};
use report::Report;
use scenarios::{Scenario, Services};
use soak::soak;

/// Measures what tracing costs the service pair.
#[derive(Debug, Clone, Parser)]
pub(crate) struct Args {
    /// Rounds; each measures every scenario once, in a rotated order.
    #[arg(long, default_value_t = 3)]
    pub(crate) rounds: usize,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 5)]
    pub(crate) seconds: u64,
    /// Connections for the throughput runs.
    #[arg(long, default_value_t = 8)]
    pub(crate) connections: u32,
    /// Requests a second for the latency runs.
    #[arg(long, default_value_t = 1000)]
    pub(crate) rate: u32,
    /// The oha executable.
    #[arg(long, env = "OHA", default_value = "oha")]
    pub(crate) oha: String,
    /// Instead of the scenarios, soak the fully traced pair for this many
    /// minutes at `--rate` and report errors and RSS/fd drift.
    #[arg(long)]
    pub(crate) soak_minutes: Option<u64>,
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let args = Args::parse();
    if Command::new(&args.oha)
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_err()
    {
        return Err(format!(
            "`{}` not found: install it with `cargo install oha --locked` (make bench does)",
            args.oha
        ));
    }

    if let Some(minutes) = args.soak_minutes {
        return soak(&args, minutes).await;
    }

    let startup = [
        ("hello-svc", time_to_ready("hello-svc")),
        ("formatter-svc", time_to_ready("formatter-svc")),
    ];

    let sink = OtlpReceiver::start_counting(Transport::HttpProtobuf)
        .await
        .map_err(|e| format!("cannot start the OTLP sink: {e}"))?;
    let services = Services::start(&sink.endpoint());
    let mut tallies: Vec<(Scenario, Tally)> = Scenario::ALL
        .iter()
        .map(|s| (*s, Tally::default()))
        .collect();

    eprintln!("warming up");
    for (scenario, tally) in &mut tallies {
        let run = oha(&args, &services.url(*scenario), 2, None).await?;
        tally.sent_ok += run.ok;
        tally.sent_cut_off += run.cut_off;
    }

    let mut rss_first = Vec::new();
    for round in 0..args.rounds {
        for offset in 0..tallies.len() {
            let index = (round + offset) % tallies.len();
            let (scenario, tally) = &mut tallies[index];
            eprintln!("round {}/{}: {}", round + 1, args.rounds, scenario.label());
            let url = services.url(*scenario);
            let pids = services.serving(*scenario);
            let (service_before, sink_before) =
                (cpu_seconds(&pids), cpu_seconds(&[std::process::id()]));
            tally.add(oha(&args, &url, args.seconds, None).await?, false);
            tally.service_cpu += cpu_seconds(&pids) - service_before;
            tally.sink_cpu += cpu_seconds(&[std::process::id()]) - sink_before;
            tally.add(oha(&args, &url, args.seconds, Some(args.rate)).await?, true);
        }
        if round == 0 {
            rss_first = services.all().iter().map(|(_, p)| p.rss_kib()).collect();
        }
    }
    let rss_last: Vec<u64> = services.all().iter().map(|(_, p)| p.rss_kib()).collect();

    // SIGTERM flushes every batch processor; then the sink has all it gets.
    eprintln!("stopping the services (flushing spans)");
    for (_, process) in services.all() {
        process.terminate();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let counts = sink.counts();

    let report = Report {
        args: &args,
        tallies: &tallies,
        rss: services
            .all()
            .iter()
            .map(|(name, _)| *name)
            .zip(rss_first.into_iter().zip(rss_last))
            .collect(),
        counts: &counts,
        startup: &startup,
    };
    report.print();
    Ok(())
}
