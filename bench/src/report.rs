//! The Markdown report of a `make bench` run.

use std::time::Duration;

use mesh_test_harness::otlp_receiver::Transport;

use crate::{
    Args,
    measure::{Tally, cores, cpu_model, median, spread},
    scenarios::{ARMS, BASELINE, EXPORTED_GRPC, EXPORTED_HTTP, INFO_LOGS, NOT_EXPORTED},
};

/// What one run measured.
pub(crate) struct Report<'a> {
    pub(crate) args: &'a Args,
    /// One per arm, in [`ARMS`] order.
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
    fn index(arm_label: &str) -> usize {
        ARMS.iter()
            .position(|a| a.label == arm_label)
            .expect("every arm ran")
    }

    fn tally(&self, arm_label: &str) -> &Tally {
        &self.tallies[Self::index(arm_label)]
    }

    /// Per round, this arm's value over the baseline's in the same round.
    fn ratios(&self, arm: &Tally, value: fn(&Tally) -> Vec<f64>) -> Vec<f64> {
        value(arm)
            .iter()
            .zip(value(self.tally(BASELINE.label)))
            .map(|(a, b)| a / b)
            .collect()
    }

    /// Per round, this arm's CPU per request minus the baseline's.
    fn added_cpu(&self, arm: &Tally) -> Vec<f64> {
        arm.cpu_us_rounds
            .iter()
            .zip(&self.tally(BASELINE.label).cpu_us_rounds)
            .map(|(a, b)| a - b)
            .collect()
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
            "| arm | services' CPU (µs/req) | added vs SDK disabled (µs/req) | throughput (req/s) | vs SDK disabled | p50 at {} req/s (µs) | p99 (µs) | p99.9 (µs) | errors |",
            args.rate
        );
        println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        for (arm, tally) in ARMS.iter().zip(self.tallies) {
            let (cpu, cpu_min, cpu_max) = spread(&tally.cpu_us_rounds);
            let (added, added_min, added_max) = spread(&self.added_cpu(tally));
            let (rps, _, _) = spread(&tally.rps_rounds());
            let (ratio, ratio_min, ratio_max) = spread(&self.ratios(tally, Tally::rps_rounds));
            println!(
                "| {} | {cpu:.1} [{cpu_min:.1}–{cpu_max:.1}] | {added:+.1} [{added_min:+.1}–{added_max:+.1}] | {rps:.0} | {ratio:.3} [{ratio_min:.3}–{ratio_max:.3}] | {:.0} | {:.0} | {:.0} | {} |",
                arm.label,
                tally.latency_us(|r| r.p50),
                tally.latency_us(|r| r.p99),
                tally.latency_us(|r| r.p999),
                tally.errors()
            );
        }

        let not_exported = self.tally(NOT_EXPORTED.label);
        let (making, _, _) = spread(&self.added_cpu(not_exported));
        println!("\n| cost, per span ({SPANS_PER_REQUEST} spans a request) | µs of CPU |");
        println!("| --- | ---: |");
        println!(
            "| making a span (created, sampled, ended; not exported) | {:.2} |",
            making / SPANS_PER_REQUEST
        );
        for arm in [EXPORTED_HTTP, EXPORTED_GRPC] {
            let (added, _, _) = spread(&self.added_cpu(self.tally(arm.label)));
            println!(
                "| exporting it, over {} (on top of making it) | {:.2} |",
                arm.export.map_or("?", Transport::protocol),
                (added - making) / SPANS_PER_REQUEST
            );
        }
        let (logging, _, _) = spread(&self.added_cpu(self.tally(INFO_LOGS.label)));
        println!(
            "| for scale: logging each request at info (two lines a request) | {logging:.2} µs/req |"
        );

        println!("\n| spans | requests answered | spans expected | spans received |");
        println!("| --- | ---: | ---: | ---: |");
        for (index, arm) in ARMS.iter().enumerate().filter(|(_, a)| a.export.is_some()) {
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
                ARMS[index / 2].label
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
