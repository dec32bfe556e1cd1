//! `make soak`: steady load on the pair as deployed, with errors, lost
//! spans, log lines against requests answered, and RSS/fd drift reported.

use test_harness::otlp_receiver::Transport;

use crate::{
    Args,
    measure::{cores, cpu_model, oha},
    scenarios::{AS_DEPLOYED, Pair, SERVICES, SPANS_PER_REQUEST},
    sinks::CountingSink,
};

/// What a soak measured.
struct Soaked {
    /// Requests answered 200 after the warm-up, and errors.
    ok: u64,
    errors: u64,
    /// Requests answered, warm-up included, and those oha cut off at the end
    /// of a slice (which may have made their spans too).
    answered: u64,
    cut_off: u64,
    /// Spans the sink received.
    received: u64,
    /// Log lines each service wrote under load, in [`SERVICES`] order.
    lines: [u64; 2],
    /// RSS (KiB) and open fds after each slice, per service; never empty.
    samples: Vec<[(u64, usize); 2]>,
}

/// Steady load on the pair as deployed (every span exported, a log line per
/// request) for `minutes`, in 30 s slices at `--rate` with 4 connections,
/// sampling RSS and open fds after each slice; then the report.
pub(crate) async fn soak(args: &Args, minutes: u64) -> Result<(), String> {
    let soaked = run(args, minutes).await?;
    report(args, minutes, &soaked)
}

/// The load, then SIGTERM, then the counts.
async fn run(args: &Args, minutes: u64) -> Result<Soaked, String> {
    const SLICE_SECONDS: u64 = 30;
    let sink = CountingSink::start(Transport::HttpProtobuf)
        .await
        .map_err(|e| format!("cannot start the OTLP sink: {e}"))?;
    let pair = Pair::start(&AS_DEPLOYED, "soak", Some(&sink.endpoint())).await;
    let url = pair.url(&AS_DEPLOYED);
    let lines_at_start = [
        pair.hello.log_lines_so_far(),
        pair.formatter.log_lines_so_far(),
    ];
    let soak_args = Args {
        connections: 4,
        ..args.clone()
    };

    // A first slice warms the pools and allocator; drift is measured after
    // it. Its spans count like the others'.
    let warm_up = oha(&soak_args, &url, SLICE_SECONDS, Some(args.rate)).await?;
    let (mut answered, mut cut_off) = (warm_up.ok, warm_up.cut_off);
    let mut samples: Vec<[(u64, usize); 2]> = Vec::new();
    let (mut ok, mut errors) = (0u64, 0u64);
    // At least one slice, so there is a sample to compare with.
    let slices = (minutes * 60).div_ceil(SLICE_SECONDS).max(1);
    for slice in 0..slices {
        let run = oha(&soak_args, &url, SLICE_SECONDS, Some(args.rate)).await?;
        ok += run.ok;
        errors += run.errors;
        answered += run.ok;
        cut_off += run.cut_off;
        samples.push([&pair.hello, &pair.formatter].map(|p| (p.rss_kib(), p.open_fds())));
        eprintln!(
            "soak {}/{slices}: {} ok, {} errors, p99 {:.0} µs",
            slice + 1,
            run.ok,
            run.errors,
            run.p99 * 1e6
        );
    }

    // SIGTERM flushes both batch processors; once the processes have exited
    // the sink has every span it will get.
    let (mut hello, mut formatter) = (pair.hello, pair.formatter);
    hello.terminate();
    formatter.terminate();
    hello
        .wait_for_exit(std::time::Duration::from_secs(30))
        .await;
    formatter
        .wait_for_exit(std::time::Duration::from_secs(30))
        .await;
    let received: u64 = sink.counts().values().sum();
    let mut lines = [0; 2];
    for (index, process) in [&hello, &formatter].into_iter().enumerate() {
        let at_exit = process.log_lines_at_exit().await.unwrap_or(0);
        lines[index] = at_exit.saturating_sub(lines_at_start[index]);
    }
    Ok(Soaked {
        ok,
        errors,
        answered,
        cut_off,
        received,
        lines,
        samples,
    })
}

/// The soak's tables and verdict; `Err` when a check missed.
fn report(args: &Args, minutes: u64, soaked: &Soaked) -> Result<(), String> {
    let Soaked {
        ok,
        errors,
        answered,
        cut_off,
        received,
        lines,
        ref samples,
    } = *soaked;
    // A request oha cut off at the end of a slice may have made its spans.
    let (expected, at_most) = (
        SPANS_PER_REQUEST * answered,
        SPANS_PER_REQUEST * (answered + cut_off),
    );
    println!("## make soak\n");
    println!(
        "{minutes} min at {} req/s, 4 connections, on the pair as deployed (100 % sampled, exported over OTLP/HTTP, RUST_LOG=info, JSON lines). Machine: {}, {} cores.\n",
        args.rate,
        cpu_model(),
        cores()
    );
    println!("Requests answered 200: {ok}. Errors: {errors}.\n");
    println!(
        "Spans: {received} received, {expected} expected for the {answered} requests answered (warm-up included; up to {at_most} counting cut-off requests).\n"
    );
    let lines_complete = report_log_lines(lines, answered, cut_off);
    println!();
    println!("| process | RSS first (MiB) | RSS last (MiB) | RSS drift | fds first | fds last |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    let mut verdicts = vec![
        ("zero errors", errors == 0),
        ("no span lost", (expected..=at_most).contains(&received)),
        ("no log line lost", lines_complete),
    ];
    for (index, name) in SERVICES.into_iter().enumerate() {
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

/// Prints each service's log lines written under load against the requests
/// answered, and whether none is missing: one a request in hello-svc, two in
/// formatter-svc ("incoming request headers" and the access line), plus the
/// few shutdown lines.
fn report_log_lines(lines: [u64; 2], answered: u64, cut_off: u64) -> bool {
    const SHUTDOWN_LINES: u64 = 5;
    println!("| process | log lines written under load | lines a request | expected |");
    println!("| --- | ---: | ---: | --- |");
    let mut complete = true;
    for (index, (name, per_request)) in [("hello-svc", 1), ("formatter-svc", 2)]
        .into_iter()
        .enumerate()
    {
        let (least, most) = (
            per_request * answered,
            per_request * (answered + cut_off) + SHUTDOWN_LINES,
        );
        complete &= (least..=most).contains(&lines[index]);
        println!(
            "| {name} | {} | {:.3} | {per_request} for each of the {answered} answered ({least}–{most} with cut-off requests and shutdown lines) |",
            lines[index],
            lines[index] as f64 / answered as f64,
        );
    }
    complete
}
