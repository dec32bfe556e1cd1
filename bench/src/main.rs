//! `make bench`: what tracing costs hello-svc and formatter-svc, measured end
//! to end on loopback with oha, and printed as Markdown.
//!
//! Each arm ([`scenarios`]) runs on its own pair of processes. The arms run
//! in interleaved rounds, so machine noise hits each alike. Each round
//! measures:
//! - throughput: as fast as `--connections` allow;
//! - latency: at a fixed `--rate`, well below saturation, so the percentiles
//!   are service time rather than queueing.

mod load;
mod measure;
mod report;
mod scenarios;
mod sinks;
mod soak;

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use clap::Parser;
use test_harness::otlp_receiver::Transport;

use measure::{Load, Tally, measured_run, oha, time_to_ready};
use report::Report;
use scenarios::{Arm, Pair, select};
use sinks::CountingSink;
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
    /// Requests a second for the latency runs: a moderate fixed rate, well
    /// below saturation, so percentiles are service time, not queueing.
    #[arg(long, default_value_t = 2000)]
    pub(crate) rate: u32,
    /// The oha executable.
    #[arg(long, env = "OHA", default_value = "oha")]
    pub(crate) oha: String,
    /// Only these arms (comma-separated keys: disabled, not-exported, http,
    /// grpc, propagation, info-logs); the baseline always runs. All by default.
    #[arg(long, value_delimiter = ',')]
    pub(crate) arms: Vec<String>,
    /// Instead of the scenarios, only start the two counting OTLP sinks,
    /// print `http <endpoint>` and `grpc <endpoint>`, and serve until killed
    /// (for `scripts/bench-instructions.sh`).
    #[arg(long)]
    pub(crate) sinks_only: bool,
    /// Instead of the scenarios, soak the pair as deployed for this many
    /// minutes at `--rate` and report errors, lost spans, log lines written
    /// against requests answered, and RSS/fd drift.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
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

    if args.sinks_only {
        return serve_sinks().await;
    }
    if let Some(minutes) = args.soak_minutes {
        return soak(&args, minutes).await;
    }

    let arms = select(&args.arms)?;
    let startup = [
        ("hello-svc", time_to_ready("hello-svc")),
        ("formatter-svc", time_to_ready("formatter-svc")),
    ];

    // Counting sinks: they do not decode spans, so they take little of the
    // CPU the services are measured on.
    let (http_sink, grpc_sink) = start_sinks().await?;
    let mut pairs: Vec<Pair> = Vec::with_capacity(arms.len());
    for (index, arm) in arms.iter().enumerate() {
        let sink = match arm.export {
            Some(Transport::Grpc) => Some(grpc_sink.endpoint()),
            Some(Transport::HttpProtobuf) => Some(http_sink.endpoint()),
            None => None,
        };
        pairs.push(Pair::start(arm, &format!("arm{index}"), sink.as_deref()).await);
    }
    let (tallies, rss) = measure_rounds(&args, &arms, &pairs).await?;

    // SIGTERM flushes every batch processor; once the processes have
    // exited, the sinks have all they will get.
    eprintln!("stopping the services (flushing spans)");
    for pair in &pairs {
        pair.hello.terminate();
        pair.formatter.terminate();
    }
    for pair in pairs {
        let (mut hello, mut formatter) = (pair.hello, pair.formatter);
        hello.wait_for_exit(Duration::from_secs(30)).await;
        formatter.wait_for_exit(Duration::from_secs(30)).await;
    }
    let mut counts = http_sink.counts();
    counts.extend(grpc_sink.counts());

    let report = Report {
        args: &args,
        arms: &arms,
        tallies: &tallies,
        rss,
        counts: &counts,
        startup: &startup,
    };
    report.print();
    Ok(())
}

/// Warms every arm up, then runs `--rounds` interleaved rounds of both
/// loads; gives each arm's tally and each service's RSS (KiB) after the
/// first and the last round.
async fn measure_rounds(
    args: &Args,
    arms: &[Arm],
    pairs: &[Pair],
) -> Result<(Vec<Tally>, Vec<[(u64, u64); 2]>), String> {
    let mut tallies: Vec<Tally> = arms.iter().map(|_| Tally::default()).collect();
    eprintln!("warming up");
    for ((arm, pair), tally) in arms.iter().zip(pairs).zip(&mut tallies) {
        tally.add_warm_up(&oha(args, &pair.url(arm), 2, None).await?);
    }

    let mut rss_first = Vec::new();
    for round in 0..args.rounds {
        for offset in 0..arms.len() {
            let index = (round + offset) % arms.len();
            let (arm, pair, tally) = (&arms[index], &pairs[index], &mut tallies[index]);
            eprintln!("round {}/{}: {}", round + 1, args.rounds, arm.label);
            let url = pair.url(arm);
            for load in [Load::Saturating, Load::FixedRate] {
                let (run, cpu) = measured_run(args, &url, &pair.pids(), load).await?;
                tally.add(load, run, cpu);
            }
        }
        if round == 0 {
            rss_first = pairs.iter().map(Pair::rss_kib).collect();
        }
    }
    let rss: Vec<[(u64, u64); 2]> = pairs
        .iter()
        .zip(rss_first)
        .map(|(pair, [hello, formatter])| {
            let [hello_last, formatter_last] = pair.rss_kib();
            [(hello, hello_last), (formatter, formatter_last)]
        })
        .collect();

    Ok((tallies, rss))
}

/// The counting sinks, one a protocol: they count spans by `service.name`
/// without decoding them, so they take little of the CPU being measured.
async fn start_sinks() -> Result<(CountingSink, CountingSink), String> {
    let http = CountingSink::start(Transport::HttpProtobuf)
        .await
        .map_err(|e| format!("cannot start the OTLP/HTTP sink: {e}"))?;
    let grpc = CountingSink::start(Transport::Grpc)
        .await
        .map_err(|e| format!("cannot start the OTLP/gRPC sink: {e}"))?;
    Ok((http, grpc))
}

/// `--sinks-only`: the sinks and their endpoints, until the process is killed.
async fn serve_sinks() -> Result<(), String> {
    let (http, grpc) = start_sinks().await?;
    println!("http {}", http.endpoint());
    println!("grpc {}", grpc.endpoint());
    std::future::pending::<()>().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::{Parser, error::ErrorKind};

    use super::Args;

    #[test]
    fn a_soak_of_zero_minutes_is_refused_at_the_command_line() {
        let error = Args::try_parse_from(["mesh-bench", "--soak-minutes", "0"]).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::ValueValidation);
        assert!(
            error
                .to_string()
                .lines()
                .next()
                .unwrap()
                .contains("'0' for '--soak-minutes"),
            "{error}"
        );
        let args = Args::try_parse_from(["mesh-bench", "--soak-minutes", "1"]).unwrap();
        assert_eq!(args.soak_minutes, Some(1));
    }
}
