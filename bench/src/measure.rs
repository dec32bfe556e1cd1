//! Measuring: oha runs, CPU from `/proc`, start-up time, the machine.

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crate::{
    Args,
    load::{self, Run},
};

/// Everything measured for one arm, over all rounds.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub(crate) throughput: Vec<Run>,
    pub(crate) latency: Vec<Run>,
    /// Every request sent, warm-up included, for the span arithmetic.
    pub(crate) sent_ok: u64,
    pub(crate) sent_cut_off: u64,
    /// Per round: the services' CPU microseconds per answered request
    /// during the throughput run.
    pub(crate) cpu_us_rounds: Vec<f64>,
    /// Per round: the same during the fixed-rate run, where the cores are
    /// not saturated, so contention does not inflate it: the steadier one.
    pub(crate) cpu_us_fixed_rounds: Vec<f64>,
}

/// How a measured run loads the pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Load {
    /// As fast as the connections allow: throughput.
    Saturating,
    /// At `--rate`, below saturation: latency, and the headline CPU.
    FixedRate,
}

impl Tally {
    /// Counts a warm-up run's requests, for the span arithmetic only.
    pub(crate) fn add_warm_up(&mut self, run: &Run) {
        self.sent_ok += run.ok;
        self.sent_cut_off += run.cut_off;
    }

    /// Records a measured run and the pair's CPU microseconds per answered
    /// request during it.
    pub(crate) fn add(&mut self, load: Load, run: Run, cpu_us_per_request: f64) {
        self.add_warm_up(&run);
        match load {
            Load::Saturating => {
                self.throughput.push(run);
                self.cpu_us_rounds.push(cpu_us_per_request);
            }
            Load::FixedRate => {
                self.latency.push(run);
                self.cpu_us_fixed_rounds.push(cpu_us_per_request);
            }
        }
    }

    /// Requests a second, per round.
    pub(crate) fn rps_rounds(&self) -> Vec<f64> {
        self.throughput
            .iter()
            .map(|r| r.ok as f64 / r.seconds)
            .collect()
    }

    pub(crate) fn errors(&self) -> u64 {
        self.throughput
            .iter()
            .chain(&self.latency)
            .map(|r| r.errors)
            .sum()
    }

    /// The median over rounds of one latency percentile, in microseconds.
    pub(crate) fn latency_us(&self, percentile: fn(&Run) -> f64) -> f64 {
        median(self.latency.iter().map(percentile).collect()) * 1e6
    }
}

/// The median of `values`, and their smallest and largest.
pub(crate) fn spread(values: &[f64]) -> (f64, f64, f64) {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (median(values.to_vec()), min, max)
}

pub(crate) fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

pub(crate) async fn oha(
    args: &Args,
    url: &str,
    seconds: u64,
    rate: Option<u32>,
) -> Result<Run, String> {
    let (oha, url, connections) = (args.oha.clone(), url.to_owned(), args.connections);
    tokio::task::spawn_blocking(move || load::run(&oha, &url, seconds, connections, rate))
        .await
        .map_err(|e| e.to_string())?
}

/// One oha run against `url` under `load`, with the CPU the processes
/// `pids` used during it, in microseconds per answered request.
pub(crate) async fn measured_run(
    args: &Args,
    url: &str,
    pids: &[u32],
    load: Load,
) -> Result<(Run, f64), String> {
    let rate = (load == Load::FixedRate).then_some(args.rate);
    let before = cpu_seconds(pids);
    let run = oha(args, url, args.seconds, rate).await?;
    let cpu = cpu_seconds(pids) - before;
    Ok((run, cpu / run.ok.max(1) as f64 * 1e6))
}

/// User plus system CPU seconds the processes have used, from /proc.
fn cpu_seconds(pids: &[u32]) -> f64 {
    // Linux reports these in clock ticks, 100 a second on every mainstream
    // architecture (USER_HZ, fixed by the kernel ABI).
    pub(crate) const TICKS_PER_SECOND: f64 = 100.0;
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

/// How many times [`time_to_ready`] starts each service.
pub(crate) const STARTS: usize = 5;

/// The time from spawning `binary` to its first 200 from `/healthz`, polled
/// every millisecond, for each of [`STARTS`] starts ([`Duration::MAX`] for
/// one not ready within 10 s).
pub(crate) fn time_to_ready(binary: &str) -> Vec<Duration> {
    let exe = std::env::current_exe().expect("current_exe is known");
    let path = exe.with_file_name(binary);
    (0..STARTS)
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

pub(crate) fn healthz_ok(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let request = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let mut answer = [0u8; 12];
    stream.write_all(request).is_ok()
        && stream.read_exact(&mut answer).is_ok()
        && &answer == b"HTTP/1.1 200"
}
pub(crate) fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}

pub(crate) fn cores() -> usize {
    std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
}
