//! `jaeger-check`: the live mesh test's assertions, on JSON from Jaeger's
//! query API. Prints the trace trees it read, then what is wrong; exits 1
//! when something is, 2 when the input cannot be read.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use clap::{Parser, Subcommand};
use jaeger_check::{
    Dataplane, Findings, Response, Trace, check_no_export_traces, check_say_hello, check_say_hello2,
};

/// Checks traces read from Jaeger's query API (`/api/traces…`) against what
/// the mesh should make.
#[derive(Debug, Parser)]
#[command(name = "jaeger-check")]
struct Args {
    #[command(subcommand)]
    check: Check,
}

#[derive(Debug, Subcommand)]
enum Check {
    /// One `/sayHello` trace (`GET /api/traces/{id}`): gateway, the mesh's
    /// proxies and both services' spans in one tree, formatter at `--version`.
    SayHello {
        /// The formatter version the request must have reached.
        #[arg(long)]
        version: String,
        /// The data plane that carried the request: sidecars, or ztunnel and a waypoint.
        #[arg(long, value_enum, default_value_t)]
        dataplane: Dataplane,
        /// The query API's answer.
        file: PathBuf,
    },
    /// One `/sayHello2` trace: the mesh's proxies and formatter-svc, no
    /// hello-svc app spans.
    SayHello2 {
        /// The data plane that carried the request: sidecars, or ztunnel and a waypoint.
        #[arg(long, value_enum, default_value_t)]
        dataplane: Dataplane,
        /// The query API's answer.
        file: PathBuf,
    },
    /// Search answers (`GET /api/traces?service=…`): no span is an export
    /// call to the collector.
    NoExportTraces {
        /// The query API's answers.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn run(check: &Check) -> Result<Findings, String> {
    Ok(match check {
        Check::SayHello {
            version,
            dataplane,
            file,
        } => {
            let trace = Trace::from_json(&read(file)?)?;
            print!("{}", trace.render());
            check_say_hello(&trace, version, *dataplane)
        }
        Check::SayHello2 { dataplane, file } => {
            let trace = Trace::from_json(&read(file)?)?;
            print!("{}", trace.render());
            check_say_hello2(&trace, *dataplane)
        }
        Check::NoExportTraces { files } => {
            let mut traces = Vec::new();
            for file in files {
                traces.extend(Response::from_json(&read(file)?)?.data);
            }
            println!("{} traces searched", traces.len());
            check_no_export_traces(&traces)
        }
    })
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args.check) {
        Ok(findings) if findings.is_empty() => {
            println!("ok");
            ExitCode::SUCCESS
        }
        Ok(findings) => {
            for finding in findings {
                println!("FAILED: {finding}");
            }
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("jaeger-check: {error}");
            ExitCode::from(2)
        }
    }
}
