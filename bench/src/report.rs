//! The Markdown report of a `make bench` run.

use std::time::Duration;

use crate::{
    Args,
    measure::{Tally, cores, cpu_model, median},
    scenarios::Scenario,
};

pub(crate) struct Report<'a> {
    pub(crate) args: &'a Args,
    pub(crate) tallies: &'a [(Scenario, Tally)],
    pub(crate) rss: Vec<(&'static str, (u64, u64))>,
    pub(crate) counts: &'a std::collections::HashMap<String, u64>,
    pub(crate) startup: &'a [(&'static str, Vec<Duration>)],
}

impl Report<'_> {
    pub(crate) fn tally(&self, scenario: Scenario) -> &Tally {
        &self
            .tallies
            .iter()
            .find(|(s, _)| *s == scenario)
            .expect("every scenario ran")
            .1
    }

    pub(crate) fn print(&self) {
        let args = self.args;
        println!("## make bench\n");
        println!(
            "Machine: {}, {} cores. Load generator: oha, on the same cores.",
            cpu_model(),
            cores()
        );
        println!(
            "{} interleaved rounds; per scenario and round: {} s at {} connections (throughput), then {} s at {} req/s (latency, oha --latency-correction). Latency: median over rounds.\n",
            args.rounds, args.seconds, args.connections, args.seconds, args.rate
        );
        let baseline = self.tally(Scenario::SdkDisabled);
        println!(
            "| scenario | throughput (req/s) | vs uninstrumented two-hop | p50 (µs) | p99 (µs) | p99.9 (µs) | errors | services' CPU (µs/req) | sink's CPU (µs/req) |"
        );
        println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        for (scenario, tally) in self.tallies {
            println!(
                "| {} | {:.0} | {:.3} | {:.0} | {:.0} | {:.0} | {} | {:.1} | {:.1} |",
                scenario.label(),
                tally.requests_per_second(),
                tally.requests_per_second() / baseline.requests_per_second(),
                tally.latency_us(|r| r.p50),
                tally.latency_us(|r| r.p99),
                tally.latency_us(|r| r.p999),
                tally.errors(),
                tally.cpu_us_per_request(tally.service_cpu),
                tally.cpu_us_per_request(tally.sink_cpu)
            );
        }

        println!(
            "\n| process | RSS after round 1 (MiB) | RSS after the last round (MiB) | growth |"
        );
        println!("| --- | ---: | ---: | ---: |");
        for (name, (first, last)) in &self.rss {
            let growth = (*last as f64 - *first as f64) / *first as f64 * 100.0;
            println!(
                "| {name} | {:.1} | {:.1} | {growth:+.1} % |",
                *first as f64 / 1024.0,
                *last as f64 / 1024.0
            );
        }

        println!("\n| spans | requests answered | spans expected | spans received |");
        println!("| --- | ---: | ---: | ---: |");
        let received = |names: [&str; 2]| {
            names
                .iter()
                .map(|n| self.counts.get(*n).copied().unwrap_or_default())
                .sum::<u64>()
        };
        let full = self.tally(Scenario::FullySampled);
        let full_received = received(["hello-full", "formatter-full"]);
        println!(
            "| /sayHello, 100 % | {} | {} (up to {} counting cut-off requests) | {} |",
            full.sent_ok,
            3 * full.sent_ok,
            3 * (full.sent_ok + full.sent_cut_off),
            full_received
        );
        let ratio = self.tally(Scenario::RatioSampled);
        let ratio_received = received(["hello-ratio", "formatter-ratio"]);
        println!(
            "| /sayHello, 10 % | {} | about {} | {} ({:.1} % of requests traced) |",
            ratio.sent_ok,
            3 * ratio.sent_ok / 10,
            ratio_received,
            ratio_received as f64 / 3.0 / ratio.sent_ok as f64 * 100.0
        );

        println!(
            "\n| start-up: spawn to first 200 from /healthz | median (ms) | slowest of 5 (ms) |"
        );
        println!("| --- | ---: | ---: |");
        for (name, times) in self.startup {
            let ms: Vec<f64> = times.iter().map(|t| t.as_secs_f64() * 1e3).collect();
            let slowest = ms.iter().copied().fold(0.0, f64::max);
            println!("| {name} | {:.1} | {slowest:.1} |", median(ms.clone()));
        }

        let full_ratio = full.requests_per_second() / baseline.requests_per_second();
        let propagation_ratio = self.tally(Scenario::PropagationOnly).requests_per_second()
            / baseline.requests_per_second();
        let added_p99 = full.latency_us(|r| r.p99) - baseline.latency_us(|r| r.p99);
        let max_rss = self
            .rss
            .iter()
            .map(|(_, (_, last))| *last)
            .max()
            .unwrap_or_default() as f64
            / 1024.0;
        let max_growth = self
            .rss
            .iter()
            .map(|(_, (first, last))| (*last as f64 - *first as f64) / *first as f64 * 100.0)
            .fold(f64::MIN, f64::max);
        let lost = (3 * full.sent_ok).saturating_sub(full_received);
        let slowest_start = self
            .startup
            .iter()
            .flat_map(|(_, t)| t.iter().map(|d| d.as_secs_f64() * 1e3))
            .map(|ms| ms.round())
            .fold(0.0, f64::max);
        let verdict = |ok: bool| if ok { "met" } else { "**missed**" };
        println!("\n| target | measured | |");
        println!("| --- | --- | --- |");
        println!(
            "| 100 % sampled ≥ 0.90 × uninstrumented throughput | {full_ratio:.3} | {} |",
            verdict(full_ratio >= 0.90)
        );
        println!(
            "| /sayHello2 ≥ 0.97 × uninstrumented throughput | {propagation_ratio:.3} | {} |",
            verdict(propagation_ratio >= 0.97)
        );
        println!(
            "| p99 added by instrumentation < 150 µs | {added_p99:.0} µs | {} |",
            verdict(added_p99 < 150.0)
        );
        println!(
            "| RSS ≤ 20 MiB per service | {max_rss:.1} MiB (largest) | {} |",
            verdict(max_rss <= 20.0)
        );
        println!(
            "| no RSS growth between rounds | {max_growth:+.1} % (largest) | {} |",
            verdict(max_growth <= 5.0)
        );
        println!(
            "| no span lost at 100 % | {lost} lost | {} |",
            verdict(lost == 0)
        );
        println!(
            "| ready within 100 ms | {slowest_start:.0} ms (slowest) | {} |",
            verdict(slowest_start <= 100.0)
        );
    }
}
