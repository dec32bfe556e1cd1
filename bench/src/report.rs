//! The Markdown report of a `make bench` run.

use std::time::Duration;

use test_harness::otlp_receiver::Transport;

use crate::{
    Args,
    measure::{STARTS, Tally, cores, cpu_model, median, spread},
    scenarios::{
        Arm, BASELINE, EXPORTED_GRPC, EXPORTED_HTTP, INFO_LOGS, NOT_EXPORTED, SERVICES,
        SPANS_PER_REQUEST,
    },
};

/// What one run measured.
pub(crate) struct Report<'a> {
    pub(crate) args: &'a Args,
    /// The arms that ran, the baseline first.
    pub(crate) arms: &'a [Arm],
    /// One per arm, in `arms` order.
    pub(crate) tallies: &'a [Tally],
    /// RSS (KiB) after round 1 and after the last round, per arm, one pair
    /// a service in [`SERVICES`] order.
    pub(crate) rss: Vec<[(u64, u64); 2]>,
    pub(crate) counts: &'a std::collections::HashMap<String, u64>,
    pub(crate) startup: &'a [(&'static str, Vec<Duration>)],
}

impl Report<'_> {
    /// The arm's tally, if it ran.
    fn tally(&self, arm: &Arm) -> Option<&Tally> {
        let index = self.arms.iter().position(|a| a == arm)?;
        self.tallies.get(index)
    }

    fn baseline(&self) -> &Tally {
        self.tally(&BASELINE).expect("the baseline always runs")
    }

    /// Per round, this arm's value over the baseline's in the same round.
    fn ratios(&self, arm: &Tally, value: fn(&Tally) -> Vec<f64>) -> Vec<f64> {
        value(arm)
            .iter()
            .zip(value(self.baseline()))
            .map(|(a, b)| a / b)
            .collect()
    }

    /// Per round, this arm's figure minus the baseline's in the same round.
    fn added(&self, arm: &Tally, value: fn(&Tally) -> &Vec<f64>) -> Vec<f64> {
        value(arm)
            .iter()
            .zip(value(self.baseline()))
            .map(|(a, b)| a - b)
            .collect()
    }

    /// Added CPU per request at the fixed rate, the headline measure.
    fn added_cpu(&self, arm: &Tally) -> Vec<f64> {
        self.added(arm, |t| &t.cpu_us_fixed_rounds)
    }

    /// Prints every table of the run.
    pub(crate) fn print(&self) {
        self.print_arms();
        self.print_span_costs();
        self.print_span_counts();
        self.print_rss();
        self.print_startup();
    }

    /// The machine, the load, and one row an arm: CPU, throughput, latency.
    fn print_arms(&self) {
        let args = self.args;
        println!("## make bench\n");
        println!(
            "Machine: {}, {} cores; oha, both services of each arm and the counting sinks share them.",
            cpu_model(),
            cores()
        );
        println!(
            "{} interleaved rounds; per arm and round: {} s at {} connections (throughput and CPU), then {} s at a fixed {} req/s (latency, oha --latency-correction). Every arm logs at RUST_LOG=warn but the last. Figures are medians over rounds, [min–max] across rounds.\n",
            args.rounds, args.seconds, args.connections, args.seconds, args.rate
        );
        println!(
            "| arm | services' CPU at {rate} req/s (µs/req) | added vs SDK disabled | CPU at saturation (µs/req) | added | throughput (req/s) | vs SDK disabled | p50 at {rate} req/s (µs) | p99 (µs) | p99 added (µs) | p99.9 (µs) | errors |",
            rate = args.rate
        );
        println!(
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        );
        let p99 = |t: &Tally| t.latency.iter().map(|r| r.p99 * 1e6).collect::<Vec<f64>>();
        for (arm, tally) in self.arms.iter().zip(self.tallies) {
            let (rps, _, _) = spread(&tally.rps_rounds());
            let (ratio, ratio_min, ratio_max) = spread(&self.ratios(tally, Tally::rps_rounds));
            let p99_added: Vec<f64> = p99(tally)
                .iter()
                .zip(p99(self.baseline()))
                .map(|(a, b)| a - b)
                .collect();
            println!(
                "| {} | {} | {} | {} | {} | {rps:.0} | {ratio:.3} [{ratio_min:.3}–{ratio_max:.3}] | {:.0} | {:.0} | {:+.0} | {:.0} | {} |",
                arm.label,
                cell(&tally.cpu_us_fixed_rounds, false),
                cell(&self.added_cpu(tally), true),
                cell(&tally.cpu_us_rounds, false),
                cell(&self.added(tally, |t| &t.cpu_us_rounds), true),
                tally.latency_us(|r| r.p50),
                tally.latency_us(|r| r.p99),
                median(p99_added),
                tally.latency_us(|r| r.p999),
                tally.errors()
            );
        }
    }

    /// CPU per span: making one, and exporting it over each protocol.
    fn print_span_costs(&self) {
        let spans = SPANS_PER_REQUEST as f64;
        let making = self
            .tally(&NOT_EXPORTED)
            .map(|t| spread(&self.added_cpu(t)).0)
            .unwrap_or(0.0);
        println!("\n| cost, per span ({SPANS_PER_REQUEST} spans a request) | µs of CPU |");
        println!("| --- | ---: |");
        println!(
            "| making a span (created, sampled, ended; not exported) | {:.2} |",
            making / spans
        );
        for arm in [EXPORTED_HTTP, EXPORTED_GRPC] {
            let Some(tally) = self.tally(&arm) else {
                continue;
            };
            let (added, _, _) = spread(&self.added_cpu(tally));
            println!(
                "| exporting it, over {} (on top of making it) | {:.2} |",
                arm.export.map_or("?", Transport::protocol),
                (added - making) / spans
            );
        }
        if let Some(tally) = self.tally(&INFO_LOGS) {
            let (logging, _, _) = spread(&self.added_cpu(tally));
            println!(
                "| for scale: logging each request at info (three lines a request) | {logging:.2} µs/req |"
            );
        }
    }

    /// Spans the sinks received against the requests answered, per
    /// exporting arm.
    fn print_span_counts(&self) {
        println!("\n| spans | requests answered | spans expected | spans received |");
        println!("| --- | ---: | ---: | ---: |");
        for (index, arm) in self
            .arms
            .iter()
            .enumerate()
            .filter(|(_, a)| a.export.is_some())
        {
            let tally = &self.tallies[index];
            let received: u64 = [format!("hello-arm{index}"), format!("formatter-arm{index}")]
                .iter()
                .map(|n| self.counts.get(n).copied().unwrap_or_default())
                .sum();
            println!(
                "| {} | {} | {} (up to {} counting cut-off requests) | {received} |",
                arm.label,
                tally.sent_ok,
                SPANS_PER_REQUEST * tally.sent_ok,
                SPANS_PER_REQUEST * (tally.sent_ok + tally.sent_cut_off)
            );
        }
    }

    /// Each service's RSS after the first and the last round, per arm.
    fn print_rss(&self) {
        println!("\n| process | RSS after round 1 (MiB) | after the last round (MiB) | growth |");
        println!("| --- | ---: | ---: | ---: |");
        for (arm, services) in self.arms.iter().zip(&self.rss) {
            for (service, (first, last)) in SERVICES.iter().zip(services) {
                let growth = (*last as f64 - *first as f64) / *first as f64 * 100.0;
                println!(
                    "| {service} ({}) | {:.1} | {:.1} | {growth:+.1} % |",
                    arm.label,
                    *first as f64 / 1024.0,
                    *last as f64 / 1024.0
                );
            }
        }
    }

    /// Start-up times over [`STARTS`] starts of each service.
    fn print_startup(&self) {
        println!(
            "\n| start-up: spawn to first 200 from /healthz | median (ms) | slowest of {STARTS} (ms) |"
        );
        println!("| --- | ---: | ---: |");
        for (name, times) in self.startup {
            let ms: Vec<f64> = times.iter().map(|t| t.as_secs_f64() * 1e3).collect();
            let slowest = ms.iter().copied().fold(0.0, f64::max);
            println!("| {name} | {:.1} | {slowest:.1} |", median(ms.clone()));
        }
    }
}

/// A median with its range across rounds, signed for an added figure.
fn cell(values: &[f64], sign: bool) -> String {
    let (median, min, max) = spread(values);
    if sign {
        format!("{median:+.1} [{min:+.1}–{max:+.1}]")
    } else {
        format!("{median:.1} [{min:.1}–{max:.1}]")
    }
}
