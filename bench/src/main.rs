//! `make bench`: what tracing costs hello-svc and formatter-svc, measured end
//! to end on loopback with oha, and printed as Markdown.
//!
//! Every scenario has its own processes, so the only difference between two
//! scenarios is the one the table names. The scenarios run in interleaved
//! rounds, so machine noise hits each alike. Each round measures:
//! - throughput: as fast as `--connections` allow;
//! - latency: at a fixed `--rate`, well below saturation, so the percentiles
//!   are service time rather than queueing.

mod load;

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use clap::Parser;
use mesh_test_harness::{
    otlp_receiver::{OtlpReceiver, Transport},
    service_process::ServiceProcess,
};

use load::Run;

/// Measures what tracing costs the service pair.
#[derive(Debug, Clone, Parser)]
struct Args {
    /// Rounds; each measures every scenario once, in a rotated order.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Connections for the throughput runs.
    #[arg(long, default_value_t = 8)]
    connections: u32,
    /// Requests a second for the latency runs.
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    /// The oha executable.
    #[arg(long, env = "OHA", default_value = "oha")]
    oha: String,
    /// Instead of the scenarios, soak the fully traced pair for this many
    /// minutes at `--rate` and report errors and RSS/fd drift.
    #[arg(long)]
    soak_minutes: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    FormatterDirect,
    SdkDisabled,
    PropagationOnly,
    FullySampled,
    SampledNotExported,
    RatioSampled,
}

impl Scenario {
    const ALL: [Scenario; 6] = [
        Self::FormatterDirect,
        Self::SdkDisabled,
        Self::PropagationOnly,
        Self::FullySampled,
        Self::SampledNotExported,
        Self::RatioSampled,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::FormatterDirect => "formatter direct (one hop)",
            Self::SdkDisabled => "/sayHello, OTEL_SDK_DISABLED=true",
            Self::PropagationOnly => "/sayHello2 (propagation only)",
            Self::FullySampled => "/sayHello, 100 % sampled",
            Self::SampledNotExported => "/sayHello, 100 % sampled, not exported",
            Self::RatioSampled => "/sayHello, 10 % ratio sampler",
        }
    }
}

/// The processes behind the scenarios. Service names tell the sink's counts
/// apart.
struct Services {
    formatter_plain: ServiceProcess,
    hello_plain: ServiceProcess,
    formatter_full: ServiceProcess,
    hello_full: ServiceProcess,
    formatter_ratio: ServiceProcess,
    hello_ratio: ServiceProcess,
    formatter_unexported: ServiceProcess,
    hello_unexported: ServiceProcess,
}

impl Services {
    fn start(sink: &str) -> Self {
        let traced = |name: &'static str| -> Vec<(&'static str, String)> {
            vec![
                ("OTEL_SERVICE_NAME", name.to_owned()),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", sink.to_owned()),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".to_owned()),
                // The SDK's default schedule, not the tests' fast one.
                ("OTEL_BSP_SCHEDULE_DELAY", "5000".to_owned()),
            ]
        };
        let spawn = |binary: &'static str, env: Vec<(&'static str, String)>| {
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            ServiceProcess::spawn_discarding_logs(binary, &env)
        };
        let with = |mut env: Vec<(&'static str, String)>, extra: &[(&'static str, &str)]| {
            env.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
            env
        };

        let plain = vec![("OTEL_SDK_DISABLED", "true".to_owned())];
        let formatter_plain = spawn("formatter-svc", plain.clone());
        let hello_plain = spawn(
            "hello-svc",
            with(plain, &[("FORMATTER_URL", &formatter_plain.url())]),
        );
        let formatter_full = spawn("formatter-svc", traced("formatter-full"));
        let hello_full = spawn(
            "hello-svc",
            with(
                traced("hello-full"),
                &[("FORMATTER_URL", &formatter_full.url())],
            ),
        );
        let formatter_ratio = spawn("formatter-svc", traced("formatter-ratio"));
        let hello_ratio = spawn(
            "hello-svc",
            with(
                traced("hello-ratio"),
                &[
                    ("FORMATTER_URL", &formatter_ratio.url()),
                    ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
                    ("OTEL_TRACES_SAMPLER_ARG", "0.1"),
                ],
            ),
        );
        // Spans are created, sampled and ended, but no exporter runs: the
        // difference to FullySampled is the price of exporting.
        let unexported = vec![("OTEL_TRACES_EXPORTER", "none".to_owned())];
        let formatter_unexported = spawn("formatter-svc", unexported.clone());
        let hello_unexported = spawn(
            "hello-svc",
            with(
                unexported,
                &[("FORMATTER_URL", &formatter_unexported.url())],
            ),
        );
        Self {
            formatter_plain,
            hello_plain,
            formatter_full,
            hello_full,
            formatter_ratio,
            hello_ratio,
            formatter_unexported,
            hello_unexported,
        }
    }

    fn url(&self, scenario: Scenario) -> String {
        match scenario {
            Scenario::FormatterDirect => {
                format!("{}/formatGreeting?name=Brian", self.formatter_plain.url())
            }
            Scenario::SdkDisabled => format!("{}/sayHello/Brian", self.hello_plain.url()),
            Scenario::PropagationOnly => format!("{}/sayHello2/Brian", self.hello_plain.url()),
            Scenario::FullySampled => format!("{}/sayHello/Brian", self.hello_full.url()),
            Scenario::SampledNotExported => {
                format!("{}/sayHello/Brian", self.hello_unexported.url())
            }
            Scenario::RatioSampled => format!("{}/sayHello/Brian", self.hello_ratio.url()),
        }
    }

    /// The processes that serve `scenario`.
    fn serving(&self, scenario: Scenario) -> Vec<u32> {
        let pids = |processes: &[&ServiceProcess]| processes.iter().map(|p| p.pid()).collect();
        match scenario {
            Scenario::FormatterDirect => pids(&[&self.formatter_plain]),
            Scenario::SdkDisabled | Scenario::PropagationOnly => {
                pids(&[&self.hello_plain, &self.formatter_plain])
            }
            Scenario::FullySampled => pids(&[&self.hello_full, &self.formatter_full]),
            Scenario::SampledNotExported => {
                pids(&[&self.hello_unexported, &self.formatter_unexported])
            }
            Scenario::RatioSampled => pids(&[&self.hello_ratio, &self.formatter_ratio]),
        }
    }

    fn all(&self) -> [(&'static str, &ServiceProcess); 8] {
        [
            ("formatter (plain)", &self.formatter_plain),
            ("hello (plain)", &self.hello_plain),
            ("formatter (100 %)", &self.formatter_full),
            ("hello (100 %)", &self.hello_full),
            ("formatter (10 %)", &self.formatter_ratio),
            ("hello (10 %)", &self.hello_ratio),
            (
                "formatter (100 %, not exported)",
                &self.formatter_unexported,
            ),
            ("hello (100 %, not exported)", &self.hello_unexported),
        ]
    }
}

/// Everything measured for one scenario, over all rounds.
#[derive(Debug, Default)]
struct Tally {
    throughput: Vec<Run>,
    latency: Vec<Run>,
    /// Every request sent, warm-up included, for the span arithmetic.
    sent_ok: u64,
    sent_cut_off: u64,
    /// CPU seconds the scenario's services, and the sink (this process),
    /// spent during the throughput runs.
    service_cpu: f64,
    sink_cpu: f64,
}

impl Tally {
    fn add(&mut self, run: Run, is_latency: bool) {
        self.sent_ok += run.ok;
        self.sent_cut_off += run.cut_off;
        if is_latency {
            self.latency.push(run)
        } else {
            self.throughput.push(run)
        }
    }

    fn requests_per_second(&self) -> f64 {
        let ok: u64 = self.throughput.iter().map(|r| r.ok).sum();
        let seconds: f64 = self.throughput.iter().map(|r| r.seconds).sum();
        ok as f64 / seconds
    }

    /// CPU microseconds per answered request, over the throughput runs.
    fn cpu_us_per_request(&self, cpu: f64) -> f64 {
        let ok: u64 = self.throughput.iter().map(|r| r.ok).sum();
        cpu / ok as f64 * 1e6
    }

    fn errors(&self) -> u64 {
        self.throughput
            .iter()
            .chain(&self.latency)
            .map(|r| r.errors)
            .sum()
    }

    /// The median over rounds of one latency percentile, in microseconds.
    fn latency_us(&self, percentile: fn(&Run) -> f64) -> f64 {
        median(self.latency.iter().map(percentile).collect()) * 1e6
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
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

/// Steady load on the fully traced pair for `minutes`, in 30 s slices at
/// `--rate` with 4 connections, sampling RSS and open fds after each slice.
async fn soak(args: &Args, minutes: u64) -> Result<(), String> {
    const SLICE_SECONDS: u64 = 30;
    let sink = OtlpReceiver::start_counting(Transport::HttpProtobuf)
        .await
        .map_err(|e| format!("cannot start the OTLP sink: {e}"))?;
    let services = Services::start(&sink.endpoint());
    let url = services.url(Scenario::FullySampled);
    let processes = [
        ("hello-svc", &services.hello_full),
        ("formatter-svc", &services.formatter_full),
    ];
    let soak_args = Args {
        connections: 4,
        ..args.clone()
    };

    // A first slice warms the pools and allocator; drift is measured after it.
    oha(&soak_args, &url, SLICE_SECONDS, Some(args.rate)).await?;
    let mut samples: Vec<[(u64, usize); 2]> = Vec::new();
    let (mut ok, mut errors) = (0u64, 0u64);
    let slices = (minutes * 60).div_ceil(SLICE_SECONDS);
    for slice in 0..slices {
        let run = oha(&soak_args, &url, SLICE_SECONDS, Some(args.rate)).await?;
        ok += run.ok;
        errors += run.errors;
        samples.push(processes.map(|(_, p)| (p.rss_kib(), p.open_fds())));
        eprintln!(
            "soak {}/{slices}: {} ok, {} errors, p99 {:.0} µs",
            slice + 1,
            run.ok,
            run.errors,
            run.p99 * 1e6
        );
    }

    println!("## make soak\n");
    println!(
        "{minutes} min at {} req/s, 4 connections, on the fully traced pair (100 % sampled, exported). Machine: {}, {} cores.\n",
        args.rate,
        cpu_model(),
        cores()
    );
    println!("Requests answered 200: {ok}. Errors: {errors}.\n");
    println!("| process | RSS first (MiB) | RSS last (MiB) | RSS drift | fds first | fds last |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    let mut verdicts = vec![("zero errors", errors == 0)];
    for (index, (name, _)) in processes.iter().enumerate() {
        let (first, last) = (samples[0][index], samples[samples.len() - 1][index]);
        let drift = (last.0 as f64 - first.0 as f64) / first.0 as f64 * 100.0;
        println!(
            "| {name} | {:.1} | {:.1} | {drift:+.1} % | {} | {} |",
            first.0 as f64 / 1024.0,
            last.0 as f64 / 1024.0,
            first.1,
            last.1
        );
        verdicts.push(("RSS flat within 10 %", drift.abs() <= 10.0));
        verdicts.push(("file descriptors flat", last.1 <= first.1 + 2));
    }
    let all_met = verdicts.iter().all(|(_, met)| *met);
    for (what, _) in verdicts.iter().filter(|(_, met)| !met) {
        println!("\n**missed**: {what}");
    }
    println!(
        "\nSoak verdict: {}",
        if all_met {
            "every check met"
        } else {
            "**a check missed**"
        }
    );
    if all_met {
        Ok(())
    } else {
        Err("the soak missed a check".to_owned())
    }
}

async fn oha(args: &Args, url: &str, seconds: u64, rate: Option<u32>) -> Result<Run, String> {
    let (oha, url, connections) = (args.oha.clone(), url.to_owned(), args.connections);
    tokio::task::spawn_blocking(move || load::run(&oha, &url, seconds, connections, rate))
        .await
        .map_err(|e| e.to_string())?
}

/// User plus system CPU seconds the processes have used, from /proc.
fn cpu_seconds(pids: &[u32]) -> f64 {
    // Linux reports these in clock ticks, 100 a second on every mainstream
    // architecture (USER_HZ, fixed by the kernel ABI).
    const TICKS_PER_SECOND: f64 = 100.0;
    pids.iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .filter_map(|stat| {
            // Fields after the command name, which may contain spaces.
            let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
            let ticks: u64 =
                fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
            Some(ticks as f64 / TICKS_PER_SECOND)
        })
        .sum()
}

/// Median, over five starts, of the time from spawning `binary` to its first
/// 200 from `/healthz`, polled every millisecond.
fn time_to_ready(binary: &str) -> Vec<Duration> {
    let exe = std::env::current_exe().expect("current_exe is known");
    let path = exe.with_file_name(binary);
    (0..5)
        .map(|_| {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let started = Instant::now();
            let mut child = Command::new(&path)
                .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
                .env("OTEL_TRACES_EXPORTER", "none")
                .env("LOG_FORMAT", "json")
                .stdout(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", path.display()));
            let ready = loop {
                if healthz_ok(port) {
                    break started.elapsed();
                }
                if started.elapsed() > Duration::from_secs(10) {
                    break Duration::MAX;
                }
                std::thread::sleep(Duration::from_millis(1));
            };
            let _ = child.kill();
            let _ = child.wait();
            ready
        })
        .collect()
}

fn healthz_ok(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let request = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let mut answer = [0u8; 12];
    stream.write_all(request).is_ok()
        && stream.read_exact(&mut answer).is_ok()
        && &answer == b"HTTP/1.1 200"
}

struct Report<'a> {
    args: &'a Args,
    tallies: &'a [(Scenario, Tally)],
    rss: Vec<(&'static str, (u64, u64))>,
    counts: &'a std::collections::HashMap<String, u64>,
    startup: &'a [(&'static str, Vec<Duration>)],
}

impl Report<'_> {
    fn tally(&self, scenario: Scenario) -> &Tally {
        &self
            .tallies
            .iter()
            .find(|(s, _)| *s == scenario)
            .expect("every scenario ran")
            .1
    }

    fn print(&self) {
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

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
}
