//! The Markdown report of a `make bench` run.

use std::time::Duration;

use test_harness::otlp_receiver::Transport;

use crate::{
    Args,
    measure::{Tally, cores, cpu_model, median, spread},
    scenarios::{Arm, BASELINE, EXPORTED_GRPC, EXPORTED_HTTP, INFO_LOGS, NOT_EXPORTED},
};

/// What one run measured.
pub(crate) struct Report<'a> {
    pub(crate) args: &'a Args,
    /// The arms that ran, the baseline first.
    pub(crate) arms: &'a [Arm],
    /// One per arm, in `arms` order.
    pub(crate) tallies: &'a [Tally],
    /// RSS (KiB) after round 1 and after the last round; hello then
    /// formatter, per arm.
    pub(crate) rss: Vec<(u64, u64)>,
    pub(crate) counts: &'a std::collections::HashMap<String, u64>,
    pub(crate) startup: &'a [(&'static str, Vec<Duration>)],
}

/// Spans a traced `/sayHello` makes: hello's SERVER and CLIENT, the
/// formatter's SERVER.
const SPANS_PER_REQUEST: f64 = 3.0;

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

    pub(crate) fn print(&self) {
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
            let cell = |values: &[f64], sign: bool| {
                let (median, min, max) = spread(values);
                if sign {
                    format!("{median:+.1} [{min:+.1}–{max:+.1}]")
                } else {
                    format!("{median:.1} [{min:.1}–{max:.1}]")
                }
            };
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

        let making = self
            .tally(&NOT_EXPORTED)
            .map(|t| spread(&self.added_cpu(t)).0)
            .unwrap_or(0.0);
        println!("\n| cost, per span ({SPANS_PER_REQUEST} spans a request) | µs of CPU |");
        println!("| --- | ---: |");
        println!(
            "| making a span (created, sampled, ended; not exported) | {:.2} |",
            making / SPANS_PER_REQUEST
        );
        for arm in [EXPORTED_HTTP, EXPORTED_GRPC] {
            let Some(tally) = self.tally(&arm) else {
                continue;
            };
            let (added, _, _) = spread(&self.added_cpu(tally));
            println!(
                "| exporting it, over {} (on top of making it) | {:.2} |",
                arm.export.map_or("?", Transport::protocol),
                (added - making) / SPANS_PER_REQUEST
            );
        }
        if let Some(tally) = self.tally(&INFO_LOGS) {
            let (logging, _, _) = spread(&self.added_cpu(tally));
            println!(
                "| for scale: logging each request at info (three lines a request) | {logging:.2} µs/req |"
            );
        }

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
                3 * tally.sent_ok,
                3 * (tally.sent_ok + tally.sent_cut_off)
            );
        }

        println!("\n| process | RSS after round 1 (MiB) | after the last round (MiB) | growth |");
        println!("| --- | ---: | ---: | ---: |");
        for (index, (first, last)) in self.rss.iter().enumerate() {
            let name = format!(
                "{} ({})",
                if index % 2 == 0 { "hello" } else { "formatter" },
                self.arms[index / 2].label
            );
            let growth = (*last as f64 - *first as f64) / *first as f64 * 100.0;
            println!(
                "| {name} | {:.1} | {:.1} | {growth:+.1} % |",
                *first as f64 / 1024.0,
                *last as f64 / 1024.0
            );
        }

        println!(
            "\n| start-up: spawn to first 200 from /healthz | median (ms) | slowest of 5 (ms) |"
        );
        println!("| --- | ---: | ---: |");
        for (name, times) in self.startup {
            let ms: Vec<f64> = times.iter().map(|t| t.as_secs_f64() * 1e3).collect();
            let slowest = ms.iter().copied().fold(0.0, f64::max);
            println!("| {name} | {:.1} | {slowest:.1} |", median(ms.clone()));
        }
    }
}
